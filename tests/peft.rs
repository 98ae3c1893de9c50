//! Export of mlx-lm adapters to Hugging Face PEFT's layout and import back, on the
//! adapters made by mlx-lm (tests/fixtures/adapters/make_adapters.py): the files read
//! back, a bitwise round trip, an imported adapter giving mlx-lm's logits, and the PEFT
//! features that cannot be converted. Run with `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::lora::attach::target_paths;
use lora_grpo::lora::merge::{merge, MergeOptions};
use lora_grpo::lora::peft::{export, import, PEFT_WEIGHTS_FILE};
use lora_grpo::lora::AdapterConfig;
use mlx_rs::{Array, Dtype};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

const ADAPTERS: [&str; 3] = ["llama_q4_all", "qwen3_f32_last", "qwen2_bf16_head"];

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The bit patterns of a float32 tensor.
fn bits(a: &Array) -> Vec<u32> {
    assert_eq!(a.dtype(), Dtype::Float32);
    a.as_slice::<f32>().iter().map(|x| x.to_bits()).collect()
}

/// A transposed copy, materialized (as_slice needs contiguous data).
fn transposed(a: &Array) -> Array {
    let t = a.t();
    t.add(Array::zeros::<f32>(t.shape()).unwrap()).unwrap()
}

fn mlx_tensors(dir: &Path, file: &str) -> HashMap<String, Array> {
    Array::load_safetensors(dir.join(file)).unwrap()
}

#[test]
fn export_writes_peft_keys_transposed_tensors_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "qwen3_f32_last";
    let out = tmp.path().join("peft");
    let done = export(&adapter_fixture(name), None, &out, None, false).unwrap();
    assert_eq!(done.modules, 3);

    let ours = mlx_tensors(&adapter_fixture(name), "adapters.safetensors");
    let peft = mlx_tensors(&out, PEFT_WEIGHTS_FILE);
    let mut keys: Vec<&String> = peft.keys().collect();
    keys.sort();
    let expected: Vec<String> = ["mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"]
        .iter()
        .flat_map(|m| {
            ["lora_A", "lora_B"].map(|s| format!("base_model.model.model.layers.1.{m}.{s}.weight"))
        })
        .collect();
    assert_eq!(keys, expected.iter().collect::<Vec<_>>());
    for (module, d_in, d_out) in [
        ("self_attn.q_proj", 64, 32),
        ("self_attn.v_proj", 64, 16),
        ("mlp.down_proj", 64, 64),
    ] {
        let path = format!("model.layers.1.{module}");
        let a = &peft[&format!("base_model.model.{path}.lora_A.weight")];
        let b = &peft[&format!("base_model.model.{path}.lora_B.weight")];
        assert_eq!(
            (a.shape(), b.shape()),
            (&[8, d_in][..], &[d_out, 8][..]),
            "{path}: (r, in) and (out, r)"
        );
        assert_eq!(
            bits(a),
            bits(&transposed(&ours[&format!("{path}.lora_a")])),
            "{path}"
        );
        assert_eq!(
            bits(b),
            bits(&transposed(&ours[&format!("{path}.lora_b")])),
            "{path}"
        );
    }

    let config = read_json(&out.join("adapter_config.json"));
    for (key, value) in [
        ("peft_type", json!("LORA")),
        ("task_type", json!("CAUSAL_LM")),
        ("r", json!(8)),
        ("lora_alpha", json!(160.0)),
        ("lora_dropout", json!(0.05)),
        ("target_modules", json!(["q_proj", "v_proj", "down_proj"])),
        ("layers_to_transform", json!([1])),
        (
            "base_model_name_or_path",
            json!("tests/fixtures/models/qwen3_f32"),
        ),
        ("bias", json!("none")),
        ("use_rslora", json!(false)),
        ("use_dora", json!(false)),
    ] {
        assert_eq!(config[key], value, "{key}");
    }

    // Every block, the adapter's default keys, and a base named on the command line.
    let out = tmp.path().join("all");
    let done = export(
        &adapter_fixture("llama_q4_all"),
        None,
        &out,
        Some("mlx-community/Llama-3.2-1B-Instruct-4bit"),
        false,
    )
    .unwrap();
    assert_eq!(done.modules, 14);
    let config = read_json(&out.join("adapter_config.json"));
    assert_eq!(
        config["layers_to_transform"],
        Value::Null,
        "num_layers -1: every block"
    );
    assert_eq!(
        config["target_modules"],
        json!([
            "down_proj",
            "gate_proj",
            "up_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "v_proj"
        ])
    );
    assert_eq!(
        config["base_model_name_or_path"],
        "mlx-community/Llama-3.2-1B-Instruct-4bit"
    );
    assert_eq!(config["lora_alpha"], json!(8.0));
}

