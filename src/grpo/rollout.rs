//! Rollouts: prompts rendered to token ids, G completions per prompt from the generation
//! engine (stop strings checked on the decoded text), and the rewards of each completion.

use lora_grpo_plugin::{Prompt, RewardInput, Sample};
use serde_json::Value;

use crate::error::TrainError;
use crate::generate::{self, Completion, FinishReason, GenerateConfig, GenerationStats};
use crate::model::CausalLm;
use crate::plugin::RewardPlugin;
use crate::recipe::DataConfig;
use crate::tokenizer::{ChatMessage, ChatOptions, IncrementalDecoder, Tokenizer};

/// A prompt as the model sees it.
#[derive(Debug, Clone)]
pub struct RenderedPrompt {
    pub text: String,
    pub ids: Vec<u32>,
}

/// Renders a dataset sample's prompt: through the chat template (with the recipe's system
/// prompt when the sample has none), or as plain text when the template is off.
pub fn render_prompt(tokenizer: &Tokenizer, sample: &Sample, data: &DataConfig) -> Result<RenderedPrompt, TrainError> {
    if !data.chat_template {
        let Prompt::Text(text) = &sample.prompt else {
            return Err(TrainError::Data(format!(
                "row {}: chat messages need `data.chat_template: true`",
                sample.row.map_or("?".to_string(), |r| r.to_string())
            )));
        };
        return Ok(RenderedPrompt { text: text.clone(), ids: tokenizer.encode_prompt(text)? });
    }
    let mut messages: Vec<ChatMessage> = match &sample.prompt {
        Prompt::Text(text) => vec![ChatMessage::user(text.clone())],
        Prompt::Messages(list) => list.iter().map(|m| ChatMessage::new(m.role.clone(), m.content.clone())).collect(),
    };
    if let Some(system) = &data.system_prompt {
        if messages.first().is_none_or(|m| m.role != "system") {
            messages.insert(0, ChatMessage::system(system.clone()));
        }
    }
    let options = ChatOptions { add_generation_prompt: true, ..ChatOptions::default() };
    let text = tokenizer.apply_chat_template_with(&messages, &options)?;
    let ids = tokenizer.encode_chat(&messages, &options)?;
    Ok(RenderedPrompt { text, ids })
}

/// One sampled completion with what the trainer and the rewards need.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Index into the step's prompts.
    pub prompt: usize,
    pub tokens: Vec<u32>,
    /// Log-probs of `tokens` under the sampling policy (temperature-scaled, as TRL).
    pub logprobs: Vec<f32>,
    /// Decoded text, cut before a stop string; special tokens skipped.
    pub text: String,
    pub truncated: bool,
}

/// Samples `config.completions_per_prompt` completions per prompt and decodes them.
pub fn sample_completions(
    model: &mut CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[RenderedPrompt],
    config: &GenerateConfig,
    stop_strings: &[String],
) -> Result<(Vec<Rollout>, GenerationStats), TrainError> {
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
    let rows = prompts.len() * config.completions_per_prompt;
    let mut decoders: Vec<IncrementalDecoder> = (0..rows).map(|_| IncrementalDecoder::new(true)).collect();
    let mut decode_error = None;
    let mut stop = |row: usize, tokens: &[u32]| -> bool {
        if stop_strings.is_empty() {
            return false;
        }
        let decoder = &mut decoders[row];
        let since = decoder.text().len();
        for &id in &tokens[decoder.ids().len()..] {
            if let Err(e) = decoder.push(tokenizer, id) {
                decode_error.get_or_insert(e);
                return true;
            }
        }
        decoder.find_stop(stop_strings, since).is_some()
    };
    let generation = generate::generate(model, &ids, config, &mut stop)?;
    if let Some(e) = decode_error {
        return Err(e.into());
    }
    let rollouts = generation
        .completions
        .into_iter()
        .map(|c| to_rollout(tokenizer, c, stop_strings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rollouts, generation.stats))
}

fn to_rollout(tokenizer: &Tokenizer, c: Completion, stop_strings: &[String]) -> Result<Rollout, TrainError> {
    let mut text = tokenizer.decode(&c.tokens, true)?;
    if c.finish_reason == FinishReason::Stop {
        if let Some(cut) = stop_strings.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
    }
    Ok(Rollout {
        prompt: c.prompt_index,
        truncated: c.finish_reason == FinishReason::Length,
        tokens: c.tokens,
        logprobs: c.logprobs,
        text,
    })
}

/// Scores of every completion by each reward function (`[reward][completion]`), each
/// plugin called once for the whole batch.
pub fn score(
    rewards: &mut [RewardPlugin],
    prompts: &[RenderedPrompt],
    samples: &[&Sample],
    rollouts: &[Rollout],
) -> Result<Vec<Vec<f32>>, TrainError> {
    let metadata: Vec<Value> = samples.iter().map(|s| Value::Object(s.metadata.clone())).collect();
    let batch: Vec<RewardInput<'_>> = rollouts
        .iter()
        .map(|r| RewardInput {
            prompt: &prompts[r.prompt].text,
            completion: &r.text,
            answer: &samples[r.prompt].answer,
            metadata: &metadata[r.prompt],
            group: r.prompt as u64,
        })
        .collect();
    rewards.iter_mut().map(|plugin| plugin.score(&batch).map_err(TrainError::from)).collect()
}

/// The weighted sum of the reward functions' scores per completion.
pub fn combine(scores: &[Vec<f32>], weights: &[f64]) -> Vec<f32> {
    let n = scores.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| scores.iter().zip(weights).map(|(s, &w)| f64::from(s[i]) * w).sum::<f64>() as f32)
        .collect()
}
