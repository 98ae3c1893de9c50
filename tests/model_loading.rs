//! Strict loading: each kind of broken checkpoint is a real file written here (a fixture
//! with one tensor removed, reshaped, retyped or added, or its config edited) and must
//! fail with the typed error naming the key and file. Also the load options and config
//! rules that change what gets built. Run with `--test-threads=1` (MLX).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use lora_grpo::error::ModelError;
use lora_grpo::model::loader::ComputeDtype;
use lora_grpo::model::{load, CausalLm, LoadOptions, QuantParams};
use mlx_rs::module::ModuleParameters;
use mlx_rs::{Array, Dtype};
use serde_json::Value;

/// A copy of fixture `name` in a temporary directory.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    (tmp, dir)
}

/// Rewrites one safetensors file through `edit`.
fn edit_weights(file: &Path, edit: impl FnOnce(&mut HashMap<String, Array>)) {
    let mut arrays = Array::load_safetensors(file).unwrap();
    // MLX reads lazily: materialise everything before the file is overwritten.
    mlx_rs::transforms::eval(arrays.values()).unwrap();
    edit(&mut arrays);
    let metadata: HashMap<String, String> = [("format".to_string(), "mlx".to_string())].into();
    Array::save_safetensors(&arrays, &metadata, file).unwrap();
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(config.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn load_err(dir: &Path) -> ModelError {
    match load(dir, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded, but should not", dir.display()),
        Err(e) => e,
    }
}

fn logits_of(model: &mut CausalLm, name: &str) -> Vec<f32> {
    let ids: Vec<i32> = u32s(&golden(name)["logits_prompt"])
        .iter()
        .map(|&t| t as i32)
        .collect();
    let logits = model
        .forward(&Array::from_slice(&ids, &[1, ids.len() as i32]), None)
        .unwrap();
    logits
        .as_dtype(Dtype::Float32)
        .unwrap()
        .as_slice::<f32>()
        .to_vec()
}

fn assert_close(ours: &[f32], golden: &[f32], tolerance: f32, what: &str) {
    let scale = golden.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = ours
        .iter()
        .zip(golden)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff / scale < tolerance,
        "{what}: relative error {}",
        diff / scale
    );
}

/// The model's logits for `name`'s golden prompt are mlx-lm's within 1e-4 relative.
fn assert_golden_logits(model: &mut CausalLm, name: &str, what: &str) {
    let g = golden(name);
    assert_close(&logits_of(model, name), &flat_f32s(&g["logits"]), 1e-4, what);
}

#[test]
fn a_missing_tensor_is_named_with_its_file() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    let file = dir.join("model.safetensors");
    edit_weights(&file, |w| {
        w.remove("model.layers.1.mlp.up_proj.weight");
    });
    match load_err(&dir) {
        ModelError::MissingTensor { key, file: f, .. } => {
            assert_eq!(key, "model.layers.1.mlp.up_proj.weight");
            assert_eq!(f, file);
        }
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn a_wrong_shape_is_reported_with_both_shapes() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    edit_weights(&dir.join("model.safetensors"), |w| {
        w.insert(
            "model.layers.0.self_attn.k_proj.weight".into(),
            Array::zeros::<f32>(&[16, 64]).unwrap(),
        );
    });
    let err = load_err(&dir);
    assert!(
        err.to_string()
            .contains("model.layers.0.self_attn.k_proj.weight"),
        "{err}"
    );
    match err {
        ModelError::ShapeMismatch {
            found, expected, ..
        } => {
            assert_eq!(found, vec![16, 64]);
            assert_eq!(
                expected,
                vec![32, 64],
                "2 kv heads x head_dim 16 by hidden 64"
            );
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
}

#[test]
fn an_extra_tensor_is_unexpected() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    let file = dir.join("model.safetensors");
    edit_weights(&file, |w| {
        w.insert(
            "model.layers.0.self_attn.extra_proj.weight".into(),
            Array::zeros::<f32>(&[4, 4]).unwrap(),
        );
    });
    match load_err(&dir) {
        ModelError::UnexpectedTensor {
            key,
            file: f,
            others,
        } => {
            assert_eq!(key, "model.layers.0.self_attn.extra_proj.weight");
            assert_eq!(f, file);
            assert_eq!(others, "");
        }
        other => panic!("expected UnexpectedTensor, got {other}"),
    }
}

#[test]
fn wrong_dtypes_are_rejected() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    edit_weights(&dir.join("model.safetensors"), |w| {
        w.insert(
            "model.norm.weight".into(),
            Array::zeros::<i32>(&[64]).unwrap(),
        );
    });
    match load_err(&dir) {
        ModelError::DtypeMismatch { key, found, .. } => {
            assert_eq!(key, "model.norm.weight");
            assert!(matches!(found, Dtype::Int32));
        }
        other => panic!("expected DtypeMismatch, got {other}"),
    }
    // Packed weights must be uint32.
    let (_tmp, dir) = copy_fixture("qwen2_q3");
    edit_weights(&dir.join("model.safetensors"), |w| {
        let key = "model.layers.0.mlp.gate_proj.weight";
        let f = w[key].as_dtype(Dtype::Float32).unwrap();
        w.insert(key.into(), f);
    });
    match load_err(&dir) {
        ModelError::DtypeMismatch { key, expected, .. } => {
            assert_eq!(key, "model.layers.0.mlp.gate_proj.weight");
            assert!(expected.contains("uint32"));
        }
        other => panic!("expected DtypeMismatch, got {other}"),
    }
}

#[test]
fn an_unsupported_model_type_lists_the_supported_ones() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    edit_config(&dir, |c| {
        c.insert("model_type".into(), "gpt2".into());
    });
    let err = load_err(&dir);
    assert!(matches!(err, ModelError::UnsupportedModelType { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "unsupported model_type `gpt2` in {}; supported: llama, mistral, qwen2, qwen3",
            dir.join("config.json").display()
        )
    );
}

#[test]
fn quantization_settings_that_disagree_with_the_file_are_shape_errors() {
    // The file stores down_proj of layer 1 at 8 bits, group 32; claim 4 bits instead.
    let (_tmp, dir) = copy_fixture("llama_q4");
    edit_config(&dir, |c| {
        let q = c.get_mut("quantization").unwrap().as_object_mut().unwrap();
        q.insert(
            "model.layers.1.mlp.down_proj".into(),
            serde_json::json!({"bits": 4, "group_size": 32}),
        );
    });
    let err = load_err(&dir);
    match &err {
        ModelError::ShapeMismatch {
            key,
            found,
            expected,
            detail,
            ..
        } => {
            assert_eq!(key, "model.layers.1.mlp.down_proj.weight");
            assert_eq!(
                (found.clone(), expected.clone()),
                (vec![64, 16], vec![64, 8])
            );
            assert_eq!(detail, " (4-bit, group size 32)");
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
    // A layer the config says is unquantized leaves its scales unexpected.
    let (_tmp, dir) = copy_fixture("llama_q4");
    edit_config(&dir, |c| {
        let q = c.get_mut("quantization").unwrap().as_object_mut().unwrap();
        q.insert("model.layers.0.mlp.up_proj".into(), Value::Bool(false));
        c.remove("quantization_config");
    });
    match load_err(&dir) {
        ModelError::ShapeMismatch {
            key,
            found,
            expected,
            ..
        } => {
            assert_eq!(key, "model.layers.0.mlp.up_proj.weight");
            assert_eq!(
                (found, expected),
                (vec![64, 8], vec![64, 64]),
                "read as a dense layer"
            );
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
}

#[test]
fn shard_index_errors_name_the_shard() {
    let (_tmp, dir) = copy_fixture("llama_q4");
    let index_path = dir.join("model.safetensors.index.json");
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let (key, shard) = map
        .iter()
        .find(|(_, f)| f.as_str() == Some("model-00002-of-00002.safetensors"))
        .unwrap();
    let (key, shard) = (key.clone(), shard.as_str().unwrap().to_string());

    // The index sends a key to the wrong shard.
    let mut wrong = index.clone();
    wrong["weight_map"][&key] = "model-00001-of-00002.safetensors".into();
    std::fs::write(&index_path, wrong.to_string()).unwrap();
    match load_err(&dir) {
        ModelError::IndexMismatch {
            key: k,
            expected,
            found,
            ..
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, "model-00001-of-00002.safetensors");
            assert_eq!(found, dir.join(&shard));
        }
        other => panic!("expected IndexMismatch, got {other}"),
    }

    // The shard lacks a key the index lists there.
    std::fs::write(&index_path, index.to_string()).unwrap();
    edit_weights(&dir.join(&shard), |w| {
        w.remove(&key);
    });
    match load_err(&dir) {
        ModelError::MissingTensor { key: k, file, .. } => {
            assert_eq!(k, key);
            assert_eq!(file, dir.join(&shard));
        }
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn mistral_is_read_as_llama() {
    let (_tmp, dir) = copy_fixture("llama_f32");
    edit_config(&dir, |c| {
        c.insert("model_type".into(), "mistral".into());
    });
    let mut model = load(&dir, &f32_options()).unwrap();
    assert_eq!(model.spec().model_type, "mistral");
    assert_golden_logits(&mut model, "llama_f32", "mistral");
}

#[test]
fn without_a_tie_setting_the_lm_head_decides() {
    for (name, tied) in [("llama_q4", false), ("llama_f32", true)] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |c| {
            c.remove("tie_word_embeddings");
        });
        let mut model = load(&dir, &f32_options()).unwrap();
        assert_eq!(model.spec().tie_word_embeddings, Some(tied), "{name}");
        assert_eq!(model.lm_head.is_none(), tied);
        assert_golden_logits(&mut model, name, name);
    }
}

#[test]
fn parameter_keys_equal_checkpoint_keys_and_all_are_frozen() {
    let model = load_fixture("qwen3_q5");
    let mut ours: Vec<String> = model
        .parameters()
        .flatten()
        .keys()
        .map(|k| k.to_string())
        .collect();
    ours.sort();
    let mut file: Vec<String> =
        Array::load_safetensors(fixture("qwen3_q5").join("model.safetensors"))
            .unwrap()
            .into_keys()
            .collect();
    file.sort();
    assert_eq!(ours, file);
    assert!(model.trainable_parameters().flatten().is_empty());
}

#[test]
fn dequantize_at_load_gives_dense_layers_with_the_same_logits() {
    for name in ["llama_q4", "qwen3_q5"] {
        let options = LoadOptions {
            dequantize: true,
            ..f32_options()
        };
        let mut model = load(&fixture(name), &options).unwrap();
        let layer = &model.model.layers[0];
        assert!(layer.mlp.gate_proj.quant.is_none() && layer.mlp.gate_proj.scales.is_none());
        assert!(model.model.embed_tokens.quant.is_none());
        assert_golden_logits(&mut model, name, name);
    }
}

#[test]
fn quantize_at_load_matches_mlx_lm_convert() {
    let g = golden("llama_f32");
    let q = &g["quantized_at_load"];
    let params = QuantParams::new(
        q["group_size"].as_i64().unwrap() as i32,
        q["bits"].as_i64().unwrap() as i32,
    )
    .unwrap();
    let options = LoadOptions {
        quantize: Some(params),
        ..f32_options()
    };
    let mut model = load(&fixture("llama_f32"), &options).unwrap();
    assert_eq!(model.model.layers[1].self_attn.o_proj.quant, Some(params));
    assert_eq!(model.model.embed_tokens.quant, Some(params));
    assert_close(
        &logits_of(&mut model, "llama_f32"),
        &flat_f32s(&q["logits"]),
        1e-4,
        "quantized at load",
    );
}

#[test]
fn checkpoint_dtype_can_be_kept() {
    let options = LoadOptions {
        dtype: ComputeDtype::Checkpoint,
        ..LoadOptions::default()
    };
    let model = load(&fixture("qwen2_bf16"), &options).unwrap();
    assert!(matches!(model.model.norm.weight.dtype(), Dtype::Bfloat16));
    let model = load_fixture("qwen2_bf16");
    assert!(
        matches!(model.model.norm.weight.dtype(), Dtype::Float32),
        "the CPU default computes in f32"
    );
}

/// Peak MLX memory while loading `name`, and the bytes of the loaded parameters.
fn load_peak(name: &str, options: &LoadOptions) -> (usize, usize) {
    mlx_rs::memory::clear_cache().unwrap();
    mlx_rs::memory::reset_peak_memory().unwrap();
    let before = mlx_rs::memory::active_memory().unwrap();
    let model = load(&fixture(name), options).unwrap();
    let peak = mlx_rs::memory::peak_memory().unwrap() - before;
    let bytes = model
        .parameters()
        .flatten()
        .values()
        .map(|a| a.nbytes())
        .sum();
    (peak, bytes)
}

#[test]
fn loading_holds_one_copy_of_the_weights() {
    // MLX reads tensors lazily and the loader keeps no reference to what it handed over,
    // so the loaded parameters are all that is allocated.
    let keep = LoadOptions {
        dtype: ComputeDtype::Checkpoint,
        ..LoadOptions::default()
    };
    let (peak, bytes) = load_peak("qwen2_bf16", &keep);
    assert!(
        bytes > 100_000 && peak <= bytes + bytes / 20,
        "peak {peak} bytes for {bytes} bytes of weights"
    );
    // Converted to f32, a part's bf16 source lives only until the part is evaluated: at
    // most the largest part (the 256 x 64 embedding, 32 KiB in bf16) on top.
    let (peak, bytes) = load_peak("qwen2_bf16", &f32_options());
    let largest_source = 256 * 64 * 2;
    assert!(
        peak <= bytes + largest_source,
        "peak {peak} bytes for {bytes} bytes of weights"
    );
}