#[test]
fn mlx_lm_to_peft_to_mlx_lm_is_bitwise_lossless() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ADAPTERS {
        let (peft, back) = (
            tmp.path().join(format!("{name}-peft")),
            tmp.path().join(format!("{name}-back")),
        );
        export(&adapter_fixture(name), None, &peft, None, false).unwrap();
        let done = import(&peft, &back, false).unwrap();

        let original = mlx_tensors(&adapter_fixture(name), "adapters.safetensors");
        let returned = mlx_tensors(&back, "adapters.safetensors");
        assert_eq!(done.modules * 2, original.len());
        let mut keys: Vec<_> = returned.keys().collect();
        keys.sort();
        let mut expected: Vec<_> = original.keys().collect();
        expected.sort();
        assert_eq!(keys, expected, "{name}");
        for (key, a) in &original {
            assert_eq!(returned[key].shape(), a.shape(), "{name} {key}");
            assert_eq!(bits(&returned[key]), bits(a), "{name} {key}");
        }

        let (before, after) = (
            AdapterConfig::read(&adapter_fixture(name)).unwrap(),
            AdapterConfig::read(&back).unwrap(),
        );
        let (p, q) = (&before.lora_parameters, &after.lora_parameters);
        assert_eq!(
            (p.rank, p.scale.to_bits(), p.dropout.to_bits()),
            (q.rank, q.scale.to_bits(), q.dropout.to_bits()),
            "{name}"
        );
        assert_eq!(
            after.extra["model"], before.extra["model"],
            "{name}: the base model is kept"
        );
        if p.keys.is_some() {
            assert_eq!(q.keys, p.keys, "{name}: keys in their order");
        }
        // PEFT cannot say "all blocks" apart from "the last N = all": compare what the two
        // configs select on the model.
        let mut model = load_fixture(adapter_golden(name)["base"].as_str().unwrap());
        assert_eq!(
            target_paths(&mut model, &after).unwrap(),
            target_paths(&mut model, &before).unwrap(),
            "{name}"
        );
        if name == "qwen3_f32_last" {
            assert_eq!(after.num_layers, 1);
        }
    }
}

#[test]
fn an_imported_adapter_gives_mlx_lms_logits_and_merges_like_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "llama_q4_all";
    let (peft, back) = (tmp.path().join("peft"), tmp.path().join("back"));
    export(&adapter_fixture(name), None, &peft, None, false).unwrap();
    import(&peft, &back, false).unwrap();
    let g = adapter_golden(name);
    let mut model = load_fixture("llama_q4");
    lora_grpo::lora::load(&mut model, &back, None).unwrap();
    let tokens = Array::from_slice(&[1, 17, 42, 99, 7, 200, 3], &[1, 7]);
    let logits = model.forward(&tokens, None).unwrap();
    let err = relative_error(logits.as_slice::<f32>(), &flat_f32s(&g["logits"]));
    assert!(err < 1e-4, "{err}");

    // merge reads a PEFT directory directly, with the same result as the mlx-lm original.
    let (from_peft, from_mlx) = (tmp.path().join("m-peft"), tmp.path().join("m-mlx"));
    merge(
        &fixture("llama_q4"),
        &peft,
        &from_peft,
        &MergeOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    merge(
        &fixture("llama_q4"),
        &adapter_fixture(name),
        &from_mlx,
        &MergeOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let (a, b) = (
        mlx_tensors(&from_peft, "model.safetensors"),
        mlx_tensors(&from_mlx, "model.safetensors"),
    );
    assert_eq!(a.len(), b.len());
    for (key, x) in &a {
        let (x, y) = (
            x.as_dtype(Dtype::Float32).unwrap(),
            b[key].as_dtype(Dtype::Float32).unwrap(),
        );
        assert_eq!(bits(&x), bits(&y), "{key}");
    }
}

/// A PEFT directory exported from `name`, for the tests to edit.
fn exported(tmp: &Path, name: &str) -> std::path::PathBuf {
    let dir = tmp.join(format!("{name}-peft"));
    export(&adapter_fixture(name), None, &dir, None, false).unwrap();
    dir
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("adapter_config.json");
    let mut config = read_json(&path);
    edit(&mut config);
    write_json(&path, &config);
}

#[test]
fn rslora_and_integer_alpha_from_peft_give_mlx_lm_scales() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = exported(tmp.path(), "qwen3_f32_last");
    // rsLoRA scales by alpha / sqrt(r): alpha 16 with r = 8 is 16 / 2.828... = 5.657.
    edit_config(&dir, |c| {
        c["use_rslora"] = json!(true);
        c["lora_alpha"] = json!(16);
        c["target_modules"] = json!(".*\\.(q_proj|v_proj|down_proj)");
    });
    let done = import(&dir, &tmp.path().join("back"), false).unwrap();
    assert_eq!(
        done.config.lora_parameters.scale,
        (16.0 / 8f64.sqrt()) as f32
    );
    assert_eq!(
        done.config.lora_parameters.keys.as_deref().unwrap(),
        ["mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"],
        "a regex target_modules: keys come from the tensors"
    );
}

