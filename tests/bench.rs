//! The benchmark helpers: random checkpoints hold exactly the tensors mlx-lm writes for the
//! same config (the fixtures under tests/fixtures/models were saved by mlx-lm), load through
//! the strict loader, depend on the seed alone, and the generation benchmark counts the
//! tokens of both scenarios. Run with `--test-threads=1` (MLX).

mod common;

use common::{f32_options, fixture};
use lora_grpo::bench::generate::{grpo_prompt_lengths, run, table, GenerateBench};
use lora_grpo::bench::random_model::{load_random, write_random};
use mlx_rs::{Array, Dtype};
use std::collections::BTreeMap;
use std::path::Path;

/// Key -> (shape, packed) of every safetensors file in `dir`.
fn tensor_layout(dir: &Path) -> BTreeMap<String, (Vec<i32>, bool)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            for (key, array) in Array::load_safetensors(&path).unwrap() {
                out.insert(key, (array.shape().to_vec(), array.dtype() == Dtype::Uint32));
            }
        }
    }
    out
}

#[test]
fn random_checkpoints_hold_the_tensors_mlx_lm_writes_for_the_config() {
    // Tied and untied heads, q/k/v biases (qwen2), q/k norms (qwen3), 3/4/5-bit
    // quantization with a per-module override (qwen3_q5), and a dense checkpoint.
    for name in ["llama_f32", "llama_q4", "qwen2_bf16", "qwen2_q3", "qwen3_f32", "qwen3_q5"] {
        let config = fixture(name).join("config.json");
        let dir = tempfile::tempdir().unwrap();
        write_random(&std::fs::read_to_string(&config).unwrap(), &config, 0, dir.path()).unwrap();
        assert_eq!(tensor_layout(dir.path()), tensor_layout(&fixture(name)), "{name}");
        lora_grpo::model::load(dir.path(), &f32_options()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn random_weights_depend_on_the_seed_only() {
    let config = fixture("qwen3_q5").join("config.json");
    let ids = Array::from_slice(&[5i32, 80, 13, 200], &[1, 4]);
    let logits = |seed| {
        let mut model = load_random(&config, seed, &f32_options()).unwrap();
        let out = model.forward(&ids, None).unwrap();
        out.as_slice::<f32>().to_vec()
    };
    let (a, b, c) = (logits(1), logits(1), logits(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|x| x.is_finite()));
}

#[test]
fn generation_benchmark_counts_the_tokens_of_both_scenarios() {
    let mut model = load_random(&fixture("qwen3_f32").join("config.json"), 0, &f32_options()).unwrap();
    let bench = GenerateBench { prompt_tokens: 12, max_tokens: 5, batch: 3, group: 2, temperature: 1.0, repeats: 1, seed: 0 };
    assert_eq!(grpo_prompt_lengths(&bench), vec![12, 8, 8]);
    let m = run(&mut model, &bench).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!((m[0].sequences, m[0].prompt_tokens, m[0].new_tokens), (1, 12, 5));
    // Each GRPO prompt is prefilled once, then decoded G times.
    assert_eq!((m[1].sequences, m[1].prompt_tokens, m[1].new_tokens), (6, 28, 30));
    assert!(m.iter().all(|x| x.total_seconds >= x.decode_seconds && x.peak_memory_bytes > 0));
    let text = table("lora-grpo", &m);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("| lora-grpo | GRPO 3x2 | 6 | 28 |"), "{text}");
}
