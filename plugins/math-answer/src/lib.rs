//! Reward plugin `math-answer`: finds the completion's final answer (`<answer>42</answer>`,
//! `\boxed{42}`, GSM8K `#### 42`, or the last number) and compares it with the reference
//! answer numerically, so `1,000`, `1000.0` and `\frac{2}{2}` all equal `1000`/`1`.
//!
//! Config (all optional):
//! ```json
//! {"correct": 1.0, "wrong": 0.0, "no_answer": 0.0, "tolerance": 1e-6,
//!  "extract": ["answer_tag", "boxed", "gsm8k", "last_number"]}
//! ```
//! `tolerance` is relative (`|a - b| <= tolerance * max(1, |b|)`); `extract` sets where
//! to look and in which order. A reference that is not a number is compared as text.

mod extract;
mod number;

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::{export_reward, Config, Error, RewardFunction, RewardInput};

pub use extract::{final_answer, reference_answer, Answer, Extractor};

#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields, default)]
struct Settings {
    correct: f32,
    wrong: f32,
    no_answer: f32,
    tolerance: f64,
    extract: Vec<Extractor>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            correct: 1.0,
            wrong: 0.0,
            no_answer: 0.0,
            tolerance: 1e-6,
            extract: vec![
                Extractor::AnswerTag,
                Extractor::Boxed,
                Extractor::Gsm8k,
                Extractor::LastNumber,
            ],
        }
    }
}

/// The reward function; see the crate docs for its config.
pub struct MathAnswer {
    settings: Settings,
}

impl RewardFunction for MathAnswer {
    fn new(config: &Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        if settings.extract.is_empty() {
            return Err(Error::new("`extract` must name at least one extractor"));
        }
        let scores = [settings.correct, settings.wrong, settings.no_answer];
        if !(settings.tolerance >= 0.0 && scores.iter().all(|s| s.is_finite())) {
            return Err(Error::new(
                "`tolerance` must be >= 0 and every score finite",
            ));
        }
        Ok(MathAnswer { settings })
    }

    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
        let s = &self.settings;
        batch
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let reference = reference_answer(input.answer).ok_or_else(|| {
                    Error::new(format!(
                        "sample {i} has no reference answer (got {:?})",
                        input.answer
                    ))
                })?;
                Ok(match final_answer(input.completion, &s.extract) {
                    None => s.no_answer,
                    Some(answer) if answer.matches(&reference, s.tolerance) => s.correct,
                    Some(_) => s.wrong,
                })
            })
            .collect()
    }
}

export_reward!(MathAnswer, name = "math-answer");

#[cfg(test)]
mod tests {
    use super::*;
    use lora_grpo_plugin::score_pairs;

    fn reward(config: &str) -> MathAnswer {
        MathAnswer::new(&Config::from_json(config).unwrap()).unwrap()
    }

    #[test]
    fn scores_correct_wrong_and_missing_answers() {
        let mut r = reward(r#"{"correct": 2.0, "wrong": -1.0, "no_answer": -0.5}"#);
        let pairs = [
            ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
            ("<answer>1,000</answer>", "1000"),
            (r"\boxed{\frac{3}{4}}", "0.75"),
            ("It is -3.", "#### -3"),
            ("<answer>71</answer>", "72"),
            ("I don't know", "72"),
            ("<answer>Paris.</answer>", "paris"),
        ];
        assert_eq!(
            score_pairs(&mut r, &pairs).unwrap(),
            vec![2.0, 2.0, 2.0, 2.0, -1.0, -0.5, 2.0]
        );
    }

    #[test]
    fn extract_order_and_tolerance_are_configurable() {
        let text = r"<answer>5</answer> \boxed{6}";
        assert_eq!(
            score_pairs(&mut reward("{}"), &[(text, "5"), (text, "6")]).unwrap(),
            vec![1.0, 0.0]
        );
        let mut boxed_only = reward(r#"{"extract": ["boxed"]}"#);
        assert_eq!(
            score_pairs(&mut boxed_only, &[(text, "5"), (text, "6")]).unwrap(),
            vec![0.0, 1.0]
        );
        let mut loose = reward(r#"{"tolerance": 0.01}"#);
        assert_eq!(
            score_pairs(&mut loose, &[("3.33", "10/3"), ("3.2", "10/3")]).unwrap(),
            vec![1.0, 0.0]
        );
    }

    #[test]
    fn bad_config_and_missing_reference_are_errors() {
        let err = |config: &str| {
            MathAnswer::new(&Config::from_json(config).unwrap())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err(r#"{"corect": 1}"#).starts_with("invalid config: unknown field `corect`"));
        assert!(
            err(r#"{"extract": ["regex"]}"#).starts_with("invalid config: unknown variant `regex`")
        );
        assert_eq!(
            err(r#"{"extract": []}"#),
            "`extract` must name at least one extractor"
        );
        assert_eq!(
            err(r#"{"tolerance": -1}"#),
            "`tolerance` must be >= 0 and every score finite"
        );
        let e = score_pairs(&mut reward("{}"), &[("42", "")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"sample 0 has no reference answer (got "")"#
        );
    }
}