#[test]
fn peft_features_mlx_lm_cannot_hold_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Value, &str); 6] = [
        ("peft_type", json!("IA3"), "`peft_type` is \"IA3\""),
        ("use_dora", json!(true), "`use_dora` is true"),
        ("bias", json!("lora_only"), "`bias`/`lora_bias`"),
        ("modules_to_save", json!(["lm_head"]), "`modules_to_save`"),
        (
            "rank_pattern",
            json!({"q_proj": 16}),
            "`rank_pattern`/`alpha_pattern`",
        ),
        ("fan_in_fan_out", json!(true), "`fan_in_fan_out` is true"),
    ];
    for (i, (key, value, message)) in cases.into_iter().enumerate() {
        let dir = exported(&tmp.path().join(i.to_string()), "qwen3_f32_last");
        edit_config(&dir, |c| c[key] = value);
        let err = import(&dir, &tmp.path().join("out"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(message) && err.contains("adapter_config.json"),
            "{key}: {err}"
        );
    }
    assert!(!tmp.path().join("out").exists());
}

/// Rewrites a PEFT directory's weights after `edit`.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Array>)) {
    let path = dir.join(PEFT_WEIGHTS_FILE);
    let mut tensors = Array::load_safetensors(&path).unwrap();
    edit(&mut tensors);
    // Loading is lazy: write elsewhere, then replace the file being read.
    let edited = path.with_extension("edited.safetensors");
    Array::save_safetensors(tensors.iter().map(|(k, v)| (k.as_str(), v)), None, &edited).unwrap();
    std::fs::rename(edited, path).unwrap();
}

