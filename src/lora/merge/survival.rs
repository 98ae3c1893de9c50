//! How much of an adapter's change survives re-quantizing the merged weights.
//!
//! Quantization steps are often larger than a LoRA delta, so `round(W + delta)` can equal
//! `round(W)` almost everywhere and the merged model silently behaves like the base
//! (mlx-lm issue 1172). For each re-quantized layer we compare the change that was kept,
//! `Q(W + delta) - Q(W)`, with the intended `delta`.

use mlx_rs::error::Exception;
use mlx_rs::{ops, Array, Dtype};
use std::fmt;

use crate::model::linear::StoredMatrix;
use crate::model::QuantParams;

/// Overall relative error above which the merge warns that most of the adapter is lost.
pub const MOSTLY_LOST: f64 = 0.5;

/// One re-quantized layer: Frobenius norms of the intended delta and of the error
/// `(Q(W + delta) - Q(W)) - delta`, where `Q` rounds to the output dtype, quantizes and
/// dequantizes.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSurvival {
    pub path: String,
    pub params: QuantParams,
    pub delta_norm: f64,
    pub error_norm: f64,
}

impl LayerSurvival {
    /// `|error| / |delta|`: 0 when the whole change was kept, about 1 or more when it was
    /// rounded away; `None` for an adapter that changes nothing (all-zero `lora_b`).
    pub fn relative_error(&self) -> Option<f64> {
        (self.delta_norm > 0.0).then(|| self.error_norm / self.delta_norm)
    }
}

/// Every re-quantized adapted layer of a merge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurvivalReport {
    pub layers: Vec<LayerSurvival>,
}

impl SurvivalReport {
    /// `sqrt(sum |error|^2 / sum |delta|^2)` over all layers.
    pub fn overall_relative_error(&self) -> Option<f64> {
        let sum =
            |f: fn(&LayerSurvival) -> f64| self.layers.iter().map(|l| f(l).powi(2)).sum::<f64>();
        let delta = sum(|l| l.delta_norm);
        (delta > 0.0).then(|| (sum(|l| l.error_norm) / delta).sqrt())
    }

    /// Layers whose relative error is above [`MOSTLY_LOST`].
    pub fn lost_layers(&self) -> impl Iterator<Item = &LayerSurvival> {
        self.layers
            .iter()
            .filter(|l| l.relative_error().is_some_and(|e| e > MOSTLY_LOST))
    }

    /// Whether most of the adapter's change was lost overall.
    pub fn mostly_lost(&self) -> bool {
        self.overall_relative_error()
            .is_some_and(|e| e > MOSTLY_LOST)
    }
}

impl fmt::Display for SurvivalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = |e: Option<f64>| e.map_or("no change".to_string(), |e| format!("{e:.3}"));
        writeln!(f, "adapter change kept after re-quantization (relative error |kept - delta| / |delta|: 0 = all kept, >= 1 = lost)")?;
        let width = self
            .layers
            .iter()
            .map(|l| l.path.len())
            .max()
            .unwrap_or(0)
            .max(7);
        for l in &self.layers {
            let mark = if l.relative_error().is_some_and(|e| e > MOSTLY_LOST) {
                "  <- mostly lost"
            } else {
                ""
            };
            let params = format!("{}-bit g{}", l.params.bits, l.params.group_size);
            writeln!(
                f,
                "  {:width$}  {params:>9}  {}{mark}",
                l.path,
                ratio(l.relative_error())
            )?;
        }
        writeln!(
            f,
            "  {:width$}  {:>9}  {}",
            "overall",
            "",
            ratio(self.overall_relative_error())
        )?;
        if self.mostly_lost() {
            writeln!(
                f,
                "WARNING: re-quantizing lost most of the adapter's change ({} of {} layers above {MOSTLY_LOST}); \
                 the merged model will behave much like the base model. Merge without --quantize \
                 (dequantized output), or quantize with more bits.",
                self.lost_layers().count(),
                self.layers.len()
            )?;
        }
        Ok(())
    }
}

/// Quantizes the merged weight `base + delta` (float32 `[out, in]`, rounded to `dtype`
/// first, as it will be stored) and measures what survived of `delta`.
pub(super) fn quantize_and_measure(
    path: &str,
    base: &Array,
    delta: &Array,
    dtype: Dtype,
    params: QuantParams,
) -> Result<(StoredMatrix, LayerSurvival), Exception> {
    let stored = |w: &Array| -> Result<StoredMatrix, Exception> {
        let (weight, scales, biases) =
            ops::quantize(w.as_dtype(dtype)?, params.group_size, params.bits)?;
        Ok(StoredMatrix {
            weight,
            quantized: Some((scales, biases, params)),
        })
    };
    let merged = stored(&base.add(delta)?)?;
    let kept = merged
        .dense(Dtype::Float32)?
        .subtract(stored(base)?.dense(Dtype::Float32)?)?;
    let error2 = kept.subtract(delta)?.square()?.sum(None)?;
    let delta2 = delta.square()?.sum(None)?;
    let mut outputs = vec![&merged.weight, &error2, &delta2];
    if let Some((scales, biases, _)) = &merged.quantized {
        outputs.extend([scales, biases]);
    }
    mlx_rs::transforms::eval(outputs)?;
    let norm = |sum2: &Array| -> Result<f64, Exception> {
        let value = sum2
            .try_item_cast::<f32>()
            .map_err(|e| Exception::custom(e.to_string()))?;
        Ok((value as f64).sqrt())
    };
    let survival = LayerSurvival {
        path: path.to_string(),
        params,
        delta_norm: norm(&delta2)?,
        error_norm: norm(&error2)?,
    };
    Ok((merged, survival))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(delta: f64, error: f64) -> LayerSurvival {
        LayerSurvival {
            path: "model.layers.0.mlp.up_proj".into(),
            params: QuantParams::new(64, 4).unwrap(),
            delta_norm: delta,
            error_norm: error,
        }
    }

    #[test]
    fn overall_error_weighs_layers_by_their_delta() {
        let report = SurvivalReport {
            layers: vec![layer(3.0, 0.0), layer(4.0, 4.0)],
        };
        // sqrt((0 + 16) / (9 + 16)) = 0.8
        assert!((report.overall_relative_error().unwrap() - 0.8).abs() < 1e-12);
        assert!(report.mostly_lost());
        assert_eq!(report.lost_layers().count(), 1);
        let text = report.to_string();
        assert!(text.contains("WARNING: re-quantizing lost most of the adapter's change (1 of 2 layers above 0.5)"), "{text}");
        assert!(text.contains("4-bit g64  1.000  <- mostly lost"), "{text}");
        assert!(text.contains("overall") && text.contains("0.800"), "{text}");
    }

    #[test]
    fn an_unchanged_adapter_has_no_ratio_and_no_warning() {
        let report = SurvivalReport {
            layers: vec![layer(0.0, 0.0)],
        };
        assert_eq!(report.overall_relative_error(), None);
        assert!(!report.mostly_lost());
        assert!(report.to_string().contains("no change"));
    }
}
