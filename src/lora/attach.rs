//! Attaching LoRA adapters to a loaded model and moving their tensors in and out, with
//! keys equal to mlx-lm's (`model.layers.3.self_attn.q_proj.lora_a`).

use mlx_rs::module::ModuleParameters;
use mlx_rs::{random, Array};
use std::collections::BTreeMap;
use std::path::Path;

use super::config::{AdapterConfig, CONFIG_FILE, WEIGHTS_FILE};
use super::weights;
use crate::error::AdapterError;
use crate::model::CausalLm;

/// The module paths an adapter config selects: every linear of the last `num_layers`
/// blocks (all blocks for -1) whose path inside the block is in `keys` (all when `None`);
/// a key may also name a module outside the blocks (`lm_head`), as in mlx-lm.
pub fn target_paths(model: &mut CausalLm, config: &AdapterConfig) -> Result<Vec<String>, AdapterError> {
    let blocks = model.model.layers.len() as i64;
    let num_layers = config.num_layers as i64;
    let first = if num_layers < 0 { 0 } else { (blocks - num_layers).max(0) };
    let keys = config.lora_parameters.keys.as_deref();
    let mut chosen = Vec::new();
    let mut known = std::collections::BTreeSet::new();
    for (path, _) in model.linear_layers_mut() {
        let in_block = block_of(&path);
        let key = match in_block {
            Some((_, key)) => key.to_string(),
            None => path.clone(),
        };
        known.insert(key.clone());
        let selected = match (keys, in_block) {
            (None, Some((block, _))) => block >= first,
            (None, None) => false,
            (Some(keys), Some((block, _))) => block >= first && keys.contains(&key),
            (Some(keys), None) => keys.contains(&key),
        };
        if selected {
            chosen.push(path);
        }
    }
    if let Some(keys) = keys {
        if let Some(unknown) = keys.iter().find(|k| !known.contains(*k)) {
            return Err(AdapterError::Unsupported {
                path: CONFIG_FILE.into(),
                detail: format!(
                    "lora key `{unknown}` names no linear layer of this model; known keys: {}",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(chosen)
}

/// The module paths inside a block of every linear in the blocks (`self_attn.q_proj`, ...),
/// in model order: what `keys` means when a config leaves it out.
pub fn block_keys(model: &mut CausalLm) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (path, _) in model.linear_layers_mut() {
        if let Some((_, key)) = block_of(&path) {
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

/// `model.layers.<i>.<key>` -> `(i, key)`.
fn block_of(path: &str) -> Option<(i64, &str)> {
    let rest = path.strip_prefix("model.layers.")?;
    let (index, key) = rest.split_once('.')?;
    Some((index.parse().ok()?, key))
}

/// Freezes the whole model and attaches fresh adapters to the selected linears:
/// `lora_a` uniform in +-1/sqrt(in) (seeded), `lora_b` zeros, so the output starts
/// exactly at the base model's. Only the adapter tensors are left trainable.
pub fn attach(model: &mut CausalLm, config: &AdapterConfig, seed: u64) -> Result<Vec<String>, AdapterError> {
    let targets = target_paths(model, config)?;
    let p = &config.lora_parameters;
    model.freeze_parameters(true);
    let mut index = 0u64;
    for (path, layer) in model.linear_layers_mut() {
        if !targets.contains(&path) {
            continue;
        }
        let (d_in, d_out) = layer.dims();
        let bound = 1.0 / (d_in as f32).sqrt();
        let key = random::key(seed.wrapping_add(index)).map_err(mlx("random.key"))?;
        let a = random::uniform::<f32, f32>(-bound, bound, &[d_in, p.rank][..], &key).map_err(mlx("random.uniform"))?;
        let b = Array::zeros::<f32>(&[p.rank, d_out]).map_err(mlx("zeros"))?;
        layer.set_lora(a, b, p.scale).map_err(|e| AdapterError::Mismatch { path: path.clone().into(), detail: e.to_string() })?;
        index += 1;
    }
    Ok(targets)
}

/// The attached adapter tensors by checkpoint key.
pub fn adapter_tensors(model: &mut CausalLm) -> BTreeMap<String, Array> {
    let mut out = BTreeMap::new();
    for (path, layer) in model.linear_layers_mut() {
        if let (Some(a), Some(b)) = (&layer.lora_a.value, &layer.lora_b.value) {
            out.insert(format!("{path}.lora_a"), a.clone());
            out.insert(format!("{path}.lora_b"), b.clone());
        }
    }
    out
}

/// Replaces the attached adapters' tensors; every adapter key must be given with the
/// shape of the tensor it replaces, and no other key (names the first offender).
pub fn set_adapter_tensors(
    model: &mut CausalLm,
    mut tensors: BTreeMap<String, Array>,
    source: &Path,
) -> Result<(), AdapterError> {
    let mismatch = |detail: String| AdapterError::Mismatch { path: source.to_path_buf(), detail };
    for (path, layer) in model.linear_layers_mut() {
        for (name, param) in [("lora_a", &mut layer.lora_a), ("lora_b", &mut layer.lora_b)] {
            let Some(current) = param.value.as_ref() else { continue };
            let key = format!("{path}.{name}");
            let new = tensors.remove(&key).ok_or_else(|| mismatch(format!("missing tensor `{key}`")))?;
            if new.shape() != current.shape() {
                return Err(mismatch(format!(
                    "tensor `{key}` has shape {:?}, the model's adapter needs {:?}",
                    new.shape(),
                    current.shape()
                )));
            }
            // Replacing the value keeps the parameter's trainable/frozen state.
            param.value = Some(new.as_dtype(current.dtype()).map_err(mlx("astype"))?);
        }
    }
    match tensors.into_keys().next() {
        Some(extra) => Err(mismatch(format!(
            "tensor `{extra}` belongs to no adapted layer of this model (different base model or adapter config?)"
        ))),
        None => Ok(()),
    }
}

/// Loads an adapter directory written by lora-grpo or `mlx_lm.lora` onto the model
/// (adapters enabled, frozen base); `file` picks a checkpoint other than the final one.
pub fn load(model: &mut CausalLm, dir: &Path, file: Option<&str>) -> Result<AdapterConfig, AdapterError> {
    let config = AdapterConfig::read(dir)?;
    attach(model, &config, 0)?;
    let path = dir.join(file.unwrap_or(WEIGHTS_FILE));
    set_adapter_tensors(model, weights::load(&path)?, &path)?;
    Ok(config)
}

/// Writes `adapter_config.json` and the adapter tensors (`adapters.safetensors`, or the
/// given checkpoint file name), each atomically.
pub fn save(model: &mut CausalLm, dir: &Path, config: &AdapterConfig, file: &str) -> Result<(), AdapterError> {
    std::fs::create_dir_all(dir).map_err(|source| AdapterError::Io { path: dir.to_path_buf(), source })?;
    weights::save(&dir.join(file), &adapter_tensors(model))?;
    config.write(dir)
}

/// Number of trainable scalars (the adapters only, once attached).
pub fn trainable_count(model: &CausalLm) -> usize {
    model.trainable_parameters().flatten().values().map(|a| a.size()).sum()
}

fn mlx(op: &'static str) -> impl Fn(mlx_rs::error::Exception) -> AdapterError {
    move |source| AdapterError::Mlx { op, source }
}
