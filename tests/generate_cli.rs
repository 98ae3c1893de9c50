//! `lora-grpo generate` run as a program on the 2-layer fixture models with the character
//! tokenizer: what it prints equals the engine's tokens, decoded, for plain and chat
//! prompts, several sampled completions, and an adapter (or one of its checkpoints).
//! Run with `--test-threads=1` (MLX).

mod common;

use common::{f32_options, fixture};
use lora_grpo::generate::{generate, GenerateConfig, NoStop, SamplingParams};
use lora_grpo::model::load;
use lora_grpo::tokenizer::{ChatMessage, ChatOptions, Tokenizer};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fixture model with the character tokenizer beside it, in a fresh directory.
fn model_dir(root: &Path, model: &str) -> PathBuf {
    let dir = root.join(model);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(model)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("../char_tokenizer").join(name), dir.join(name)).unwrap();
    }
    dir
}

/// Runs the binary; returns stdout, failing the test with stderr on a non-zero exit.
fn run(args: &[&str]) -> String {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lora-grpo"));
    let out = command.arg("generate").args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "generate {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The engine's completions of `prompt`, decoded with special tokens skipped.
fn engine_texts(dir: &Path, adapter: Option<&Path>, prompt: Vec<u32>, config: GenerateConfig) -> Vec<String> {
    let tokenizer = Tokenizer::from_dir(dir).unwrap();
    let mut model = load(dir, &f32_options()).unwrap();
    if let Some(adapter) = adapter {
        lora_grpo::lora::load(&mut model, adapter, None).unwrap();
    }
    let config = GenerateConfig { eos_token_ids: tokenizer.eos_token_ids().to_vec(), ..config };
    let out = generate(&mut model, &[prompt], &config, &mut NoStop).unwrap();
    out.completions.iter().map(|c| tokenizer.decode(&c.tokens, true).unwrap()).collect()
}

fn greedy(max_tokens: usize) -> GenerateConfig {
    GenerateConfig { max_tokens, sampling: SamplingParams::greedy(), ..GenerateConfig::default() }
}

fn chat_ids(dir: &Path, messages: &[ChatMessage]) -> Vec<u32> {
    let options = ChatOptions { add_generation_prompt: true, ..ChatOptions::default() };
    Tokenizer::from_dir(dir).unwrap().encode_chat(messages, &options).unwrap()
}

#[test]
fn plain_prompt_prints_the_engine_s_greedy_completion() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_f32");
    let ids = Tokenizer::from_dir(&dir).unwrap().encode_prompt("Hello").unwrap();
    let expected = engine_texts(&dir, None, ids, greedy(24)).remove(0);
    assert!(expected.len() >= 4, "too little text to compare: {expected:?}");
    let printed = run(&["--model", dir.to_str().unwrap(), "--prompt", "Hello", "--max-tokens", "24"]);
    assert_eq!(printed, format!("{expected}\n"));
}

#[test]
fn chat_prompt_and_messages_file_go_through_the_chat_template() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_f32");
    let model = dir.to_str().unwrap();

    let conversation = [ChatMessage::system("Be brief."), ChatMessage::user("What is 2+2?")];
    let file = root.path().join("messages.json");
    std::fs::write(&file, serde_json::to_string(&conversation).unwrap()).unwrap();
    let expected = engine_texts(&dir, None, chat_ids(&dir, &conversation), greedy(16)).remove(0);
    let printed = run(&["--model", model, "--messages", file.to_str().unwrap(), "--max-tokens", "16"]);
    assert_eq!(printed, format!("{expected}\n"));

    // --chat wraps --prompt as the one user message; without it the text is fed raw.
    let user = [ChatMessage::user("What is 2+2?")];
    let expected = engine_texts(&dir, None, chat_ids(&dir, &user), greedy(16)).remove(0);
    let chat = run(&["--model", model, "--prompt", "What is 2+2?", "--chat", "--max-tokens", "16"]);
    assert_eq!(chat, format!("{expected}\n"));
    let raw = run(&["--model", model, "--prompt", "What is 2+2?", "--max-tokens", "16"]);
    assert_ne!(raw, chat, "the chat template made no difference");
}

