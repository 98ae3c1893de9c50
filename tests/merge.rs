//! `lora-grpo merge` on the tiny fixture models with adapters made by mlx-lm
//! (tests/fixtures/adapters/make_adapters.py): merged logits against the unmerged model
//! and against mlx-lm, the re-quantization report against the script's independent
//! float64 computation, the files written, and every refusal. Run with
//! `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::error::ExportError;
use lora_grpo::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use lora_grpo::lora::merge::{merge, MergeOptions, MergeSummary, QuantizeArg};
use lora_grpo::lora::AdapterConfig;
use lora_grpo::model::{load, CausalLm, LoadOptions};
use mlx_rs::{ops, Array, Dtype};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

const PROMPT: [i32; 7] = [1, 17, 42, 99, 7, 200, 3];

fn logits(model: &mut CausalLm) -> Vec<f32> {
    let tokens = Array::from_slice(&PROMPT, &[1, PROMPT.len() as i32]);
    model
        .forward(&tokens, None)
        .unwrap()
        .as_slice::<f32>()
        .to_vec()
}

fn golden_logits(g: &Value, key: &str) -> Vec<f32> {
    flat_f32s(&g[key])
}

/// Base + adapter, unmerged, in our runtime (float32 on the CPU).
fn unmerged(adapter: &str) -> CausalLm {
    let g = adapter_golden(adapter);
    let mut model = load_fixture(g["base"].as_str().unwrap());
    lora_grpo::lora::load(&mut model, &adapter_fixture(adapter), None).unwrap();
    model
}

fn run(adapter: &str, out: &Path, options: &MergeOptions) -> Result<MergeSummary, ExportError> {
    let base = adapter_golden(adapter)["base"]
        .as_str()
        .unwrap()
        .to_string();
    merge(
        &fixture(&base),
        &adapter_fixture(adapter),
        out,
        options,
        &mut |_| {},
    )
}

fn load_dir(dir: &Path) -> CausalLm {
    load(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn tensors(dir: &Path) -> HashMap<String, Array> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            all.extend(Array::load_safetensors(&path).unwrap());
        }
    }
    all
}

