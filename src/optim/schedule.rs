//! Learning-rate schedules (mlx-rs has none): linear warmup, then constant, linear or
//! cosine decay.

use serde::{Deserialize, Serialize};

/// The learning-rate shape after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Stay at the peak rate.
    Constant,
    /// Fall linearly toward 0 at the end of the run.
    Linear,
    /// Follow half a cosine from the peak toward 0 at the end of the run.
    Cosine,
}

/// The learning rate of every optimizer update of a run.
///
/// Updates are numbered from 0. Warmup update `u < warmup` uses `peak * (u + 1) / warmup`,
/// so the last warmup update reaches the peak and none is wasted at 0. After warmup,
/// with `d = total - warmup` decay updates and progress `p = (u - warmup) / d` in [0, 1):
/// linear gives `peak * (1 - p)`, cosine `peak * (1 + cos(pi * p)) / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub schedule: Schedule,
    pub peak: f64,
    pub warmup: u64,
    pub total: u64,
}

impl LrSchedule {
    /// The learning rate for update `update` (0-based); past `total` it stays at the last
    /// update's rate.
    pub fn lr(&self, update: u64) -> f64 {
        if update < self.warmup {
            return self.peak * (update + 1) as f64 / self.warmup as f64;
        }
        let decay = self.total.saturating_sub(self.warmup).max(1);
        let progress = (update - self.warmup).min(decay - 1) as f64 / decay as f64;
        match self.schedule {
            Schedule::Constant => self.peak,
            Schedule::Linear => self.peak * (1.0 - progress),
            Schedule::Cosine => self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}
