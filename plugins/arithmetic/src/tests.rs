use std::collections::HashSet;

use lora_grpo_plugin::serde_json::{self, json, Value};
use lora_grpo_plugin::{read_all, Message};

use super::*;

/// Written by `tests/reference.py`, a Python port of the generator.
const GOLDEN: &str = include_str!("../tests/golden.json");

fn golden(key: &str) -> Value {
    let all: Value = serde_json::from_str(GOLDEN).unwrap();
    all[key].clone()
}

fn read(config: Value, split: &str) -> Vec<Sample> {
    read_all::<Arithmetic>(&config.to_string(), split).unwrap()
}

fn open_err(config: Value, split: &str) -> String {
    Arithmetic::open(&Config::from_json(&config.to_string()).unwrap(), split)
        .unwrap_err()
        .to_string()
}

fn expression(s: &Sample) -> String {
    s.metadata["expression"].as_str().unwrap().to_owned()
}

/// `[expression, answer]` pairs, as the golden file has them.
fn pairs(samples: &[Sample]) -> Value {
    samples
        .iter()
        .map(|s| json!([expression(s), s.answer]))
        .collect()
}

/// Evaluates the written expression by recursive descent over its text: independent of
/// the generator's operand lists.
fn eval_text(text: &str) -> i64 {
    let tokens: Vec<String> = text
        .replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut pos = 0;
    let value = sum(&tokens, &mut pos);
    assert_eq!(pos, tokens.len(), "trailing tokens in {text}");
    value
}

fn sum(t: &[String], pos: &mut usize) -> i64 {
    let mut value = product(t, pos);
    while *pos < t.len() && (t[*pos] == "+" || t[*pos] == "-") {
        let op = t[*pos].clone();
        *pos += 1;
        let rhs = product(t, pos);
        value = if op == "+" { value + rhs } else { value - rhs };
    }
    value
}

fn product(t: &[String], pos: &mut usize) -> i64 {
    let mut value = atom(t, pos);
    while *pos < t.len() && (t[*pos] == "*" || t[*pos] == "/") {
        let op = t[*pos].clone();
        *pos += 1;
        let rhs = atom(t, pos);
        if op == "*" {
            value *= rhs;
        } else {
            assert_eq!(value % rhs, 0, "inexact division {value} / {rhs}");
            value /= rhs;
        }
    }
    value
}

fn atom(t: &[String], pos: &mut usize) -> i64 {
    let token = t[*pos].clone();
    *pos += 1;
    if token == "(" {
        let value = sum(t, pos);
        assert_eq!(t[*pos], ")");
        *pos += 1;
        value
    } else {
        token.parse().unwrap()
    }
}

#[test]
fn samples_match_the_python_reference() {
    assert_eq!(
        pairs(&read(json!({"count": 5}), "train")),
        golden("default_train")
    );
    assert_eq!(
        pairs(&read(json!({"count": 5}), "eval")),
        golden("default_eval")
    );
    let mixed = json!({
        "seed": 42, "count": 6, "min": -5, "max": 20, "operations": ["+", "-", "*", "/"],
        "terms": [2, 4], "allow_negative": false, "unique": true, "eval_share": 0.25
    });
    assert_eq!(pairs(&read(mixed.clone(), "train")), golden("mixed_train"));
    assert_eq!(pairs(&read(mixed, "test")), golden("mixed_eval"));
    let division = json!({"seed": 7, "count": 4, "min": 1, "max": 50, "operations": ["/"]});
    assert_eq!(pairs(&read(division, "train")), golden("division_train"));

    let mut rng = SplitMix64::new(0);
    let stream: Vec<String> = (0..3).map(|_| format!("{:#x}", rng.next_u64())).collect();
    assert_eq!(json!(stream), golden("splitmix64_seed0"));
}

#[test]
fn answers_are_right_and_settings_are_respected() {
    let config = json!({
        "seed": 3, "count": 400, "min": -9, "max": 30, "operations": ["+", "-", "*", "/"],
        "terms": [2, 4], "allow_negative": false
    });
    let samples = read(config, "train");
    assert_eq!(samples.len(), 400);
    let mut ops_seen = HashSet::new();
    for (i, s) in samples.iter().enumerate() {
        let text = expression(s);
        assert_eq!(s.answer, eval_text(&text).to_string(), "{text}");
        assert!(s.answer.parse::<i64>().unwrap() >= 0, "{text}");
        let tokens: Vec<&str> = text.split(' ').collect();
        let operands: Vec<i64> = tokens
            .iter()
            .step_by(2)
            .map(|t| t.trim_matches(['(', ')']).parse().unwrap())
            .collect();
        assert!((2..=4).contains(&operands.len()), "{text}");
        assert!(operands.iter().all(|x| (-9..=30).contains(x)), "{text}");
        ops_seen.extend(tokens.iter().skip(1).step_by(2).map(|t| t.to_string()));
        assert_eq!(s.prompt, Prompt::Text(format!("What is {text}?")));
        assert_eq!(s.metadata["index"], json!(i));
        assert_eq!(s.metadata["split"], json!("train"));
        assert_eq!(s.row, None);
    }
    assert_eq!(
        ops_seen,
        HashSet::from(["+", "-", "*", "/"].map(String::from))
    );
}

