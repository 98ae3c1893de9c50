//! Generation: KV cache, sampling, and the batched rollout engine the GRPO trainer
//! calls (`generate`).

#![warn(missing_docs)]

pub mod cache;
pub mod engine;
pub mod sampling;
pub mod text;

pub use cache::KvCache;
pub use engine::{
    generate, Completion, FinishReason, GenerateConfig, Generation, GlobalRows, GenerationStats, NoStop,
    StopCondition,
};
pub use sampling::{filter_logprobs, policy_logprobs, sample, sample_with_noise, Sampled, SamplingParams};
