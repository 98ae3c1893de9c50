//! `adapters.safetensors`: the LoRA tensors by module path (`<path>.lora_a` `(in, r)`,
//! `<path>.lora_b` `(r, out)`), as mlx-lm stores them.

use mlx_rs::Array;
use std::collections::BTreeMap;
use std::path::Path;

use crate::error::AdapterError;

/// Writes the tensors to `path` atomically; an interrupted write leaves the old file.
pub fn save(path: &Path, tensors: &BTreeMap<String, Array>) -> Result<(), AdapterError> {
    crate::atomic::write_with(
        path,
        |staging| {
            Array::save_safetensors(tensors.iter().map(|(k, v)| (k.as_str(), v)), None, staging)
                .map_err(|e| AdapterError::Safetensors { path: path.to_path_buf(), detail: e.to_string() })
        },
        |source| AdapterError::Io { path: path.to_path_buf(), source },
    )
}

/// Reads every tensor of an adapter file.
pub fn load(path: &Path) -> Result<BTreeMap<String, Array>, AdapterError> {
    if !path.is_file() {
        return Err(AdapterError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "adapter weights file not found"),
        });
    }
    let tensors = Array::load_safetensors(path)
        .map_err(|e| AdapterError::Safetensors { path: path.to_path_buf(), detail: e.to_string() })?;
    Ok(tensors.into_iter().collect())
}