#[test]
fn several_sampled_completions_match_the_engine_with_the_same_seed() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_f32");
    let ids = Tokenizer::from_dir(&dir).unwrap().encode_prompt("abc").unwrap();
    let config = GenerateConfig {
        max_tokens: 12,
        completions_per_prompt: 3,
        seed: 7,
        sampling: SamplingParams { temperature: 0.9, ..SamplingParams::default() },
        ..GenerateConfig::default()
    };
    let texts = engine_texts(&dir, None, ids, config);
    assert!(texts[0] != texts[1] || texts[1] != texts[2], "sampling gave identical completions: {texts:?}");
    let expected: String = texts.iter().enumerate().map(|(k, t)| format!("[completion {}]\n{t}\n", k + 1)).collect();
    let args = ["--model", dir.to_str().unwrap(), "--prompt", "abc", "--max-tokens", "12"];
    let printed = run(&[&args[..], &["-n", "3", "--temperature", "0.9", "--seed", "7"]].concat());
    assert_eq!(printed, expected);
}

#[test]
fn adapter_changes_the_output_as_it_does_in_the_engine() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_q4");
    let adapter = fixture("../adapters/lora_grpo_llama_q4");
    let ids = Tokenizer::from_dir(&dir).unwrap().encode_prompt("Hello").unwrap();
    let base = engine_texts(&dir, None, ids.clone(), greedy(24)).remove(0);
    let adapted = engine_texts(&dir, Some(&adapter), ids, greedy(24)).remove(0);
    assert_ne!(base, adapted, "the adapter changes nothing visible");
    let args = ["--model", dir.to_str().unwrap(), "--prompt", "Hello", "--max-tokens", "24"];
    let args = [&args[..], &["--adapter", adapter.to_str().unwrap()]].concat();
    assert_eq!(run(&args), format!("{adapted}\n"));
    // The uncompiled SwiGLU and LoRA add give the same text.
    assert_eq!(run_with_env(&args, &[("LORA_GRPO_COMPILE", "0")]), format!("{adapted}\n"));
}

#[test]
fn adapter_file_picks_a_checkpoint_in_the_adapter_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_q4");
    let fixture_adapter = fixture("../adapters/lora_grpo_llama_q4");
    let ids = Tokenizer::from_dir(&dir).unwrap().encode_prompt("Hello").unwrap();
    let adapted = engine_texts(&dir, Some(&fixture_adapter), ids, greedy(24)).remove(0);
    // A run directory holding only a numbered checkpoint.
    let adapter = root.path().join("run");
    std::fs::create_dir(&adapter).unwrap();
    std::fs::copy(fixture_adapter.join("adapter_config.json"), adapter.join("adapter_config.json")).unwrap();
    std::fs::copy(fixture_adapter.join("adapters.safetensors"), adapter.join("0000003_adapters.safetensors")).unwrap();
    let args = ["--model", dir.to_str().unwrap(), "--prompt", "Hello", "--max-tokens", "24", "--adapter", adapter.to_str().unwrap()];
    let printed = run(&[&args[..], &["--adapter-file", "0000003_adapters.safetensors"]].concat());
    assert_eq!(printed, format!("{adapted}\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_lora-grpo")).arg("generate").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("adapters.safetensors: adapter weights file not found"), "{err}");
}

#[test]
fn bad_messages_file_is_named_in_the_error() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path(), "llama_f32");
    let file = root.path().join("broken.json");
    std::fs::write(&file, r#"[{"role": "user"}]"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lora-grpo"))
        .args(["generate", "--model", dir.to_str().unwrap(), "--messages", file.to_str().unwrap()])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json") && err.contains("missing field `content`"), "{err}");
}