fn config(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn quantize(spec: &str) -> MergeOptions {
    MergeOptions {
        quantize: Some(spec.parse::<QuantizeArg>().unwrap()),
        ..MergeOptions::default()
    }
}

#[test]
fn adapters_made_by_mlx_lm_load_unchanged_and_give_its_logits() {
    for name in ["llama_q4_all", "qwen3_f32_last", "qwen2_bf16_head"] {
        let g = adapter_golden(name);
        let mut model = unmerged(name);
        let err = relative_error(&logits(&mut model), &golden_logits(&g, "logits"));
        eprintln!("{name}: relative error vs mlx-lm with the adapter {err:.2e}");
        assert!(err < 1e-4, "{name}: {err}");
        model.set_adapters_enabled(false);
        let off = relative_error(&logits(&mut model), &golden_logits(&g, "logits"));
        assert!(
            off > 1e-2,
            "{name}: the adapter must matter for this test to mean anything ({off})"
        );
    }
}

/// Merges `name` densely into `out` and checks the files: dense tensors of `dtype` only,
/// no quantization entries in config.json.
fn dense_merge(name: &str, out: &Path, dtype: Option<Dtype>, stored: Dtype) {
    let summary = run(
        name,
        out,
        &MergeOptions {
            dtype,
            ..MergeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(summary.dtype, stored);
    assert!(summary.quantization.is_none() && summary.survival.layers.is_empty());
    let files = tensors(out);
    assert!(files
        .keys()
        .all(|k| !k.contains("lora_") && !k.ends_with(".scales") && !k.ends_with(".biases")));
    assert!(
        files.values().all(|a| a.dtype() == stored),
        "{name}: every tensor is {stored:?}"
    );
    let cfg = config(out);
    assert!(cfg.get("quantization").is_none() && cfg.get("quantization_config").is_none());
}

#[test]
fn a_float32_merge_gives_the_logits_of_base_plus_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    // A 4-bit base with bf16 scales merged to float32, and a float32 base (its default).
    for (name, dtype) in [
        ("llama_q4_all", Some(Dtype::Float32)),
        ("qwen3_f32_last", None),
    ] {
        let out = tmp.path().join(name);
        dense_merge(name, &out, dtype, Dtype::Float32);
        let merged = logits(&mut load_dir(&out));
        let err = relative_error(&merged, &logits(&mut unmerged(name)));
        let vs_mlx_lm = relative_error(&merged, &golden_logits(&adapter_golden(name), "logits"));
        eprintln!("{name}: relative error vs unmerged {err:.2e}, vs mlx-lm with the adapter {vs_mlx_lm:.2e}");
        assert!(err < 1e-5 && vs_mlx_lm < 1e-5, "{name}: {err}, {vs_mlx_lm}");
    }
}

#[test]
fn a_bf16_merge_rounds_each_merged_weight_once() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["llama_q4_all", "qwen2_bf16_head"] {
        let out = tmp.path().join(name);
        dense_merge(name, &out, None, Dtype::Bfloat16);
        // Each merged weight is W + D (exact, in f64 here) rounded to bf16: within half a
        // unit in the last of bf16's 8 significant bits, 2^-9 relative (2^-8 allowed for the
        // f32 intermediate).
        let files = tensors(&out);
        let g = adapter_golden(name);
        let mut model = load(
            &fixture(g["base"].as_str().unwrap()),
            &LoadOptions {
                dequantize: true,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        let lora =
            Array::load_safetensors(adapter_fixture(name).join("adapters.safetensors")).unwrap();
        let scale = AdapterConfig::read(&adapter_fixture(name))
            .unwrap()
            .lora_parameters
            .scale as f64;
        for (path, layer) in model.linear_layers_mut() {
            let Some(a) = lora.get(&format!("{path}.lora_a")) else {
                continue;
            };
            let w = layer.weight.as_slice::<f32>().to_vec();
            let delta = lora[&format!("{path}.lora_b")].t().matmul(a.t()).unwrap();
            let written = files[&format!("{path}.weight")]
                .as_dtype(Dtype::Float32)
                .unwrap();
            for ((w, d), x) in w
                .iter()
                .zip(delta.as_slice::<f32>())
                .zip(written.as_slice::<f32>())
            {
                let exact = *w as f64 + scale * *d as f64;
                assert!(
                    (*x as f64 - exact).abs() <= exact.abs() * 2f64.powi(-8),
                    "{path}: {x} for {exact}"
                );
            }
        }
        // On logits, bf16 rounding is amplified by these random fixtures (it moves the base
        // model's alone by a few percent); one rounding keeps the merge at least as close to
        // the exact answer as mlx_lm.fuse --dequantize, which rounds W and D and their sum.
        let merged = logits(&mut load_dir(&out));
        let exact = golden_logits(&g, "logits");
        let (ours, theirs) = (
            relative_error(&merged, &exact),
            relative_error(&golden_logits(&g, "mlx_lm_dequantized_fuse_logits"), &exact),
        );
        eprintln!(
            "{name} bf16: logits relative error {ours:.2e}, mlx_lm.fuse --dequantize {theirs:.2e}"
        );
        assert!(ours <= theirs, "{name}: {ours} > {theirs}");
    }
}

#[test]
fn the_merged_model_generates_what_base_plus_adapter_and_mlx_lm_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "llama_q4_all";
    let out = tmp.path().join("merged");
    run(
        name,
        &out,
        &MergeOptions {
            dtype: Some(Dtype::Float32),
            ..MergeOptions::default()
        },
    )
    .unwrap();
    let g = adapter_golden(name);
    let prompt = u32s(&g["greedy_prompt"]);
    let expected = u32s(&g["greedy"]);
    let config = GenerateConfig {
        max_tokens: expected.len(),
        sampling: SamplingParams::greedy(),
        ..GenerateConfig::default()
    };
    for (label, mut model) in [("merged", load_dir(&out)), ("unmerged", unmerged(name))] {
        let done = generate(
            &mut model,
            std::slice::from_ref(&prompt),
            &config,
            &mut NoStop,
        )
        .unwrap();
        assert_eq!(done.completions[0].tokens, expected, "{label}");
    }
}

/// |kept - delta| / |delta| for one layer, recomputed from the files: kept is the
/// written layer minus the base re-quantized with the same parameters.
fn relative_error_from_files(out: &Path, base: &str, adapter: &str, path: &str, scale: f32) -> f64 {
    let written = tensors(out);
    let base_files = tensors(&fixture(base));
    let lora =
        Array::load_safetensors(adapter_fixture(adapter).join("adapters.safetensors")).unwrap();
    let weight = &written[&format!("{path}.weight")];
    let (scales, biases) = (
        &written[&format!("{path}.scales")],
        &written[&format!("{path}.biases")],
    );
    let out_dtype = scales.dtype();
    let cols = lora[&format!("{path}.lora_a")].shape()[0];
    let group = cols / scales.shape()[1];
    let bits = weight.shape()[1] * 32 / cols;
    let dequantize = |w: &Array, s: &Array, b: &Array, g: i32, bits: i32| {
        let (s, b) = (
            s.as_dtype(Dtype::Float32).unwrap(),
            b.as_dtype(Dtype::Float32).unwrap(),
        );
        ops::dequantize(w, &s, &b, g, bits).unwrap()
    };
    let merged = dequantize(weight, scales, biases, group, bits);
    let stored = |key: &str| &base_files[&format!("{path}.{key}")];
    let base_bits = stored("weight").shape()[1] * 32 / cols;
    let base_group = cols / stored("scales").shape()[1];
    let w = dequantize(
        stored("weight"),
        stored("scales"),
        stored("biases"),
        base_group,
        base_bits,
    );
    let (qw, qs, qb) = ops::quantize(w.as_dtype(out_dtype).unwrap(), group, bits).unwrap();
    let requantized_base = dequantize(&qw, &qs, &qb, group, bits);
    let (a, b) = (
        &lora[&format!("{path}.lora_a")],
        &lora[&format!("{path}.lora_b")],
    );
    // (a @ b)^T as b^T @ a^T: a matmul result is contiguous, as as_slice needs.
    let delta = b.t().matmul(a.t()).unwrap();
    let kept = merged.subtract(&requantized_base).unwrap();
    let (kept, delta) = (
        kept.as_slice::<f32>().to_vec(),
        delta.as_slice::<f32>().to_vec(),
    );
    let (mut e2, mut d2) = (0f64, 0f64);
    for (k, d) in kept.iter().zip(&delta) {
        let d = *d as f64 * scale as f64;
        e2 += (*k as f64 - d).powi(2);
        d2 += d * d;
    }
    (e2 / d2).sqrt()
}

#[test]
fn requantized_merge_reports_what_survived_as_computed_independently() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "llama_q4_all";
    let g = adapter_golden(name);
    let expected_logits = logits(&mut unmerged(name));
    for case in g["requantize"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["scale"] == 2.0)
    {
        let (bits, group) = (
            case["bits"].as_i64().unwrap(),
            case["group_size"].as_i64().unwrap(),
        );
        let out = tmp.path().join(format!("q{bits}g{group}"));
        let summary = run(name, &out, &quantize(&format!("{bits},{group}"))).unwrap();
        let report = &summary.survival;
        let layers = case["layers"].as_array().unwrap();
        assert_eq!(report.layers.len(), layers.len());
        for golden in layers {
            let path = golden["path"].as_str().unwrap();
            let ours = report.layers.iter().find(|l| l.path == path).unwrap();
            assert_eq!(
                (ours.params.bits as i64, ours.params.group_size as i64),
                (
                    golden["bits"].as_i64().unwrap(),
                    golden["group_size"].as_i64().unwrap()
                ),
                "{path}"
            );
            let (ours, theirs) = (
                ours.relative_error().unwrap(),
                golden["relative_error"].as_f64().unwrap(),
            );
            assert!(
                (ours - theirs).abs() < 2e-3 * theirs.max(0.1),
                "{bits}-bit {path}: {ours} vs {theirs}"
            );
        }
        let overall = report.overall_relative_error().unwrap();
        let theirs = case["overall_relative_error"].as_f64().unwrap();
        eprintln!("{bits}-bit g{group}: overall relative error {overall:.4} (script {theirs:.4})");
        assert!((overall - theirs).abs() < 2e-3 * theirs);
        assert_eq!(report.mostly_lost(), theirs > 0.5);

        // The report describes the files written.
        for path in [
            "model.layers.0.self_attn.q_proj",
            "model.layers.1.mlp.down_proj",
        ] {
            let from_files = relative_error_from_files(&out, "llama_q4", name, path, 2.0);
            let reported = report
                .layers
                .iter()
                .find(|l| l.path == path)
                .unwrap()
                .relative_error()
                .unwrap();
            assert!(
                (from_files - reported).abs() < 1e-4 * reported.max(1.0),
                "{path}: {from_files} vs {reported}"
            );
        }
        // The base's override for layer 1's down_proj is honoured and written back.
        let q = &config(&out)["quantization"];
        assert_eq!(q, &config(&out)["quantization_config"]);
        assert_eq!(
            q,
            &serde_json::json!({"group_size": group, "bits": bits, "mode": "affine",
                "model.layers.1.mlp.down_proj": {"group_size": 32, "bits": 8, "mode": "affine"}})
        );
        let merged = logits(&mut load_dir(&out));
        let err = relative_error(&merged, &expected_logits);
        eprintln!("{bits}-bit g{group}: logits vs unmerged {err:.3e}");
        if bits == 4 {
            // The base's own parameters: the same model assembled from mlx-lm's layers.
            let theirs = relative_error(&merged, &golden_logits(&g, "requantized_logits"));
            eprintln!("4-bit: logits vs the script's re-quantized merge {theirs:.3e}");
            assert!(theirs < 1e-5, "{theirs}");
        }
    }
}

#[test]
fn a_delta_lost_to_rounding_is_reported_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let adapter = tmp.path().join("small");
    copy_dir(&adapter_fixture("llama_q4_all"), &adapter);
    let cfg_path = adapter.join("adapter_config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["lora_parameters"]["scale"] = serde_json::json!(0.02);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let golden = adapter_golden("llama_q4_all")["requantize"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| (c["scale"].as_f64().unwrap() - 0.02).abs() < 1e-9)
        .unwrap()
        .clone();

    let out = tmp.path().join("merged");
    let summary = merge(
        &fixture("llama_q4"),
        &adapter,
        &out,
        &quantize("4"),
        &mut |_| {},
    )
    .unwrap();
    let overall = summary.survival.overall_relative_error().unwrap();
    let theirs = golden["overall_relative_error"].as_f64().unwrap();
    assert!(
        (overall - theirs).abs() < 5e-3 * theirs,
        "{overall} vs {theirs}"
    );
    assert!(summary.survival.mostly_lost());
    let text = summary.survival.to_string();
    assert!(
        text.contains("WARNING: re-quantizing lost most of the adapter's change"),
        "{text}"
    );

    // The command line prints the same table and warning.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_lora-grpo"))
        .args(["merge", "--model"])
        .arg(fixture("llama_q4"))
        .arg("--adapter")
        .arg(&adapter)
        .arg("--out")
        .arg(tmp.path().join("cli"))
        .args(["--quantize", "4,64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        stdout.contains("WARNING")
            && stdout.contains("model.layers.0.self_attn.q_proj")
            && stdout.contains("4-bit, group size 64"),
        "{stdout}"
    );
}

#[test]
fn a_dense_base_quantizes_every_matrix_that_fills_whole_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "qwen3_f32_last";
    let out = tmp.path().join("merged");
    let summary = run(name, &out, &quantize("4")).unwrap();
    // qwen3's o_proj has 32 inputs: no whole group of 64.
    assert_eq!(
        summary.left_dense,
        [
            "model.layers.0.self_attn.o_proj",
            "model.layers.1.self_attn.o_proj"
        ]
    );
    let files = tensors(&out);
    assert!(
        files.contains_key("model.embed_tokens.scales"),
        "the embedding is quantized too"
    );
    assert!(!files.contains_key("model.layers.1.self_attn.o_proj.scales"));
    assert_eq!(
        files["model.layers.1.self_attn.q_proj.weight"].dtype(),
        Dtype::Uint32
    );
    assert_eq!(
        config(&out)["quantization"],
        serde_json::json!({"group_size": 64, "bits": 4, "mode": "affine"})
    );

    let golden = &adapter_golden(name)["requantize"][0];
    let (ours, theirs) = (
        summary.survival.overall_relative_error().unwrap(),
        golden["overall_relative_error"].as_f64().unwrap(),
    );
    assert!((ours - theirs).abs() < 2e-3 * theirs, "{ours} vs {theirs}");
    // What mlx_lm.fuse + mlx_lm.convert -q make of it. Both add the delta in f32, in
    // different operation orders, so a rare weight lands in the neighbouring bin.
    let err = relative_error(
        &logits(&mut load_dir(&out)),
        &golden_logits(&adapter_golden(name), "mlx_lm_fused_logits"),
    );
    eprintln!("qwen3 4-bit: logits vs mlx-lm fuse + convert -q {err:.3e}");
    assert!(err < 1e-2, "{err}");
}

#[test]
fn large_outputs_are_sharded_with_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (single, sharded) = (tmp.path().join("single"), tmp.path().join("sharded"));
    run("llama_q4_all", &single, &MergeOptions::default()).unwrap();
    let summary = run(
        "llama_q4_all",
        &sharded,
        &MergeOptions {
            max_shard_bytes: 40_000,
            ..MergeOptions::default()
        },
    )
    .unwrap();
    let count = summary.weights.len();
    assert!(count >= 4, "{count} shards");
    assert!(!single.join("model.safetensors.index.json").exists());
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(sharded.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let mut total = 0;
    for (i, file) in summary.weights.iter().enumerate() {
        assert_eq!(
            file.name,
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        );
        let shard = Array::load_safetensors(sharded.join(&file.name)).unwrap();
        assert!(shard.values().map(|a| a.nbytes()).sum::<usize>() <= 40_000 || shard.len() == 1);
        for (key, array) in &shard {
            assert_eq!(map[key], file.name.as_str(), "{key}");
            total += array.nbytes();
        }
    }
    assert_eq!(map.len(), tensors(&single).len());
    assert_eq!(index["metadata"]["total_size"], total);
    let (a, b) = (
        logits(&mut load_dir(&single)),
        logits(&mut load_dir(&sharded)),
    );
    assert_eq!(a, b, "sharding changes nothing");
}

#[test]
fn tokenizer_and_generation_files_are_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    copy_dir(&fixture("qwen3_f32"), &base);
    let files = [
        (
            "tokenizer.json",
            r#"{"version": "1.0", "model": {"type": "BPE"}}"#,
        ),
        (
            "tokenizer_config.json",
            r#"{"chat_template": "{{ messages }}", "eos_token": "<|im_end|>"}"#,
        ),
        ("generation_config.json", r#"{"eos_token_id": [1, 2]}"#),
        ("README.md", "# base model card"),
    ];
    for (name, text) in files {
        std::fs::write(base.join(name), text).unwrap();
    }
    let out = tmp.path().join("merged");
    let summary = merge(
        &base,
        &adapter_fixture("qwen3_f32_last"),
        &out,
        &MergeOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        summary.copied,
        [
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    for (name, text) in &files[..3] {
        assert_eq!(std::fs::read_to_string(out.join(name)).unwrap(), *text);
    }
    assert!(
        !out.join("README.md").exists(),
        "the base's model card does not describe the merge"
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    let mut expected = config(&base);
    expected.as_object_mut().unwrap().remove("quantization");
    assert_eq!(config(&out), expected, "config.json is the base's");
}

fn error(result: Result<MergeSummary, ExportError>) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

/// The message of a merge that must fail.
fn merge_error(model: &Path, adapter: &Path, out: &Path, options: &MergeOptions) -> String {
    error(merge(model, adapter, out, options, &mut |_| {}))
}

#[test]
fn an_adapter_for_another_base_is_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // qwen3's q_proj has 32 outputs, llama's 64.
    let err = merge_error(
        &fixture("llama_f32"),
        &adapter_fixture("qwen3_f32_last"),
        &out,
        &MergeOptions::default(),
    );
    assert!(
        err.contains("tensor `model.layers.1.self_attn.q_proj.lora_b` has shape [8, 32], the model's adapter needs [8, 64]"),
        "{err}"
    );
    // An adapter config that selects fewer blocks than its tensors cover.
    let adapter = tmp.path().join("adapter");
    copy_dir(&adapter_fixture("llama_q4_all"), &adapter);
    let cfg = std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        cfg.replace("\"num_layers\": -1", "\"num_layers\": 1"),
    )
    .unwrap();
    let err = merge_error(
        &fixture("llama_q4"),
        &adapter,
        &out,
        &MergeOptions::default(),
    );
    assert!(
        err.contains("tensor `model.layers.0.mlp.down_proj.lora_a` belongs to no adapted layer"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let adapter = tmp.path().join("adapter");
    copy_dir(&adapter_fixture("qwen3_f32_last"), &adapter);
    let err = merge_error(
        &fixture("qwen3_f32"),
        &adapter,
        &out,
        &MergeOptions {
            adapter_file: Some("0000100_adapters.safetensors".into()),
            ..MergeOptions::default()
        },
    );
    assert!(
        err.contains("0000100_adapters.safetensors") && err.contains("not found"),
        "{err}"
    );
    std::fs::remove_file(adapter.join("adapters.safetensors")).unwrap();
    let err = merge_error(
        &fixture("qwen3_f32"),
        &adapter,
        &out,
        &MergeOptions::default(),
    );
    assert!(
        err.contains("adapter/adapters.safetensors") && err.contains("not found"),
        "{err}"
    );
    std::fs::remove_file(adapter.join("adapter_config.json")).unwrap();
    let err = merge_error(
        &fixture("qwen3_f32"),
        &adapter,
        &out,
        &MergeOptions::default(),
    );
    assert!(err.contains("adapter/adapter_config.json"), "{err}");
    let err = merge_error(
        &tmp.path().join("nowhere"),
        &adapter_fixture("qwen3_f32_last"),
        &out,
        &MergeOptions::default(),
    );
    assert!(err.contains("nowhere/config.json"), "{err}");
    assert!(!out.exists());
}

#[test]
fn unsupported_quantization_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    copy_dir(&fixture("llama_q4"), &base);
    let cfg = std::fs::read_to_string(base.join("config.json")).unwrap();
    std::fs::write(
        base.join("config.json"),
        cfg.replace("\"affine\"", "\"mxfp4\""),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let err = merge_error(
        &base,
        &adapter_fixture("llama_q4_all"),
        &out,
        &MergeOptions::default(),
    );
    assert!(
        err.contains("`quantization.mode` is \"mxfp4\"; only \"affine\" is supported"),
        "{err}"
    );
    for (spec, problem) in [
        ("7", "bits must be one of 2, 3, 4, 5, 6, 8, found 7"),
        ("4,100", "group_size must be 32, 64 or 128, found 100"),
    ] {
        let err = spec.parse::<QuantizeArg>().unwrap_err().to_string();
        assert!(err.contains(problem), "{err}");
    }
    assert!(!out.exists());
}

#[test]
fn an_existing_output_is_kept_unless_forced_and_inputs_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let err = error(run("qwen3_f32_last", &out, &MergeOptions::default()));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );

    run(
        "qwen3_f32_last",
        &out,
        &MergeOptions {
            force: true,
            ..MergeOptions::default()
        },
    )
    .unwrap();
    assert!(!out.join("keep.txt").exists(), "replaced as a whole");
    load_dir(&out);

    // Not even --force writes over (or around) an input.
    let base = tmp.path().join("models/base");
    copy_dir(&fixture("qwen3_f32"), &base);
    let forced = MergeOptions {
        force: true,
        ..MergeOptions::default()
    };
    for target in [base.clone(), tmp.path().join("models")] {
        let err = merge_error(
            &base,
            &adapter_fixture("qwen3_f32_last"),
            &target,
            &forced,
        );
        assert!(err.contains("is the base model directory"), "{err}");
    }
    load_dir(&base);
}

#[test]
fn a_failed_write_leaves_no_half_written_model() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    copy_dir(&fixture("qwen3_f32"), &base);
    // The weights are written first; copying this dangling tokenizer file then fails.
    std::os::unix::fs::symlink(tmp.path().join("gone.json"), base.join("tokenizer.json")).unwrap();
    let parent = tmp.path().join("outputs");
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("merged");
    let err = merge_error(
        &base,
        &adapter_fixture("qwen3_f32_last"),
        &out,
        &MergeOptions::default(),
    );
    assert!(err.contains("tokenizer.json"), "{err}");
    assert_eq!(
        std::fs::read_dir(&parent).unwrap().count(),
        0,
        "no output and no staging directory"
    );

    // Under --force the previous output survives a failed merge.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("config.json"), "previous").unwrap();
    let forced = MergeOptions {
        force: true,
        ..MergeOptions::default()
    };
    merge_error(
        &base,
        &adapter_fixture("qwen3_f32_last"),
        &out,
        &forced,
    );
    assert_eq!(
        std::fs::read_to_string(out.join("config.json")).unwrap(),
        "previous"
    );
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 1);
}

