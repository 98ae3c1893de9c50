//! Our models against Python mlx-lm 0.32.2 on the fixtures of
//! tests/fixtures/models/make_models.py: logits of a fixed prompt, and greedy
//! continuations with their log-probs. Run with `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use mlx_rs::Array;

/// Largest |ours - golden| over the largest |golden|: the relative error of the logits.
#[test]
fn logits_match_mlx_lm_for_every_fixture() {
    for name in MODELS {
        let g = golden(name);
        let prompt = u32s(&g["logits_prompt"]);
        let expected = flat_f32s(&g["logits"]);
        let mut model = load_fixture(name);
        let ids: Vec<i32> = prompt.iter().map(|&t| t as i32).collect();
        let tokens = Array::from_slice(&ids, &[1, ids.len() as i32]);
        let logits = model.forward(&tokens, None).unwrap();
        assert_eq!(logits.shape(), &[1, ids.len() as i32, 256], "{name}");
        assert_eq!(
            logits.dtype(),
            mlx_rs::Dtype::Float32,
            "{name}: CPU compute is f32"
        );
        let err = relative_error(logits.as_slice::<f32>(), &expected);
        eprintln!("{name}: relative logits error {err:.2e}");
        assert!(
            err < 1e-4,
            "{name}: logits differ from mlx-lm by {err} (relative)"
        );
    }
}

#[test]
fn greedy_generation_matches_mlx_lm_tokens_and_logprobs() {
    for name in MODELS {
        let g = golden(name);
        let mut model = load_fixture(name);
        for case in g["greedy"].as_array().unwrap() {
            let prompt = u32s(&case["prompt"]);
            let expected = u32s(&case["tokens"]);
            let config = GenerateConfig {
                max_tokens: expected.len(),
                sampling: SamplingParams::greedy(),
                ..GenerateConfig::default()
            };
            let out = generate(
                &mut model,
                std::slice::from_ref(&prompt),
                &config,
                &mut NoStop,
            )
            .unwrap();
            let c = &out.completions[0];
            assert_eq!(c.tokens, expected, "{name}, prompt {prompt:?}");
            for (ours, theirs) in c.logprobs.iter().zip(f32s(&case["logprobs"])) {
                assert!(
                    (ours - theirs).abs() < 1e-4,
                    "{name}: log-prob {ours} vs mlx-lm {theirs}"
                );
            }
        }
    }
}
