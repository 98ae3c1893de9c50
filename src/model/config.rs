//! `config.json` of a model directory: typed access with errors that name the key, and
//! the architecture-independent description (`ModelSpec`) that the layers are built from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ModelError;

/// A parsed `config.json`, read through getters that report missing or mistyped keys.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it was read from (for error messages).
    pub path: PathBuf,
    /// The top-level JSON object.
    pub values: Map<String, Value>,
}

impl ConfigFile {
    /// Reads `<dir>/config.json`.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: PathBuf) -> Result<Self, ModelError> {
        let value: Value = serde_json::from_str(text).map_err(|source| ModelError::Json {
            path: path.clone(),
            source,
        })?;
        match value {
            Value::Object(values) => Ok(Self { path, values }),
            _ => Err(ModelError::Config {
                path,
                key: "<root>".into(),
                problem: "must be a JSON object".into(),
            }),
        }
    }

    /// An error about `key` in this file.
    pub fn error(&self, key: &str, problem: impl Into<String>) -> ModelError {
        ModelError::Config {
            path: self.path.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&str, ModelError> {
        match self.values.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.error(key, "must be a string")),
            None => Err(self.error(key, "is missing")),
        }
    }

    /// An optional positive integer that fits in i32 (MLX shapes are i32).
    pub fn opt_dim(&self, key: &str) -> Result<Option<i32>, ModelError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= i32::MAX as u64 => Ok(Some(n as i32)),
                _ => Err(self.error(key, format!("must be a positive integer, found {v}"))),
            },
        }
    }

    /// A required positive integer.
    pub fn dim(&self, key: &str) -> Result<i32, ModelError> {
        self.opt_dim(key)?
            .ok_or_else(|| self.error(key, "is missing"))
    }

    /// An optional number.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, ModelError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("must be a number, found {v}"))),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ModelError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.error(key, format!("must be true or false, found {v}"))),
        }
    }

    /// An optional JSON object.
    pub fn opt_object(&self, key: &str) -> Result<Option<&Map<String, Value>>, ModelError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(self.error(key, format!("must be an object, found {v}"))),
        }
    }
}

/// Affine quantization parameters of one layer (MLX `mode: "affine"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantParams {
    /// Inputs that share one scale and bias.
    pub group_size: i32,
    /// Bits per weight: 2, 3, 4, 5, 6 or 8.
    pub bits: i32,
}

impl QuantParams {
    /// Checks the values MLX's affine kernels accept.
    pub fn new(group_size: i32, bits: i32) -> Result<Self, String> {
        if ![2, 3, 4, 5, 6, 8].contains(&bits) {
            return Err(format!(
                "bits must be one of 2, 3, 4, 5, 6, 8, found {bits}"
            ));
        }
        if ![32, 64, 128].contains(&group_size) {
            return Err(format!(
                "group_size must be 32, 64 or 128, found {group_size}"
            ));
        }
        Ok(Self { group_size, bits })
    }
}

/// The `quantization` section of an mlx-community config.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    /// Parameters of every quantized layer without an override.
    pub default: QuantParams,
    /// Per-module entries keyed by module path (`model.layers.1.mlp.down_proj`); `None`
    /// when the config says the module stays unquantized (`false`).
    pub overrides: HashMap<String, Option<QuantParams>>,
}

impl Quantization {
    /// Reads `quantization` (or the `quantization_config` copy mlx-lm also writes).
    /// Only the affine mode is supported; other modes are a typed error.
    pub fn from_config(cfg: &ConfigFile) -> Result<Option<Self>, ModelError> {
        let (key, section) = match (
            cfg.opt_object("quantization")?,
            cfg.opt_object("quantization_config")?,
        ) {
            (Some(q), _) => ("quantization", q),
            (None, Some(q)) => ("quantization_config", q),
            (None, None) => return Ok(None),
        };
        if let Some(method) = section.get("quant_method") {
            return Err(cfg.error(
                &format!("{key}.quant_method"),
                format!(
                    "is {method}; only MLX affine quantization (group_size/bits/mode) is supported"
                ),
            ));
        }
        let default = Self::params(cfg, key, section)?;
        let mut overrides = HashMap::new();
        for (name, value) in section {
            match (name.as_str(), value) {
                ("group_size" | "bits" | "mode", _) => {}
                (_, Value::Object(entry)) => {
                    let path = format!("{key}.{name}");
                    overrides.insert(name.clone(), Some(Self::params(cfg, &path, entry)?));
                }
                (_, Value::Bool(false)) => {
                    overrides.insert(name.clone(), None);
                }
                (_, other) => {
                    return Err(cfg.error(
                        &format!("{key}.{name}"),
                        format!("must be an object with bits/group_size or false, found {other}"),
                    ))
                }
            }
        }
        Ok(Some(Self { default, overrides }))
    }

