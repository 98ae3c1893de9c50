//! Shared access to the fixture tokenizers and the expected outputs.

use lora_grpo::tokenizer::{ChatMessage, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const NAMES: [&str; 2] = ["qwen3", "llama3_1"];

/// `target/fixtures/tokenizers/<name>`, made by `cargo xtask fixtures`.
pub fn fixture_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures/tokenizers").join(name);
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        assert!(
            dir.join(file).is_file(),
            "tokenizer fixture {} is missing: run `cargo xtask fixtures` first",
            dir.join(file).display()
        );
    }
    dir
}

/// The fixture tokenizers, loaded once per test binary (Qwen3's tokenizer.json is 11 MB).
pub fn tokenizer(name: &str) -> &'static Tokenizer {
    static QWEN3: OnceLock<Tokenizer> = OnceLock::new();
    static LLAMA: OnceLock<Tokenizer> = OnceLock::new();
    let cell = match name {
        "qwen3" => &QWEN3,
        "llama3_1" => &LLAMA,
        other => panic!("no fixture tokenizer named {other}"),
    };
    cell.get_or_init(|| Tokenizer::from_dir(fixture_dir(name)).expect("fixture tokenizer loads"))
}

/// tests/fixtures/tokenizer/expected.json.
pub fn expected() -> &'static Value {
    static EXPECTED: OnceLock<Value> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/expected.json");
        let text = std::fs::read_to_string(&path).expect("expected.json is committed");
        serde_json::from_str(&text).expect("expected.json is valid JSON")
    })
}

pub fn expected_for(name: &str) -> &'static Value {
    &expected()["tokenizers"][name]
}

pub fn ids(value: &Value) -> Vec<u32> {
    serde_json::from_value(value.clone()).expect("a list of token ids")
}

pub fn text(value: &Value) -> &str {
    value.as_str().expect("a string")
}

pub fn messages(value: &Value) -> Vec<ChatMessage> {
    serde_json::from_value(value.clone()).expect("a list of {role, content} messages")
}

/// A temporary model directory with a fixture's tokenizer.json and a tokenizer config
/// edited by `edit`.
pub fn edited_dir(name: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> tempfile::TempDir {
    let src = fixture_dir(name);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(src.join("tokenizer.json"), dir.path().join("tokenizer.json")).expect("copy tokenizer.json");
    let config_text = std::fs::read_to_string(src.join("tokenizer_config.json")).expect("read config");
    let mut config: serde_json::Map<String, Value> = serde_json::from_str(&config_text).expect("config is an object");
    edit(&mut config);
    write_json(&dir.path().join("tokenizer_config.json"), &Value::Object(config));
    dir
}

pub fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).expect("serialize")).expect("write json");
}

/// Collects mismatches so one run reports all of them.
#[derive(Default)]
pub struct Mismatches(Vec<String>);

impl Mismatches {
    pub fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: impl std::fmt::Display, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}:\n    got  {got:?}\n    want {want:?}"));
        }
    }

    pub fn assert_none(self) {
        assert!(self.0.is_empty(), "{} mismatches:\n{}", self.0.len(), self.0.join("\n"));
    }
}
