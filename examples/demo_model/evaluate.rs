//! Held-out accuracy as the GRPO demo measures it: greedy completions from the
//! generation engine, scored by the `math-answer` reward plugin (default config: 1 for
//! a right final answer, 0 otherwise).

use anyhow::{anyhow, Result};
use lora_grpo::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use lora_grpo::model::CausalLm;
use lora_grpo::plugin::{RewardInput, RewardPlugin};
use tokenizers::Tokenizer;

use crate::corpus::{Problem, Style, IM_END};
use crate::vocab;

/// Prompts generated together.
const BATCH: usize = 256;

/// One greedy completion and whether its final answer is right.
#[derive(Debug, Clone)]
pub struct Graded {
    pub text: String,
    pub correct: bool,
}

/// Greedy completions (at most `max_tokens`, ending at `<|im_end|>`) for every problem.
/// `Style::Worked` starts each reply with its first worked character, so the model must
/// go on in that style: how well it would do if it always worked the sum out.
pub fn grade(
    model: &mut CausalLm,
    tokenizer: &Tokenizer,
    reward: &mut RewardPlugin,
    problems: &[Problem],
    style: Style,
    max_tokens: usize,
) -> Result<Vec<Graded>> {
    let config = GenerateConfig {
        max_tokens,
        sampling: SamplingParams::greedy(),
        eos_token_ids: vec![vocab::id(tokenizer, IM_END)?],
        ..GenerateConfig::default()
    };
    let mut out = Vec::with_capacity(problems.len());
    for chunk in problems.chunks(BATCH) {
        let prompts = chunk
            .iter()
            .map(|p| {
                let mut ids = vocab::encode(tokenizer, &p.prompt())?;
                if style == Style::Worked {
                    ids.extend(vocab::encode(tokenizer, &p.columns()?[..1])?);
                }
                Ok(ids)
            })
            .collect::<Result<Vec<_>>>()?;
        let generation = generate(model, &prompts, &config, &mut NoStop)?;
        let texts = generation
            .completions
            .iter()
            .map(|c| {
                tokenizer
                    .decode(&c.tokens, true)
                    .map_err(|e| anyhow!("decoding {:?}: {e}", c.tokens))
            })
            .collect::<Result<Vec<_>>>()?;
        let prompts: Vec<String> = chunk.iter().map(Problem::prompt).collect();
        let metadata = serde_json::json!({});
        let inputs: Vec<RewardInput> = chunk
            .iter()
            .zip(&prompts)
            .zip(&texts)
            .enumerate()
            .map(|(i, ((problem, prompt), text))| RewardInput {
                prompt,
                completion: text,
                answer: &problem.answer,
                metadata: &metadata,
                group: i as u64,
            })
            .collect();
        let scores = reward.score(&inputs)?;
        for (text, score) in texts.into_iter().zip(scores) {
            out.push(Graded {
                text,
                correct: score == 1.0,
            });
        }
    }
    Ok(out)
}

/// Fraction of `graded` that is correct.
pub fn accuracy(graded: &[Graded]) -> f64 {
    graded.iter().filter(|g| g.correct).count() as f64 / graded.len().max(1) as f64
}
