//! Builds a [`CausalLm`] from a model directory (config.json + safetensors), strictly:
//! every tensor the architecture needs must be there with the right shape and dtype, and
//! every tensor in the files must be used. The only keys dropped on purpose are the two
//! redundant ones mlx-lm's `sanitize` also drops: `lm_head.weight` of a model with tied
//! embeddings, and precomputed `self_attn.rotary_emb.inv_freq` tables.

use std::path::Path;

use mlx_rs::module::ModuleParameters;
use mlx_rs::Dtype;

use super::attention::Attention;
use super::config::{ConfigFile, QuantParams};
use super::embedding::Embedding;
use super::linear::{Linear, StoredMatrix};
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::rope::Rope;
use super::transformer::{CausalLm, DecoderLayer, DecoderModel};
use super::weights::WeightSource;
use super::{spec_from_config, validate_spec};
use crate::error::ModelError;

/// Floating-point dtype of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeDtype {
    /// float32 on the CPU backend (where f16/bf16 arithmetic is emulated and several
    /// times slower), the checkpoint's own dtype on a GPU.
    #[default]
    Auto,
    /// Keep each tensor's dtype from the file.
    Checkpoint,
    /// Convert every floating-point tensor (weights, scales, biases, norms) to this.
    Fixed(Dtype),
}

/// How to load a model directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Floating-point dtype of weights and activations.
    pub dtype: ComputeDtype,
    /// Turn quantized layers into dense ones at load: faster on the CPU, more memory.
    pub dequantize: bool,
    /// Quantize dense layers (and the embedding) at load, as mlx-lm's `convert -q`
    /// would; layers whose input size is not a multiple of the group size stay dense.
    pub quantize: Option<QuantParams>,
}

impl LoadOptions {
    fn float_dtype(&self) -> Result<Option<Dtype>, ModelError> {
        Ok(match self.dtype {
            ComputeDtype::Fixed(d) => Some(d),
            ComputeDtype::Checkpoint => None,
            ComputeDtype::Auto => crate::mlx_info::default_device_is_cpu()?.then_some(Dtype::Float32),
        })
    }

    /// Applies dequantize / quantize-at-load to one stored matrix.
    fn convert(&self, m: StoredMatrix) -> Result<StoredMatrix, ModelError> {
        if self.dequantize && m.quantized.is_some() {
            let dtype = m
                .quantized
                .as_ref()
                .map(|(s, _, _)| s.dtype())
                .unwrap_or(Dtype::Float32);
            return Ok(StoredMatrix {
                weight: m.dense(dtype)?,
                quantized: None,
            });
        }
        match self.quantize {
            Some(q) => Ok(m.quantize(q)?),
            None => Ok(m),
        }
    }

    fn convert_linear(&self, l: Linear) -> Result<Linear, ModelError> {
        if !self.dequantize && self.quantize.is_none() {
            return Ok(l);
        }
        let (m, bias) = l.into_parts();
        Ok(Linear::from_parts(self.convert(m)?, bias))
    }

    fn convert_layer(&self, mut layer: DecoderLayer) -> Result<DecoderLayer, ModelError> {
        for (_, linear) in layer.linears_mut() {
            *linear = self.convert_linear(linear.clone())?;
        }
        Ok(layer)
    }
}

/// Loads the model in `dir`. All parameters come back frozen: the base model does not
/// train (adapters added later are trainable).
pub fn load(dir: &Path, options: &LoadOptions) -> Result<CausalLm, ModelError> {
    let cfg = ConfigFile::read(dir)?;
    let mut spec = spec_from_config(&cfg)?;
    validate_spec(&spec, &cfg)?;
    let mut src = WeightSource::open(dir, options.float_dtype()?)?;
    for i in 0..spec.num_layers {
        src.discard(&format!("model.layers.{i}.self_attn.rotary_emb.inv_freq"));
    }
    // Without an explicit setting, the checkpoint decides: an lm_head means untied.
    let tied = spec
        .tie_word_embeddings
        .unwrap_or(!src.contains("lm_head.weight"));
    spec.tie_word_embeddings = Some(tied);
    if tied {
        src.discard("lm_head.weight");
    }
    let quant = |path: &str| spec.quantization.as_ref().and_then(|q| q.for_module(path));

    let embed = StoredMatrix::take(
        &mut src,
        "model.embed_tokens",
        spec.vocab_size,
        spec.hidden_size,
        quant("model.embed_tokens"),
    )?;
    let embed_tokens = Embedding::from_matrix(options.convert(embed)?);
    // Evaluating each part as soon as it is built keeps at most one part's source
    // tensors (e.g. bf16 before the f32 conversion) alive next to the loaded weights.
    mlx_rs::transforms::eval(embed_tokens.parameters().flatten().values().copied())?;
    let rope = Rope::new(
        spec.head_dim,
        spec.rope_theta,
        spec.rope_traditional,
        &spec.rope_scaling,
    )?;
    let mut layers = Vec::with_capacity(spec.num_layers as usize);
    for i in 0..spec.num_layers {
        let path = format!("model.layers.{i}");
        let layer = DecoderLayer {
            self_attn: Attention::take(
                &mut src,
                &format!("{path}.self_attn"),
                &spec,
                rope.clone(),
            )?,
            mlp: Mlp::take(&mut src, &format!("{path}.mlp"), &spec)?,
            input_layernorm: RmsNorm::take(
                &mut src,
                &format!("{path}.input_layernorm"),
                spec.hidden_size,
                spec.rms_norm_eps,
            )?,
            post_attention_layernorm: RmsNorm::take(
                &mut src,
                &format!("{path}.post_attention_layernorm"),
                spec.hidden_size,
                spec.rms_norm_eps,
            )?,
        };
        let layer = options.convert_layer(layer)?;
        mlx_rs::transforms::eval(layer.parameters().flatten().values().copied())?;
        layers.push(layer);
    }
    let norm = RmsNorm::take(&mut src, "model.norm", spec.hidden_size, spec.rms_norm_eps)?;
    let lm_head = match tied {
        true => None,
        false => {
            let head = Linear::take(
                &mut src,
                "lm_head",
                spec.hidden_size,
                spec.vocab_size,
                false,
                quant("lm_head"),
            )?;
            let head = options.convert_linear(head)?;
            mlx_rs::transforms::eval(head.parameters().flatten().values().copied())?;
            Some(head)
        }
    };
    src.finish()?;

    let mut model = CausalLm::new(
        DecoderModel {
            embed_tokens,
            layers,
            norm,
        },
        lm_head,
        spec,
    );
    mlx_rs::transforms::eval(model.parameters().flatten().values().copied())?;
    model.freeze_parameters(true);
    Ok(model)
}
