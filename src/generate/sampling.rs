//! Next-token sampling: temperature, top-k, top-p (nucleus), min-p, greedy, with explicit
//! MLX random keys so that a seed reproduces the same tokens.
//!
//! Order (as in Hugging Face `generate` and vLLM): divide the logits by the temperature,
//! then keep the top-k tokens, then the smallest set of most likely tokens whose mass
//! reaches top-p (renormalised after top-k), then drop tokens below min-p times the most
//! likely one. mlx-lm applies its filters before the temperature instead.
//!
//! Log-probabilities reported for sampled tokens are those of the temperature-scaled,
//! unfiltered distribution, `log_softmax(logits / T)` (T = 1 when greedy): what TRL's
//! GRPO trainer computes as the policy's log-probs when it scores completions, so the
//! trainer's own forward pass reproduces them.

use mlx_rs::error::Exception;
use mlx_rs::ops::indexing::{argmax_axis, TryIndexOp};
use mlx_rs::{nn, ops, random, Array};

use crate::error::GenerateError;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 turns it off.
    pub top_k: usize,
    /// Keep the most likely tokens up to this cumulative probability; 1 turns it off.
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the top one; 0 turns it off.
    pub min_p: f32,
}

impl Default for SamplingParams {
    /// Plain sampling at temperature 1.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether tokens are chosen by argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks ranges: temperature >= 0, top_p in (0, 1], min_p in [0, 1].
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |name, value: f32, expected| GenerateError::Sampling {
            name,
            value: value.to_string(),
            expected,
        };
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(bad(
                "temperature",
                self.temperature,
                "a finite number >= 0 (0 = greedy)",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad("top_p", self.top_p, "a number in (0, 1] (1 = off)"));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(bad("min_p", self.min_p, "a number in [0, 1] (0 = off)"));
        }
        Ok(())
    }
}

/// Tokens drawn for a batch of rows, and their log-probabilities.
#[derive(Debug)]
pub struct Sampled {
    /// `[R]` uint32 token ids.
    pub tokens: Array,
    /// `[R]` float32 `log_softmax(logits / T)` at those tokens.
    pub logprobs: Array,
}

/// `log_softmax(logits / T)` over the last axis, in float32; T = 1 when `temperature` is 0.
pub fn policy_logprobs(logits: &Array, temperature: f32) -> Result<Array, Exception> {
    let logits = logits.as_dtype(mlx_rs::Dtype::Float32)?;
    let scaled = match temperature {
        t if t > 0.0 && t != 1.0 => logits.multiply(Array::from_f32(1.0 / t))?,
        _ => logits,
    };
    nn::log_softmax(&scaled, -1)
}

/// Applies top-k, then top-p, then min-p to log-probabilities (`[R, V]`): removed
/// tokens become `-inf`. Filters set to "off" are skipped.
pub fn filter_logprobs(logprobs: &Array, params: &SamplingParams) -> Result<Array, Exception> {
    let vocab = logprobs.dim(-1);
    let neg_inf = Array::from_f32(f32::NEG_INFINITY);
    let mut lp = logprobs.clone();
    if params.top_k > 0 && (params.top_k as i64) < vocab as i64 {
        // Indices of everything but the k largest.
        let k = params.top_k as i32;
        let order = ops::argpartition_axis(&lp.negative()?, k - 1, -1)?;
        let dropped = order.try_index((.., k..))?;
        lp = lp.put_along_axis(&dropped, &neg_inf, -1)?;
    }
    if params.top_p < 1.0 {
        // Renormalise over what top-k kept, then keep sorted tokens while the mass
        // before them is below top_p; the first token is always kept.
        let norm = lp.subtract(lp.logsumexp_axis(-1, true)?)?;
        let descending = ops::sort_axis(&norm.negative()?, -1)?.negative()?;
        let mass_before = descending.exp()?.cumsum(-1, false, false)?;
        let kept = mass_before
            .lt(Array::from_f32(params.top_p))?
            .sum_axis(-1, true)?;
        let last_kept = kept.subtract(Array::from_int(1))?;
        let threshold = descending.take_along_axis(&last_kept, -1)?;
        lp = ops::select(&norm.lt(&threshold)?, &neg_inf, &lp)?;
    }
    if params.min_p > 0.0 {
        let top = lp.max_axis(-1, true)?;
        let threshold = top.add(Array::from_f32(params.min_p.ln()))?;
        lp = ops::select(&lp.lt(&threshold)?, &neg_inf, &lp)?;
    }
    Ok(lp)
}

/// Picks one token per row of `logits` (`[R, V]`). `key` drives the random draw
/// (ignored when greedy); the same key and logits give the same tokens.
pub fn sample(logits: &Array, params: &SamplingParams, key: &Array) -> Result<Sampled, Exception> {
    draw(logits, params, |filtered| {
        random::categorical(filtered, -1, None::<random::ShapeOrCount>, key)
    })
}

/// As [`sample`], with the Gumbel noise (`[R, V]`) given: the token is the argmax of the
/// filtered log-probs plus the noise, which is what `random::categorical` draws.
pub fn sample_with_noise(logits: &Array, params: &SamplingParams, noise: &Array) -> Result<Sampled, Exception> {
    draw(logits, params, |filtered| argmax_axis(&filtered.add(noise)?, -1, false))
}

/// Greedy argmax, or `pick` over the filtered log-probs; then the picked tokens' log-probs.
fn draw(
    logits: &Array,
    params: &SamplingParams,
    pick: impl FnOnce(&Array) -> Result<Array, Exception>,
) -> Result<Sampled, Exception> {
    let logprobs = policy_logprobs(logits, params.temperature)?;
    let tokens = if params.is_greedy() {
        argmax_axis(&logprobs, -1, false)?
    } else {
        pick(&filter_logprobs(&logprobs, params)?)?
    };
    let tokens = tokens.as_dtype(mlx_rs::Dtype::Uint32)?;
    let picked = logprobs
        .take_along_axis(&tokens.expand_dims(-1)?, -1)?
        .squeeze_axes(&[-1])?;
    Ok(Sampled {
        tokens,
        logprobs: picked,
    })
}
