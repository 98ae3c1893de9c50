//! A linear layer whose parameter names are the checkpoint's: `weight` (dense `[out, in]`
//! or packed uint32 `[out, in * bits / 32]`), `scales` and `biases` (affine quantization,
//! `[out, in / group_size]`) and `bias`. mlx-rs's `QuantizedLinear` nests its weight under
//! `inner.`, which would break key equality with mlx-community files.
//!
//! It also carries an optional LoRA adapter in mlx-lm's layout (`lora_a` `[in, r]`,
//! `lora_b` `[r, out]`): `y = base(x) + scale * (x @ lora_a) @ lora_b`, switchable off
//! so that the frozen base serves as the GRPO reference policy without a second copy.

use mlx_rs::error::Exception;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::{Module, Param};
use mlx_rs::{ops, Array, Dtype};

use super::config::QuantParams;
use super::weights::{TensorKind, WeightSource};
use crate::error::ModelError;

/// A `[rows, cols]` weight matrix as a checkpoint stores it: dense, or affine-quantized
/// with its scales and biases. Shared by [`Linear`] and the token embedding.
#[derive(Debug, Clone)]
pub struct StoredMatrix {
    /// Dense `[rows, cols]` or packed uint32 `[rows, cols * bits / 32]`.
    pub weight: Array,
    /// Scales, biases and parameters when quantized.
    pub quantized: Option<(Array, Array, QuantParams)>,
}

impl StoredMatrix {
    /// Takes `<path>.weight` (and `<path>.scales` / `<path>.biases` when the checkpoint
    /// has scales for this module and the config gives it quantization parameters).
    pub fn take(
        src: &mut WeightSource,
        path: &str,
        rows: i32,
        cols: i32,
        quant: Option<QuantParams>,
    ) -> Result<Self, ModelError> {
        let weight_key = format!("{path}.weight");
        let scales_key = format!("{path}.scales");
        match quant.filter(|_| src.contains(&scales_key)) {
            None => Ok(Self {
                weight: src.take(&weight_key, &[rows, cols], TensorKind::Float, "")?,
                quantized: None,
            }),
            Some(q) => {
                let detail = format!(" ({}-bit, group size {})", q.bits, q.group_size);
                // Inputs must fill whole groups and whole uint32 words; otherwise no shape fits.
                let packed = if (cols * q.bits) % 32 == 0 {
                    cols * q.bits / 32
                } else {
                    -1
                };
                let groups = if cols % q.group_size == 0 {
                    cols / q.group_size
                } else {
                    -1
                };
                let weight = src.take(&weight_key, &[rows, packed], TensorKind::Packed, &detail)?;
                let scales = src.take(&scales_key, &[rows, groups], TensorKind::Float, &detail)?;
                let biases = src.take(
                    &format!("{path}.biases"),
                    &[rows, groups],
                    TensorKind::Float,
                    &detail,
                )?;
                Ok(Self {
                    weight,
                    quantized: Some((scales, biases, q)),
                })
            }
        }
    }

    /// Dense `[rows, cols]` weights in `dtype` (dequantized when stored quantized).
    /// Scales and biases are cast first, so `scale * q + bias` is computed in `dtype`:
    /// asking for float32 from bf16 scales gives the exact values, not bf16-rounded ones.
    pub fn dense(&self, dtype: Dtype) -> Result<Array, Exception> {
        match &self.quantized {
            None => self.weight.as_dtype(dtype),
            Some((scales, biases, q)) => ops::dequantize(
                &self.weight,
                scales.as_dtype(dtype)?,
                &biases.as_dtype(dtype)?,
                q.group_size,
                q.bits,
            ),
        }
    }

    /// Number of columns (inputs) of the matrix, packed or not.
    pub fn cols(&self) -> i32 {
        match &self.quantized {
            Some((_, _, q)) => self.weight.dim(1) * 32 / q.bits,
            None => self.weight.dim(1),
        }
    }

    /// Quantizes a dense matrix whose columns fill whole groups; leaves others dense.
    pub fn quantize(self, q: QuantParams) -> Result<Self, Exception> {
        if self.quantized.is_some() || self.weight.shape()[1] % q.group_size != 0 {
            return Ok(self);
        }
        let (weight, scales, biases) = ops::quantize(&self.weight, q.group_size, q.bits)?;
        Ok(Self {
            weight,
            quantized: Some((scales, biases, q)),
        })
    }
}

