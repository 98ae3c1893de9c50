//! LoRA adapters on a real (4-bit) fixture model: identities of the attach step, exact
//! trainable-parameter count, file round trip, and compatibility with Python mlx-lm.
//! Run with `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use lora_grpo::lora::{self, AdapterConfig, LoraParameters};
use lora_grpo::model::CausalLm;
use mlx_rs::{random, Array};
use std::collections::BTreeMap;

fn config(num_layers: i32, keys: Option<&[&str]>) -> AdapterConfig {
    AdapterConfig {
        fine_tune_type: "lora".into(),
        num_layers,
        lora_parameters: LoraParameters {
            rank: 4,
            scale: 2.0,
            dropout: 0.0,
            keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
        },
        extra: Default::default(),
    }
}

fn logits(model: &mut CausalLm) -> Array {
    let tokens = Array::from_slice(&[1i32, 17, 42, 99, 7], &[1, 5]);
    let out = model.forward(&tokens, None).unwrap();
    out.eval().unwrap();
    out
}

/// Gives every `lora_b` seeded values so the adapter changes the output.
fn randomize_b(model: &mut CausalLm, seed: u64) {
    let mut tensors = lora::adapter_tensors(model);
    for (i, (key, value)) in tensors.iter_mut().enumerate() {
        if key.ends_with(".lora_b") {
            let k = random::key(seed + i as u64).unwrap();
            *value = random::normal::<f32>(value.shape(), None, 0.05, &k).unwrap();
        }
    }
    lora::set_adapter_tensors(model, tensors, std::path::Path::new("test")).unwrap();
}

#[test]
fn fresh_adapters_leave_the_output_exactly_unchanged_and_off_is_the_base() {
    let mut model = load_fixture("llama_q4");
    let base = logits(&mut model);
    lora::attach(&mut model, &config(-1, None), 0).unwrap();
    assert_eq!(max_abs_diff(&logits(&mut model), &base), 0.0, "B = 0 must give the base output exactly");
    randomize_b(&mut model, 1);
    assert!(max_abs_diff(&logits(&mut model), &base) > 1e-3);
    model.set_adapters_enabled(false);
    assert_eq!(max_abs_diff(&logits(&mut model), &base), 0.0, "adapters off must be the base model");
}

#[test]
fn trainable_parameters_are_the_adapters_only_with_the_exact_count() {
    let mut model = load_fixture("llama_q4");
    // llama fixture: hidden 64, intermediate 64, 4 heads x 16, 2 kv heads -> k/v out 32.
    // Per block, rank 4: q,o: 4*(64+64); k,v: 4*(64+32); gate,up,down: 4*(64+64).
    let per_block = 4 * ((64 + 64) * 2 + (64 + 32) * 2 + (64 + 64) * 3);
    lora::attach(&mut model, &config(-1, None), 0).unwrap();
    assert_eq!(lora::trainable_count(&model), 2 * per_block);
    let mut last_only = load_fixture("llama_q4");
    let targets = lora::attach(&mut last_only, &config(1, Some(&["self_attn.q_proj", "self_attn.v_proj"])), 0).unwrap();
    assert_eq!(targets, vec!["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]);
    assert_eq!(lora::trainable_count(&last_only), 4 * (64 + 64) + 4 * (64 + 32));
    let err = lora::attach(&mut load_fixture("llama_q4"), &config(1, Some(&["self_attn.qproj"])), 0).unwrap_err();
    assert!(err.to_string().contains("`self_attn.qproj`") && err.to_string().contains("self_attn.q_proj"), "{err}");
}

#[test]
fn saved_adapters_load_back_and_foreign_ones_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = load_fixture("llama_q4");
    lora::attach(&mut model, &config(2, None), 0).unwrap();
    randomize_b(&mut model, 2);
    let expected = logits(&mut model);
    lora::save(&mut model, dir.path(), &config(2, None), lora::WEIGHTS_FILE).unwrap();
    let mut fresh = load_fixture("llama_q4");
    lora::load(&mut fresh, dir.path(), None).unwrap();
    assert_eq!(max_abs_diff(&logits(&mut fresh), &expected), 0.0);
    // An adapter of another shape (rank 8 file for a rank 4 config) names the tensor.
    let mut wrong: BTreeMap<String, Array> = lora::adapter_tensors(&mut model);
    let key = "model.layers.0.self_attn.q_proj.lora_a".to_string();
    wrong.insert(key.clone(), Array::zeros::<f32>(&[64, 8]).unwrap());
    lora::weights::save(&dir.path().join(lora::WEIGHTS_FILE), &wrong).unwrap();
    let err = lora::load(&mut load_fixture("llama_q4"), dir.path(), None).unwrap_err().to_string();
    assert!(err.contains(&key) && err.contains("[64, 8]"), "{err}");
}

#[test]
fn adapters_written_by_lora_grpo_give_mlx_lm_s_greedy_output() {
    let fixture = fixture("../adapters/lora_grpo_llama_q4");
    let mut model = load_fixture("llama_q4");
    lora::attach(&mut model, &config(-1, None), 11).unwrap();
    randomize_b(&mut model, 12);
    let written = tempfile::tempdir().unwrap();
    lora::save(&mut model, written.path(), &config(-1, None), lora::WEIGHTS_FILE).unwrap();
    if std::env::var_os("LORA_GRPO_REGEN_FIXTURES").is_some() {
        lora::save(&mut model, &fixture, &config(-1, None), lora::WEIGHTS_FILE).unwrap();
    }
    // The committed adapter is exactly what our writer produces...
    let ours = lora::weights::load(&written.path().join(lora::WEIGHTS_FILE)).unwrap();
    let committed = lora::weights::load(&fixture.join(lora::WEIGHTS_FILE)).unwrap();
    assert_eq!(ours.keys().collect::<Vec<_>>(), committed.keys().collect::<Vec<_>>());
    for (k, v) in &ours {
        assert_eq!(v.as_slice::<f32>(), committed[k].as_slice::<f32>(), "{k}");
    }
    // ...and mlx-lm (tests/fixtures/adapters/mlx_lm_greedy.py) decodes with it as we do.
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("mlx_lm_greedy.json")).unwrap()).unwrap();
    let mut loaded = load_fixture("llama_q4");
    lora::load(&mut loaded, &fixture, None).unwrap();
    for (i, prompt) in golden["prompts"].as_array().unwrap().iter().enumerate() {
        let config = GenerateConfig { max_tokens: 10, sampling: SamplingParams::greedy(), ..GenerateConfig::default() };
        let out = generate(&mut loaded, &[u32s(prompt)], &config, &mut NoStop).unwrap();
        assert_eq!(out.completions[0].tokens, u32s(&golden["adapted"][i]), "prompt {i}");
        assert_ne!(out.completions[0].tokens, u32s(&golden["base"][i]), "prompt {i}: the adapter changes nothing");
    }
}
