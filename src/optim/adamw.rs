//! AdamW over mlx-rs's optimizer, driven by our schedule, with optional bias correction.
//!
//! mlx-rs's `AdamW` (like Python MLX's by default) updates, per parameter:
//! `p <- p * (1 - lr * wd)`, `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
//! `p <- p - lr * m / (sqrt(v) + eps)`, with no bias correction. PyTorch's AdamW (TRL)
//! divides `m` by `c1 = 1 - b1^t` and `v` by `c2 = 1 - b2^t`. The two agree when, at update
//! t, mlx-rs is given `lr' = lr * sqrt(c2) / c1`, `eps' = eps * sqrt(c2)` and
//! `wd' = wd * c1 / sqrt(c2)` (so that `lr' * wd' = lr * wd`): its fields are public, so we
//! set them before each update rather than re-implementing the optimizer.

use mlx_rs::error::Exception;
use mlx_rs::module::{FlattenedModuleParam, ModuleParameters};
use mlx_rs::optimizers::{self, Optimizer, State};
use mlx_rs::Array;

use super::LrSchedule;
use crate::recipe::OptimizerConfig;

/// AdamW with a learning-rate schedule; counts the updates it has applied.
pub struct AdamW {
    inner: optimizers::AdamW,
    schedule: LrSchedule,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    bias_correction: bool,
    updates: u64,
}

impl AdamW {
    /// An optimizer for a run of `total_updates` updates.
    pub fn new(config: &OptimizerConfig, total_updates: u64) -> Self {
        let schedule = LrSchedule {
            schedule: config.schedule,
            peak: config.lr,
            warmup: config.warmup_steps,
            total: total_updates,
        };
        let [b1, b2] = config.betas;
        let inner = optimizers::AdamW {
            lr: Array::from_f32(config.lr as f32),
            betas: (Array::from_f32(b1 as f32), Array::from_f32(b2 as f32)),
            eps: Array::from_f32(config.eps as f32),
            weight_decay: Array::from_f32(config.weight_decay as f32),
            state: State::new(),
        };
        AdamW {
            inner,
            schedule,
            betas: (b1, b2),
            eps: config.eps,
            weight_decay: config.weight_decay,
            bias_correction: config.bias_correction,
            updates: 0,
        }
    }

    /// Applies one update to `model`'s parameters named in `gradients` and returns the
    /// learning rate it used. Gradients for names the model lacks are ignored (mlx-rs).
    pub fn update<M: ModuleParameters>(
        &mut self,
        model: &mut M,
        gradients: &FlattenedModuleParam,
    ) -> Result<f64, Exception> {
        let lr = self.schedule.lr(self.updates);
        let (lr_eff, eps_eff, wd_eff) = if self.bias_correction {
            let t = (self.updates + 1).min(i32::MAX as u64) as i32;
            let c1 = 1.0 - self.betas.0.powi(t);
            let c2_sqrt = (1.0 - self.betas.1.powi(t)).sqrt();
            (
                lr * c2_sqrt / c1,
                self.eps * c2_sqrt,
                self.weight_decay * c1 / c2_sqrt,
            )
        } else {
            (lr, self.eps, self.weight_decay)
        };
        self.inner.lr = Array::from_f32(lr_eff as f32);
        self.inner.eps = Array::from_f32(eps_eff as f32);
        self.inner.weight_decay = Array::from_f32(wd_eff as f32);
        self.inner.update(model, gradients)?;
        self.updates += 1;
        Ok(lr)
    }

    /// Updates applied so far (the next update's 0-based index).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Sets the update count, when resuming from a checkpoint.
    pub fn set_updates(&mut self, updates: u64) {
        self.updates = updates;
    }

    /// The moments `(m, v)` per parameter name, for saving and restoring checkpoints
    /// (mlx-rs's `OptimizerState` saves them as `<name>.0` / `<name>.1` safetensors).
    pub fn state_mut(&mut self) -> &mut State<(Array, Array)> {
        &mut self.inner.state
    }
}
