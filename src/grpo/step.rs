//! One optimizer update from a rollout batch: loss and gradients per micro-batch (through
//! `nn::value_and_grad`, trainable = adapters only), accumulation, clipping, AdamW.

use mlx_rs::error::Exception;
use mlx_rs::{nn, stop_gradient, Array};

use super::batch::MicroBatch;
use super::loss::{grpo_loss, LossConfig, LossInputs, LossOutput, LossStats};
use crate::model::CausalLm;
use crate::optim::{clip_grad_norm, AdamW, GradAccumulator, GradReduction};

/// What one update reports (loss metrics averaged over micro-batches).
#[derive(Debug, Clone, Copy)]
pub struct UpdateStats {
    pub loss: LossStats,
    pub entropy: f32,
    pub grad_norm: f32,
    pub lr: f64,
}

/// Settings shared by every update of a run.
pub struct UpdateSettings {
    pub loss: LossConfig,
    pub temperature: f32,
    pub max_grad_norm: Option<f32>,
    pub reduction: GradReduction,
    /// LoRA dropout during the gradient passes, and the seed of its masks.
    pub lora_dropout: f32,
    pub dropout_seed: u64,
}

/// Differentiates the GRPO loss over `batches` (`batch_tokens`: counted tokens of the
/// whole generation batch, dapo's normalizer) and applies one optimizer update.
pub fn update(
    model: &mut CausalLm,
    optimizer: &mut AdamW,
    batches: &[MicroBatch],
    batch_tokens: f32,
    settings: &UpdateSettings,
) -> Result<UpdateStats, Exception> {
    if settings.lora_dropout > 0.0 {
        // Seeded per update, so a resumed run draws the masks the original drew.
        mlx_rs::random::seed(settings.dropout_seed)?;
        model.set_lora_dropout(settings.lora_dropout);
    }
    let result = differentiate_and_step(model, optimizer, batches, batch_tokens, settings);
    model.set_lora_dropout(0.0);
    result
}

fn differentiate_and_step(
    model: &mut CausalLm,
    optimizer: &mut AdamW,
    batches: &[MicroBatch],
    batch_tokens: f32,
    settings: &UpdateSettings,
) -> Result<UpdateStats, Exception> {
    let loss_config = settings.loss;
    let temperature = settings.temperature;
    let loss_fn = move |model: &mut CausalLm, batch: MicroBatch| -> Result<Vec<Array>, Exception> {
        let (logp, entropy) = batch.completion_logprobs(model, temperature)?;
        // A fresh rollout is its own old policy: ratio 1, gradient through logp (as TRL).
        let logp_old = match &batch.logp_old {
            Some(old) => old.clone(),
            None => stop_gradient(&logp)?,
        };
        let inputs = LossInputs {
            logp: &logp,
            logp_old: &logp_old,
            ref_logp: batch.ref_logp.as_ref(),
            mask: &batch.mask,
            advantages: &batch.advantages,
            batch_tokens,
        };
        let mut arrays = grpo_loss(&loss_config, &inputs)?.into_arrays();
        let counted = mlx_rs::ops::maximum(batch.mask.sum(None)?, Array::from_f32(1.0))?;
        arrays.push(entropy.multiply(&batch.mask)?.sum(None)?.divide(&counted)?);
        Ok(arrays)
    };
    let mut value_and_grad = nn::value_and_grad(loss_fn);
    let mut accumulator = GradAccumulator::new();
    let mut stats = Vec::with_capacity(batches.len());
    let mut entropy = 0.0;
    for batch in batches {
        let (values, grads) = value_and_grad(model, batch.clone())?;
        mlx_rs::transforms::eval(grads.values())?;
        let (last, loss_arrays) = values.split_last().ok_or_else(|| Exception::custom("loss returned nothing"))?;
        last.eval()?;
        entropy += last.item_cast::<f32>();
        let output = LossOutput::from_arrays(loss_arrays).ok_or_else(|| Exception::custom("loss returned too few arrays"))?;
        stats.push(output.stats()?);
        accumulator.add(grads)?;
    }
    let mut grads = accumulator.finish(settings.reduction)?;
    let norm = match settings.max_grad_norm {
        Some(max) => {
            let (clipped, norm) = clip_grad_norm(&grads, max)?;
            grads = clipped;
            norm
        }
        None => clip_grad_norm(&grads, f32::INFINITY)?.1,
    };
    norm.eval()?;
    let lr = optimizer.update(model, &grads)?;
    mlx_rs::transforms::eval(model_trainables(model).iter())?;
    let n = stats.len().max(1) as f32;
    let mean = |f: fn(&LossStats) -> f32| stats.iter().map(f).sum::<f32>() / n;
    let kl = stats.iter().filter_map(|s| s.kl_mean).collect::<Vec<_>>();
    Ok(UpdateStats {
        loss: LossStats {
            loss: mean(|s| s.loss),
            clip_low: mean(|s| s.clip_low),
            clip_high: mean(|s| s.clip_high),
            clip_region: mean(|s| s.clip_region),
            ratio_mean: mean(|s| s.ratio_mean),
            kl_mean: (!kl.is_empty()).then(|| kl.iter().sum::<f32>() / kl.len() as f32),
        },
        entropy: entropy / n,
        grad_norm: norm.item_cast::<f32>(),
        lr,
    })
}

fn model_trainables(model: &CausalLm) -> Vec<Array> {
    use mlx_rs::module::ModuleParameters;
    model.trainable_parameters().flatten().values().map(|a| (*a).clone()).collect()
}
