//! One optimizer update from a rollout batch: loss and gradients per micro-batch (through
//! `nn::value_and_grad`, trainable = adapters only), accumulation, clipping, AdamW.

use mlx_rs::error::Exception;
use mlx_rs::module::FlattenedModuleParam;
use mlx_rs::{nn, stop_gradient, Array};

use super::batch::MicroBatch;
use super::loss::{grpo_loss, LossConfig, LossInputs, LossOutput, LossStats};
use crate::distributed::World;
use crate::model::CausalLm;
use crate::optim::accumulate::scale_gradients;
use crate::optim::{clip_grad_norm, AdamW, GradAccumulator, GradReduction};

/// What one update reports (loss metrics averaged over micro-batches of all ranks).
#[derive(Debug, Clone, Copy)]
pub struct UpdateStats {
    pub loss: LossStats,
    pub entropy: f32,
    pub grad_norm: f32,
    pub lr: f64,
    /// Input tokens (padding included) the update's forward passes covered, on all ranks.
    pub tokens: usize,
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
/// whole generation batch, dapo's normalizer) and applies one optimizer update. With
/// several ranks, `batches` are this rank's share (possibly none), the gradients and stats
/// are summed over all ranks in one collective, and every rank takes the same step.
pub fn update(
    model: &mut CausalLm,
    optimizer: &mut AdamW,
    batches: &[MicroBatch],
    batch_tokens: f32,
    settings: &UpdateSettings,
    world: &World,
) -> Result<UpdateStats, Exception> {
    let mut scope = DropoutScope::enter(model, settings)?;
    let model: &mut CausalLm = &mut scope;
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
    let kl = stats.iter().filter_map(|s| s.kl_mean).collect::<Vec<_>>();
    let sum = |f: fn(&LossStats) -> f32| stats.iter().map(f).sum::<f32>();
    let tokens: usize = batches.iter().map(|b| b.tokens.size()).sum();
    // Sums over this process's micro-batches, then over all ranks.
    let mut totals = [
        stats.len() as f32,
        sum(|s| s.loss),
        sum(|s| s.clip_low),
        sum(|s| s.clip_high),
        sum(|s| s.clip_region),
        sum(|s| s.ratio_mean),
        entropy,
        kl.iter().sum::<f32>(),
        kl.len() as f32,
        tokens as f32,
    ];
    let mut grads = if world.is_distributed() {
        // Every rank's micro-batches count as micro-batches of one update (a rank whose
        // groups were all filtered out adds zeros).
        let local = match accumulator.count() {
            0 => zero_gradients(model)?,
            _ => accumulator.finish(GradReduction::Sum)?,
        };
        let (summed, reduced) = world.all_sum_named(&local, &totals, "the gradient all-reduce")?;
        totals.copy_from_slice(&reduced);
        match settings.reduction {
            GradReduction::Sum => summed,
            GradReduction::Mean => scale_gradients(summed, 1.0 / totals[0].max(1.0))?,
        }
    } else {
        accumulator.finish(settings.reduction)?
    };
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
    let [count, loss, clip_low, clip_high, clip_region, ratio, entropy, kl_sum, kl_count, tokens] = totals;
    let n = count.max(1.0);
    Ok(UpdateStats {
        loss: LossStats {
            // Under a sum reduction each micro-batch's loss is already its share of the
            // update's (normalised by the step's tokens): the update's loss is their sum.
            loss: match settings.reduction {
                GradReduction::Sum => loss,
                GradReduction::Mean => loss / n,
            },
            clip_low: clip_low / n,
            clip_high: clip_high / n,
            clip_region: clip_region / n,
            ratio_mean: ratio / n,
            kl_mean: (kl_count > 0.0).then(|| kl_sum / kl_count),
        },
        entropy: entropy / n,
        grad_norm: norm.item_cast::<f32>(),
        lr,
        tokens: tokens as usize,
    })
}

/// Zero gradients for every trainable parameter (names and shapes as value_and_grad gives).
fn zero_gradients(model: &CausalLm) -> Result<FlattenedModuleParam, Exception> {
    use mlx_rs::module::ModuleParameters;
    model
        .trainable_parameters()
        .flatten()
        .into_iter()
        .map(|(name, a)| Ok((name, mlx_rs::ops::zeros_like(a)?)))
        .collect()
}

/// LoRA dropout on for the gradient passes of one update, off again when dropped (on
/// errors too). Seeded per update, so a resumed run draws the masks the original drew.
struct DropoutScope<'a>(&'a mut CausalLm);

impl<'a> DropoutScope<'a> {
    fn enter(model: &'a mut CausalLm, settings: &UpdateSettings) -> Result<Self, Exception> {
        if settings.lora_dropout > 0.0 {
            mlx_rs::random::seed(settings.dropout_seed)?;
            model.set_lora_dropout(settings.lora_dropout);
        }
        Ok(DropoutScope(model))
    }
}

impl std::ops::Deref for DropoutScope<'_> {
    type Target = CausalLm;
    fn deref(&self) -> &CausalLm {
        self.0
    }
}

impl std::ops::DerefMut for DropoutScope<'_> {
    fn deref_mut(&mut self) -> &mut CausalLm {
        self.0
    }
}

impl Drop for DropoutScope<'_> {
    fn drop(&mut self) {
        self.0.set_lora_dropout(0.0);
    }
}

fn model_trainables(model: &CausalLm) -> Vec<Array> {
    use mlx_rs::module::ModuleParameters;
    model.trainable_parameters().flatten().values().map(|a| (*a).clone()).collect()
}
