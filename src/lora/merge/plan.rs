//! How each matrix of a merged model is stored when `--quantize` asks for a quantized
//! output, and the `quantization` section of its config.json.

use serde_json::{Map, Value};
use std::str::FromStr;

use crate::error::ExportError;
use crate::model::{QuantParams, Quantization};

/// Group size when neither `--quantize` nor the base model names one (mlx-lm's default).
pub const DEFAULT_GROUP_SIZE: i32 = 64;

/// `--quantize BITS[,GROUP]`: the group size defaults to the base model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizeArg {
    pub bits: i32,
    pub group_size: Option<i32>,
}

impl FromStr for QuantizeArg {
    type Err = ExportError;

    fn from_str(value: &str) -> Result<Self, ExportError> {
        let bad = |problem: &str| ExportError::Quantize {
            value: value.to_string(),
            problem: problem.to_string(),
        };
        let number = |s: &str| {
            s.trim()
                .parse::<i32>()
                .map_err(|_| bad("expected BITS or BITS,GROUP, e.g. `4` or `4,64`"))
        };
        let (bits, group_size) = match value.split_once(',') {
            Some((bits, group)) => (number(bits)?, Some(number(group)?)),
            None => (number(value)?, None),
        };
        // Checked against MLX's affine kernels with a placeholder group when none is given.
        QuantParams::new(group_size.unwrap_or(DEFAULT_GROUP_SIZE), bits).map_err(|p| bad(&p))?;
        Ok(Self { bits, group_size })
    }
}

/// The output quantization: a default for every matrix that gets quantized, and the base
/// config's per-module entries, which keep their own parameters (or stay dense).
#[derive(Debug, Clone)]
pub struct OutputQuantization {
    pub default: QuantParams,
    base: Option<Quantization>,
}

impl OutputQuantization {
    /// `arg`'s bits with its group size, else the base's default group size, else 64.
    pub fn new(arg: QuantizeArg, base: Option<&Quantization>) -> Result<Self, ExportError> {
        let group = arg
            .group_size
            .or(base.map(|q| q.default.group_size))
            .unwrap_or(DEFAULT_GROUP_SIZE);
        let default =
            QuantParams::new(group, arg.bits).map_err(|problem| ExportError::Quantize {
                value: format!("{},{group}", arg.bits),
                problem,
            })?;
        Ok(Self {
            default,
            base: base.cloned(),
        })
    }

    /// The parameters the matrix at `path` should be quantized with, or `None` to keep it
    /// dense. A quantized base decides which matrices are quantized, as `mlx_lm.fuse`
    /// does; in a dense base every matrix is, as with `mlx_lm.convert -q`. (A matrix
    /// whose inputs do not fill whole groups must stay dense all the same.)
    pub fn wanted(&self, path: &str, quantized_in_base: bool) -> Option<QuantParams> {
        match &self.base {
            None => Some(self.default),
            Some(_) if !quantized_in_base => None,
            Some(base) => match base.overrides.get(path) {
                Some(entry) => *entry,
                None => Some(self.default),
            },
        }
    }

    /// The `quantization` section for config.json: the default, an entry for every
    /// matrix stored with other parameters, and the base's `false` entries. Dense
    /// matrices need no entry: loaders quantize only what has `.scales` in the files.
    pub fn config_section<'a>(
        &self,
        stored: impl IntoIterator<Item = (&'a str, QuantParams)>,
    ) -> Map<String, Value> {
        let mut section = Map::new();
        section.insert("group_size".into(), self.default.group_size.into());
        section.insert("bits".into(), self.default.bits.into());
        section.insert("mode".into(), "affine".into());
        let mut entries: Vec<(String, Value)> = stored
            .into_iter()
            .filter(|(_, q)| *q != self.default)
            .map(|(path, q)| {
                let entry = serde_json::json!({"group_size": q.group_size, "bits": q.bits, "mode": "affine"});
                (path.to_string(), entry)
            })
            .collect();
        if let Some(base) = &self.base {
            entries.extend(
                base.overrides
                    .iter()
                    .filter(|(_, q)| q.is_none())
                    .map(|(p, _)| (p.clone(), Value::Bool(false))),
            );
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        section.extend(entries);
        section
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn q(group_size: i32, bits: i32) -> QuantParams {
        QuantParams::new(group_size, bits).unwrap()
    }

    #[test]
    fn parses_bits_and_optional_group() {
        assert_eq!(
            "4".parse::<QuantizeArg>().unwrap(),
            QuantizeArg {
                bits: 4,
                group_size: None
            }
        );
        assert_eq!(
            "8,32".parse::<QuantizeArg>().unwrap(),
            QuantizeArg {
                bits: 8,
                group_size: Some(32)
            }
        );
        let err = "7".parse::<QuantizeArg>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid --quantize `7`: bits must be one of 2, 3, 4, 5, 6, 8, found 7"
        );
        let err = "4,48".parse::<QuantizeArg>().unwrap_err().to_string();
        assert!(
            err.contains("group_size must be 32, 64 or 128, found 48"),
            "{err}"
        );
        assert!("four"
            .parse::<QuantizeArg>()
            .unwrap_err()
            .to_string()
            .contains("e.g. `4` or `4,64`"));
    }

    #[test]
    fn a_quantized_base_keeps_its_overrides_and_dense_matrices() {
        let base = Quantization {
            default: q(64, 4),
            overrides: HashMap::from([
                ("model.layers.1.mlp.down_proj".to_string(), Some(q(32, 8))),
                ("lm_head".to_string(), None),
            ]),
        };
        let out = OutputQuantization::new(
            QuantizeArg {
                bits: 6,
                group_size: None,
            },
            Some(&base),
        )
        .unwrap();
        assert_eq!(out.default, q(64, 6), "the base's group size by default");
        assert_eq!(
            out.wanted("model.layers.0.mlp.down_proj", true),
            Some(q(64, 6))
        );
        assert_eq!(
            out.wanted("model.layers.1.mlp.down_proj", true),
            Some(q(32, 8))
        );
        assert_eq!(out.wanted("lm_head", true), None);
        assert_eq!(out.wanted("model.layers.0.self_attn.o_proj", false), None);
        let section = out.config_section([
            ("model.layers.0.mlp.down_proj", q(64, 6)),
            ("model.layers.1.mlp.down_proj", q(32, 8)),
        ]);
        assert_eq!(
            Value::Object(section),
            serde_json::json!({"group_size": 64, "bits": 6, "mode": "affine", "lm_head": false,
                "model.layers.1.mlp.down_proj": {"group_size": 32, "bits": 8, "mode": "affine"}})
        );
    }

    #[test]
    fn a_dense_base_gets_every_matrix_quantized() {
        let out = OutputQuantization::new(
            QuantizeArg {
                bits: 4,
                group_size: Some(32),
            },
            None,
        )
        .unwrap();
        assert_eq!(out.wanted("model.embed_tokens", false), Some(q(32, 4)));
    }
}
