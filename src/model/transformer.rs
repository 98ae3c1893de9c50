//! The decoder stack shared by llama, mistral, qwen2 and qwen3, with the parameter tree
//! of their checkpoints: `model.embed_tokens`, `model.layers.N.{self_attn,mlp,
//! input_layernorm,post_attention_layernorm}`, `model.norm`, and `lm_head` when the
//! embeddings are not tied.

use mlx_rs::error::Exception;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::Module;
use mlx_rs::Array;

use super::attention::Attention;
use super::config::ModelSpec;
use super::embedding::Embedding;
use super::linear::Linear;
use super::mask::BatchLayout;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use crate::generate::cache::KvCache;

/// One pre-norm decoder block: `h = x + attn(norm(x)); out = h + mlp(norm(h))`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct DecoderLayer {
    /// Attention block.
    #[param]
    pub self_attn: Attention,
    /// Feed-forward block.
    #[param]
    pub mlp: Mlp,
    /// Norm before attention.
    #[param]
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    #[param]
    pub post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    /// The layer's seven projections, with their paths inside the layer.
    pub fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        [
            ("self_attn.q_proj", &mut a.q_proj),
            ("self_attn.k_proj", &mut a.k_proj),
            ("self_attn.v_proj", &mut a.v_proj),
            ("self_attn.o_proj", &mut a.o_proj),
            ("mlp.gate_proj", &mut m.gate_proj),
            ("mlp.up_proj", &mut m.up_proj),
            ("mlp.down_proj", &mut m.down_proj),
        ]
    }

    fn forward(
        &mut self,
        x: &Array,
        layout: &BatchLayout,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Array, Exception> {
        let h = x.add(self.self_attn.forward(
            &self.input_layernorm.forward(x)?,
            layout,
            cache,
        )?)?;
        h.add(
            self.mlp
                .forward(&self.post_attention_layernorm.forward(&h)?)?,
        )
    }
}

/// The `model.` subtree: embeddings, layers, final norm.
#[derive(Debug, Clone, ModuleParameters)]
pub struct DecoderModel {
    /// Token embedding (also the output projection when tied).
    #[param]
    pub embed_tokens: Embedding,
    /// Decoder blocks, `model.layers.N`.
    #[param]
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    #[param]
    pub norm: RmsNorm,
}

/// A causal language model: token ids in, next-token logits out.
///
/// Token ids are `[B, T]` int32 arrays. Batches of different lengths are left-padded:
/// row `b` starts with `left_padding[b]` padding columns (any id below the vocabulary
/// size), which are masked out of attention, and its positions start at 0 on its first
/// real token, so a padded row computes what it would compute alone.
#[derive(Debug, Clone, ModuleParameters)]
pub struct CausalLm {
    /// The `model.` subtree.
    #[param]
    pub model: DecoderModel,
    /// Output projection; `None` when tied to `model.embed_tokens`.
    #[param]
    pub lm_head: Option<Linear>,
    spec: ModelSpec,
}

impl CausalLm {
    /// Assembles a model from loaded parts (see [`crate::model::load`]).
    pub fn new(model: DecoderModel, lm_head: Option<Linear>, spec: ModelSpec) -> Self {
        Self {
            model,
            lm_head,
            spec,
        }
    }

    /// The resolved configuration.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Vocabulary size (last axis of the logits).
    pub fn vocab_size(&self) -> i32 {
        self.spec.vocab_size
    }

