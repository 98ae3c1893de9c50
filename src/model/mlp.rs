//! The gated feed-forward block: `down(silu(gate(x)) * up(x))`.

use mlx_rs::error::Exception;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::Module;
use mlx_rs::Array;

use super::config::ModelSpec;
use super::fused::swiglu;
use super::linear::Linear;
use super::weights::WeightSource;
use crate::error::ModelError;

/// `mlp` of a decoder layer.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Mlp {
    /// hidden -> intermediate, through SiLU.
    #[param]
    pub gate_proj: Linear,
    /// hidden -> intermediate.
    #[param]
    pub up_proj: Linear,
    /// intermediate -> hidden.
    #[param]
    pub down_proj: Linear,
}

impl Mlp {
    /// Takes `<path>.{gate,up,down}_proj` out of the checkpoint.
    pub fn take(src: &mut WeightSource, path: &str, spec: &ModelSpec) -> Result<Self, ModelError> {
        let (h, i, bias) = (spec.hidden_size, spec.intermediate_size, spec.mlp_bias);
        let mut proj = |name: &str, d_in: i32, d_out: i32| {
            let key = format!("{path}.{name}");
            let quant = spec.quantization.as_ref().and_then(|c| c.for_module(&key));
            Linear::take(src, &key, d_in, d_out, bias, quant)
        };
        Ok(Self {
            gate_proj: proj("gate_proj", h, i)?,
            up_proj: proj("up_proj", h, i)?,
            down_proj: proj("down_proj", i, h)?,
        })
    }
}

impl Module<&Array> for Mlp {
    type Error = Exception;
    type Output = Array;

    fn forward(&mut self, x: &Array) -> Result<Array, Exception> {
        let gate = self.gate_proj.forward(x)?;
        let up = self.up_proj.forward(x)?;
        self.down_proj.forward(&swiglu(&gate, &up)?)
    }

    fn training_mode(&mut self, _mode: bool) {}
}
