//! The clipped GRPO policy loss on MLX arrays, with its four aggregations.
//!
//! Per token: `-min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) + beta * k3`, where
//! `rho` is the importance ratio against the policy that sampled the rollout (per token,
//! or per sequence as GSPO's `exp(mean over the sequence of logp - logp_old)`) and
//! `k3 = exp(ref - logp) - (ref - logp) - 1`. The formulas and metric definitions follow
//! TRL's `GRPOTrainer._compute_loss`.

use mlx_rs::error::Exception;
use mlx_rs::ops::{clip, maximum, minimum, select};
use mlx_rs::{stop_gradient, Array};
use serde::{Deserialize, Serialize};

use crate::optim::GradReduction;
use crate::recipe::GrpoConfig;

/// How masked per-token losses become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over sequences of each sequence's token mean (long completions count less
    /// per token).
    Grpo,
    /// Sum over the micro-batch divided by its completion tokens.
    Bnpo,
    /// Sum divided by `sequences * max_completion_length` (Dr. GRPO: no length bias).
    DrGrpo,
    /// Sum divided by the completion tokens of the whole generation batch (DAPO).
    Dapo,
}

impl LossType {
    /// `dapo` divides by the generation batch's token count, so its micro-batch
    /// gradients add up; the others are per-micro-batch means and are averaged (as TRL
    /// divides them by the accumulation steps).
    pub fn grad_reduction(self) -> GradReduction {
        match self {
            LossType::Dapo => GradReduction::Sum,
            LossType::Grpo | LossType::Bnpo | LossType::DrGrpo => GradReduction::Mean,
        }
    }
}

/// Where the importance ratio is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSampling {
    /// One ratio per token.
    Token,
    /// One ratio per sequence: the geometric mean of its token ratios (GSPO).
    Sequence,
}

/// The loss settings, from the recipe's `grpo` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    pub loss_type: LossType,
    pub importance_sampling: ImportanceSampling,
    /// The ratio is clipped below at `1 - epsilon_low`.
    pub epsilon_low: f32,
    /// The ratio is clipped above at `1 + epsilon_high`.
    pub epsilon_high: f32,
    /// KL weight; 0 means no reference log-probs are needed.
    pub beta: f32,
    /// `dr_grpo`'s per-sequence normalizer.
    pub max_completion_length: usize,
}

impl LossConfig {
    /// The loss settings a recipe asks for.
    pub fn from_recipe(g: &GrpoConfig) -> Self {
        LossConfig {
            loss_type: g.loss_type,
            importance_sampling: g.importance_sampling,
            epsilon_low: g.epsilon as f32,
            epsilon_high: g.epsilon_high() as f32,
            beta: g.beta as f32,
            max_completion_length: g.max_completion_length as usize,
        }
    }
}

/// One micro-batch of N completions padded to T tokens; all `[N, T]` arrays are f32.
/// Values at masked-out positions may be anything (even inf): they never reach the loss
/// or its gradient.
pub struct LossInputs<'a> {
    /// Log-probs of the sampled tokens under the policy being trained.
    pub logp: &'a Array,
    /// Log-probs recorded when the rollout was scored (the sampling policy).
    pub logp_old: &'a Array,
    /// Log-probs under the reference (adapters off); needed only when `beta != 0`.
    pub ref_logp: Option<&'a Array>,
    /// 1 for completion tokens that count, 0 for padding (and truncated completions
    /// when they are masked).
    pub mask: &'a Array,
    /// One advantage per completion, `[N]`.
    pub advantages: &'a Array,
    /// `dapo`'s normalizer: counted completion tokens in the whole generation batch (all
    /// micro-batches), i.e. the sum of every micro-batch's `mask`.
    pub batch_tokens: f32,
}

/// The scalar loss to differentiate, and metrics that carry no gradient.
pub struct LossOutput {
    pub loss: Array,
    pub metrics: LossMetrics,
}

/// Scalar metric arrays of one micro-batch, as TRL logs them. Token-level ratios are
/// averaged over counted tokens, sequence-level ones over sequences.
pub struct LossMetrics {
    /// Fraction where the ratio fell below `1 - epsilon_low` with a negative advantage.
    pub clip_low: Array,
    /// Fraction where the ratio rose above `1 + epsilon_high` with a positive advantage.
    pub clip_high: Array,
    /// Fraction clipped either way.
    pub clip_region: Array,
    /// Mean importance ratio.
    pub ratio_mean: Array,
    /// Mean k3 KL to the reference over counted tokens (only when `beta != 0`).
    pub kl_mean: Option<Array>,
}

