//! Incremental decoding for generation, checked against whole-sequence decodes from
//! transformers, and stop-string search.

use crate::support::*;
use lora_grpo::tokenizer::{IncrementalDecoder, StopMatch};

#[test]
fn pushing_tokens_one_at_a_time_rebuilds_the_transformers_decode() {
    let mut bad = Mismatches::default();
    for name in NAMES {
        let tok = tokenizer(name);
        for case in expected_for(name)["encodings"].as_array().unwrap() {
            let all = ids(&case["ids_with_special"]);
            for (skip, key) in [(false, "decoded"), (true, "decoded_skip_special")] {
                let mut dec = IncrementalDecoder::new(skip);
                let mut chunks = String::new();
                for &id in &all {
                    let chunk = dec.push(tok, id).unwrap();
                    // The inputs are valid text: no chunk may show a half character.
                    assert!(!chunk.contains('\u{FFFD}'), "{name} {:?}: chunk {chunk:?}", case["text"]);
                    chunks.push_str(chunk);
                }
                chunks.push_str(dec.finish(tok).unwrap());
                bad.check(format!("{name} skip={skip} {:?}", case["text"]), chunks.as_str(), text(&case[key]));
                assert_eq!(dec.text(), chunks);
                assert_eq!(dec.ids(), all.as_slice());
            }
        }
    }
    bad.assert_none();
}

#[test]
fn text_is_held_back_until_a_character_is_complete() {
    for name in NAMES {
        let tok = tokenizer(name);
        let case = &expected_for(name)["prefix_decodes"];
        let all = ids(&case["ids"]);
        let decoded = case["decoded"].as_array().unwrap();
        let mut dec = IncrementalDecoder::new(false);
        for (k, &id) in all.iter().enumerate() {
            dec.push(tok, id).unwrap();
            // Text is released a whole token at a time: it is transformers' decode of the
            // longest prefix of the k+1 tokens that does not end inside a character.
            let complete = (0..=k + 1).rev().find(|&j| !text(&decoded[j]).ends_with('\u{FFFD}')).unwrap();
            assert_eq!(dec.text(), text(&decoded[complete]), "{name}: after {} tokens", k + 1);
        }
    }
}

#[test]
fn finish_releases_an_incomplete_character_as_decode_shows_it() {
    for name in NAMES {
        let tok = tokenizer(name);
        let case = &expected_for(name)["prefix_decodes"];
        let all = ids(&case["ids"]);
        let decoded = case["decoded"].as_array().unwrap();
        let k = decoded.iter().position(|d| text(d).ends_with('\u{FFFD}')).expect("a split character");
        let mut dec = IncrementalDecoder::new(false);
        for &id in &all[..k] {
            dec.push(tok, id).unwrap();
        }
        assert!(!dec.text().ends_with('\u{FFFD}'));
        let tail = dec.finish(tok).unwrap().to_string();
        assert!(tail.ends_with('\u{FFFD}'), "{name}: {tail:?}");
        assert_eq!(dec.text(), text(&decoded[k]), "{name}");
    }
}

#[test]
fn stop_strings_are_reported_once_at_the_token_that_completes_them() {
    let tok = tokenizer("qwen3");
    let sample = "The answer is 42.\n\nQuestion: what next? 👍 done";
    let all = tok.encode(sample, false).unwrap();
    // Qwen3 tokens: ... '.\n\n'(6) 'Question'(7) ':'(8) ... ' \xf0\x9f\x91'(12) '\x8d'(13) ' done'(14);
    // "\n\n" ends inside token 6, "Question:" spans 7-8, the emoji's bytes span 12-13.
    assert_eq!(all.len(), 15);
    let stops = ["Question:", "\n\n", "👍", ""];
    let mut dec = IncrementalDecoder::new(true);
    let mut reports = Vec::new();
    for (i, &id) in all.iter().enumerate() {
        let since = dec.text().len();
        dec.push(tok, id).unwrap();
        if let Some(found) = dec.find_stop(&stops, since) {
            reports.push((i, found));
        }
    }
    let at = |s: &str| sample.find(s).unwrap();
    assert_eq!(
        reports,
        vec![
            (6, StopMatch { stop: 1, start: at("\n\n") }),
            (8, StopMatch { stop: 0, start: at("Question:") }),
            (13, StopMatch { stop: 2, start: at("👍") }),
        ]
    );
    assert_eq!(dec.find_stop(&stops, dec.text().len()), None, "old matches are not reported again");
    assert_eq!(dec.find_stop(&stops, 0).map(|m| m.start), Some(at("\n\n")), "a full search finds the first");
    let no_stops: [&str; 0] = [];
    assert_eq!(dec.find_stop(&no_stops, 0), None);
}
