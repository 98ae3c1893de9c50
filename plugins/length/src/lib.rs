//! Reward plugin `length`: a penalty or bonus by completion length, counted in
//! characters (Unicode scalar values, the default) or whitespace-separated words.
//!
//! The config picks one rule with `mode`:
//! ```json
//! {"mode": "linear", "per_unit": 0.01, "cap": 200, "unit": "words"}
//! {"mode": "overlong", "max": 2000, "buffer": 500, "penalty": 1.0}
//! {"mode": "range", "min": 20, "max": 400, "inside": 1.0, "outside": 0.0}
//! ```
//! - `linear`: `per_unit * min(length, cap)`; positive `per_unit` is a bonus for length,
//!   negative a penalty (`cap` optional).
//! - `overlong`: DAPO's soft overlong punishment: 0 up to `max - buffer`, falling
//!   linearly to `-penalty` at `max`, and `-penalty` beyond.
//! - `range`: `inside` when `min <= length <= max` (either bound optional), else `outside`.

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::serde_json::Value;
use lora_grpo_plugin::{export_reward, Config, Error, RewardFunction, RewardInput};

/// What a length is counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", rename_all = "snake_case")]
pub enum Unit {
    #[default]
    Chars,
    Words,
}

impl Unit {
    /// The length of `text` in this unit.
    pub fn count(self, text: &str) -> usize {
        match self {
            Unit::Chars => text.chars().count(),
            Unit::Words => text.split_whitespace().count(),
        }
    }
}

/// How a length becomes a score.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    crate = "lora_grpo_plugin::serde",
    tag = "mode",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Rule {
    Linear {
        per_unit: f32,
        cap: Option<usize>,
    },
    Overlong {
        max: usize,
        buffer: usize,
        #[serde(default = "one")]
        penalty: f32,
    },
    Range {
        min: Option<usize>,
        max: Option<usize>,
        #[serde(default = "one")]
        inside: f32,
        #[serde(default)]
        outside: f32,
    },
}

fn one() -> f32 {
    1.0
}

impl Rule {
    /// The score for a completion `len` units long.
    pub fn score(&self, len: usize) -> f32 {
        match *self {
            Rule::Linear { per_unit, cap } => per_unit * cap.map_or(len, |c| len.min(c)) as f32,
            Rule::Overlong {
                max,
                buffer,
                penalty,
            } => {
                let safe = max - buffer;
                if len <= safe {
                    0.0
                } else if len <= max {
                    // Only reached with buffer >= 1.
                    -penalty * (len - safe) as f32 / buffer as f32
                } else {
                    -penalty
                }
            }
            Rule::Range {
                min,
                max,
                inside,
                outside,
            } => {
                let ok = min.is_none_or(|m| len >= m) && max.is_none_or(|m| len <= m);
                if ok {
                    inside
                } else {
                    outside
                }
            }
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let finite = |values: &[f32]| values.iter().all(|v| v.is_finite());
        match *self {
            Rule::Linear { per_unit, .. } if !finite(&[per_unit]) => {
                Err(Error::new("`per_unit` must be finite"))
            }
            Rule::Overlong { max, buffer, .. } if buffer > max => Err(Error::new(format!(
                "`buffer` ({buffer}) must not exceed `max` ({max})"
            ))),
            Rule::Overlong { penalty, .. } if !finite(&[penalty]) => {
                Err(Error::new("`penalty` must be finite"))
            }
            Rule::Range {
                min: Some(min),
                max: Some(max),
                ..
            } if min > max => Err(Error::new(format!(
                "`min` ({min}) must not exceed `max` ({max})"
            ))),
            Rule::Range {
                inside, outside, ..
            } if !finite(&[inside, outside]) => {
                Err(Error::new("`inside` and `outside` must be finite"))
            }
            _ => Ok(()),
        }
    }
}

/// The reward function; see the crate docs for its config.
#[derive(Debug)]
pub struct Length {
    unit: Unit,
    rule: Rule,
}

impl RewardFunction for Length {
    fn new(config: &Config) -> Result<Self, Error> {
        // `unit` sits beside the rule's fields; serde cannot flatten into a
        // `deny_unknown_fields` enum, so take it out first.
        let mut fields = config.value().as_object().cloned().unwrap_or_default();
        let unit = match fields.remove("unit") {
            None => Unit::default(),
            Some(value) => Unit::deserialize(value)
                .map_err(|e| Error::new(format!("invalid config: `unit`: {e}")))?,
        };
        let rule = Rule::deserialize(Value::Object(fields))
            .map_err(|e| Error::new(format!("invalid config: {e}")))?;
        rule.validate()?;
        Ok(Length { unit, rule })
    }

    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
        Ok(batch
            .iter()
            .map(|input| self.rule.score(self.unit.count(input.completion)))
            .collect())
    }
}