/// `y = x W^T (+ bias)` with a dense or affine-quantized `W`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Linear {
    /// Dense `[out, in]`, or packed uint32 `[out, in * bits / 32]` when quantized.
    #[param]
    pub weight: Param<Array>,
    /// Per-group scales `[out, in / group_size]` (quantized only).
    #[param]
    pub scales: Param<Option<Array>>,
    /// Per-group offsets `[out, in / group_size]` (quantized only).
    #[param]
    pub biases: Param<Option<Array>>,
    /// The layer's own additive bias `[out]`, when it has one.
    #[param]
    pub bias: Param<Option<Array>>,
    /// LoRA down-projection `[in, r]`, when an adapter is attached.
    #[param]
    pub lora_a: Param<Option<Array>>,
    /// LoRA up-projection `[r, out]`, when an adapter is attached.
    #[param]
    pub lora_b: Param<Option<Array>>,
    /// Quantization of `weight`; `None` for a dense layer.
    pub quant: Option<QuantParams>,
    /// LoRA output scale (mlx-lm's `scale`; PEFT's `lora_alpha / r`).
    pub lora_scale: f32,
    /// Whether an attached adapter is applied; off gives the base layer.
    pub lora_enabled: bool,
    /// Dropout probability on the adapter's input; the trainer sets it for its gradient
    /// passes only (0 = none, as at inference).
    pub lora_dropout: f32,
}

impl Linear {
    /// Builds a layer from a stored matrix and optional bias.
    pub fn from_parts(matrix: StoredMatrix, bias: Option<Array>) -> Self {
        let (scales, biases, quant) = match matrix.quantized {
            Some((s, b, q)) => (Some(s), Some(b), Some(q)),
            None => (None, None, None),
        };
        Self {
            weight: Param::new(matrix.weight),
            scales: Param::new(scales),
            biases: Param::new(biases),
            bias: Param::new(bias),
            lora_a: Param::new(None),
            lora_b: Param::new(None),
            quant,
            lora_scale: 0.0,
            lora_enabled: false,
            lora_dropout: 0.0,
        }
    }

    /// Attaches a trainable LoRA adapter (`a`: `[in, r]`, `b`: `[r, out]`) and enables it.
    pub fn set_lora(&mut self, a: Array, b: Array, scale: f32) -> Result<(), Exception> {
        let (d_in, d_out) = self.dims();
        let rank = a.dim(-1);
        if a.shape() != [d_in, rank] || b.shape() != [rank, d_out] {
            return Err(Exception::custom(format!(
                "LoRA shapes {:?} and {:?} do not fit a {d_in} -> {d_out} layer",
                a.shape(),
                b.shape()
            )));
        }
        self.lora_a = Param::new(Some(a));
        self.lora_b = Param::new(Some(b));
        self.lora_scale = scale;
        self.lora_enabled = true;
        Ok(())
    }

    /// Detaches the adapter, if any.
    pub fn clear_lora(&mut self) {
        self.lora_a = Param::new(None);
        self.lora_b = Param::new(None);
        self.lora_enabled = false;
    }

    /// Takes the layer at `path` (`in_dims -> out_dims`) out of the checkpoint.
    pub fn take(
        src: &mut WeightSource,
        path: &str,
        in_dims: i32,
        out_dims: i32,
        with_bias: bool,
        quant: Option<QuantParams>,
    ) -> Result<Self, ModelError> {
        let matrix = StoredMatrix::take(src, path, out_dims, in_dims, quant)?;
        let bias = if with_bias {
            Some(src.take(&format!("{path}.bias"), &[out_dims], TensorKind::Float, "")?)
        } else {
            None
        };
        Ok(Self::from_parts(matrix, bias))
    }

    /// The weight matrix as stored (for dequantize/quantize at load); drops any adapter.
    pub fn into_parts(self) -> (StoredMatrix, Option<Array>) {
        let quantized = match (self.scales.value, self.biases.value, self.quant) {
            (Some(s), Some(b), Some(q)) => Some((s, b, q)),
            _ => None,
        };
        (
            StoredMatrix {
                weight: self.weight.value,
                quantized,
            },
            self.bias.value,
        )
    }

    /// Input and output sizes.
    pub fn dims(&self) -> (i32, i32) {
        let shape = self.weight.shape();
        match self.quant {
            Some(q) => (shape[1] * 32 / q.bits, shape[0]),
            None => (shape[1], shape[0]),
        }
    }
}

/// Rows from which a quantized product on the CPU goes through a dense copy of `W`
/// (measured on 2 x86 cores, 1024 x 3072 at 4 bits: 19 vs 12 ms at 8 rows, 151 vs 17 ms
/// at 64); the copy lives until the product is done, or until the backward pass in training.
const DENSE_ON_CPU_FROM_ROWS: i32 = 8;

