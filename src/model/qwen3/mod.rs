//! Qwen3 (dense), as mlx-lm's `qwen3.py` reads it: explicit `head_dim` (heads x
//! head_dim may differ from hidden_size), RMS norms on each head's queries and keys
//! (`q_norm`, `k_norm`) before RoPE, no biases.

use super::config::{rope_settings, ConfigFile, ModelSpec};
use super::CommonDims;
use crate::error::ModelError;

/// Resolves a qwen3 config; `rope_theta` and `head_dim` are required, as in mlx-lm.
pub(crate) fn spec(cfg: &ConfigFile) -> Result<ModelSpec, ModelError> {
    let dims = CommonDims::read(cfg)?;
    let (rope_theta, rope_scaling) = rope_settings(cfg, None)?;
    Ok(ModelSpec {
        num_kv_heads: cfg.dim("num_key_value_heads")?,
        head_dim: cfg.dim("head_dim")?,
        rope_theta,
        rope_traditional: false,
        rope_scaling,
        tie_word_embeddings: cfg.opt_bool("tie_word_embeddings")?,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        qk_norm: true,
        ..dims.into_spec(cfg)?
    })
}
