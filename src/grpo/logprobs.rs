//! Log-probabilities of the sampled tokens under the model's logits.
//!
//! `logits[n, t]` must already be the scores *for* `tokens[n, t]` (the caller drops the
//! last prompt position's shift). Logits are upcast to f32 before the log-softmax: in
//! bf16 the normalizer alone would carry ~0.03 nats of rounding error, which is larger
//! than the policy ratios the loss clips at.

use mlx_rs::error::Exception;
use mlx_rs::{stop_gradient, Array, Dtype};

/// Per-token log-probs `[N, T]` of integer `tokens` `[N, T]` under `logits` `[N, T, V]`
/// divided by `temperature` (use the sampling temperature so ratios match the sampler).
pub fn token_log_probs(
    logits: &Array,
    tokens: &Array,
    temperature: f32,
) -> Result<Array, Exception> {
    let (scaled, normalizer) = scaled_logits(logits, temperature)?;
    gather(&scaled, &normalizer, tokens)
}

/// As [`token_log_probs`], plus each position's entropy `[N, T]` of the whole
/// distribution (a metric: gradients do not flow through it).
pub fn token_log_probs_with_entropy(
    logits: &Array,
    tokens: &Array,
    temperature: f32,
) -> Result<(Array, Array), Exception> {
    let (scaled, normalizer) = scaled_logits(logits, temperature)?;
    let logp = gather(&scaled, &normalizer, tokens)?;
    // H = -sum_v p_v log p_v, with log p = scaled - normalizer.
    let all = stop_gradient(scaled.subtract(&normalizer)?)?;
    let entropy = all.exp()?.multiply(&all)?.sum_axis(-1, false)?.negative()?;
    Ok((logp, entropy))
}

/// f32 logits over the temperature, and their log-sum-exp `[N, T, 1]`.
fn scaled_logits(logits: &Array, temperature: f32) -> Result<(Array, Array), Exception> {
    let mut scaled = logits.as_dtype(Dtype::Float32)?;
    if temperature != 1.0 {
        scaled = scaled.divide(Array::from_f32(temperature))?;
    }
    // logsumexp subtracts the row maximum internally, so large logits do not overflow.
    let normalizer = scaled.logsumexp_axis(-1, true)?;
    Ok((scaled, normalizer))
}

fn gather(scaled: &Array, normalizer: &Array, tokens: &Array) -> Result<Array, Exception> {
    let picked = scaled.take_along_axis(tokens.expand_dims(-1)?, -1)?;
    picked.subtract(normalizer)?.squeeze_axes(&[-1])
}