    fn params(
        cfg: &ConfigFile,
        key: &str,
        section: &Map<String, Value>,
    ) -> Result<QuantParams, ModelError> {
        if let Some(mode) = section.get("mode") {
            if mode.as_str() != Some("affine") {
                return Err(cfg.error(
                    &format!("{key}.mode"),
                    format!("is {mode}; only \"affine\" is supported (mxfp4/nvfp4/mxfp8 are not)"),
                ));
            }
        }
        let int = |name: &str| -> Result<i32, ModelError> {
            section
                .get(name)
                .and_then(Value::as_i64)
                .map(|v| v as i32)
                .ok_or_else(|| cfg.error(&format!("{key}.{name}"), "must be an integer"))
        };
        QuantParams::new(int("group_size")?, int("bits")?)
            .map_err(|problem| cfg.error(key, problem))
    }

    /// What the config says for the module at `path`: its own entry, else the default.
    pub fn for_module(&self, path: &str) -> Option<QuantParams> {
        match self.overrides.get(path) {
            Some(entry) => *entry,
            None => Some(self.default),
        }
    }
}

/// Rotary position embedding variants.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Positions divided by `factor`.
    Linear {
        /// Position divisor.
        factor: f32,
    },
    /// Llama 3.x frequency-dependent scaling (keys as in `rope_scaling`).
    Llama3 {
        /// Stretch of the long wavelengths.
        factor: f32,
        /// Wavelengths above `original / low_freq_factor` are stretched fully.
        low_freq_factor: f32,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f32,
        /// Context length the model was pretrained with.
        original_max_position_embeddings: f32,
    },
}

/// Everything about a decoder-only model that its layers need, whatever the
/// `model_type` was. Built by the architecture modules (`llama`, `qwen2`, `qwen3`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// `model_type` as written in config.json (e.g. "mistral" for a llama-style model).
    pub model_type: String,
    /// Width of the residual stream.
    pub hidden_size: i32,
    /// Width of the MLP's gate/up projections.
    pub intermediate_size: i32,
    /// Decoder layers (`num_hidden_layers`).
    pub num_layers: i32,
    /// Query heads (`num_attention_heads`).
    pub num_heads: i32,
    /// Key/value heads (`num_key_value_heads`; fewer than `num_heads` for GQA).
    pub num_kv_heads: i32,
    /// Features per head.
    pub head_dim: i32,
    /// Rows of the embedding table and columns of the logits.
    pub vocab_size: i32,
    /// Epsilon of every RMS norm.
    pub rms_norm_eps: f32,
    /// RoPE base.
    pub rope_theta: f32,
    /// RoPE on interleaved (true) or split halves (false) of each head.
    pub rope_traditional: bool,
    /// RoPE frequency scaling.
    pub rope_scaling: RopeScaling,
    /// `None` when config.json does not say; the loader then looks for `lm_head.weight`.
    pub tie_word_embeddings: Option<bool>,
    /// Bias on q/k/v projections (qwen2; llama's `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the output projection (llama's `attention_bias`).
    pub o_bias: bool,
    /// Bias on the MLP projections (llama's `mlp_bias`).
    pub mlp_bias: bool,
    /// RMS norms on each head's queries and keys (qwen3).
    pub qk_norm: bool,
    /// Quantization the checkpoint declares (`None` for a dense checkpoint).
    pub quantization: Option<Quantization>,
}

