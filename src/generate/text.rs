//! Text in, text out: what `lora-grpo generate` does with a model directory, an optional
//! adapter and one prompt, streaming the completion as its tokens arrive.

use std::io::Write;
use std::path::Path;

use super::{generate, GenerateConfig, GenerationStats, SamplingParams, StopCondition};
use crate::error::{TokenizerError, TrainError};
use crate::model::{self, LoadOptions};
use crate::tokenizer::{ChatMessage, ChatOptions, IncrementalDecoder, Tokenizer};

/// What the model is asked to continue.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Plain text, or the user message with [`TextRequest::chat`].
    Text(String),
    /// A whole conversation, always rendered through the chat template.
    Messages(Vec<ChatMessage>),
}

/// One prompt and how to decode it.
#[derive(Debug, Clone)]
pub struct TextRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Render a [`Prompt::Text`] as a user message through the chat template.
    pub chat: bool,
    /// Most tokens to generate per completion.
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    /// Sampling seed.
    pub seed: u64,
    /// Completions of the prompt (sampled together, sharing one prefill).
    pub completions: usize,
}

/// The completions and the engine's numbers.
#[derive(Debug, Clone)]
pub struct TextResult {
    /// Decoded completions, special tokens skipped.
    pub texts: Vec<String>,
    /// Generated ids of each completion (EOS included when it ended there).
    pub tokens: Vec<Vec<u32>>,
    /// Token counts, prefill and decode times, peak memory.
    pub stats: GenerationStats,
}

/// Reads a conversation for `--messages`: a JSON array of `{"role", "content"}` objects.
pub fn read_messages(path: &Path) -> Result<Vec<ChatMessage>, TokenizerError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Read { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|source| TokenizerError::Json { path: path.to_path_buf(), source })
}

/// Loads `model_dir` (+ an adapter directory and, optionally, the weights file in it),
/// completes one prompt and writes the text to `out`.
/// A single completion is written piece by piece as its tokens are sampled; several are
/// written one after another, each under a `[completion k]` line, once all have ended.
pub fn generate_text(
    model_dir: &Path,
    adapter: Option<(&Path, Option<&str>)>,
    request: &TextRequest,
    out: &mut dyn Write,
) -> Result<TextResult, TrainError> {
    let mut model = model::load(model_dir, &LoadOptions::default())?;
    if let Some((dir, file)) = adapter {
        crate::lora::load(&mut model, dir, file)?;
    }
    let tokenizer = Tokenizer::from_dir(model_dir)?;
    let ids = encode(&tokenizer, request)?;
    let sampling = if request.temperature == 0.0 {
        SamplingParams::greedy()
    } else {
        SamplingParams { temperature: request.temperature, ..SamplingParams::default() }
    };
    let config = GenerateConfig {
        max_tokens: request.max_tokens,
        completions_per_prompt: request.completions,
        sampling,
        seed: request.seed,
        eos_token_ids: tokenizer.eos_token_ids().to_vec(),
        ..GenerateConfig::default()
    };
    let mut stream = TextStream::new(&tokenizer, request.completions, out);
    let generation = generate(&mut model, &[ids], &config, &mut stream)?;
    if let Some(error) = stream.error.take() {
        return Err(error);
    }
    let tokens: Vec<Vec<u32>> = generation.completions.into_iter().map(|c| c.tokens).collect();
    let texts = stream.finish(&tokens)?;
    Ok(TextResult { texts, tokens, stats: generation.stats })
}

fn encode(tokenizer: &Tokenizer, request: &TextRequest) -> Result<Vec<u32>, TokenizerError> {
    let options = ChatOptions { add_generation_prompt: true, ..ChatOptions::default() };
    match &request.prompt {
        Prompt::Text(text) if !request.chat => tokenizer.encode_prompt(text),
        Prompt::Text(text) => tokenizer.encode_chat(&[ChatMessage::user(text.clone())], &options),
        Prompt::Messages(messages) => tokenizer.encode_chat(messages, &options),
    }
}

/// Detokenizes every completion as the engine samples it. The engine shows each row's
/// tokens to its stop condition after every step, which is where the stream listens; it
/// never asks to stop unless writing failed.
struct TextStream<'a> {
    tokenizer: &'a Tokenizer,
    decoders: Vec<IncrementalDecoder>,
    out: &'a mut dyn Write,
    /// Write text as it arrives (one completion) rather than at the end.
    live: bool,
    error: Option<TrainError>,
}

impl<'a> TextStream<'a> {
    fn new(tokenizer: &'a Tokenizer, completions: usize, out: &'a mut dyn Write) -> Self {
        Self {
            tokenizer,
            decoders: vec![IncrementalDecoder::new(true); completions],
            out,
            live: completions == 1,
            error: None,
        }
    }

    /// Feeds the decoder of `completion` the tokens it has not seen; writes new text live.
    fn catch_up(&mut self, completion: usize, tokens: &[u32]) -> Result<(), TrainError> {
        let decoder = &mut self.decoders[completion];
        for &id in &tokens[decoder.ids().len()..] {
            let piece = decoder.push(self.tokenizer, id)?;
            if self.live && !piece.is_empty() {
                self.out.write_all(piece.as_bytes()).map_err(TrainError::Output)?;
            }
        }
        if self.live {
            self.out.flush().map_err(TrainError::Output)?;
        }
        Ok(())
    }

    /// Takes in the tokens the engine did not show (a final EOS), releases held-back text
    /// and writes what is left; returns each completion's text.
    fn finish(mut self, tokens: &[Vec<u32>]) -> Result<Vec<String>, TrainError> {
        for (k, ids) in tokens.iter().enumerate() {
            self.catch_up(k, ids)?;
            let rest = self.decoders[k].finish(self.tokenizer)?;
            let text = if self.live { rest.to_string() } else { format!("[completion {}]\n{}", k + 1, self.decoders[k].text()) };
            writeln!(self.out, "{text}").map_err(TrainError::Output)?;
        }
        self.out.flush().map_err(TrainError::Output)?;
        Ok(self.decoders.iter().map(|d| d.text().to_string()).collect())
    }
}

impl StopCondition for TextStream<'_> {
    fn should_stop(&mut self, completion: usize, tokens: &[u32]) -> bool {
        if self.error.is_none() {
            self.error = self.catch_up(completion, tokens).err();
        }
        self.error.is_some()
    }
}