    /// Every linear layer with its checkpoint path (`model.layers.3.self_attn.q_proj`,
    /// ..., `lm_head`), in layer order: where LoRA adapters attach.
    pub fn linear_layers_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, layer) in self.model.layers.iter_mut().enumerate() {
            for (name, linear) in layer.linears_mut() {
                out.push((format!("model.layers.{i}.{name}"), linear));
            }
        }
        if let Some(head) = self.lm_head.as_mut() {
            out.push(("lm_head".to_string(), head));
        }
        out
    }

    /// Switches every attached LoRA adapter on or off (off = the frozen base model,
    /// GRPO's reference policy).
    pub fn set_adapters_enabled(&mut self, enabled: bool) {
        for (_, layer) in self.linear_layers_mut() {
            layer.lora_enabled = enabled && layer.lora_a.is_some();
        }
    }

    /// Sets the dropout probability on every attached adapter's input (0 turns it off).
    pub fn set_lora_dropout(&mut self, p: f32) {
        for (_, layer) in self.linear_layers_mut() {
            layer.lora_dropout = p;
        }
    }

    /// An empty KV cache for rows with the given left padding.
    pub fn new_cache(&self, left_padding: Vec<i32>) -> KvCache {
        KvCache::new(self.model.layers.len(), left_padding)
    }

    /// Final hidden states `[B, T, hidden]` of a whole sequence, without a cache.
    /// Differentiable with respect to the trainable parameters (use inside
    /// `nn::value_and_grad`). `left_padding`: per-row padding columns, `None` for none.
    pub fn hidden_states(
        &mut self,
        tokens: &Array,
        left_padding: Option<&[i32]>,
    ) -> Result<Array, Exception> {
        let (batch, len) = token_dims(tokens)?;
        let zeros;
        let padding = match left_padding {
            Some(p) => p,
            None => {
                zeros = vec![0; batch as usize];
                &zeros
            }
        };
        check_padding(padding, batch, len)?;
        let layout = BatchLayout::new(padding, 0, len)?;
        let mut h = self.model.embed_tokens.lookup(tokens)?;
        for layer in self.model.layers.iter_mut() {
            h = layer.forward(&h, &layout, None)?;
        }
        self.model.norm.forward(&h)
    }

    /// Logits `[B, T, vocab]` of a whole sequence, without a cache (see
    /// [`CausalLm::hidden_states`]).
    pub fn forward(
        &mut self,
        tokens: &Array,
        left_padding: Option<&[i32]>,
    ) -> Result<Array, Exception> {
        let h = self.hidden_states(tokens, left_padding)?;
        self.logits(&h)
    }

    /// Final hidden states `[B, T, hidden]` of `tokens` appended to what `cache` holds
    /// (prefill when the cache is empty, decode after). The cache's rows and padding
    /// describe `tokens`' rows; it is advanced by `T` columns.
    pub fn hidden_states_cached(
        &mut self,
        tokens: &Array,
        cache: &mut KvCache,
    ) -> Result<Array, Exception> {
        let (batch, len) = token_dims(tokens)?;
        if cache.batch_size() != batch as usize {
            return Err(Exception::custom(format!(
                "tokens have {batch} rows but the KV cache has {}",
                cache.batch_size()
            )));
        }
        let layout = cache.layout(len)?;
        let mut h = self.model.embed_tokens.lookup(tokens)?;
        for (i, layer) in self.model.layers.iter_mut().enumerate() {
            h = layer.forward(&h, &layout, Some((&mut *cache, i)))?;
        }
        cache.advance(len);
        self.model.norm.forward(&h)
    }

    /// Logits `[B, T, vocab]` through a KV cache (see [`CausalLm::hidden_states_cached`]).
    pub fn forward_cached(
        &mut self,
        tokens: &Array,
        cache: &mut KvCache,
    ) -> Result<Array, Exception> {
        let h = self.hidden_states_cached(tokens, cache)?;
        self.logits(&h)
    }

    /// Projects hidden states onto the vocabulary (`lm_head`, or the tied embedding).
    pub fn logits(&mut self, hidden: &Array) -> Result<Array, Exception> {
        match self.lm_head.as_mut() {
            Some(head) => head.forward(hidden),
            None => self.model.embed_tokens.as_linear(hidden),
        }
    }
}

fn token_dims(tokens: &Array) -> Result<(i32, i32), Exception> {
    match tokens.shape() {
        &[b, t] if b > 0 && t > 0 => Ok((b, t)),
        other => Err(Exception::custom(format!(
            "token ids must be [batch, length] with both > 0, got {other:?}"
        ))),
    }
}

fn check_padding(padding: &[i32], batch: i32, len: i32) -> Result<(), Exception> {
    if padding.len() != batch as usize {
        return Err(Exception::custom(format!(
            "left_padding has {} entries for {batch} rows",
            padding.len()
        )));
    }
    if let Some(p) = padding.iter().find(|&&p| p < 0 || p >= len) {
        return Err(Exception::custom(format!(
            "left padding {p} leaves no token in a row of length {len}"
        )));
    }
    Ok(())
}