export_reward!(Length, name = "length");

#[cfg(test)]
mod tests {
    use super::*;
    use lora_grpo_plugin::score_pairs;

    fn scores(config: &str, completions: &[&str]) -> Vec<f32> {
        let mut reward = Length::new(&Config::from_json(config).unwrap()).unwrap();
        let pairs: Vec<(&str, &str)> = completions.iter().map(|c| (*c, "")).collect();
        score_pairs(&mut reward, &pairs).unwrap()
    }

    #[test]
    fn units_count_chars_and_words() {
        assert_eq!(Unit::Chars.count("héllo wörld"), 11);
        assert_eq!(Unit::Words.count("  two\twords\n"), 2);
        assert_eq!(Unit::Words.count(""), 0);
    }

    #[test]
    fn linear_bonus_is_capped() {
        let config = r#"{"mode": "linear", "per_unit": 0.5, "cap": 3, "unit": "words"}"#;
        assert_eq!(
            scores(config, &["", "a b", "a b c d e"]),
            vec![0.0, 1.0, 1.5]
        );
        let penalty = r#"{"mode": "linear", "per_unit": -0.25}"#;
        assert_eq!(scores(penalty, &["abcd", "abcdefgh"]), vec![-1.0, -2.0]);
    }

    #[test]
    fn overlong_penalty_ramps_inside_the_buffer() {
        // Safe up to 6 characters, then -0.5 per character to -2 at 10 and beyond.
        let config = r#"{"mode": "overlong", "max": 10, "buffer": 4, "penalty": 2}"#;
        let texts = [
            "abcdef",
            "abcdefg",
            "abcdefgh",
            "abcdefghij",
            "abcdefghijkl",
        ];
        assert_eq!(scores(config, &texts), vec![0.0, -0.5, -1.0, -2.0, -2.0]);
        let hard = r#"{"mode": "overlong", "max": 3, "buffer": 0}"#;
        assert_eq!(scores(hard, &["abc", "abcd"]), vec![0.0, -1.0]);
    }

    #[test]
    fn range_scores_inside_and_outside() {
        let config = r#"{"mode": "range", "min": 2, "max": 3, "unit": "words", "outside": -1}"#;
        assert_eq!(
            scores(config, &["one", "one two", "a b c", "a b c d"]),
            vec![-1.0, 1.0, 1.0, -1.0]
        );
        let open = r#"{"mode": "range", "min": 2}"#;
        assert_eq!(scores(open, &["a", "ab", "abcdefgh"]), vec![0.0, 1.0, 1.0]);
    }

    #[test]
    fn bad_configs_are_rejected_with_reasons() {
        let err = |config: &str| {
            Length::new(&Config::from_json(config).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("{}").starts_with("invalid config: missing field `mode`"),
            "{}",
            err("{}")
        );
        assert!(err(r#"{"mode": "cubic"}"#).starts_with("invalid config: unknown variant `cubic`"));
        assert!(err(r#"{"mode": "linear", "per_unit": 1, "max": 3}"#)
            .starts_with("invalid config: unknown field `max`"));
        assert!(err(r#"{"mode": "range", "unit": "tokens"}"#)
            .starts_with("invalid config: `unit`: unknown variant `tokens`"));
        assert_eq!(
            err(r#"{"mode": "overlong", "max": 3, "buffer": 4}"#),
            "`buffer` (4) must not exceed `max` (3)"
        );
        assert_eq!(
            err(r#"{"mode": "range", "min": 5, "max": 4}"#),
            "`min` (5) must not exceed `max` (4)"
        );
    }
}