#[test]
fn bad_peft_tensors_are_refused_naming_the_key_or_module() {
    let tmp = tempfile::tempdir().unwrap();
    let a_key = "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight";
    let b_key = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight";
    type Edit = Box<dyn FnOnce(&mut HashMap<String, Array>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| {
                t.insert("base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector".into(), Array::zeros::<f32>(&[32]).unwrap());
            }),
            "tensor `base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector` is not a LoRA A/B matrix",
        ),
        (Box::new(|t| { t.remove(b_key); }), "module `model.layers.1.self_attn.q_proj` has only one of its two LoRA matrices"),
        (
            Box::new(|t| {
                t.insert(a_key.into(), Array::zeros::<f32>(&[4, 64]).unwrap());
            }),
            "module `model.layers.1.self_attn.q_proj`: LoRA shapes [4, 64] and [32, 8] are not (r, in) and (out, r) with r = 8",
        ),
        (
            Box::new(|t| {
                let a = t.remove(a_key).unwrap();
                t.insert(a_key.replace("model.model.model.", "model.model.decoder."), a);
            }),
            "module `decoder.layers.1.self_attn.q_proj` has only one",
        ),
        (
            Box::new(|t| {
                let a = t.remove(a_key).unwrap();
                t.insert(a_key.replace("base_model.model.", ""), a);
            }),
            "tensor `model.layers.1.self_attn.q_proj.lora_A.weight` does not start with `base_model.model.`",
        ),
    ];
    for (i, (edit, message)) in cases.into_iter().enumerate() {
        let dir = exported(&tmp.path().join(i.to_string()), "qwen3_f32_last");
        edit_weights(&dir, edit);
        let err = import(&dir, &tmp.path().join("out"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}");
    }

    // Blocks 0 and 2 of a 3-block model: mlx-lm adapters cover the last N blocks.
    let dir = exported(&tmp.path().join("gap"), "llama_q4_all");
    edit_weights(&dir, |t| {
        let moved: Vec<(String, Array)> = t
            .iter()
            .filter(|(k, _)| k.contains(".layers.1."))
            .map(|(k, v)| (k.replace(".layers.1.", ".layers.2."), v.clone()))
            .collect();
        t.retain(|k, _| !k.contains(".layers.1."));
        t.extend(moved);
    });
    let err = import(&dir, &tmp.path().join("out"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("adapted blocks [0, 2] are not consecutive"),
        "{err}"
    );

    // Weights only as a PyTorch pickle.
    let dir = exported(&tmp.path().join("bin"), "qwen3_f32_last");
    std::fs::rename(dir.join(PEFT_WEIGHTS_FILE), dir.join("adapter_model.bin")).unwrap();
    let err = import(&dir, &tmp.path().join("out"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("adapter_model.bin") && err.contains("safe_serialization=True"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn export_refuses_broken_adapters_and_existing_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = tmp.path().join("adapter");
    copy_dir(&adapter_fixture("qwen3_f32_last"), &adapter);
    let mut tensors = mlx_tensors(&adapter, "adapters.safetensors");
    tensors.remove("model.layers.1.mlp.down_proj.lora_b");
    Array::save_safetensors(
        tensors.iter().map(|(k, v)| (k.as_str(), v)),
        None,
        adapter.join("broken.safetensors"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let err = export(&adapter, Some("broken.safetensors"), &out, None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("module `model.layers.1.mlp.down_proj` has only one of its two LoRA matrices"),
        "{err}"
    );
    let err = export(
        &adapter,
        Some("0000100_adapters.safetensors"),
        &out,
        None,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("0000100_adapters.safetensors") && err.contains("not found"),
        "{err}"
    );
    assert!(!out.exists());

    std::fs::create_dir(&out).unwrap();
    let err = export(&adapter, None, &out, None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    export(&adapter, None, &out, None, true).unwrap();
    assert!(out.join(PEFT_WEIGHTS_FILE).exists());
    let err = import(&out, &out, true).unwrap_err().to_string();
    assert!(err.contains("is the PEFT adapter directory"), "{err}");
}

#[test]
fn the_command_line_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (peft, back) = (tmp.path().join("peft"), tmp.path().join("back"));
    let bin = env!("CARGO_BIN_EXE_lora-grpo");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let adapter = adapter_fixture("qwen3_f32_last");
    let text = run(&[
        "export".as_ref(),
        "--adapter".as_ref(),
        adapter.as_os_str(),
        "--format".as_ref(),
        "peft".as_ref(),
        "--out".as_ref(),
        peft.as_os_str(),
    ]);
    assert!(
        text.contains("Exported 3 LoRA modules")
            && text.contains("layers_to_transform [1]")
            && text.contains("base_model_name_or_path: tests/fixtures/models/qwen3_f32"),
        "{text}"
    );
    let text = run(&[
        "import".as_ref(),
        "--peft".as_ref(),
        peft.as_os_str(),
        "--out".as_ref(),
        back.as_os_str(),
    ]);
    assert!(
        text.contains("Imported 3 LoRA modules") && text.contains("rank 8, scale 20, num_layers 1"),
        "{text}"
    );
    let (a, b) = (
        mlx_tensors(&adapter, "adapters.safetensors"),
        mlx_tensors(&back, "adapters.safetensors"),
    );
    assert!(a.iter().all(|(k, v)| bits(v) == bits(&b[k])));
}
