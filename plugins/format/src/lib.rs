//! Reward plugin `format`: checks the shape of a completion, not its correctness.
//!
//! Two modes; the config names exactly one of `tags` or `pattern`:
//! ```json
//! {"tags": ["think", "answer"], "correct": 1.0, "wrong": 0.0, "partial": 0.25,
//!  "allow_outside": false}
//! {"pattern": "<think>.*?</think>\\s*<answer>\\d+</answer>", "correct": 1.0, "wrong": 0.0}
//! ```
//! - `tags`: the completion scores `correct` when each tag appears exactly once as
//!   `<tag>...</tag>` with non-blank content, in the given order, and (unless
//!   `allow_outside`) with only whitespace outside the tags. Otherwise it scores
//!   `wrong + partial * (number of tags that are well formed on their own)`, so
//!   `partial` is the credit per tag (0 = all or nothing).
//! - `pattern`: `correct` when the regex matches the whole completion (`.` also matches
//!   newlines), else `wrong`.

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::{export_reward, Config, Error, RewardFunction, RewardInput};
use regex::Regex;

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields)]
struct Settings {
    tags: Option<Vec<String>>,
    pattern: Option<String>,
    #[serde(default = "one")]
    correct: f32,
    #[serde(default)]
    wrong: f32,
    #[serde(default)]
    partial: f32,
    #[serde(default)]
    allow_outside: bool,
}

fn one() -> f32 {
    1.0
}

/// What a completion must look like.
#[derive(Debug)]
enum Check {
    Tags {
        tags: Vec<String>,
        allow_outside: bool,
    },
    Pattern(Regex),
}

/// The reward function; see the crate docs for its config.
#[derive(Debug)]
pub struct Format {
    check: Check,
    correct: f32,
    wrong: f32,
    partial: f32,
}

impl RewardFunction for Format {
    fn new(config: &Config) -> Result<Self, Error> {
        let s: Settings = config.parse()?;
        if ![s.correct, s.wrong, s.partial]
            .iter()
            .all(|v| v.is_finite())
        {
            return Err(Error::new(
                "`correct`, `wrong` and `partial` must be finite",
            ));
        }
        let check = match (s.tags, s.pattern) {
            (Some(tags), None) => {
                if tags.is_empty() {
                    return Err(Error::new("`tags` must name at least one tag"));
                }
                if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
                    return Err(Error::new(format!(
                        "tag `{bad}` must be non-empty without `<`, `>`, `/` or whitespace"
                    )));
                }
                Check::Tags {
                    tags,
                    allow_outside: s.allow_outside,
                }
            }
            (None, Some(pattern)) => {
                if s.partial != 0.0 || s.allow_outside {
                    return Err(Error::new(
                        "`partial` and `allow_outside` apply to `tags`, not to `pattern`",
                    ));
                }
                let anchored = format!(r"(?s)\A(?:{pattern})\z");
                Check::Pattern(
                    Regex::new(&anchored)
                        .map_err(|e| Error::new(format!("`pattern` is not a valid regex: {e}")))?,
                )
            }
            _ => return Err(Error::new("set exactly one of `tags` or `pattern`")),
        };
        Ok(Format {
            check,
            correct: s.correct,
            wrong: s.wrong,
            partial: s.partial,
        })
    }

    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
        Ok(batch
            .iter()
            .map(|input| self.score_one(input.completion))
            .collect())
    }
}

impl Format {
    fn score_one(&self, completion: &str) -> f32 {
        match &self.check {
            Check::Pattern(regex) => match regex.is_match(completion) {
                true => self.correct,
                false => self.wrong,
            },
            Check::Tags {
                tags,
                allow_outside,
            } => {
                let spans: Vec<Option<Span>> = tags.iter().map(|t| span(completion, t)).collect();
                if structure_complete(completion, &spans, *allow_outside) {
                    self.correct
                } else {
                    let formed = spans.iter().filter(|s| s.is_some()).count();
                    self.wrong + self.partial * formed as f32
                }
            }
        }
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && !tag
            .chars()
            .any(|c| matches!(c, '<' | '>' | '/') || c.is_whitespace())
}

/// Byte range of `<tag>...</tag>`, opening tag to end of closing tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// The tag's span when it opens and closes exactly once, in that order, around
/// non-blank content.
fn span(text: &str, tag: &str) -> Option<Span> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    if text.matches(&open).count() != 1 || text.matches(&close).count() != 1 {
        return None;
    }
    let start = text.find(&open)?;
    let close_at = text.find(&close)?;
    let inner = text.get(start + open.len()..close_at)?;
    (!inner.trim().is_empty()).then_some(Span {
        start,
        end: close_at + close.len(),
    })
}

