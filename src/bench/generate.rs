//! `lora-grpo bench generate`: prefill and decode speed of the generation engine at batch 1
//! and on a GRPO-shaped batch (B prompts x G completions), as a table. bench/mlx_lm_generate.py
//! runs the same two scenarios through mlx-lm, with the same prompt ids.

use std::fmt::Write as _;
use std::time::Instant;

use crate::error::GenerateError;
use crate::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use crate::model::CausalLm;

/// The two scenarios' sizes.
#[derive(Debug, Clone)]
pub struct GenerateBench {
    /// Length of the batch-1 prompt and of the longest GRPO prompt.
    pub prompt_tokens: usize,
    /// New tokens per completion (no EOS: every completion runs to this length).
    pub max_tokens: usize,
    /// Prompts in the GRPO batch (B).
    pub batch: usize,
    /// Completions per prompt (G).
    pub group: usize,
    /// Sampling temperature of the GRPO batch (batch 1 is greedy).
    pub temperature: f32,
    /// Timed runs per scenario; the one with the median total time is reported.
    pub repeats: usize,
    /// Sampling seed.
    pub seed: u64,
}

/// One timed [`generate`] call.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Which scenario.
    pub scenario: String,
    /// Completions generated together.
    pub sequences: usize,
    /// Prompt tokens prefilled (each GRPO prompt once).
    pub prompt_tokens: usize,
    /// Prefill wall time.
    pub prefill_seconds: f64,
    /// Tokens sampled over all completions.
    pub new_tokens: usize,
    /// Decode wall time.
    pub decode_seconds: f64,
    /// Wall time of the whole call.
    pub total_seconds: f64,
    /// MLX peak memory during the call (weights included).
    pub peak_memory_bytes: usize,
}

/// Prompt `index` of the benchmark: `len` ids from a fixed formula that
/// bench/mlx_lm_generate.py repeats, so both sides see the same tokens.
pub fn bench_prompt(index: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|t| ((index * 7919 + t * 104_729 + 17) % vocab) as u32).collect()
}

/// Lengths of the GRPO batch's prompts: `prompt_tokens`, then 8 fewer each (at least 8),
/// so that the batch needs padding as real prompts do.
pub fn grpo_prompt_lengths(bench: &GenerateBench) -> Vec<usize> {
    (0..bench.batch).map(|i| bench.prompt_tokens.saturating_sub(8 * i).max(8)).collect()
}

/// Runs both scenarios (after one short untimed warm-up of each) and returns the median
/// run of each.
pub fn run(model: &mut CausalLm, bench: &GenerateBench) -> Result<Vec<Measurement>, GenerateError> {
    let vocab = model.vocab_size() as usize;
    let single = vec![bench_prompt(0, bench.prompt_tokens, vocab)];
    let grouped: Vec<Vec<u32>> =
        grpo_prompt_lengths(bench).iter().enumerate().map(|(i, &len)| bench_prompt(i, len, vocab)).collect();
    let greedy = GenerateConfig {
        max_tokens: bench.max_tokens,
        sampling: SamplingParams::greedy(),
        ..GenerateConfig::default()
    };
    let sampled = GenerateConfig {
        max_tokens: bench.max_tokens,
        completions_per_prompt: bench.group,
        sampling: SamplingParams { temperature: bench.temperature, ..SamplingParams::default() },
        seed: bench.seed,
        ..GenerateConfig::default()
    };
    let scenarios = [
        ("batch 1".to_string(), &single, greedy),
        (format!("GRPO {}x{}", bench.batch, bench.group), &grouped, sampled),
    ];
    let mut out = Vec::new();
    for (name, prompts, config) in scenarios {
        let warmup = GenerateConfig { max_tokens: bench.max_tokens.min(4), ..config.clone() };
        generate(model, prompts, &warmup, &mut NoStop)?;
        let mut runs = Vec::new();
        for _ in 0..bench.repeats.max(1) {
            let started = Instant::now();
            let generation = generate(model, prompts, &config, &mut NoStop)?;
            let s = generation.stats;
            runs.push(Measurement {
                scenario: name.clone(),
                sequences: generation.completions.len(),
                prompt_tokens: s.prompt_tokens,
                prefill_seconds: s.prefill_seconds,
                new_tokens: s.generated_tokens,
                decode_seconds: s.decode_seconds,
                total_seconds: started.elapsed().as_secs_f64(),
                peak_memory_bytes: s.peak_memory_bytes,
            });
        }
        runs.sort_by(|a, b| a.total_seconds.total_cmp(&b.total_seconds));
        out.push(runs.swap_remove(runs.len() / 2));
    }
    Ok(out)
}

/// The measurements as a Markdown table (the same columns bench/mlx_lm_generate.py prints).
pub fn table(label: &str, measurements: &[Measurement]) -> String {
    let mut s = String::from(
        "| engine | scenario | sequences | prompt tok | prefill s | prefill tok/s | new tok | decode s | decode tok/s | total s | new tok/s overall | peak MB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in measurements {
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} | {:.3} | {:.1} | {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.1} |",
            m.scenario,
            m.sequences,
            m.prompt_tokens,
            m.prefill_seconds,
            m.prompt_tokens as f64 / m.prefill_seconds.max(1e-9),
            m.new_tokens,
            m.decode_seconds,
            m.new_tokens as f64 / m.decode_seconds.max(1e-9),
            m.total_seconds,
            m.new_tokens as f64 / m.total_seconds.max(1e-9),
            m.peak_memory_bytes as f64 / 1e6,
        );
    }
    s
}
