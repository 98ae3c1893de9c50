//! The committed demo base model (models/demo-arith): its files are the mlx-community
//! 4-bit layout, its tokenizer and chat template give the prompt ids mlx-lm gives, its
//! greedy completions in lora-grpo's engine are the ones mlx-lm produced
//! (tests/fixtures/demo/expected.json, made by check_mlx_lm.py beside it), and its
//! held-out accuracy is the one its README reports.

mod plugin_build;

use std::path::{Path, PathBuf};

use lora_grpo::generate::{generate, FinishReason, GenerateConfig, NoStop, SamplingParams};
use lora_grpo::model::{load, LoadOptions};
use lora_grpo::plugin::{PluginHost, Prompt, RewardInput, SearchPath};
use serde_json::{json, Value};
use tokenizers::Tokenizer;

/// New tokens per completion, as in check_mlx_lm.py and the builder (a worked reply
/// takes about 25).
const MAX_TOKENS: usize = 32;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-arith")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn expected_cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo/expected.json");
    read_json(&path)["cases"].as_array().unwrap().clone()
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_file(model_dir().join("tokenizer.json")).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The ChatML prompt of one user message, written out by hand.
fn chatml(question: &str) -> String {
    format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
}

fn eos_id() -> u32 {
    let generation = read_json(&model_dir().join("generation_config.json"));
    generation["eos_token_id"][0].as_u64().unwrap() as u32
}

#[test]
fn files_are_a_small_4bit_mlx_community_llama() {
    let dir = model_dir();
    let config = read_json(&dir.join("config.json"));
    assert_eq!(config["model_type"], "llama");
    assert_eq!(config["quantization"]["bits"], 4);
    assert_eq!(config["quantization"], config["quantization_config"]);
    let tok_config = read_json(&dir.join("tokenizer_config.json"));
    assert_eq!(tok_config["eos_token"], "<|im_end|>");
    assert_eq!(tokenizer().token_to_id("<|im_end|>"), Some(eos_id()));
    assert_eq!(
        config["vocab_size"].as_u64().unwrap() as usize,
        tokenizer().get_vocab_size(true)
    );
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        total += entry.unwrap().metadata().unwrap().len();
    }
    assert!(total < 3 << 20, "the model directory takes {total} bytes");
    // Every linear layer and the embedding are packed 4-bit weights with scales.
    let weights = mlx_rs::Array::load_safetensors(dir.join("model.safetensors")).unwrap();
    let packed = weights
        .iter()
        .filter(|(_, a)| a.dtype() == mlx_rs::Dtype::Uint32)
        .count();
    let layers = config["num_hidden_layers"].as_u64().unwrap() as usize;
    assert_eq!(packed, 7 * layers + 1);
    assert_eq!(
        weights.keys().filter(|k| k.ends_with(".scales")).count(),
        packed
    );
}

#[test]
fn prompts_render_and_tokenize_as_in_mlx_lm() {
    let tokenizer = tokenizer();
    for case in expected_cases() {
        let question = case["question"].as_str().unwrap();
        let prompt = chatml(question);
        assert_eq!(prompt, case["prompt"].as_str().unwrap(), "chat template");
        let ours = tokenizer.encode(prompt.as_str(), false).unwrap();
        assert_eq!(ours.get_ids(), ids(&case["prompt_ids"]), "{question}");
    }
}

