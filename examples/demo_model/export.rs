//! The shipped directory: the trained float32 checkpoint quantized the way mlx-lm's
//! `convert -q` does (our loader's quantize-at-load, i.e. MLX's affine `quantize` on every
//! linear layer and the embedding), with the tokenizer and generation config beside it.

use std::path::Path;

use anyhow::{Context, Result};
use mlx_rs::module::ModuleParameters;
use mlx_rs::Dtype;
use serde_json::json;
use tokenizers::Tokenizer;

use lora_grpo::model::loader::ComputeDtype;
use lora_grpo::model::{load, CausalLm, LoadOptions, QuantParams};

use crate::arch::{write_checkpoint, Architecture};
use crate::corpus::{IM_END, PAD};
use crate::vocab;

/// Loading in float32 whatever the device (training and the shipped files are float32).
pub const F32: LoadOptions = LoadOptions {
    dtype: ComputeDtype::Fixed(Dtype::Float32),
    dequantize: false,
    quantize: None,
};

/// Writes a model's parameters under their checkpoint keys, with `config`.
pub fn save_model(model: &CausalLm, dir: &Path, config: &serde_json::Value) -> Result<()> {
    let parameters = model.parameters().flatten();
    write_checkpoint(
        dir,
        config,
        parameters.iter().map(|(k, v)| (k.as_ref(), *v)),
    )
}

/// Quantizes the float32 checkpoint in `f32_dir` into `out`, a complete model directory.
pub fn quantized(
    f32_dir: &Path,
    out: &Path,
    arch: &Architecture,
    quant: QuantParams,
    tokenizer: &Tokenizer,
) -> Result<()> {
    let (pad, eos) = (vocab::id(tokenizer, PAD)?, vocab::id(tokenizer, IM_END)?);
    let options = LoadOptions {
        quantize: Some(quant),
        ..F32
    };
    let model = load(f32_dir, &options)?;
    save_model(&model, out, &arch.config_json(Some(quant), eos, pad))?;
    vocab::save(tokenizer, out)?;
    let generation = json!({"eos_token_id": [eos], "pad_token_id": pad, "do_sample": false});
    let path = out.join("generation_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&generation)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