/// Host copies of [`LossMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossStats {
    pub loss: f32,
    pub clip_low: f32,
    pub clip_high: f32,
    pub clip_region: f32,
    pub ratio_mean: f32,
    pub kl_mean: Option<f32>,
}

impl LossOutput {
    /// `[loss, clip_low, clip_high, clip_region, ratio_mean, (kl_mean)]`: the shape a
    /// `value_and_grad` closure returns (element 0 is differentiated).
    pub fn into_arrays(self) -> Vec<Array> {
        let m = self.metrics;
        let mut out = vec![
            self.loss,
            m.clip_low,
            m.clip_high,
            m.clip_region,
            m.ratio_mean,
        ];
        out.extend(m.kl_mean);
        out
    }

    /// Reads back what [`LossOutput::into_arrays`] produced; `None` if too few arrays.
    pub fn from_arrays(arrays: &[Array]) -> Option<LossOutput> {
        let [loss, clip_low, clip_high, clip_region, ratio_mean, rest @ ..] = arrays else {
            return None;
        };
        Some(LossOutput {
            loss: loss.clone(),
            metrics: LossMetrics {
                clip_low: clip_low.clone(),
                clip_high: clip_high.clone(),
                clip_region: clip_region.clone(),
                ratio_mean: ratio_mean.clone(),
                kl_mean: rest.first().cloned(),
            },
        })
    }

    /// Evaluates the loss and metrics and copies them to the host.
    pub fn stats(&self) -> Result<LossStats, Exception> {
        let read = |a: &Array| -> Result<f32, Exception> {
            a.eval()?;
            Ok(a.item_cast::<f32>())
        };
        let m = &self.metrics;
        Ok(LossStats {
            loss: read(&self.loss)?,
            clip_low: read(&m.clip_low)?,
            clip_high: read(&m.clip_high)?,
            clip_region: read(&m.clip_region)?,
            ratio_mean: read(&m.ratio_mean)?,
            kl_mean: m.kl_mean.as_ref().map(read).transpose()?,
        })
    }
}

/// The GRPO loss of one micro-batch (see the module docs for the formula).
///
/// Fails if `beta != 0` and `ref_logp` is missing, or on shape mismatches.
pub fn grpo_loss(config: &LossConfig, inputs: &LossInputs) -> Result<LossOutput, Exception> {
    check_shapes(inputs)?;
    let mask = inputs.mask;
    let counted = mask.gt(Array::from_f32(0.0))?;
    let zero = Array::from_f32(0.0);
    let one = Array::from_f32(1.0);
    // Masked positions get log-ratio 0 so garbage there cannot make inf * 0 = NaN.
    let log_ratio = select(&counted, inputs.logp.subtract(inputs.logp_old)?, &zero)?;
    let tokens_per_seq = mask.sum_axis(-1, true)?;
    let log_weight = match config.importance_sampling {
        ImportanceSampling::Token => log_ratio,
        ImportanceSampling::Sequence => log_ratio
            .multiply(mask)?
            .sum_axis(-1, true)?
            .divide(maximum(&tokens_per_seq, &one)?)?,
    };
    let ratio = log_weight.exp()?;
    let clipped = clip(
        &ratio,
        (1.0 - config.epsilon_low, 1.0 + config.epsilon_high),
    )?;
    let advantages = inputs.advantages.expand_dims(-1)?;
    let surrogate = minimum(ratio.multiply(&advantages)?, clipped.multiply(&advantages)?)?;
    let mut per_token = surrogate.negative()?;

    let kl = if config.beta != 0.0 {
        let ref_logp = inputs
            .ref_logp
            .ok_or_else(|| Exception::custom("beta != 0 needs reference log-probs"))?;
        let diff = select(&counted, ref_logp.subtract(inputs.logp)?, &zero)?;
        let kl = diff.exp()?.subtract(&diff)?.subtract(&one)?;
        per_token = per_token.add(kl.multiply(Array::from_f32(config.beta))?)?;
        Some(kl)
    } else {
        None
    };

    // Sequence-level terms are [N, 1]; multiplying by the mask spreads them over tokens.
    let masked = per_token.multiply(mask)?;
    let n = mask.dim(0) as f32;
    let loss = match config.loss_type {
        LossType::Grpo => masked
            .sum_axis(-1, true)?
            .divide(maximum(&tokens_per_seq, &one)?)?
            .mean(false)?,
        LossType::Bnpo => masked
            .sum(false)?
            .divide(maximum(mask.sum(false)?, &one)?)?,
        LossType::DrGrpo => masked
            .sum(false)?
            .divide(Array::from_f32(n * config.max_completion_length as f32))?,
        LossType::Dapo => masked
            .sum(false)?
            .divide(Array::from_f32(inputs.batch_tokens.max(1.0)))?,
    };

    let metrics = metrics(
        config,
        &stop_gradient(&ratio)?,
        &advantages,
        mask,
        kl.as_ref(),
    )?;
    Ok(LossOutput { loss, metrics })
}

