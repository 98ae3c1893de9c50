//! Training arrays for a micro-batch of completions: left-padded prompt + right-padded
//! completion per row, the completion mask, and the policy's per-token log-probs over
//! exactly the sampled token ids (never re-tokenized from text).

use mlx_rs::error::Exception;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::Array;

use super::logprobs::token_log_probs_with_entropy;
use super::rollout::{RenderedPrompt, Rollout};
use crate::model::CausalLm;

/// One micro-batch of N completions; `tokens` is `[N, P + C - 1]` (the last completion
/// token is never an input), P = widest prompt, C = longest completion.
#[derive(Clone)]
pub struct MicroBatch {
    pub tokens: Array,
    pub left_padding: Vec<i32>,
    pub prompt_width: i32,
    /// Sampled completion ids `[N, C]` (padding past each row's end).
    pub completion: Array,
    /// 1.0 for completion tokens that count, `[N, C]`.
    pub mask: Array,
    /// One advantage per row, `[N]`.
    pub advantages: Array,
    /// Sampling-time log-probs `[N, C]`, when updates reuse a rollout (`num_iterations > 1`).
    pub logp_old: Option<Array>,
    /// Reference-policy log-probs `[N, C]` (adapters off), when `beta != 0`.
    pub ref_logp: Option<Array>,
}

impl MicroBatch {
    /// Lays out `rows` (completions of `prompts`); a truncated completion counts for
    /// nothing when `mask_truncated` is set.
    pub fn new(
        prompts: &[RenderedPrompt],
        rows: &[&Rollout],
        advantages: &[f32],
        mask_truncated: bool,
    ) -> Result<Self, Exception> {
        let n = rows.len();
        let prompt_width = rows.iter().map(|r| prompts[r.prompt].ids.len()).max().unwrap_or(0);
        let completion_width = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        if n == 0 || prompt_width == 0 || completion_width == 0 {
            return Err(Exception::custom("a micro-batch needs rows with a prompt and a completion"));
        }
        let width = prompt_width + completion_width - 1;
        let mut tokens = vec![0u32; n * width];
        let mut completion = vec![0u32; n * completion_width];
        let mut mask = vec![0f32; n * completion_width];
        let mut left_padding = Vec::with_capacity(n);
        for (i, row) in rows.iter().enumerate() {
            let prompt = &prompts[row.prompt].ids;
            let pad = prompt_width - prompt.len();
            left_padding.push(pad as i32);
            let line = &mut tokens[i * width..(i + 1) * width];
            line[pad..prompt_width].copy_from_slice(prompt);
            let inputs = row.tokens.len() - 1;
            line[prompt_width..prompt_width + inputs].copy_from_slice(&row.tokens[..inputs]);
            completion[i * completion_width..i * completion_width + row.tokens.len()].copy_from_slice(&row.tokens);
            if !(mask_truncated && row.truncated) {
                mask[i * completion_width..i * completion_width + row.tokens.len()].fill(1.0);
            }
        }
        let as_i32 = |v: Vec<u32>| v.into_iter().map(|x| x as i32).collect::<Vec<i32>>();
        Ok(MicroBatch {
            tokens: Array::from_slice(&as_i32(tokens), &[n as i32, width as i32]),
            left_padding,
            prompt_width: prompt_width as i32,
            completion: Array::from_slice(&as_i32(completion), &[n as i32, completion_width as i32]),
            mask: Array::from_slice(&mask, &[n as i32, completion_width as i32]),
            advantages: Array::from_slice(advantages, &[n as i32]),
            logp_old: None,
            ref_logp: None,
        })
    }

    /// Sampling-time log-probs laid out like `completion` (padding 0).
    pub fn sampled_logprobs(rows: &[&Rollout], width: i32) -> Array {
        let w = width as usize;
        let mut out = vec![0f32; rows.len() * w];
        for (i, row) in rows.iter().enumerate() {
            out[i * w..i * w + row.logprobs.len()].copy_from_slice(&row.logprobs);
        }
        Array::from_slice(&out, &[rows.len() as i32, width])
    }

    /// Counted completion tokens.
    pub fn counted_tokens(&self) -> Result<f32, Exception> {
        let total = self.mask.sum(None)?;
        total.eval()?;
        Ok(total.item_exact::<f32>())
    }

    /// Per-token log-probs `[N, C]` of the completion under the model as it is now, and the
    /// entropy at each position; the vocabulary projection runs on completion positions only.
    pub fn completion_logprobs(&self, model: &mut CausalLm, temperature: f32) -> Result<(Array, Array), Exception> {
        let hidden = model.hidden_states(&self.tokens, Some(&self.left_padding))?;
        let tail = hidden.try_index((.., self.prompt_width - 1.., ..))?;
        let logits = model.logits(&tail)?;
        token_log_probs_with_entropy(&logits, &self.completion, temperature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(prompt: usize, tokens: &[u32], truncated: bool) -> Rollout {
        Rollout {
            prompt,
            tokens: tokens.to_vec(),
            logprobs: vec![-0.5; tokens.len()],
            text: String::new(),
            truncated,
        }
    }

    #[test]
    fn rows_are_left_padded_prompts_then_completions() {
        let prompts = [
            RenderedPrompt { text: String::new(), ids: vec![5, 6, 7] },
            RenderedPrompt { text: String::new(), ids: vec![8] },
        ];
        let (a, b) = (rollout(0, &[1, 2], false), rollout(1, &[3, 4, 9], true));
        let batch = MicroBatch::new(&prompts, &[&a, &b], &[0.5, -0.5], true).unwrap();
        // P = 3, C = 3: inputs are P + C - 1 = 5 columns.
        assert_eq!(batch.tokens.shape(), &[2, 5]);
        assert_eq!(batch.tokens.as_slice::<i32>(), &[5, 6, 7, 1, 0, 0, 0, 8, 3, 4]);
        assert_eq!(batch.left_padding, vec![0, 2]);
        assert_eq!(batch.completion.as_slice::<i32>(), &[1, 2, 0, 3, 4, 9]);
        // The truncated second row is masked out entirely.
        assert_eq!(batch.mask.as_slice::<f32>(), &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(batch.counted_tokens().unwrap(), 2.0);
        let old = MicroBatch::sampled_logprobs(&[&a, &b], 3);
        assert_eq!(old.as_slice::<f32>(), &[-0.5, -0.5, 0.0, -0.5, -0.5, -0.5]);
    }
}
