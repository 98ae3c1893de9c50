//! Llama (1/2/3.x) and Mistral, as mlx-lm's `llama.py` reads them: optional
//! `head_dim`, `attention_bias` on all four attention projections, `mlp_bias`,
//! Llama 3 `rope_scaling`, grouped-query attention, tied or untied embeddings.

use super::config::{rope_settings, ConfigFile, ModelSpec};
use super::CommonDims;
use crate::error::ModelError;

/// Resolves a llama-style config with mlx-lm's defaults.
pub(crate) fn spec(cfg: &ConfigFile) -> Result<ModelSpec, ModelError> {
    let dims = CommonDims::read(cfg)?;
    if let Some(kinds) = cfg.values.get("layer_types").and_then(|v| v.as_array()) {
        if let Some(other) = kinds.iter().find(|k| k.as_str() != Some("full_attention")) {
            return Err(cfg.error(
                "layer_types",
                format!("contains {other}; only full_attention layers are supported"),
            ));
        }
    }
    let attention_bias = cfg.opt_bool("attention_bias")?.unwrap_or(false);
    let (rope_theta, rope_scaling) = rope_settings(cfg, Some(10000.0))?;
    Ok(ModelSpec {
        num_kv_heads: cfg
            .opt_dim("num_key_value_heads")?
            .unwrap_or(dims.num_heads),
        head_dim: cfg
            .opt_dim("head_dim")?
            .unwrap_or(dims.hidden_size / dims.num_heads),
        rope_theta,
        rope_traditional: cfg.opt_bool("rope_traditional")?.unwrap_or(false),
        rope_scaling,
        tie_word_embeddings: cfg.opt_bool("tie_word_embeddings")?,
        qkv_bias: attention_bias,
        o_bias: attention_bias,
        mlp_bias: cfg.opt_bool("mlp_bias")?.unwrap_or(false),
        qk_norm: false,
        ..dims.into_spec(cfg)?
    })
}