/// MLX would broadcast a `[1, T]` mask or a `[N, 1]` advantage silently; refuse instead.
fn check_shapes(inputs: &LossInputs) -> Result<(), Exception> {
    let shape = inputs.mask.shape();
    let named = [
        ("logp", Some(inputs.logp)),
        ("logp_old", Some(inputs.logp_old)),
        ("ref_logp", inputs.ref_logp),
    ];
    for (name, array) in named {
        if let Some(array) = array {
            if shape.len() != 2 || array.shape() != shape {
                return Err(Exception::custom(format!(
                    "grpo_loss: `{name}` has shape {:?}, the mask {shape:?}; both must be [N, T]",
                    array.shape()
                )));
            }
        }
    }
    if inputs.advantages.shape() != &shape[..1] {
        return Err(Exception::custom(format!(
            "grpo_loss: advantages have shape {:?}, expected [{}]",
            inputs.advantages.shape(),
            shape[0]
        )));
    }
    Ok(())
}

fn metrics(
    config: &LossConfig,
    ratio: &Array,
    advantages: &Array,
    mask: &Array,
    kl: Option<&Array>,
) -> Result<LossMetrics, Exception> {
    let zero = Array::from_f32(0.0);
    let low = ratio
        .lt(Array::from_f32(1.0 - config.epsilon_low))?
        .logical_and(advantages.lt(&zero)?)?;
    let high = ratio
        .gt(Array::from_f32(1.0 + config.epsilon_high))?
        .logical_and(advantages.gt(&zero)?)?;
    let region = low.logical_or(&high)?;
    let tokens = maximum(mask.sum(false)?, Array::from_f32(1.0))?;
    let token_mean = |x: &Array| -> Result<Array, Exception> {
        x.as_dtype(mlx_rs::Dtype::Float32)?
            .multiply(mask)?
            .sum(false)?
            .divide(&tokens)
    };
    // Ratios and clip flags are per sequence under GSPO, and then averaged over sequences.
    let ratio_average = |x: &Array| -> Result<Array, Exception> {
        match config.importance_sampling {
            ImportanceSampling::Token => token_mean(x),
            ImportanceSampling::Sequence => x.as_dtype(mlx_rs::Dtype::Float32)?.mean(false),
        }
    };
    Ok(LossMetrics {
        clip_low: ratio_average(&low)?,
        clip_high: ratio_average(&high)?,
        clip_region: ratio_average(&region)?,
        ratio_mean: ratio_average(ratio)?,
        kl_mean: kl.map(|kl| token_mean(&stop_gradient(kl)?)).transpose()?,
    })
}

/// A `[N, T]` f32 mask with ones over each completion's first `lengths[i]` tokens (capped
/// at `width`). Give a length of 0 to leave a completion out, as
/// `mask_truncated_completions` does for truncated ones.
pub fn completion_mask(lengths: &[usize], width: usize) -> Array {
    let mut values = vec![0.0f32; lengths.len() * width];
    for (row, &len) in values.chunks_mut(width.max(1)).zip(lengths) {
        row[..len.min(width)].fill(1.0);
    }
    Array::from_slice(&values, &[lengths.len() as i32, width as i32])
}
