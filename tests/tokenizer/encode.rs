//! Encoding and decoding against transformers.

use crate::support::*;
use lora_grpo::tokenizer::Tokenizer;

#[test]
fn tricky_strings_encode_and_decode_like_transformers() {
    let mut bad = Mismatches::default();
    for name in NAMES {
        let tok = tokenizer(name);
        let cases = expected_for(name)["encodings"].as_array().expect("encodings");
        assert!(cases.len() >= 20, "expected.json holds the full set of strings");
        for case in cases {
            let input = text(&case["text"]);
            let with_special = ids(&case["ids_with_special"]);
            bad.check(format!("{name} encode {input:?}"), tok.encode(input, false).unwrap(), ids(&case["ids"]));
            bad.check(format!("{name} encode+special {input:?}"), tok.encode(input, true).unwrap(), with_special.clone());
            bad.check(
                format!("{name} decode {input:?}"),
                tok.decode(&with_special, false).unwrap(),
                text(&case["decoded"]).to_string(),
            );
            bad.check(
                format!("{name} decode skipping special {input:?}"),
                tok.decode(&with_special, true).unwrap(),
                text(&case["decoded_skip_special"]).to_string(),
            );
        }
    }
    bad.assert_none();
}

#[test]
fn decoding_every_prefix_matches_transformers_including_split_characters() {
    for name in NAMES {
        let tok = tokenizer(name);
        let case = &expected_for(name)["prefix_decodes"];
        let all = ids(&case["ids"]);
        assert_eq!(tok.encode(text(&case["text"]), false).unwrap(), all, "{name}");
        let decoded = case["decoded"].as_array().unwrap();
        // The prefixes must include ones that end inside a character, or this tests little.
        assert!(decoded.iter().any(|d| text(d).ends_with('\u{FFFD}')), "{name}: no split character");
        for (k, want) in decoded.iter().enumerate() {
            assert_eq!(tok.decode(&all[..k], false).unwrap(), text(want), "{name}: first {k} tokens");
        }
    }
}

#[test]
fn vocabulary_size_and_special_ids_match_transformers() {
    for name in NAMES {
        let tok = tokenizer(name);
        let want = expected_for(name);
        assert_eq!(tok.vocab_size() as u64, want["vocab_size"].as_u64().unwrap(), "{name} vocab");
        assert_eq!(tok.bos_token_id().map(u64::from), want["bos_token_id"].as_u64(), "{name} bos");
        assert_eq!(tok.pad_token_id().map(u64::from), want["pad_token_id"].as_u64(), "{name} pad");
        // Without generation_config.json the tokenizer's EOS is the only one.
        let eos = want["eos_token_id"].as_u64().unwrap() as u32;
        assert_eq!(tok.eos_token_ids(), &[eos], "{name} eos");
    }
    assert_eq!(tokenizer("qwen3").token_to_id("<|im_end|>"), Some(151645));
    assert_eq!(tokenizer("llama3_1").bos_token(), Some("<|begin_of_text|>"));
    assert_eq!(tokenizer("qwen3").bos_token(), None);
}

#[test]
fn add_bos_token_false_is_ignored_when_tokenizer_json_exists_like_transformers() {
    let want = &expected()["llama3_1_add_bos_token_false"];
    let dir = edited_dir("llama3_1", |config| {
        config.insert("add_bos_token".into(), false.into());
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.encode(text(&want["text"]), true).unwrap(), ids(&want["ids_with_special"]));
}

#[test]
fn encode_prompt_adds_bos_exactly_once() {
    let llama = tokenizer("llama3_1");
    let want = ids(&expected()["llama3_1_add_bos_token_false"]["ids_with_special"]); // BOS "Hi there"
    assert_eq!(want[0], 128000);
    assert_eq!(llama.encode_prompt("Hi there").unwrap(), want);
    assert_eq!(llama.encode_prompt("<|begin_of_text|>Hi there").unwrap(), want);
    // Qwen3 has no BOS: the prompt is encoded as is.
    let qwen = tokenizer("qwen3");
    assert_eq!(qwen.encode_prompt("Hi there").unwrap(), qwen.encode("Hi there", false).unwrap());
}
