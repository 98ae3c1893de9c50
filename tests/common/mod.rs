//! Helpers shared by the model and generation tests: fixture paths and goldens made by
//! tests/fixtures/models/make_models.py.

#![allow(dead_code)]

use std::path::PathBuf;

use lora_grpo::model::loader::ComputeDtype;
use lora_grpo::model::{load, CausalLm, LoadOptions};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

/// Every fixture model, as named in make_models.py.
pub const MODELS: &[&str] = &[
    "llama_f32",
    "llama_q4",
    "qwen2_bf16",
    "qwen2_q3",
    "qwen3_f32",
    "qwen3_q5",
];

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

pub fn golden(name: &str) -> Value {
    let path = fixture("golden").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Options computing in f32 on any device, as the goldens do (the CPU default anyway).
pub fn f32_options() -> LoadOptions {
    LoadOptions {
        dtype: ComputeDtype::Fixed(Dtype::Float32),
        ..LoadOptions::default()
    }
}

pub fn load_fixture(name: &str) -> CausalLm {
    load(&fixture(name), &f32_options()).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// An adapter made by tests/fixtures/adapters/make_adapters.py with mlx-lm's LoRA layers.
pub fn adapter_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/adapters")
        .join(name)
}

/// mlx-lm's outputs with that adapter (see make_adapters.py).
pub fn adapter_golden(name: &str) -> Value {
    let path = adapter_fixture("golden").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Copies a fixture directory (flat) to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Largest absolute elementwise difference of two arrays of one shape.
pub fn max_abs_diff(a: &Array, b: &Array) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.subtract(b)
        .unwrap()
        .abs()
        .unwrap()
        .max(None)
        .unwrap()
        .item_exact::<f32>()
}

/// A JSON array of rows of numbers, flattened (golden logits).
pub fn flat_f32s(rows: &Value) -> Vec<f32> {
    rows.as_array().unwrap().iter().flat_map(f32s).collect()
}

/// Largest |ours - golden| over the largest |golden|.
pub fn relative_error(ours: &[f32], golden: &[f32]) -> f32 {
    assert_eq!(ours.len(), golden.len());
    let scale = golden.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = ours.iter().zip(golden).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}
