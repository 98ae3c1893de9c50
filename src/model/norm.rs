//! RMS normalisation with a learned per-channel weight (`<path>.weight`).

use mlx_rs::error::Exception;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::{Module, Param};
use mlx_rs::{fast, Array};

use super::weights::{TensorKind, WeightSource};
use crate::error::ModelError;

/// `x / rms(x) * weight` over the last axis.
#[derive(Debug, Clone, ModuleParameters)]
pub struct RmsNorm {
    /// Per-channel gain.
    #[param]
    pub weight: Param<Array>,
    /// Added to the mean square before the square root.
    pub eps: f32,
}

impl RmsNorm {
    /// Takes `<path>.weight` of size `dims`.
    pub fn take(
        src: &mut WeightSource,
        path: &str,
        dims: i32,
        eps: f32,
    ) -> Result<Self, ModelError> {
        let weight = src.take(&format!("{path}.weight"), &[dims], TensorKind::Float, "")?;
        Ok(Self {
            weight: Param::new(weight),
            eps,
        })
    }
}

impl Module<&Array> for RmsNorm {
    type Error = Exception;
    type Output = Array;

    fn forward(&mut self, x: &Array) -> Result<Array, Exception> {
        fast::rms_norm(x, Some(&self.weight), self.eps)
    }

    fn training_mode(&mut self, _mode: bool) {}
}