/// `x @ W^T` for a dense or quantized `W` (`[out, in]`).
pub(crate) fn project(
    x: &Array,
    weight: &Array,
    quantized: Option<(&Array, &Array, QuantParams)>,
) -> Result<Array, Exception> {
    match quantized {
        Some((scales, biases, q)) => {
            // MLX's quantized kernels treat leading axes as a batch of separate products
            // (a decoding step's [rows, 1, in] became `rows` one-row GEMMs on CUDA, each
            // reading all of W); as one [rows, in] matrix they read W once.
            let shape = x.shape();
            let (lead, features) = shape.split_at(shape.len() - 1);
            let rows = x.reshape(&[-1, features[0]])?;
            let y = if rows.dim(0) >= DENSE_ON_CPU_FROM_ROWS && crate::mlx_info::default_device_is_cpu()? {
                // MLX's CPU quantized kernel costs the same per row as a matrix-vector
                // product; a dense copy through BLAS is cheaper from a few rows on.
                let dense = ops::dequantize(weight, scales, biases, q.group_size, q.bits)?;
                ops::matmul(&rows, dense.t())?
            } else {
                ops::quantized_matmul(&rows, weight, scales, biases, true, q.group_size, q.bits)?
            };
            y.reshape(&[lead, &[y.dim(-1)]].concat())
        }
        None => ops::matmul(x, weight.t()),
    }
}

impl Module<&Array> for Linear {
    type Error = Exception;
    type Output = Array;

    fn forward(&mut self, x: &Array) -> Result<Array, Exception> {
        let quantized = match (&self.scales.value, &self.biases.value, self.quant) {
            (Some(s), Some(b), Some(q)) => Some((s, b, q)),
            _ => None,
        };
        let y = project(x, &self.weight, quantized)?;
        let y = match &self.bias.value {
            Some(bias) => y.add(bias)?,
            None => y,
        };
        match (&self.lora_a.value, &self.lora_b.value) {
            (Some(a), Some(b)) if self.lora_enabled => {
                // As mlx-lm: the update may be f32 (adapter dtype); the output keeps y's dtype.
                let x = match self.lora_dropout > 0.0 {
                    true => dropout(x, self.lora_dropout)?,
                    false => x.clone(),
                };
                let update = x.matmul(a)?.matmul(b)?;
                super::fused::add_scaled(&y, &update, &Array::from_f32(self.lora_scale))
            }
            _ => Ok(y),
        }
    }

    fn training_mode(&mut self, _mode: bool) {}
}

/// Inverted dropout: zeroes each element with probability `p` (MLX's global random
/// state) and scales the rest by `1 / (1 - p)`, so the expected value is unchanged.
fn dropout(x: &Array, p: f32) -> Result<Array, Exception> {
    let keep = mlx_rs::random::bernoulli(&Array::from_f32(1.0 - p), x.shape(), None)?;
    x.multiply(keep.as_dtype(x.dtype())?)?.multiply(Array::from_f32(1.0 / (1.0 - p)).as_dtype(x.dtype())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_of_dense_and_quantized_layers() {
        let dense = Linear::from_parts(
            StoredMatrix {
                weight: Array::zeros::<f32>(&[3, 64]).unwrap(),
                quantized: None,
            },
            None,
        );
        assert_eq!(dense.dims(), (64, 3));
        let w = Array::zeros::<f32>(&[8, 64]).unwrap();
        let q = QuantParams::new(32, 4).unwrap();
        let m = StoredMatrix {
            weight: w,
            quantized: None,
        }
        .quantize(q)
        .unwrap();
        assert_eq!(m.weight.shape(), &[8, 8]);
        assert_eq!(Linear::from_parts(m, None).dims(), (64, 8));
    }

    #[test]
    fn dropout_zeroes_a_share_p_and_rescales_the_rest() {
        mlx_rs::random::seed(7).unwrap();
        let x = Array::from_slice(&vec![2.0f32; 20_000], &[100, 200]);
        let p = 0.3;
        let y = dropout(&x, p).unwrap();
        let values = y.as_slice::<f32>().to_vec();
        let zeros = values.iter().filter(|&&v| v == 0.0).count() as f32 / values.len() as f32;
        assert!((zeros - p).abs() < 0.02, "dropped share {zeros}");
        assert!(values.iter().all(|&v| v == 0.0 || (v - 2.0 / (1.0 - p)).abs() < 1e-5));
    }
}
