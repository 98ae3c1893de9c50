//! Batched generation: B prompts x G completions each, as a GRPO rollout needs.
//!
//! The B prompts are left-padded into one batch and prefilled once (in column chunks);
//! the KV cache rows are then repeated G times, so a group shares one prefill. Decoding
//! runs all unfinished rows together, one token per step; a row stops on an EOS id, when
//! the caller's [`StopCondition`] says so (stop strings), or at `max_tokens`, and its row
//! is dropped from the cache. Token ids and per-token log-probs come back as sampled;
//! nothing is re-tokenised.

use std::time::Instant;

use mlx_rs::error::Exception;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::{memory, random, transforms, Array};

use super::sampling::{sample, sample_with_noise, Sampled, SamplingParams};
use crate::error::{GenerateError, ModelError};
use crate::generate::cache::KvCache;
use crate::model::CausalLm;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// New tokens per completion at most.
    pub max_tokens: usize,
    /// Completions per prompt (the GRPO group size G).
    pub completions_per_prompt: usize,
    /// How each token is chosen.
    pub sampling: SamplingParams,
    /// Seed of the random keys; the same seed, prompts and settings give the same tokens.
    pub seed: u64,
    /// Where this call's completions sit in a larger batch sampled with the same `seed`
    /// (data-parallel ranks each generating a share of one step): each completion then
    /// draws the tokens it would draw in that batch, whatever the other rows of this
    /// call. `None`: this call is the whole batch.
    pub global_rows: Option<GlobalRows>,
    /// Token ids that end a completion (included in its tokens).
    pub eos_token_ids: Vec<u32>,
    /// Prompt columns per prefill forward pass (bounds prefill memory).
    pub prefill_chunk: usize,
    /// Queue each decoding step before reading the previous one (as mlx-lm does), so
    /// the device works while the host checks stops (on by default; faster on the CPU
    /// backend too).
    pub overlap: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            completions_per_prompt: 1,
            sampling: SamplingParams::default(),
            seed: 0,
            global_rows: None,
            eos_token_ids: Vec::new(),
            prefill_chunk: 512,
            overlap: true,
        }
    }
}

/// This call's `B * G` completions are rows `first..first + B * G` of a batch of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRows {
    /// Row of the first completion.
    pub first: usize,
    /// Completions in the whole batch.
    pub total: usize,
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// It produced one of the EOS ids (the last token).
    Eos,
    /// The stop condition (e.g. a stop string) matched after the last token.
    Stop,
    /// It reached `max_tokens`.
    Length,
}

/// One generated completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of its prompt in the request.
    pub prompt_index: usize,
    /// Sampled token ids, the final EOS or stop token included.
    pub tokens: Vec<u32>,
    /// `log_softmax(logits / T)` of each sampled token (see [`super::sampling`]).
    pub logprobs: Vec<f32>,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Counters of one [`generate`] call.
#[derive(Debug, Clone, Default)]
pub struct GenerationStats {
    /// Prompt tokens prefilled (padding excluded; each prompt once, not G times).
    pub prompt_tokens: usize,
    /// Tokens sampled over all completions.
    pub generated_tokens: usize,
    /// Wall time of the prefill (prompts, then the copy into G rows).
    pub prefill_seconds: f64,
    /// Wall time of decoding.
    pub decode_seconds: f64,
    /// MLX's peak memory during the call, in bytes (the counter is reset at the start).
    pub peak_memory_bytes: usize,
}

/// The result of [`generate`]: completions in prompt-major order (prompt `i`'s `g`-th
/// completion at `i * G + g`).
#[derive(Debug, Clone)]
pub struct Generation {
    /// `B * G` completions.
    pub completions: Vec<Completion>,
    /// Token counts, timings, peak memory.
    pub stats: GenerationStats,
}

/// A per-completion stop test, run after each new token (stop strings go here, with an
/// incremental detokenizer per completion).
pub trait StopCondition {
    /// `completion` is the index into [`Generation::completions`]; `tokens` are its
    /// tokens so far, the newest last.
    fn should_stop(&mut self, completion: usize, tokens: &[u32]) -> bool;
}

impl<F: FnMut(usize, &[u32]) -> bool> StopCondition for F {
    fn should_stop(&mut self, completion: usize, tokens: &[u32]) -> bool {
        self(completion, tokens)
    }
}

