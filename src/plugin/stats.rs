//! Call timing for plugins, so slow reward functions show up in training logs.

use std::fmt;
use std::time::{Duration, Instant};

/// How often a plugin was called and how long the calls took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Number of calls.
    pub calls: u64,
    /// Samples scored or read over all calls.
    pub items: u64,
    /// Wall time of all calls.
    pub total: Duration,
    /// The slowest call.
    pub max: Duration,
    /// The latest call.
    pub last: Duration,
}

impl CallStats {
    /// Mean wall time per call (zero before the first).
    pub fn mean(&self) -> Duration {
        match self.calls {
            0 => Duration::ZERO,
            n => self.total.div_f64(n as f64),
        }
    }

    /// Runs `f` and records it as one call over `items` samples.
    pub(super) fn time<T>(&mut self, items: usize, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let elapsed = start.elapsed();
        self.calls += 1;
        self.items += items as u64;
        self.total += elapsed;
        self.max = self.max.max(elapsed);
        self.last = elapsed;
        out
    }
}

impl fmt::Display for CallStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls, {} samples, {:.3} ms total, {:.3} ms mean, {:.3} ms max",
            self.calls,
            self.items,
            self.total.as_secs_f64() * 1e3,
            self.mean().as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3
        )
    }
}
