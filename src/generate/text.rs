//! Text in, text out: what `lora-grpo generate` does with a model directory, an optional
//! adapter and one prompt.

use std::path::Path;

use super::{generate, GenerateConfig, NoStop, SamplingParams};
use crate::error::TrainError;
use crate::model::{self, LoadOptions};
use crate::tokenizer::{ChatMessage, ChatOptions, Tokenizer};

/// One prompt and how to decode it.
#[derive(Debug, Clone)]
pub struct TextRequest {
    /// The user message, or the whole text with `raw`.
    pub prompt: String,
    /// Optional system message (chat template only).
    pub system: Option<String>,
    /// Plain text instead of the chat template.
    pub raw: bool,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    /// Sampling seed.
    pub seed: u64,
}

/// The completion and its numbers.
#[derive(Debug, Clone)]
pub struct TextResult {
    /// Decoded completion, special tokens skipped.
    pub text: String,
    /// Generated ids (EOS included when it ended there).
    pub tokens: Vec<u32>,
    /// Length of the encoded prompt.
    pub prompt_tokens: usize,
    /// Generated tokens over prefill + decode time.
    pub tokens_per_second: f64,
}

/// Loads `model_dir` (+ `adapter_dir`) and completes one prompt.
pub fn generate_text(model_dir: &Path, adapter_dir: Option<&Path>, request: &TextRequest) -> Result<TextResult, TrainError> {
    let mut model = model::load(model_dir, &LoadOptions::default())?;
    if let Some(dir) = adapter_dir {
        crate::lora::load(&mut model, dir, None)?;
    }
    let tokenizer = Tokenizer::from_dir(model_dir)?;
    let ids = if request.raw {
        tokenizer.encode_prompt(&request.prompt)?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(ChatMessage::system(system.clone()));
        }
        messages.push(ChatMessage::user(request.prompt.clone()));
        let options = ChatOptions { add_generation_prompt: true, ..ChatOptions::default() };
        tokenizer.encode_chat(&messages, &options)?
    };
    let sampling = if request.temperature == 0.0 {
        SamplingParams::greedy()
    } else {
        SamplingParams { temperature: request.temperature, ..SamplingParams::default() }
    };
    let config = GenerateConfig {
        max_tokens: request.max_tokens,
        sampling,
        seed: request.seed,
        eos_token_ids: tokenizer.eos_token_ids().to_vec(),
        ..GenerateConfig::default()
    };
    let prompt_tokens = ids.len();
    let generation = generate(&mut model, &[ids], &config, &mut NoStop)?;
    let completion = generation.completions.into_iter().next().ok_or_else(|| TrainError::Data("no completion".into()))?;
    let seconds = generation.stats.prefill_seconds + generation.stats.decode_seconds;
    Ok(TextResult {
        text: tokenizer.decode(&completion.tokens, true)?,
        tokens_per_second: completion.tokens.len() as f64 / seconds.max(1e-9),
        tokens: completion.tokens,
        prompt_tokens,
    })
}
