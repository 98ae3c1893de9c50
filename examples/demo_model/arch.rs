//! The demo model's shape, its `config.json`, and its random initial weights.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use mlx_rs::{random, Array};
use serde::Serialize;
use serde_json::{json, Value};

use lora_grpo::model::QuantParams;

/// A Llama-architecture decoder (tied embeddings, no biases, SwiGLU, RMSNorm, RoPE).
#[derive(Debug, Clone, Serialize)]
pub struct Architecture {
    pub hidden_size: i32,
    pub num_hidden_layers: i32,
    pub num_attention_heads: i32,
    pub num_key_value_heads: i32,
    pub intermediate_size: i32,
    pub vocab_size: i32,
    pub max_position_embeddings: i32,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
}

impl Architecture {
    /// Hugging Face / mlx-lm `config.json`, with the mlx-community `quantization` section
    /// (and its `quantization_config` copy) when quantized.
    pub fn config_json(&self, quant: Option<QuantParams>, eos: u32, pad: u32) -> Value {
        let mut config = json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.hidden_size / self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": true,
            "bos_token_id": null,
            "eos_token_id": eos,
            "pad_token_id": pad,
            "torch_dtype": "float32",
        });
        if let Some(q) = quant {
            let section = json!({"group_size": q.group_size, "bits": q.bits, "mode": "affine"});
            config["quantization"] = section.clone();
            config["quantization_config"] = section;
        }
        config
    }

    /// Random f32 weights under checkpoint keys: normal(0, `std`) matrices, with the
    /// projections that write into the residual stream (`o_proj`, `down_proj`) scaled by
    /// `1 / sqrt(2 * layers)` (GPT-2) so the stream's variance does not grow with depth;
    /// RMSNorm weights 1.
    pub fn init_weights(&self, seed: u64, std: f32) -> Result<HashMap<String, Array>> {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let head_dim = h / self.num_attention_heads;
        let (q_out, kv_out) = (h, self.num_key_value_heads * head_dim);
        let residual_std = std / (2.0 * self.num_hidden_layers as f32).sqrt();
        let mut shapes: Vec<(String, [i32; 2], f32)> =
            vec![("model.embed_tokens.weight".into(), [v, h], std)];
        for layer in 0..self.num_hidden_layers {
            let p = format!("model.layers.{layer}");
            shapes.extend([
                (format!("{p}.self_attn.q_proj.weight"), [q_out, h], std),
                (format!("{p}.self_attn.k_proj.weight"), [kv_out, h], std),
                (format!("{p}.self_attn.v_proj.weight"), [kv_out, h], std),
                (
                    format!("{p}.self_attn.o_proj.weight"),
                    [h, q_out],
                    residual_std,
                ),
                (format!("{p}.mlp.gate_proj.weight"), [i, h], std),
                (format!("{p}.mlp.up_proj.weight"), [i, h], std),
                (format!("{p}.mlp.down_proj.weight"), [h, i], residual_std),
            ]);
        }
        let mut key = random::key(seed)?;
        let mut weights = HashMap::new();
        for (name, shape, scale) in shapes {
            let (this, rest) = random::split(&key, 2)?;
            key = rest;
            let w = random::normal::<f32>(&shape[..], 0.0, scale, &this)?;
            weights.insert(name, w);
        }
        let mut norms = vec!["model.norm.weight".to_string()];
        for layer in 0..self.num_hidden_layers {
            for norm in ["input_layernorm", "post_attention_layernorm"] {
                norms.push(format!("model.layers.{layer}.{norm}.weight"));
            }
        }
        for name in norms {
            weights.insert(name, Array::ones::<f32>(&[h])?);
        }
        Ok(weights)
    }
}

impl Architecture {
    /// Writes a randomly initialised float32 checkpoint (std 0.02) into `dir`.
    pub fn write_initial(&self, dir: &Path, seed: u64, eos: u32, pad: u32) -> Result<()> {
        let weights = self.init_weights(seed, 0.02)?;
        write_checkpoint(
            dir,
            &self.config_json(None, eos, pad),
            weights.iter().map(|(k, v)| (k.as_str(), v)),
        )
    }
}

/// Writes `config.json` and `model.safetensors` (mlx-lm's `format: mlx` metadata).
pub fn write_checkpoint<'a>(
    dir: &Path,
    config: &Value,
    weights: impl IntoIterator<Item = (&'a str, &'a Array)>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(config)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    let metadata = HashMap::from([("format".to_string(), "mlx".to_string())]);
    let path = dir.join("model.safetensors");
    Array::save_safetensors(weights, &metadata, &path)
        .with_context(|| format!("writing {}", path.display()))
}