#[test]
fn greedy_completions_match_mlx_lm() {
    let mut model = load(&model_dir(), &LoadOptions::default()).unwrap();
    let tokenizer = tokenizer();
    let cases = expected_cases();
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
    let config = GenerateConfig {
        max_tokens: MAX_TOKENS,
        sampling: SamplingParams::greedy(),
        eos_token_ids: vec![eos_id()],
        ..GenerateConfig::default()
    };
    let generation = generate(&mut model, &prompts, &config, &mut NoStop).unwrap();
    for (case, completion) in cases.iter().zip(&generation.completions) {
        let question = case["question"].as_str().unwrap();
        assert_eq!(
            completion.tokens,
            ids(&case["completion_ids"]),
            "{question}"
        );
        let expected_lp = case["completion_logprobs"].as_array().unwrap();
        for (ours, theirs) in completion.logprobs.iter().zip(expected_lp) {
            let theirs = theirs.as_f64().unwrap() as f32;
            assert!(
                (ours - theirs).abs() < 1e-4,
                "{question}: log-prob {ours} vs {theirs}"
            );
        }
        assert_eq!(completion.finish_reason, FinishReason::Eos, "{question}");
        let text = tokenizer.decode(&completion.tokens, true).unwrap();
        assert_eq!(text, case["completion"].as_str().unwrap());
    }
}

/// The README's "Settings as run" JSON block.
fn readme_settings(readme: &str) -> Value {
    let start = readme.find("```json\n").unwrap() + "```json\n".len();
    let len = readme[start..].find("```").unwrap();
    serde_json::from_str(&readme[start..start + len]).unwrap()
}

#[test]
fn held_out_accuracy_is_the_one_the_readme_reports_and_partial() {
    // Same data and grading as the builder: the arithmetic dataset and math-answer reward
    // plugins, through the plugin host.
    let readme = std::fs::read_to_string(model_dir().join("README.md")).unwrap();
    let settings = readme_settings(&readme);
    let count = settings["eval_problems"].as_u64().unwrap();
    let mut arithmetic: Value =
        serde_json::from_str(settings["arithmetic"].as_str().unwrap()).unwrap();
    arithmetic["count"] = json!({ "eval": count });
    let mut host = PluginHost::with_search_path(SearchPath::new([plugin_build::first_party()]));
    let samples = host
        .load_dataset("arithmetic", &arithmetic.to_string(), "eval")
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(samples.len() as u64, count);
    let mut reward = host.load_reward("math-answer", "{}").unwrap();
    let tokenizer = tokenizer();
    let prompts: Vec<String> = samples
        .iter()
        .map(|s| match &s.prompt {
            Prompt::Text(question) => chatml(question),
            Prompt::Messages(_) => panic!("the demo prompts have no system message"),
        })
        .collect();
    let mut model = load(&model_dir(), &LoadOptions::default()).unwrap();
    let config = GenerateConfig {
        max_tokens: MAX_TOKENS,
        sampling: SamplingParams::greedy(),
        eos_token_ids: vec![eos_id()],
        ..GenerateConfig::default()
    };
    let metadata = json!({});
    let mut correct = 0.0;
    for (texts, samples) in prompts.chunks(256).zip(samples.chunks(256)) {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                tokenizer
                    .encode(t.as_str(), false)
                    .unwrap()
                    .get_ids()
                    .to_vec()
            })
            .collect();
        let generation = generate(&mut model, &ids, &config, &mut NoStop).unwrap();
        let completions: Vec<String> = generation
            .completions
            .iter()
            .map(|c| tokenizer.decode(&c.tokens, true).unwrap())
            .collect();
        let inputs: Vec<RewardInput> = texts
            .iter()
            .zip(&completions)
            .zip(samples)
            .map(|((prompt, completion), sample)| RewardInput {
                prompt,
                completion,
                answer: &sample.answer,
                metadata: &metadata,
                group: 0,
            })
            .collect();
        correct += reward.score(&inputs).unwrap().iter().sum::<f32>();
    }
    let accuracy = correct as f64 / count as f64;
    let reported = format!(
        "| {count} held-out (`eval` split) | 4-bit, as shipped | **{:.1}%** |",
        100.0 * accuracy
    );
    assert!(readme.contains(&reported), "README lacks `{reported}`");
    assert!(
        (0.2..=0.5).contains(&accuracy),
        "held-out accuracy {accuracy} is not partial (20-50%)"
    );
}
