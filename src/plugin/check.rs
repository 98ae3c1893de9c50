//! `lora-grpo plugins list` and `plugins check`: what the search path holds, and one
//! sample call through a plugin.

use std::fmt;
use std::path::PathBuf;

use serde_json::json;

use super::{PluginHost, PluginInfo, PluginKind, Prompt, RewardInput, Sample};
use crate::error::PluginError;

/// The plugins found in a search path, and the libraries that could not be used.
#[derive(Debug)]
pub struct ListReport {
    pub search_dirs: Vec<PathBuf>,
    pub found: Vec<(PathBuf, Result<PluginInfo, PluginError>)>,
}

impl ListReport {
    /// Lists `host`'s search path.
    pub fn new(host: &mut PluginHost) -> Self {
        ListReport {
            search_dirs: host.search_path().dirs().to_vec(),
            found: host.list(),
        }
    }
}

impl fmt::Display for ListReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plugins: Vec<&PluginInfo> = self
            .found
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .collect();
        if plugins.is_empty() {
            writeln!(f, "no plugins found")?;
        } else {
            let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
            writeln!(f, "{:<8} {:<width$} {:<8} PATH", "KIND", "NAME", "VERSION")?;
            for p in plugins {
                let (name, version, path) = (&p.name, &p.version, p.path.display());
                writeln!(
                    f,
                    "{:<8} {name:<width$} {version:<8} {path}",
                    p.kind.to_string()
                )?;
            }
        }
        for (path, result) in &self.found {
            if let Err(err) = result {
                writeln!(
                    f,
                    "\nnot usable: {}\n  {}",
                    path.display(),
                    err.to_string().replace('\n', "\n  ")
                )?;
            }
        }
        writeln!(f, "\nsearched, in order:")?;
        for dir in &self.search_dirs {
            writeln!(f, "  {}", dir.display())?;
        }
        Ok(())
    }
}

/// What one sample call through a plugin gave.
#[derive(Debug)]
pub struct CheckReport {
    pub info: PluginInfo,
    pub outcome: CheckOutcome,
}

/// The sample call's results, by kind.
#[derive(Debug)]
pub enum CheckOutcome {
    /// The built-in batch, each completion and reference with its score.
    Reward { scored: Vec<(String, String, f32)> },
    /// The split's size hint and its first samples.
    Dataset {
        split: String,
        size_hint: (usize, Option<usize>),
        samples: Vec<Sample>,
    },
}

/// Loads `name_or_path`, checks its header, and makes one real call: a reward plugin
/// scores a small built-in batch (two prompts, two completions each); a dataset plugin
/// opens `split` and reads up to `samples` samples. Any plugin error fails the check.
pub fn check(
    host: &mut PluginHost,
    name_or_path: &str,
    config_json: &str,
    split: &str,
    samples: usize,
) -> Result<CheckReport, PluginError> {
    let info = host.info_any(name_or_path)?;
    let outcome = match info.kind {
        PluginKind::Reward => {
            let mut reward = host.load_reward(name_or_path, config_json)?;
            let metadata = json!({"source": "lora-grpo plugins check"});
            let batch = [
                ("What is 6 * 7?", "<answer>42</answer>", "42", 0),
                (
                    "What is 6 * 7?",
                    "6 * 7 = 41, so the answer is 41.",
                    "42",
                    0,
                ),
                (
                    "What is 10 - 4?",
                    "<think>10 - 4 = 6</think>\n<answer>6</answer>",
                    "6",
                    1,
                ),
                ("What is 10 - 4?", "", "6", 1),
            ];
            let inputs: Vec<RewardInput<'_>> = batch
                .iter()
                .map(|&(prompt, completion, answer, group)| RewardInput {
                    prompt,
                    completion,
                    answer,
                    metadata: &metadata,
                    group,
                })
                .collect();
            let scores = reward.score(&inputs)?;
            let scored = batch
                .iter()
                .zip(scores)
                .map(|(&(_, completion, answer, _), score)| {
                    (completion.to_owned(), answer.to_owned(), score)
                })
                .collect();
            CheckOutcome::Reward { scored }
        }
        PluginKind::Dataset => {
            let mut dataset = host.load_dataset(name_or_path, config_json, split)?;
            let size_hint = dataset.remaining()?;
            let samples = dataset.by_ref().take(samples).collect::<Result<_, _>>()?;
            CheckOutcome::Dataset {
                split: split.to_owned(),
                size_hint,
                samples,
            }
        }
    };
    Ok(CheckReport { info, outcome })
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        writeln!(
            f,
            "ok: {} plugin `{}` {} (SDK {}, ABI {}.{})",
            i.kind, i.name, i.version, i.sdk_version, i.abi.0, i.abi.1
        )?;
        writeln!(f, "  {}", i.path.display())?;
        if !i.description.is_empty() {
            writeln!(f, "  {}", i.description)?;
        }
        match &self.outcome {
            CheckOutcome::Reward { scored } => {
                writeln!(f, "sample call: scored {} completions", scored.len())?;
                for (completion, answer, score) in scored {
                    writeln!(f, "  {score:>9.4}  {completion:?} (reference {answer:?})")?;
                }
            }
            CheckOutcome::Dataset {
                split,
                size_hint,
                samples,
            } => {
                let upper = size_hint.1.map_or("unknown".to_owned(), |u| u.to_string());
                writeln!(f, "split `{split}`: {} to {upper} samples", size_hint.0)?;
                writeln!(f, "first {} samples:", samples.len())?;
                for sample in samples {
                    let prompt = match &sample.prompt {
                        Prompt::Text(text) => format!("{text:?}"),
                        Prompt::Messages(m) => serde_json::to_string(m).unwrap_or_default(),
                    };
                    writeln!(f, "  prompt:   {prompt}")?;
                    writeln!(f, "  answer:   {:?}", sample.answer)?;
                    writeln!(
                        f,
                        "  metadata: {}",
                        serde_json::Value::Object(sample.metadata.clone())
                    )?;
                    if let Some(row) = sample.row {
                        writeln!(f, "  row:      {row}")?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}
