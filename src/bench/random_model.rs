//! Random models from a `config.json` alone, for benchmarks on machines that cannot receive
//! a checkpoint (a Qwen3-0.6B-shaped 4-bit model is ~0.35 GB). The weights are drawn from a
//! seed, quantized as the config's `quantization` says (as mlx-lm's `quantize_model`
//! would), written to a scratch directory and read back by the ordinary strict loader,
//! so a missing or misshapen tensor fails exactly as a real checkpoint would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlx_rs::{random, transforms, Array, Dtype};

use crate::error::BenchError;
use crate::model::{self, spec_from_config, ConfigFile, CausalLm, LoadOptions, ModelSpec};

/// Builds the model `config_path` describes with random weights from `seed`.
pub fn load_random(config_path: &Path, seed: u64, options: &LoadOptions) -> Result<CausalLm, BenchError> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|source| BenchError::Io { path: config_path.to_path_buf(), source })?;
    let scratch = ScratchDir::new()?;
    write_random(&text, config_path, seed, &scratch.0)?;
    Ok(model::load(&scratch.0, options)?)
}

/// Writes `config.json` (the given text) and a random `model.safetensors` into `dir`.
pub fn write_random(config_text: &str, config_path: &Path, seed: u64, dir: &Path) -> Result<(), BenchError> {
    let cfg = ConfigFile::parse(config_text, config_path.to_path_buf())?;
    let spec = spec_from_config(&cfg)?;
    let dtype = match cfg.values.get("torch_dtype").and_then(|v| v.as_str()).unwrap_or("bfloat16") {
        "float32" => Dtype::Float32,
        "float16" => Dtype::Float16,
        "bfloat16" => Dtype::Bfloat16,
        other => {
            return Err(BenchError::Config {
                path: config_path.to_path_buf(),
                detail: format!("torch_dtype is {other:?}; expected float32, float16 or bfloat16"),
            })
        }
    };
    let mut key = random::key(seed)?;
    let mut tensors = BTreeMap::new();
    for (name, shape, init) in tensor_list(&spec) {
        let (this, rest) = random::split(&key, 2)?;
        key = rest;
        let value = match init {
            Init::Ones => Array::ones::<f32>(&shape)?.as_dtype(dtype)?,
            Init::Zeros => Array::zeros::<f32>(&shape)?.as_dtype(dtype)?,
            // nn.Linear's init (uniform +-1/sqrt(in)), also used for the embedding so that
            // tied logits stay in a sane range.
            Init::Matrix => {
                let bound = 1.0 / (shape[1] as f32).sqrt();
                random::uniform::<f32, f32>(-bound, bound, &shape, &this)?.as_dtype(dtype)?
            }
        };
        let module = name.trim_end_matches(".weight");
        let quant = spec.quantization.as_ref().and_then(|q| q.for_module(module));
        match quant.filter(|q| init == Init::Matrix && shape[1] % q.group_size == 0) {
            Some(q) => {
                let (w, scales, biases) = mlx_rs::ops::quantize(&value, q.group_size, q.bits)?;
                transforms::eval([&w, &scales, &biases])?;
                tensors.insert(format!("{module}.scales"), scales);
                tensors.insert(format!("{module}.biases"), biases);
                tensors.insert(name, w);
            }
            None => {
                value.eval()?;
                tensors.insert(name, value);
            }
        }
    }
    let weights = dir.join("model.safetensors");
    Array::save_safetensors(&tensors, None, &weights)
        .map_err(|e| BenchError::Config { path: weights.clone(), detail: e.to_string() })?;
    let config = dir.join("config.json");
    std::fs::write(&config, config_text).map_err(|source| BenchError::Io { path: config, source })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Matrix,
    Ones,
    Zeros,
}

/// Every tensor a checkpoint of `spec` holds, with its shape: the names the loader takes.
fn tensor_list(spec: &ModelSpec) -> Vec<(String, Vec<i32>, Init)> {
    let (h, hd, v, m) = (spec.hidden_size, spec.head_dim, spec.vocab_size, spec.intermediate_size);
    let (q, kv) = (spec.num_heads * hd, spec.num_kv_heads * hd);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h], Init::Matrix)];
    for i in 0..spec.num_layers {
        let p = format!("model.layers.{i}");
        let linears = [
            ("self_attn.q_proj", h, q, spec.qkv_bias),
            ("self_attn.k_proj", h, kv, spec.qkv_bias),
            ("self_attn.v_proj", h, kv, spec.qkv_bias),
            ("self_attn.o_proj", q, h, spec.o_bias),
            ("mlp.gate_proj", h, m, spec.mlp_bias),
            ("mlp.up_proj", h, m, spec.mlp_bias),
            ("mlp.down_proj", m, h, spec.mlp_bias),
        ];
        for (name, inputs, outputs, bias) in linears {
            out.push((format!("{p}.{name}.weight"), vec![outputs, inputs], Init::Matrix));
            if bias {
                out.push((format!("{p}.{name}.bias"), vec![outputs], Init::Zeros));
            }
        }
        if spec.qk_norm {
            out.push((format!("{p}.self_attn.q_norm.weight"), vec![hd], Init::Ones));
            out.push((format!("{p}.self_attn.k_norm.weight"), vec![hd], Init::Ones));
        }
        out.push((format!("{p}.input_layernorm.weight"), vec![h], Init::Ones));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h], Init::Ones));
    }
    out.push(("model.norm.weight".to_string(), vec![h], Init::Ones));
    if spec.tie_word_embeddings == Some(false) {
        out.push(("lm_head.weight".to_string(), vec![v, h], Init::Matrix));
    }
    out
}

/// A directory under the system temp dir, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self, BenchError> {
        let path = std::env::temp_dir().join(format!("lora-grpo-random-model-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| BenchError::Io { path: path.clone(), source })?;
        Ok(Self(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
