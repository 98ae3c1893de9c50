//! Bad or unusual model directories: errors name the file and key; EOS ids combine the
//! tokenizer config with generation_config.json.

use crate::support::*;
use lora_grpo::error::TokenizerError;
use lora_grpo::tokenizer::Tokenizer;
use serde_json::json;

fn load_err(dir: &std::path::Path) -> TokenizerError {
    match Tokenizer::from_dir(dir) {
        Ok(_) => panic!("{} should not load", dir.display()),
        Err(err) => err,
    }
}

#[test]
fn missing_files_are_named() {
    let empty = tempfile::tempdir().unwrap();
    let err = load_err(empty.path());
    assert!(matches!(&err, TokenizerError::MissingFile { path, .. } if path.ends_with("tokenizer.json")), "{err:?}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    let no_config = tempfile::tempdir().unwrap();
    std::fs::copy(fixture_dir("qwen3").join("tokenizer.json"), no_config.path().join("tokenizer.json")).unwrap();
    let err = load_err(no_config.path());
    assert!(
        matches!(&err, TokenizerError::MissingFile { path, .. } if path.ends_with("tokenizer_config.json")),
        "{err:?}"
    );
}

#[test]
fn unreadable_json_is_reported_with_the_file() {
    let dir = edited_dir("qwen3", |_| {});
    std::fs::write(dir.path().join("tokenizer_config.json"), "{\n  \"eos_token\": \"<|im_end|>\",\n}").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::Json { path, .. } if path.ends_with("tokenizer_config.json")), "{err:?}");
    assert!(err.to_string().contains("line 3"), "{err}");

    let dir = edited_dir("qwen3", |_| {});
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 1}").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::TokenizerJson { path, .. } if path.ends_with("tokenizer.json")), "{err:?}");
}

#[test]
fn special_tokens_may_be_added_token_objects() {
    let dir = edited_dir("llama3_1", |config| {
        config.insert("eos_token".into(), json!({"__type": "AddedToken", "content": "<|end_of_text|>", "special": true}));
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.eos_token_ids(), &[128001]);
}

#[test]
fn bad_special_tokens_name_the_key() {
    let cases = [
        (json!(42), "eos_token", "a string, null or an object"),
        (json!({"content": 7}), "eos_token.content", "a string"),
    ];
    for (value, key, expected) in cases {
        let dir = edited_dir("qwen3", |config| {
            config.insert("eos_token".into(), value.clone());
        });
        let err = load_err(dir.path());
        match &err {
            TokenizerError::InvalidKey { key: k, expected: e, .. } => {
                assert_eq!(k, key);
                assert!(e.starts_with(expected), "{e}");
            }
            other => panic!("expected InvalidKey for {value}, got {other:?}"),
        }
    }
    let dir = edited_dir("qwen3", |config| {
        config.insert("pad_token".into(), json!("<|no_such_token|>"));
    });
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::UnknownToken { key, .. } if key == "pad_token"), "{err:?}");
    assert!(err.to_string().contains("<|no_such_token|>"), "{err}");

    let dir = edited_dir("qwen3", |config| {
        config.insert("chat_template".into(), json!([{"name": "default"}]));
    });
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::InvalidKey { key, .. } if key == "chat_template[0].template"), "{err:?}");
}

#[test]
fn generation_config_eos_ids_join_the_tokenizers() {
    let dir = edited_dir("llama3_1", |_| {});
    let generation = dir.path().join("generation_config.json");
    // Llama 3.1 Instruct's generation_config.json lists three ids; the tokenizer's <|eot_id|> comes first.
    write_json(&generation, &json!({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}));
    assert_eq!(Tokenizer::from_dir(dir.path()).unwrap().eos_token_ids(), &[128009, 128001, 128008]);

    write_json(&generation, &json!({"eos_token_id": 128001}));
    assert_eq!(Tokenizer::from_dir(dir.path()).unwrap().eos_token_ids(), &[128009, 128001]);

    write_json(&generation, &json!({"temperature": 0.6}));
    assert_eq!(Tokenizer::from_dir(dir.path()).unwrap().eos_token_ids(), &[128009]);

    write_json(&generation, &json!({"eos_token_id": [128001, 128256]}));
    let err = load_err(dir.path());
    assert!(
        matches!(&err, TokenizerError::TokenIdOutOfRange { id: 128256, vocab_size: 128256, path, .. }
            if path.ends_with("generation_config.json")),
        "{err:?}"
    );

    write_json(&generation, &json!({"eos_token_id": ["<|eot_id|>"]}));
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::InvalidKey { key, .. } if key == "eos_token_id"), "{err:?}");

    std::fs::write(&generation, "not json").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(&err, TokenizerError::Json { path, .. } if path.ends_with("generation_config.json")), "{err:?}");
}
