//! The optimizer side of a training step: AdamW with our learning-rate schedules,
//! global gradient-norm clipping, and gradient accumulation over micro-batches.

pub mod accumulate;
pub mod adamw;
pub mod clip;
pub mod schedule;

pub use accumulate::{GradAccumulator, GradReduction};
pub use adamw::AdamW;
pub use clip::clip_grad_norm;
pub use schedule::{LrSchedule, Schedule};
