//! `adapter_config.json` as mlx-lm reads and writes it (`mlx_lm.lora`, `mlx_lm.fuse`,
//! `mlx_lm.generate --adapter-path`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

use crate::error::AdapterError;

/// The adapter file names mlx-lm uses.
pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapters.safetensors";

/// The checkpoint of `step`, e.g. `0000100_adapters.safetensors`.
pub fn checkpoint_file(step: u64) -> String {
    format!("{step:07}_{WEIGHTS_FILE}")
}

/// What mlx-lm needs to rebuild the LoRA layers; other keys (mlx-lm writes its whole
/// training configuration there) are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    #[serde(default = "default_fine_tune_type")]
    pub fine_tune_type: String,
    /// Adapted blocks, counted from the last one; -1 means all.
    pub num_layers: i32,
    pub lora_parameters: LoraParameters,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `lora_parameters`: mlx-lm's `scale` multiplies `(x @ lora_a) @ lora_b` directly
/// (PEFT's `lora_alpha` is `scale * rank`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraParameters {
    pub rank: i32,
    pub scale: f32,
    #[serde(default)]
    pub dropout: f32,
    /// Module paths inside a block (`self_attn.q_proj`); absent means every linear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

fn default_fine_tune_type() -> String {
    "lora".to_string()
}

impl AdapterConfig {
    /// Reads `dir/adapter_config.json`; DoRA and full fine-tunes are refused by name.
    pub fn read(dir: &Path) -> Result<Self, AdapterError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| AdapterError::Io { path: path.clone(), source })?;
        let config: Self =
            serde_json::from_str(&text).map_err(|source| AdapterError::Config { path: path.clone(), source })?;
        if config.fine_tune_type != "lora" {
            return Err(AdapterError::Unsupported {
                path,
                detail: format!(
                    "fine_tune_type `{}` is not supported; only `lora` adapters are",
                    config.fine_tune_type
                ),
            });
        }
        let p = &config.lora_parameters;
        if p.rank <= 0 || !p.scale.is_finite() || !(0.0..1.0).contains(&p.dropout) {
            return Err(AdapterError::Unsupported {
                path,
                detail: format!(
                    "lora_parameters need rank > 0, a finite scale and 0 <= dropout < 1; found rank {}, scale {}, dropout {}",
                    p.rank, p.scale, p.dropout
                ),
            });
        }
        Ok(config)
    }

    /// Writes `dir/adapter_config.json` atomically, pretty-printed as mlx-lm does.
    pub fn write(&self, dir: &Path) -> Result<(), AdapterError> {
        let path = dir.join(CONFIG_FILE);
        let mut text = serde_json::to_string_pretty(self).map_err(|source| AdapterError::Config {
            path: path.clone(),
            source,
        })?;
        text.push('\n');
        crate::atomic::write_bytes(&path, text.as_bytes()).map_err(|source| AdapterError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_mlx_lm_config_and_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        // Shape of what mlx_lm.lora 0.32 writes (trimmed).
        let text = r#"{"adapter_path": "adapters", "batch_size": 4, "fine_tune_type": "lora",
            "lora_parameters": {"rank": 8, "dropout": 0.0, "scale": 20.0}, "model": "m", "num_layers": 16}"#;
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        let config = AdapterConfig::read(dir.path()).unwrap();
        assert_eq!(config.num_layers, 16);
        assert_eq!(config.lora_parameters, LoraParameters { rank: 8, scale: 20.0, dropout: 0.0, keys: None });
        assert_eq!(config.extra["model"], "m");

        let out = tempfile::tempdir().unwrap();
        config.write(out.path()).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join(CONFIG_FILE)).unwrap()).unwrap();
        assert_eq!(back["batch_size"], 4);
        assert_eq!(back["lora_parameters"]["rank"], 8);
        assert_eq!(AdapterConfig::read(out.path()).unwrap(), config);
    }

    #[test]
    fn refuses_dora_and_bad_values_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        write(r#"{"fine_tune_type": "dora", "num_layers": 2, "lora_parameters": {"rank": 8, "scale": 1.0}}"#);
        let err = AdapterConfig::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("fine_tune_type `dora`"), "{err}");
        write(r#"{"num_layers": 2, "lora_parameters": {"rank": 0, "scale": 1.0}}"#);
        let err = AdapterConfig::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("rank > 0") && err.contains("found rank 0"), "{err}");
        write(r#"{"num_layers": 2}"#);
        let err = AdapterConfig::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("adapter_config.json") && err.contains("lora_parameters"), "{err}");
    }

    #[test]
    fn checkpoint_names_have_seven_digits() {
        assert_eq!(checkpoint_file(100), "0000100_adapters.safetensors");
    }
}