/// Reads `rope_theta` / `rope_scaling`, also where transformers >= 5 nests them under
/// `rope_parameters`. `default_theta` is the architecture's default, if it has one.
pub fn rope_settings(
    cfg: &ConfigFile,
    default_theta: Option<f64>,
) -> Result<(f32, RopeScaling), ModelError> {
    let nested = cfg.opt_object("rope_parameters")?;
    let theta = match (
        cfg.opt_f64("rope_theta")?,
        nested
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64),
    ) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => default_theta.ok_or_else(|| cfg.error("rope_theta", "is missing"))?,
    };
    let (key, scaling) = match (cfg.opt_object("rope_scaling")?, nested) {
        (Some(s), _) => ("rope_scaling", Some(s)),
        (None, Some(s)) => ("rope_parameters", Some(s)),
        (None, None) => ("rope_scaling", None),
    };
    let Some(scaling) = scaling else {
        return Ok((theta as f32, RopeScaling::None));
    };
    let kind = scaling
        .get("type")
        .or_else(|| scaling.get("rope_type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let number = |name: &str, default: Option<f64>| -> Result<f32, ModelError> {
        match scaling.get(name) {
            Some(v) => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| cfg.error(&format!("{key}.{name}"), "must be a number")),
            None => default
                .map(|x| x as f32)
                .ok_or_else(|| cfg.error(&format!("{key}.{name}"), "is missing")),
        }
    };
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: number("factor", None)?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: number("factor", None)?,
            low_freq_factor: number("low_freq_factor", Some(1.0))?,
            high_freq_factor: number("high_freq_factor", Some(4.0))?,
            original_max_position_embeddings: number(
                "original_max_position_embeddings",
                Some(8192.0),
            )?,
        },
        other => {
            return Err(cfg.error(
                &format!("{key}.rope_type"),
                format!("is \"{other}\"; supported: default, linear, llama3"),
            ))
        }
    };
    Ok((theta as f32, scaling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec_from_config;

    fn config(json: &str) -> ConfigFile {
        ConfigFile::parse(json, PathBuf::from("config.json")).unwrap()
    }

    const QWEN3: &str = r#"{"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 32, "rms_norm_eps": 1e-6, "vocab_size": 100"#;

    #[test]
    fn transformers_5_nests_rope_settings_under_rope_parameters() {
        let cfg = config(&format!(
            r#"{QWEN3}, "rope_parameters": {{"rope_theta": 5e5, "rope_type": "linear", "factor": 2.0}}}}"#
        ));
        let spec = spec_from_config(&cfg).unwrap();
        assert_eq!(spec.rope_theta, 5e5);
        assert_eq!(spec.rope_scaling, RopeScaling::Linear { factor: 2.0 });
        assert_eq!(
            (spec.head_dim, spec.num_kv_heads, spec.qk_norm),
            (32, 2, true)
        );
    }

    #[test]
    fn unsupported_rope_types_and_missing_keys_name_the_key() {
        let cfg = config(&format!(
            r#"{QWEN3}, "rope_theta": 1e6, "rope_scaling": {{"type": "yarn", "factor": 4}}}}"#
        ));
        let err = spec_from_config(&cfg).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.json: `rope_scaling.rope_type` is \"yarn\"; supported: default, linear, llama3"
        );
        let err = spec_from_config(&config(&format!("{QWEN3}}}")))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "config.json: `rope_theta` is missing");
        let cfg = config(r#"{"model_type": "llama", "hidden_size": "64"}"#);
        let err = spec_from_config(&cfg).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.json: `hidden_size` must be a positive integer, found \"64\""
        );
    }

    #[test]
    fn quantization_reads_defaults_overrides_and_rejects_other_modes() {
        let cfg = config(
            r#"{"quantization": {"group_size": 64, "bits": 4, "mode": "affine",
                "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8},
                "lm_head": false}}"#,
        );
        let q = Quantization::from_config(&cfg).unwrap().unwrap();
        let four = QuantParams {
            group_size: 64,
            bits: 4,
        };
        assert_eq!(q.for_module("model.layers.0.mlp.up_proj"), Some(four));
        assert_eq!(
            q.for_module("model.layers.0.mlp.down_proj"),
            Some(QuantParams {
                group_size: 32,
                bits: 8
            })
        );
        assert_eq!(q.for_module("lm_head"), None);

        let cfg =
            config(r#"{"quantization_config": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}"#);
        let err = Quantization::from_config(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("`quantization_config.mode` is \"mxfp4\""),
            "{err}"
        );
        let cfg = config(r#"{"quantization": {"group_size": 64, "bits": 7}}"#);
        let err = Quantization::from_config(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("bits must be one of 2, 3, 4, 5, 6, 8, found 7"),
            "{err}"
        );
        let cfg = config(r#"{"quantization_config": {"quant_method": "awq", "bits": 4}}"#);
        assert!(Quantization::from_config(&cfg)
            .unwrap_err()
            .to_string()
            .contains("quant_method"));
    }

    #[test]
    fn llama_defaults_follow_mlx_lm() {
        let cfg = config(
            r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "rms_norm_eps": 1e-5, "vocab_size": 100,
            "attention_bias": true}"#,
        );
        let spec = spec_from_config(&cfg).unwrap();
        assert_eq!(
            (spec.num_kv_heads, spec.head_dim, spec.rope_theta),
            (4, 16, 10000.0)
        );
        assert!(spec.qkv_bias && spec.o_bias && !spec.mlp_bias);
        assert_eq!(spec.tie_word_embeddings, None);
    }
}
