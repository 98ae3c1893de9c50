//! Pretraining from scratch: next-token cross-entropy on the assistant tokens of each
//! chat (the reply and its closing `<|im_end|>`), AdamW with warmup and cosine decay.

use anyhow::{ensure, Result};
use mlx_rs::error::Exception;
use mlx_rs::module::ModuleParameters;
use mlx_rs::{nn, transforms, Array};
use serde::Serialize;

use lora_grpo::model::CausalLm;
use lora_grpo::optim::{clip_grad_norm, AdamW, Schedule};
use lora_grpo::recipe::OptimizerConfig;
use tokenizers::Tokenizer;

use crate::corpus::{Problem, Style};
use crate::vocab;

/// One chat as token ids, split where the trained part starts.
#[derive(Debug, Clone)]
pub struct Example {
    /// The prompt (everything up to the assistant header).
    pub prompt: Vec<u32>,
    /// The reply and its closing `<|im_end|>`: the tokens the loss is taken on.
    pub reply: Vec<u32>,
}

impl Example {
    /// A problem's chat: its prompt, then its reply in `style` closed by `eos`.
    pub fn new(tokenizer: &Tokenizer, problem: &Problem, style: Style, eos: u32) -> Result<Self> {
        let mut reply = vocab::encode(tokenizer, &problem.reply(style)?)?;
        reply.push(eos);
        Ok(Example {
            prompt: vocab::encode(tokenizer, &problem.prompt())?,
            reply,
        })
    }
}

/// Optimisation settings.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSettings {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub max_grad_norm: f32,
}

/// A right-padded batch: inputs, next-token targets and the loss mask, all `[B, T]`.
fn batch(examples: &[Example], pad: u32) -> (Array, Array, Array) {
    let width = examples
        .iter()
        .map(|e| e.prompt.len() + e.reply.len() - 1)
        .max()
        .unwrap_or(0);
    let (mut inputs, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for e in examples {
        let tokens: Vec<u32> = e.prompt.iter().chain(&e.reply).copied().collect();
        for j in 0..width {
            let real = j + 1 < tokens.len();
            inputs.push(if real { tokens[j] } else { pad } as i32);
            targets.push(if real { tokens[j + 1] } else { pad } as i32);
            // Position j predicts token j + 1: trained when that token is in the reply.
            mask.push(if real && j + 1 >= e.prompt.len() {
                1.0f32
            } else {
                0.0
            });
        }
    }
    let shape = [examples.len() as i32, width as i32];
    (
        Array::from_slice(&inputs, &shape),
        Array::from_slice(&targets, &shape),
        Array::from_slice(&mask, &shape),
    )
}

/// Mean cross-entropy over the masked positions.
fn loss(
    model: &mut CausalLm,
    (inputs, targets, mask): (Array, Array, Array),
) -> Result<Vec<Array>, Exception> {
    let logits = model.forward(&inputs, None)?;
    let logp = nn::log_softmax(&logits, -1)?;
    let picked = logp
        .take_along_axis(&targets.expand_dims(-1)?, -1)?
        .squeeze_axes(&[-1])?;
    let total = picked.multiply(&mask)?.sum(None)?;
    Ok(vec![total.negative()?.divide(&mask.sum(None)?)?])
}

/// Trains every parameter of `model` on `examples` in order, `batch_size` per step;
/// `report(step, loss, model)` runs after each step (counted from 1).
pub fn train(
    model: &mut CausalLm,
    examples: &[Example],
    pad: u32,
    settings: &TrainSettings,
    mut report: impl FnMut(usize, f32, &mut CausalLm) -> Result<()>,
) -> Result<()> {
    ensure!(
        examples.len() >= settings.steps * settings.batch_size,
        "{} examples for {} steps of {}",
        examples.len(),
        settings.steps,
        settings.batch_size
    );
    model.unfreeze_parameters(true);
    let config = OptimizerConfig {
        lr: settings.lr,
        weight_decay: settings.weight_decay,
        schedule: Schedule::Cosine,
        warmup_steps: settings.warmup_steps,
        ..OptimizerConfig::default()
    };
    let mut optimizer = AdamW::new(&config, settings.steps as u64);
    let mut step_fn = nn::value_and_grad(loss);
    for (step, chunk) in examples
        .chunks(settings.batch_size)
        .take(settings.steps)
        .enumerate()
    {
        let (values, grads) = step_fn(model, batch(chunk, pad))?;
        let (grads, _norm) = clip_grad_norm(&grads, settings.max_grad_norm)?;
        optimizer.update(model, &grads)?;
        let mut live: Vec<&Array> = model.parameters().flatten().values().copied().collect();
        live.push(&values[0]);
        transforms::eval(live)?;
        transforms::eval(optimizer.state_mut().values().flat_map(|(m, v)| [m, v]))?;
        report(step + 1, values[0].item_exact::<f32>(), model)?;
    }
    model.freeze_parameters(true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<T: mlx_rs::ArrayElement + Copy>(a: &Array) -> Vec<T> {
        a.as_slice::<T>().to_vec()
    }

    #[test]
    fn batches_shift_targets_pad_right_and_mask_only_the_reply() {
        let examples = [
            Example {
                prompt: vec![5, 6, 7],
                reply: vec![8, 9],
            },
            Example {
                prompt: vec![5, 6],
                reply: vec![8],
            },
        ];
        let (inputs, targets, mask) = batch(&examples, 0);
        // Longest chat has 5 tokens: 4 input positions.
        assert_eq!(inputs.shape(), &[2, 4]);
        // The last token of a chat is never an input: nothing follows it.
        assert_eq!(values::<i32>(&inputs), [5, 6, 7, 8, 5, 6, 0, 0]);
        assert_eq!(values::<i32>(&targets), [6, 7, 8, 9, 6, 8, 0, 0]);
        // Trained: the positions whose target is a reply token (8, 9 and 8).
        assert_eq!(
            values::<f32>(&mask),
            [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
        );
    }
}
