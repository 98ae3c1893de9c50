//! GRPO: group-relative advantages, per-token log-probs of sampled tokens, the clipped
//! policy loss with its aggregation variants (formulas in [`loss`] and [`advantages`]),
//! and the trainer that runs them: rollouts, micro-batches, updates, checkpoints,
//! metrics, eval.

pub mod advantages;
pub mod batch;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod logprobs;
pub mod loss;
pub mod metrics;
pub mod rollout;
pub mod shard;
pub mod step;
pub mod trainer;

pub use advantages::{compute_advantages, Advantages, ScaleRewards, ADVANTAGE_EPS};
pub use logprobs::{token_log_probs, token_log_probs_with_entropy};
pub use loss::{
    completion_mask, grpo_loss, ImportanceSampling, LossConfig, LossInputs, LossMetrics,
    LossOutput, LossStats, LossType,
};
pub use trainer::{run, RunOptions, RunSummary, Session};
