//! Writing a model directory in the mlx-community / Hugging Face layout: weights in
//! `model.safetensors` or in shards with `model.safetensors.index.json`, `config.json`,
//! and the base's tokenizer and generation files.

use mlx_rs::Array;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

use crate::error::ExportError;

/// mlx-lm's shard size limit (5 GiB).
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5 << 30;

/// Files of a model directory besides weights and config that a merged model needs:
/// tokenizer, chat template, generation settings, custom code and licence.
pub fn is_support_file(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
        "generation_config.json",
    ];
    NAMES.contains(&name)
        || name.starts_with("tokenizer")
        || name.ends_with(".py")
        || name.starts_with("LICENSE")
}

/// One weights file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub name: String,
    pub bytes: u64,
}

/// Splits `tensors` (sorted by key) into shards of at most `max_bytes` (a tensor larger
/// than that gets a shard of its own) and writes them with MLX's `format: mlx` metadata.
/// Tensors are dropped as soon as their shard is written, so lazily computed ones are
/// held in memory one shard at a time.
pub(super) fn write_weights(
    dir: &Path,
    mut tensors: Vec<(String, Array)>,
    max_bytes: u64,
    on_file: &mut dyn FnMut(&WrittenFile),
) -> Result<Vec<WrittenFile>, ExportError> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut shards: Vec<Vec<(String, Array)>> = Vec::new();
    let mut size = 0u64;
    for (key, array) in tensors {
        let bytes = array.nbytes() as u64;
        match shards.last_mut() {
            Some(shard) if size + bytes <= max_bytes => shard.push((key, array)),
            _ => {
                shards.push(vec![(key, array)]);
                size = 0;
            }
        }
        size += bytes;
    }
    let count = shards.len();
    let metadata = HashMap::from([("format".to_string(), "mlx".to_string())]);
    let mut written = Vec::with_capacity(count);
    let mut weight_map = Map::new();
    let mut total = 0u64;
    for (i, shard) in shards.into_iter().enumerate() {
        let name = match count {
            1 => "model.safetensors".to_string(),
            _ => format!("model-{:05}-of-{count:05}.safetensors", i + 1),
        };
        let path = dir.join(&name);
        Array::save_safetensors(shard.iter().map(|(k, v)| (k.as_str(), v)), &metadata, &path)
            .map_err(|e| ExportError::Safetensors {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        total += shard.iter().map(|(_, v)| v.nbytes() as u64).sum::<u64>();
        for (key, _) in &shard {
            weight_map.insert(key.clone(), Value::String(name.clone()));
        }
        let bytes = std::fs::metadata(&path)
            .map_err(|source| ExportError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let file = WrittenFile { name, bytes };
        on_file(&file);
        written.push(file);
    }
    if count > 1 {
        let index =
            serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        write_json(&dir.join("model.safetensors.index.json"), &index)?;
    }
    Ok(written)
}

/// Writes pretty-printed JSON with a final newline.
pub(crate) fn write_json(path: &Path, value: &Value) -> Result<(), ExportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Copies the base's support files (see [`is_support_file`]) into `dir`; returns their
/// names, sorted. A listed file that cannot be read is an error, not a silent omission.
pub(super) fn copy_support_files(base: &Path, dir: &Path) -> Result<Vec<String>, ExportError> {
    fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
        move |source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(base).map_err(io(base))? {
        let entry = entry.map_err(io(base))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_support_file(&name) {
            std::fs::copy(entry.path(), dir.join(&name)).map_err(io(&entry.path()))?;
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_files_are_tokenizer_template_generation_code_and_licence() {
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "tokenizer.model",
            "generation_config.json",
            "chat_template.jinja",
            "modeling_x.py",
            "LICENSE",
        ] {
            assert!(is_support_file(name), "{name}");
        }
        for name in [
            "model.safetensors",
            "model.safetensors.index.json",
            "config.json",
            "consolidated.safetensors",
            "pytorch_model.bin",
            "README.md",
        ] {
            assert!(!is_support_file(name), "{name}");
        }
    }
}