#[test]
#[ignore = "needs Python with mlx-lm 0.32.2 (pip install \"mlx[cpu]==0.32.2\" \"mlx-lm==0.32.2\")"]
fn merged_models_load_in_python_mlx_lm() {
    let tmp = tempfile::tempdir().unwrap();
    let script = adapter_fixture("check_in_mlx_lm.py");
    let cases = [
        ("llama_q4_all", MergeOptions::default()),
        (
            "llama_q4_all",
            MergeOptions {
                dtype: Some(Dtype::Float32),
                max_shard_bytes: 40_000,
                ..MergeOptions::default()
            },
        ),
        ("llama_q4_all", quantize("4")),
        ("llama_q4_all", quantize("8,32")),
        ("qwen3_f32_last", quantize("4,64")),
        ("qwen2_bf16_head", MergeOptions::default()),
    ];
    for (i, (name, options)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("merged{i}"));
        run(name, &out, &options).unwrap();
        let expected = tmp.path().join(format!("expected{i}.json"));
        let logits: Vec<Vec<f32>> = logits(&mut load_dir(&out))
            .chunks(256)
            .map(<[f32]>::to_vec)
            .collect();
        std::fs::write(
            &expected,
            serde_json::json!({"prompt": PROMPT, "logits": logits}).to_string(),
        )
        .unwrap();
        let status = std::process::Command::new("python3")
            .arg(&script)
            .arg(&out)
            .arg(&expected)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "case {i} ({name}): mlx-lm disagrees or cannot load it"
        );
    }
}
