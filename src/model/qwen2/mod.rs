//! Qwen2 / Qwen2.5, as mlx-lm's `qwen2.py` reads them: biases on the q/k/v
//! projections (not on o_proj), `head_dim = hidden_size / num_attention_heads`.

use super::config::{rope_settings, ConfigFile, ModelSpec};
use super::CommonDims;
use crate::error::ModelError;

/// Resolves a qwen2 config with mlx-lm's defaults (rope_theta 1e6).
pub(crate) fn spec(cfg: &ConfigFile) -> Result<ModelSpec, ModelError> {
    let dims = CommonDims::read(cfg)?;
    let (rope_theta, rope_scaling) = rope_settings(cfg, Some(1_000_000.0))?;
    Ok(ModelSpec {
        num_kv_heads: cfg.dim("num_key_value_heads")?,
        head_dim: dims.hidden_size / dims.num_heads,
        rope_theta,
        rope_traditional: cfg.opt_bool("rope_traditional")?.unwrap_or(false),
        rope_scaling,
        tie_word_embeddings: cfg.opt_bool("tie_word_embeddings")?,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        qk_norm: false,
        ..dims.into_spec(cfg)?
    })
}