/// No stop condition besides EOS ids and `max_tokens`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStop;

impl StopCondition for NoStop {
    fn should_stop(&mut self, _: usize, _: &[u32]) -> bool {
        false
    }
}

/// Generates `config.completions_per_prompt` completions for each prompt.
pub fn generate(
    model: &mut CausalLm,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
    stop: &mut dyn StopCondition,
) -> Result<Generation, GenerateError> {
    check_request(model, prompts, config)?;
    memory::reset_peak_memory()?;
    let group = config.completions_per_prompt;
    let mut stats = GenerationStats {
        prompt_tokens: prompts.iter().map(Vec::len).sum(),
        ..GenerationStats::default()
    };

    let started = Instant::now();
    let (mut cache, last_logits) = prefill(model, prompts, config.prefill_chunk)?;
    // One prefilled row per prompt becomes G rows.
    let rows: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, group))
        .collect();
    let mut logits = last_logits;
    if group > 1 {
        cache.select_rows(&rows)?;
        logits = logits.take_axis(index_array(&rows), 0)?;
    }
    transforms::eval([&logits])?;
    stats.prefill_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut completions: Vec<Completion> = rows
        .iter()
        .map(|&p| Completion {
            prompt_index: p,
            tokens: Vec::new(),
            logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        })
        .collect();
    // Completion index of each cache row.
    let mut active: Vec<usize> = (0..completions.len()).collect();
    let mut keys = StepKeys {
        chain: random::key(config.seed)?,
        global: config.global_rows,
    };
    let mut current = keys.sample(&logits, &config.sampling, &active)?;
    for step in 0..config.max_tokens {
        let last = step + 1 == config.max_tokens;
        // With overlap, the next step is queued for every current row before this one is
        // read, so the device computes while the host checks stop conditions; rows that
        // finish now are dropped from its result afterwards.
        let mut pending = match config.overlap && !last {
            true => Some(decode_step(
                model,
                &mut cache,
                &current.tokens,
                &config.sampling,
                &mut keys,
                &active,
            )?),
            false => None,
        };
        transforms::eval([&current.tokens, &current.logprobs])?;
        let tokens = current.tokens.as_slice::<u32>();
        let logprobs = current.logprobs.as_slice::<f32>();

        let mut keep = Vec::with_capacity(active.len());
        for (row, &c) in active.iter().enumerate() {
            let completion = &mut completions[c];
            completion.tokens.push(tokens[row]);
            completion.logprobs.push(logprobs[row]);
            let reason = if config.eos_token_ids.contains(&tokens[row]) {
                Some(FinishReason::Eos)
            } else if stop.should_stop(c, &completion.tokens) {
                Some(FinishReason::Stop)
            } else if last {
                Some(FinishReason::Length)
            } else {
                None
            };
            match reason {
                Some(r) => completion.finish_reason = r,
                None => keep.push(row),
            }
        }
        stats.generated_tokens += active.len();
        if keep.is_empty() {
            // Wait for the step queued for these rows: left running on MLX's worker thread,
            // it raced the allocator's teardown at process exit (heap corruption).
            if let Some(p) = &pending {
                transforms::eval([&p.tokens, &p.logprobs])?;
            }
            break;
        }
        if keep.len() < active.len() {
            let index = index_array(&keep);
            cache.select_rows(&keep)?;
            pending = pending.map(|p| select(&p, &index)).transpose()?;
            current = select(&current, &index)?;
            active = keep.iter().map(|&r| active[r]).collect();
        }
        current = match pending {
            Some(p) => p,
            None => decode_step(
                model,
                &mut cache,
                &current.tokens,
                &config.sampling,
                &mut keys,
                &active,
            )?,
        };
    }
    stats.decode_seconds = started.elapsed().as_secs_f64();
    drop(cache);
    stats.peak_memory_bytes = memory::peak_memory()?;
    Ok(Generation { completions, stats })
}

