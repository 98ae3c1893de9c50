//! Token embedding, dense or affine-quantized (`weight`, `scales`, `biases` as in
//! mlx-community files). With tied embeddings it is also the output projection.

use mlx_rs::error::Exception;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::Param;
use mlx_rs::{ops, Array};

use super::config::QuantParams;
use super::linear::{project, StoredMatrix};

/// Embedding table `[vocab, hidden]`, possibly packed.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Embedding {
    /// `[vocab, hidden]`, or packed uint32 `[vocab, hidden * bits / 32]`.
    #[param]
    pub weight: Param<Array>,
    /// Per-group scales (quantized only).
    #[param]
    pub scales: Param<Option<Array>>,
    /// Per-group offsets (quantized only).
    #[param]
    pub biases: Param<Option<Array>>,
    /// Quantization of `weight`; `None` when dense.
    pub quant: Option<QuantParams>,
}

impl Embedding {
    /// Builds the table from a stored matrix.
    pub fn from_matrix(matrix: StoredMatrix) -> Self {
        let (scales, biases, quant) = match matrix.quantized {
            Some((s, b, q)) => (Some(s), Some(b), Some(q)),
            None => (None, None, None),
        };
        Self {
            weight: Param::new(matrix.weight),
            scales: Param::new(scales),
            biases: Param::new(biases),
            quant,
        }
    }

    /// The table as stored (for dequantize/quantize at load).
    pub fn into_matrix(self) -> StoredMatrix {
        let quantized = match (self.scales.value, self.biases.value, self.quant) {
            (Some(s), Some(b), Some(q)) => Some((s, b, q)),
            _ => None,
        };
        StoredMatrix {
            weight: self.weight.value,
            quantized,
        }
    }

    fn quantized(&self) -> Option<(&Array, &Array, QuantParams)> {
        match (&self.scales.value, &self.biases.value, self.quant) {
            (Some(s), Some(b), Some(q)) => Some((s, b, q)),
            _ => None,
        }
    }

    /// Rows of the table for integer `ids` of any shape: `[..ids, hidden]`.
    pub fn lookup(&self, ids: &Array) -> Result<Array, Exception> {
        match self.quantized() {
            None => self.weight.take_axis(ids, 0),
            Some((scales, biases, q)) => {
                let w = self.weight.take_axis(ids, 0)?;
                let s = scales.take_axis(ids, 0)?;
                let b = biases.take_axis(ids, 0)?;
                ops::dequantize(&w, &s, &b, q.group_size, q.bits)
            }
        }
    }

    /// `x @ table^T`: logits over the vocabulary for tied embeddings.
    pub fn as_linear(&self, x: &Array) -> Result<Array, Exception> {
        project(x, &self.weight, self.quantized())
    }
}