/// Every tag formed, in order without overlap, and only whitespace between them unless
/// outside text is allowed.
fn structure_complete(text: &str, spans: &[Option<Span>], allow_outside: bool) -> bool {
    let Some(spans) = spans.iter().copied().collect::<Option<Vec<Span>>>() else {
        return false;
    };
    let mut cursor = 0;
    for span in &spans {
        if span.start < cursor {
            return false;
        }
        if !allow_outside && !text[cursor..span.start].trim().is_empty() {
            return false;
        }
        cursor = span.end;
    }
    allow_outside || text[cursor..].trim().is_empty()
}

export_reward!(Format, name = "format");

#[cfg(test)]
mod tests {
    use super::*;
    use lora_grpo_plugin::score_pairs;

    fn scores(config: &str, completions: &[&str]) -> Vec<f32> {
        let mut reward = Format::new(&Config::from_json(config).unwrap()).unwrap();
        let pairs: Vec<(&str, &str)> = completions.iter().map(|c| (*c, "")).collect();
        score_pairs(&mut reward, &pairs).unwrap()
    }

    #[test]
    fn tags_in_order_with_partial_credit() {
        let config = r#"{"tags": ["think", "answer"], "partial": 0.25, "wrong": -1}"#;
        let got = scores(
            config,
            &[
                "<think>2+2</think>\n<answer>4</answer>\n",
                "  <think>a</think><answer>4</answer>",
                "<answer>4</answer><think>late</think>",
                "Sure! <think>a</think><answer>4</answer>",
                "<think>a</think><answer> </answer>",
                "<think>a</think>",
                "<think>a</think><think>b</think><answer>4</answer>",
                "</think>x<think></answer>4<answer>",
                "no tags at all",
            ],
        );
        // Complete; complete; order wrong (2 formed); text outside (2 formed); blank
        // answer (1); answer missing (1); think twice (1: only answer); each closes
        // before it opens (0); nothing.
        assert_eq!(
            got,
            vec![1.0, 1.0, -0.5, -0.5, -0.75, -0.75, -0.75, -1.0, -1.0]
        );
    }

    #[test]
    fn outside_text_can_be_allowed() {
        let config = r#"{"tags": ["answer"], "allow_outside": true}"#;
        assert_eq!(
            scores(config, &["The result: <answer>4</answer>.", "4"]),
            vec![1.0, 0.0]
        );
    }

    #[test]
    fn pattern_must_match_the_whole_completion() {
        let config = r#"{"pattern": "<think>.*?</think>\\s*<answer>\\d+</answer>", "correct": 2}"#;
        let got = scores(
            config,
            &[
                "<think>line one\nline two</think>\n<answer>42</answer>",
                "<think>t</think><answer>42</answer> trailing",
                "<think>t</think><answer>forty</answer>",
            ],
        );
        assert_eq!(got, vec![2.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_configs_are_rejected_with_reasons() {
        let err = |config: &str| {
            Format::new(&Config::from_json(config).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("{}"), "set exactly one of `tags` or `pattern`");
        assert_eq!(
            err(r#"{"tags": ["a"], "pattern": "b"}"#),
            "set exactly one of `tags` or `pattern`"
        );
        assert_eq!(err(r#"{"tags": []}"#), "`tags` must name at least one tag");
        assert_eq!(
            err(r#"{"tags": ["<think>"]}"#),
            "tag `<think>` must be non-empty without `<`, `>`, `/` or whitespace"
        );
        assert!(err(r#"{"pattern": "("}"#).starts_with("`pattern` is not a valid regex: "));
        assert_eq!(
            err(r#"{"pattern": "x", "partial": 0.5}"#),
            "`partial` and `allow_outside` apply to `tags`, not to `pattern`"
        );
        assert!(err(r#"{"tag": ["a"]}"#).starts_with("invalid config: unknown field `tag`"));
    }
}