/// Prefills left-padded prompts in column chunks; returns the cache and the logits
/// `[B, vocab]` after each prompt's last token.
fn prefill(
    model: &mut CausalLm,
    prompts: &[Vec<u32>],
    chunk: usize,
) -> Result<(KvCache, Array), Exception> {
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let padding: Vec<i32> = prompts.iter().map(|p| (width - p.len()) as i32).collect();
    // Padding id 0 is never attended to.
    let ids: Vec<u32> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(0, width - p.len()).chain(p.iter().copied()))
        .collect();
    let tokens = Array::from_slice(&ids, &[prompts.len() as i32, width as i32]);
    let mut cache = model.new_cache(padding);
    let chunk = chunk.max(1) as i32;
    let width = width as i32;
    let mut start = 0;
    loop {
        let end = (start + chunk).min(width);
        let h = model.hidden_states_cached(&tokens.try_index((.., start..end))?, &mut cache)?;
        if end == width {
            let last = h.try_index((.., -1.., ..))?;
            return Ok((cache, last_column(&model.logits(&last)?)?));
        }
        // Evaluate chunk by chunk so that only one chunk's activations are alive.
        transforms::eval(cache.arrays())?;
        start = end;
    }
}

/// The random keys of each decoding step: one per step for the whole batch, split off a
/// seeded chain.
struct StepKeys {
    chain: Array,
    /// With global rows, each step's Gumbel noise is drawn for the whole global batch and
    /// every completion takes its own row of it (one draw per step, not one per row).
    global: Option<GlobalRows>,
}

impl StepKeys {
    /// Samples the next token of each row; `completions` names the completion of each row.
    fn sample(&mut self, logits: &Array, sampling: &SamplingParams, completions: &[usize]) -> Result<Sampled, Exception> {
        let (step, rest) = random::split(&self.chain, 2)?;
        self.chain = rest;
        match self.global {
            None => sample(logits, sampling, &step),
            Some(GlobalRows { first, total }) => {
                let noise = random::gumbel::<f32>(&[total as i32, logits.dim(-1)], &step)?;
                let rows = index_array(&completions.iter().map(|&c| first + c).collect::<Vec<_>>());
                sample_with_noise(logits, sampling, &noise.take_axis(&rows, 0)?)
            }
        }
    }
}

/// Feeds each row's last token and samples the next one; queued with `async_eval` so
/// that it runs while the caller does other work.
fn decode_step(
    model: &mut CausalLm,
    cache: &mut KvCache,
    tokens: &Array,
    sampling: &SamplingParams,
    keys: &mut StepKeys,
    completions: &[usize],
) -> Result<Sampled, Exception> {
    let input = tokens.reshape(&[tokens.dim(0), 1])?;
    let logits = last_column(&model.forward_cached(&input, cache)?)?;
    let sampled = keys.sample(&logits, sampling, completions)?;
    transforms::async_eval([&sampled.tokens, &sampled.logprobs])?;
    Ok(sampled)
}

/// The given rows of a draw.
fn select(s: &Sampled, rows: &Array) -> Result<Sampled, Exception> {
    Ok(Sampled {
        tokens: s.tokens.take_axis(rows, 0)?,
        logprobs: s.logprobs.take_axis(rows, 0)?,
    })
}

/// `[R, T, V]` -> the last column as `[R, V]`.
fn last_column(logits: &Array) -> Result<Array, Exception> {
    logits.try_index((.., -1, ..))
}

fn index_array(rows: &[usize]) -> Array {
    Array::from_iter(rows.iter().map(|&r| r as i32), &[rows.len() as i32])
}

fn check_request(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
) -> Result<(), GenerateError> {
    config.sampling.validate()?;
    if prompts.is_empty() {
        return Err(GenerateError::Request("no prompts".into()));
    }
    if config.completions_per_prompt == 0 {
        return Err(GenerateError::Request(
            "completions_per_prompt must be at least 1".into(),
        ));
    }
    if let Some(GlobalRows { first, total }) = config.global_rows {
        let rows = prompts.len() * config.completions_per_prompt;
        if first + rows > total {
            return Err(GenerateError::Request(format!(
                "global rows {first}..{} lie outside a batch of {total} completions",
                first + rows
            )));
        }
    }
    if config.max_tokens == 0 {
        return Err(GenerateError::Request(
            "max_tokens must be at least 1".into(),
        ));
    }
    let vocab = model.vocab_size();
    for (row, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            return Err(GenerateError::Request(format!("prompt {row} is empty")));
        }
        if let Some((position, &token)) = prompt
            .iter()
            .enumerate()
            .find(|(_, &t)| t as i64 >= vocab as i64)
        {
            return Err(ModelError::TokenOutOfRange {
                row,
                position,
                token,
                vocab,
            }
            .into());
        }
    }
    Ok(())
}
