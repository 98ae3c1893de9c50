//! Multi-head attention with grouped-query heads, optional q/k/v biases (qwen2) and
//! per-head q/k RMS norms (qwen3), RoPE, and an optional KV cache.

use mlx_rs::error::Exception;
use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::Module;
use mlx_rs::Array;

use super::config::ModelSpec;
use super::linear::Linear;
use super::mask::{AttentionMask, BatchLayout};
use super::norm::RmsNorm;
use super::rope::Rope;
use super::weights::WeightSource;
use crate::error::ModelError;
use crate::generate::cache::KvCache;

/// `self_attn` of a decoder layer.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Attention {
    /// hidden -> heads * head_dim.
    #[param]
    pub q_proj: Linear,
    /// hidden -> kv_heads * head_dim.
    #[param]
    pub k_proj: Linear,
    /// hidden -> kv_heads * head_dim.
    #[param]
    pub v_proj: Linear,
    /// heads * head_dim -> hidden.
    #[param]
    pub o_proj: Linear,
    /// Per-head query norm (qwen3 only).
    #[param]
    pub q_norm: Option<RmsNorm>,
    /// Per-head key norm (qwen3 only).
    #[param]
    pub k_norm: Option<RmsNorm>,
    num_heads: i32,
    num_kv_heads: i32,
    head_dim: i32,
    rope: Rope,
}

impl Attention {
    /// Takes `<path>.{q,k,v,o}_proj` (and `q_norm`/`k_norm`) out of the checkpoint.
    pub fn take(
        src: &mut WeightSource,
        path: &str,
        spec: &ModelSpec,
        rope: Rope,
    ) -> Result<Self, ModelError> {
        let q = |name: &str| {
            spec.quantization
                .as_ref()
                .and_then(|c| c.for_module(&format!("{path}.{name}")))
        };
        let (hidden, heads, kv, hd) = (
            spec.hidden_size,
            spec.num_heads,
            spec.num_kv_heads,
            spec.head_dim,
        );
        let proj = |src: &mut WeightSource, name: &str, i: i32, o: i32, bias: bool| {
            Linear::take(src, &format!("{path}.{name}"), i, o, bias, q(name))
        };
        let norm = |src: &mut WeightSource, name: &str| -> Result<Option<RmsNorm>, ModelError> {
            match spec.qk_norm {
                true => Ok(Some(RmsNorm::take(
                    src,
                    &format!("{path}.{name}"),
                    hd,
                    spec.rms_norm_eps,
                )?)),
                false => Ok(None),
            }
        };
        Ok(Self {
            q_proj: proj(src, "q_proj", hidden, heads * hd, spec.qkv_bias)?,
            k_proj: proj(src, "k_proj", hidden, kv * hd, spec.qkv_bias)?,
            v_proj: proj(src, "v_proj", hidden, kv * hd, spec.qkv_bias)?,
            o_proj: proj(src, "o_proj", heads * hd, hidden, spec.o_bias)?,
            q_norm: norm(src, "q_norm")?,
            k_norm: norm(src, "k_norm")?,
            num_heads: heads,
            num_kv_heads: kv,
            head_dim: hd,
            rope,
        })
    }

    /// Attends `x` (`[B, T, hidden]`) over itself, or over the cache plus itself.
    pub fn forward(
        &mut self,
        x: &Array,
        layout: &BatchLayout,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Array, Exception> {
        let (b, t, hd) = (x.dim(0), x.dim(1), self.head_dim);
        let heads = |y: Array, n: i32, norm: &mut Option<RmsNorm>| -> Result<Array, Exception> {
            let y = y.reshape(&[b, t, n, hd])?;
            let y = match norm {
                Some(norm) => norm.forward(&y)?,
                None => y,
            };
            y.transpose_axes(&[0, 2, 1, 3])
        };
        let q = heads(self.q_proj.forward(x)?, self.num_heads, &mut self.q_norm)?;
        let k = heads(self.k_proj.forward(x)?, self.num_kv_heads, &mut self.k_norm)?;
        let v = heads(self.v_proj.forward(x)?, self.num_kv_heads, &mut None)?;
        let q = self.rope.apply(&q, &layout.rope_offset)?;
        let k = self.rope.apply(&k, &layout.rope_offset)?;
        let (k, v) = match cache {
            Some((cache, layer)) => cache.update(layer, &k, &v)?,
            None => (k, v),
        };
        let mask = match &layout.mask {
            AttentionMask::None => None,
            AttentionMask::Causal => Some(ScaledDotProductAttentionMask::Causal),
            AttentionMask::Array(m) => Some(ScaledDotProductAttentionMask::Array(m)),
        };
        let scale = (self.head_dim as f32).powf(-0.5);
        let out = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None::<&Array>)?;
        let out =
            out.transpose_axes(&[0, 2, 1, 3])?
                .reshape(&[b, t, self.num_heads * self.head_dim])?;
        self.o_proj.forward(&out)
    }
}