#[test]
fn same_seed_same_samples_other_seed_other_samples() {
    let config =
        |seed: u64| json!({"seed": seed, "count": 50, "digits": 3, "operations": ["*", "-"]});
    let a = read(config(11), "train");
    assert_eq!(a, read(config(11), "train"));
    let b = read(config(12), "train");
    assert_ne!(pairs(&a), pairs(&b));
    assert!(a
        .iter()
        .all(|s| expression(s).split(' ').step_by(2).all(|x| x.len() <= 3)));
}

#[test]
fn splits_never_overlap_even_in_a_tiny_space() {
    // 1-digit sums: 100 distinct problems, far fewer than the samples asked for.
    let config = json!({"count": {"train": 3000, "eval": 600}, "digits": 1, "operations": ["+"]});
    let train: HashSet<String> = read(config.clone(), "train")
        .iter()
        .map(expression)
        .collect();
    let eval: HashSet<String> = read(config, "eval").iter().map(expression).collect();
    assert!(train.is_disjoint(&eval));
    // Every problem lands in one split; 3000 and 600 draws see all of each side.
    assert_eq!(train.len() + eval.len(), 100);
    assert!(
        (2..=25).contains(&eval.len()),
        "eval holds {} of 100",
        eval.len()
    );
}

#[test]
fn unique_never_repeats_and_fails_when_the_space_runs_out() {
    let config =
        json!({"count": 80, "digits": 1, "operations": ["+"], "unique": true, "eval_share": 0.05});
    let train = read(config, "train");
    let distinct: HashSet<String> = train.iter().map(expression).collect();
    assert_eq!(distinct.len(), 80);

    let too_many = json!({"count": 150, "digits": 1, "operations": ["+"], "unique": true});
    let mut dataset =
        Arithmetic::open(&Config::from_json(&too_many.to_string()).unwrap(), "train").unwrap();
    let results: Vec<Result<Sample, Error>> =
        std::iter::from_fn(|| dataset.next_sample()).collect();
    assert_eq!(results.len(), 150);
    let first_err = results.iter().position(|r| r.is_err()).unwrap();
    assert!((80..=100).contains(&first_err), "ran out after {first_err}");
    let err = results[first_err].as_ref().unwrap_err().to_string();
    assert!(
        err.starts_with("no new `train` problem in 100000 draws"),
        "{err}"
    );
}

#[test]
fn system_prompt_template_and_size_hint() {
    let config = json!({"count": 2, "template": "Compute {expression}. Reply with a number.", "system": "Be exact."});
    let mut dataset =
        Arithmetic::open(&Config::from_json(&config.to_string()).unwrap(), "train").unwrap();
    assert_eq!(dataset.size_hint(), (2, Some(2)));
    let sample = dataset.next_sample().unwrap().unwrap();
    assert_eq!(dataset.size_hint(), (1, Some(1)));
    let text = expression(&sample);
    assert_eq!(
        sample.prompt,
        Prompt::Messages(vec![
            Message::new("system", "Be exact."),
            Message::new("user", format!("Compute {text}. Reply with a number.")),
        ])
    );
    assert!(dataset.next_sample().unwrap().is_ok());
    assert!(dataset.next_sample().is_none());
    assert_eq!(dataset.size_hint(), (0, Some(0)));
}

#[test]
fn bad_configs_are_rejected_at_open() {
    assert_eq!(
        open_err(json!({}), "dev"),
        "unknown split `dev`: use `train` or `eval` (also `test`, `valid`, `validation`)"
    );
    assert_eq!(
        open_err(json!({"digits": 2, "max": 5}), "train"),
        "set `digits` or `min`/`max`, not both"
    );
    assert_eq!(
        open_err(json!({"digits": 19}), "train"),
        "`digits` must be between 1 and 18"
    );
    assert_eq!(
        open_err(json!({"min": 5, "max": 1}), "train"),
        "operand range 5..=1 must have min <= max, within +-10^18"
    );
    assert_eq!(
        open_err(json!({"operations": ["^"]}), "train"),
        "unknown operation `^`: use `+`, `-`, `*` or `/`"
    );
    assert_eq!(
        open_err(json!({"terms": [3, 2]}), "train"),
        "`terms` 3..=2 must be between 2 and 16 operands, min first"
    );
    assert_eq!(
        open_err(json!({"eval_share": 1.0}), "train"),
        "`eval_share` must be at least 0 and below 1"
    );
    assert_eq!(
        open_err(json!({"eval_share": 0.0}), "eval"),
        "`eval_share` is 0, so the eval split has no problems"
    );
    assert_eq!(
        open_err(json!({"template": "Solve"}), "train"),
        "`template` must contain `{expression}`"
    );
    assert_eq!(
        open_err(json!({"count": {"train": 5, "dev": 1}}), "train"),
        "`count` has unknown split `dev`"
    );
    assert_eq!(
        open_err(json!({"count": {"train": 5}}), "eval"),
        "`count` has no entry for split `eval`"
    );
    // Only `0 / 0` can be drawn, and division by zero is never allowed.
    let impossible = open_err(json!({"min": 0, "max": 0, "operations": ["/"]}), "train");
    assert!(
        impossible.starts_with("no new `train` problem in 100000 draws"),
        "{impossible}"
    );
    assert!(open_err(json!({"sed": 1}), "train").starts_with("invalid config: unknown field `sed`"));
}
