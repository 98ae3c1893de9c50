//! Decoder-only language models on MLX: config parsing, strict weight loading, and the
//! layers, with parameter names equal to checkpoint keys (mlx-community / Hugging Face).
//!
//! Entry point: [`load`] a model directory into a [`CausalLm`], then call
//! [`CausalLm::forward`] (training, no cache) or [`CausalLm::forward_cached`] (generation).
//! Architectures live in one folder each (`llama`, `qwen2`, `qwen3`); `mistral` is read
//! as llama, as mlx-lm does.

#![warn(missing_docs)]

pub mod attention;
pub mod config;
pub mod embedding;
pub mod fused;
pub mod linear;
pub mod llama;
pub mod loader;
pub mod mask;
pub mod mlp;
pub mod norm;
pub mod qwen2;
pub mod qwen3;
pub mod rope;
pub mod transformer;
pub mod weights;

pub use config::{ConfigFile, ModelSpec, QuantParams, Quantization, RopeScaling};
pub use linear::Linear;
pub use loader::{load, LoadOptions};
pub use transformer::CausalLm;

use crate::error::ModelError;

/// `model_type` values this crate can load, for error messages.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2", "qwen3"];

/// Reads the architecture-specific parts of `config.json` into a [`ModelSpec`].
pub fn spec_from_config(cfg: &ConfigFile) -> Result<ModelSpec, ModelError> {
    let model_type = cfg.str("model_type")?;
    match model_type {
        "llama" | "mistral" => llama::spec(cfg),
        "qwen2" => qwen2::spec(cfg),
        "qwen3" => qwen3::spec(cfg),
        other => Err(ModelError::UnsupportedModelType {
            path: cfg.path.clone(),
            model_type: other.to_string(),
            supported: SUPPORTED_MODEL_TYPES.join(", "),
        }),
    }
}

/// The keys every supported architecture reads the same way.
pub(crate) struct CommonDims {
    hidden_size: i32,
    num_heads: i32,
}

impl CommonDims {
    pub(crate) fn read(cfg: &ConfigFile) -> Result<Self, ModelError> {
        let hidden_size = cfg.dim("hidden_size")?;
        let num_heads = cfg.dim("num_attention_heads")?;
        Ok(Self {
            hidden_size,
            num_heads,
        })
    }

    /// A spec with the shared fields read and the per-architecture ones at plain
    /// defaults, for the architecture modules to override.
    pub(crate) fn into_spec(self, cfg: &ConfigFile) -> Result<ModelSpec, ModelError> {
        let eps = cfg
            .opt_f64("rms_norm_eps")?
            .ok_or_else(|| cfg.error("rms_norm_eps", "is missing"))?;
        Ok(ModelSpec {
            model_type: cfg.str("model_type")?.to_string(),
            hidden_size: self.hidden_size,
            intermediate_size: cfg.dim("intermediate_size")?,
            num_layers: cfg.dim("num_hidden_layers")?,
            num_heads: self.num_heads,
            num_kv_heads: self.num_heads,
            head_dim: self.hidden_size / self.num_heads,
            vocab_size: cfg.dim("vocab_size")?,
            rms_norm_eps: eps as f32,
            rope_theta: 10000.0,
            rope_traditional: false,
            rope_scaling: RopeScaling::None,
            tie_word_embeddings: None,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            qk_norm: false,
            quantization: Quantization::from_config(cfg)?,
        })
    }
}

/// Checks that a spec's head counts fit together (GQA needs heads divisible by kv heads).
pub(crate) fn validate_spec(spec: &ModelSpec, cfg: &ConfigFile) -> Result<(), ModelError> {
    if spec.num_heads % spec.num_kv_heads != 0 {
        return Err(cfg.error(
            "num_key_value_heads",
            format!(
                "({}) must divide num_attention_heads ({})",
                spec.num_kv_heads, spec.num_heads
            ),
        ));
    }
    if spec.head_dim % 2 != 0 {
        return Err(cfg.error(
            "head_dim",
            format!("must be even for RoPE, found {}", spec.head_dim),
        ));
    }
    Ok(())
}
