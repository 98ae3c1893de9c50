//! The tiny GRPO fixture shared by the end-to-end training tests: the 2-layer llama
//! model with the character tokenizer, and adapter files read back as plain numbers.

use mlx_rs::Array;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The 2-layer llama fixture with the character tokenizer beside it, copied into `root`.
pub fn model_dir(root: &Path) -> PathBuf {
    let fixtures = crate::plugin_build::workspace().join("tests/fixtures");
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    for (from, name) in [
        ("models/llama_f32", "config.json"),
        ("models/llama_f32", "model.safetensors"),
        ("char_tokenizer", "tokenizer.json"),
        ("char_tokenizer", "tokenizer_config.json"),
    ] {
        std::fs::copy(fixtures.join(from).join(name), dir.join(name)).unwrap();
    }
    dir
}

/// Every tensor of an adapter file, by name.
pub fn adapters(path: &Path) -> BTreeMap<String, Vec<f32>> {
    Array::load_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.as_slice::<f32>().to_vec()))
        .collect()
}
