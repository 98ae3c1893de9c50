//! GRPO: group-relative advantages, per-token log-probs of sampled tokens, and the
//! clipped policy loss with its aggregation variants (`DESIGN.md` section 5).

pub mod advantages;
pub mod logprobs;
pub mod loss;

pub use advantages::{compute_advantages, Advantages, ScaleRewards, ADVANTAGE_EPS};
pub use logprobs::{token_log_probs, token_log_probs_with_entropy};
pub use loss::{
    completion_mask, grpo_loss, ImportanceSampling, LossConfig, LossInputs, LossMetrics,
    LossOutput, LossStats, LossType,
};
