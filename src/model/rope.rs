//! Rotary position embeddings through `fast::rope`: plain, linearly scaled, and Llama 3
//! frequency scaling (the same frequency table mlx-lm's `Llama3RoPE` builds).

use mlx_rs::error::Exception;
use mlx_rs::{fast, ops, Array};

use super::config::RopeScaling;

/// Where each row's positions start.
#[derive(Debug, Clone)]
pub enum RopeOffset {
    /// Every row starts at the same position.
    Uniform(i32),
    /// One start per batch row (`[B]` int32); left-padded rows start below zero so
    /// that their first real token sits at position 0.
    PerRow(Array),
}

/// RoPE settings of one model.
#[derive(Debug, Clone)]
pub struct Rope {
    dims: i32,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    /// Per-pair periods replacing `base` (Llama 3 scaling); a constant, not a parameter.
    freqs: Option<Array>,
}

impl Rope {
    /// RoPE over `dims` features (the head dimension).
    pub fn new(
        dims: i32,
        theta: f32,
        traditional: bool,
        scaling: &RopeScaling,
    ) -> Result<Self, Exception> {
        let plain = |scale: f32| Self {
            dims,
            traditional,
            base: Some(theta),
            scale,
            freqs: None,
        };
        Ok(match scaling {
            RopeScaling::None => plain(1.0),
            RopeScaling::Linear { factor } => plain(1.0 / factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let freqs = llama3_freqs(
                    dims,
                    theta,
                    *factor,
                    *low_freq_factor,
                    *high_freq_factor,
                    *original_max_position_embeddings,
                )?;
                Self {
                    dims,
                    traditional,
                    base: None,
                    scale: 1.0,
                    freqs: Some(freqs),
                }
            }
        })
    }

    /// Rotates `x` (`[B, heads, T, head_dim]`) for positions `offset..offset+T` of each row.
    pub fn apply(&self, x: &Array, offset: &RopeOffset) -> Result<Array, Exception> {
        match offset {
            RopeOffset::Uniform(start) => fast::rope(
                x,
                self.dims,
                self.traditional,
                self.base,
                self.scale,
                *start,
                self.freqs.as_ref(),
            ),
            RopeOffset::PerRow(starts) => fast::rope_dynamic(
                x,
                self.dims,
                self.traditional,
                self.base,
                self.scale,
                starts,
                self.freqs.as_ref(),
            ),
        }
    }
}

/// Llama 3 periods: long wavelengths stretched by `factor`, short ones kept, a smooth
/// blend in between. Computed with MLX ops in f32, in the order mlx-lm uses.
fn llama3_freqs(
    dims: i32,
    theta: f32,
    factor: f32,
    low: f32,
    high: f32,
    old_context: f32,
) -> Result<Array, Exception> {
    let low_wavelen = old_context / low;
    let high_wavelen = old_context / high;
    let exponents = ops::arange::<_, f32>(0, dims, 2)?.divide(Array::from_f32(dims as f32))?;
    let freqs = ops::power(Array::from_f32(theta), &exponents)?;
    let wavelens = freqs.multiply(Array::from_f32(2.0 * std::f32::consts::PI))?;
    let freqs = ops::select(
        &wavelens.gt(Array::from_f32(low_wavelen))?,
        &freqs.multiply(Array::from_f32(factor))?,
        &freqs,
    )?;
    let is_medium = wavelens
        .gt(Array::from_f32(high_wavelen))?
        .logical_and(&wavelens.lt(Array::from_f32(low_wavelen))?)?;
    let smooth = Array::from_f32(old_context)
        .divide(&wavelens)?
        .subtract(Array::from_f32(low))?
        .divide(Array::from_f32(high - low))?;
    // freqs / ((1 - smooth) / factor + smooth)
    let denom = Array::from_f32(1.0)
        .subtract(&smooth)?
        .divide(Array::from_f32(factor))?
        .add(&smooth)?;
    let smooth_freqs = freqs.divide(&denom)?;
    ops::select(&is_medium, &smooth_freqs, &freqs)
}
