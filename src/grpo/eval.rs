//! Held-out evaluation: one completion per prompt (greedy unless the recipe says
//! otherwise), scored by the run's reward functions. Accuracy is the share of prompts
//! whose first reward function reaches `eval.success_threshold` (1.0 = math-answer's
//! "correct").

use lora_grpo_plugin::Sample;
use serde::Serialize;

use super::rollout::{render_prompt, sample_completions, score, RenderedPrompt};
use crate::error::TrainError;
use crate::generate::{GenerateConfig, SamplingParams};
use crate::model::CausalLm;
use crate::plugin::RewardPlugin;
use crate::recipe::Recipe;
use crate::tokenizer::Tokenizer;

/// Eval results: accuracy and the mean score of each reward function (recipe order).
#[derive(Debug, Clone, Serialize)]
pub struct EvalResult {
    pub samples: usize,
    pub accuracy: f32,
    pub reward_means: Vec<f32>,
}

/// Prompts per generation call: bounds memory on long eval sets.
const EVAL_BATCH: usize = 32;

pub fn evaluate(
    model: &mut CausalLm,
    tokenizer: &Tokenizer,
    rewards: &mut [RewardPlugin],
    samples: &[Sample],
    recipe: &Recipe,
    sampling: &SamplingParams,
) -> Result<EvalResult, TrainError> {
    let sampling = if recipe.eval.greedy { SamplingParams::greedy() } else { *sampling };
    let mut correct = 0usize;
    let mut sums = vec![0f64; rewards.len()];
    for (chunk_index, chunk) in samples.chunks(EVAL_BATCH).enumerate() {
        let prompts = chunk
            .iter()
            .map(|s| render_prompt(tokenizer, s, &recipe.data))
            .collect::<Result<Vec<RenderedPrompt>, _>>()?;
        let config = GenerateConfig {
            max_tokens: recipe.grpo.max_completion_length as usize,
            completions_per_prompt: 1,
            sampling,
            seed: recipe.seed ^ (0xE7A1 + chunk_index as u64),
            eos_token_ids: tokenizer.eos_token_ids().to_vec(),
            ..GenerateConfig::default()
        };
        let (rollouts, _) = sample_completions(model, tokenizer, &prompts, &config, &recipe.sampling.stop)?;
        let refs: Vec<&Sample> = chunk.iter().collect();
        let scores = score(rewards, &prompts, &refs, &rollouts)?;
        for (sum, per) in sums.iter_mut().zip(&scores) {
            *sum += per.iter().map(|&s| f64::from(s)).sum::<f64>();
        }
        if let Some(first) = scores.first() {
            correct += first.iter().filter(|&&s| f64::from(s) >= recipe.eval.success_threshold).count();
        }
    }
    let n = samples.len().max(1) as f64;
    Ok(EvalResult {
        samples: samples.len(),
        accuracy: (correct as f64 / n) as f32,
        reward_means: sums.iter().map(|s| (s / n) as f32).collect(),
    })
}
