//! Dataset plugin `jsonl`: one JSON object per line, with configurable columns.
//!
//! Config:
//! ```json
//! {"path": {"train": "data/train.jsonl", "eval": "data/eval.jsonl"},
//!  "prompt_column": "prompt", "messages_column": null, "answer_column": "answer",
//!  "metadata_columns": ["id", "level"], "system": "You are a careful solver."}
//! ```
//! - `path`: one file (used for every split) or a file per split. Relative paths are
//!   taken from the working directory.
//! - The prompt is the string column `prompt_column` (default `prompt`), or, when
//!   `messages_column` is set, that column's list of `{"role", "content"}` messages.
//! - `answer_column` (default `answer`) may hold a string or a number; `null` means the
//!   data has no reference answers.
//! - `metadata_columns` go to reward functions as metadata; by default every column not
//!   used above does. A listed column missing from a row is an error at that row.
//! - `system`: a system prompt; the prompt becomes chat messages. Rows whose messages
//!   already start with a system message keep their own.

use lora_grpo_plugin::jsonl::{JsonLines, Row, SplitPath};
use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::serde_json::{self, Map, Value};
use lora_grpo_plugin::{export_dataset, Config, Dataset, Error, Message, Prompt, Sample};

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields)]
struct Settings {
    path: SplitPath,
    #[serde(default = "prompt_column")]
    prompt_column: String,
    #[serde(default)]
    messages_column: Option<String>,
    #[serde(default = "answer_column")]
    answer_column: Option<String>,
    #[serde(default)]
    metadata_columns: Option<Vec<String>>,
    #[serde(default)]
    system: Option<String>,
}

fn prompt_column() -> String {
    "prompt".into()
}

fn answer_column() -> Option<String> {
    Some("answer".into())
}

/// One open split; see the crate docs for the config.
#[derive(Debug)]
pub struct Jsonl {
    settings: Settings,
    rows: JsonLines,
}

impl Dataset for Jsonl {
    fn open(config: &Config, split: &str) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        let rows = JsonLines::open(settings.path.for_split(split)?)?;
        Ok(Jsonl { settings, rows })
    }

    fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
        let row = self.rows.next_row()?;
        Some(row.and_then(|row| self.sample(row)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl Jsonl {
    fn sample(&self, mut row: Row) -> Result<Sample, Error> {
        let s = &self.settings;
        let prompt = match &s.messages_column {
            Some(column) => {
                let value = row.take(column)?;
                let mut messages: Vec<Message> = serde_json::from_value(value).map_err(|e| {
                    Error::at_row(
                        row.number,
                        format!("column `{column}` must be a list of {{\"role\", \"content\"}} messages: {e}"),
                    )
                })?;
                if let Some(system) = &s.system {
                    if messages.first().is_none_or(|m| m.role != "system") {
                        messages.insert(0, Message::new("system", system.as_str()));
                    }
                }
                Prompt::Messages(messages)
            }
            None => Prompt::with_system(s.system.as_deref(), row.take_string(&s.prompt_column)?),
        };
        let answer = match &s.answer_column {
            None => String::new(),
            Some(column) => match row.take(column)? {
                Value::String(text) => text,
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(Error::at_row(
                        row.number,
                        format!("column `{column}` must be a string or a number, got {other}"),
                    ))
                }
            },
        };
        let metadata = match &s.metadata_columns {
            None => std::mem::take(&mut row.fields),
            Some(columns) => {
                let mut picked = Map::new();
                for column in columns {
                    picked.insert(column.clone(), row.take(column)?);
                }
                picked
            }
        };
        Ok(Sample {
            prompt,
            answer,
            metadata,
            row: Some(row.number),
        })
    }
}

export_dataset!(Jsonl, name = "jsonl");

#[cfg(test)]
mod tests {
    use super::*;
    use lora_grpo_plugin::read_all;
    use lora_grpo_plugin::serde_json::json;
    use std::path::Path;

    fn data(dir: &Path, name: &str, lines: &[&str]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.display().to_string()
    }

    fn config(value: Value) -> String {
        value.to_string()
    }

    #[test]
    fn prompt_answer_and_remaining_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = data(
            dir.path(),
            "d.jsonl",
            &[
                r#"{"prompt": "2+2?", "answer": "4", "id": 7}"#,
                "",
                r#"{"prompt": "3*3?", "answer": 9, "tags": ["x"]}"#,
            ],
        );
        let samples = read_all::<Jsonl>(&config(json!({"path": path})), "train").unwrap();
        let mut first = Sample::new("2+2?", "4");
        first.metadata.insert("id".into(), json!(7));
        first.row = Some(1);
        let mut second = Sample::new("3*3?", "9");
        second.metadata.insert("tags".into(), json!(["x"]));
        second.row = Some(3);
        assert_eq!(samples, vec![first, second]);
    }

    #[test]
    fn column_mapping_system_prompt_and_chosen_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = data(
            dir.path(),
            "d.jsonl",
            &[r#"{"q": "Capital of France?", "a": "Paris", "level": 1, "noise": 0}"#],
        );
        let settings = json!({
            "path": path, "prompt_column": "q", "answer_column": "a",
            "metadata_columns": ["level"], "system": "Be brief."
        });
        let samples = read_all::<Jsonl>(&config(settings), "eval").unwrap();
        assert_eq!(
            samples[0].prompt,
            Prompt::Messages(vec![
                Message::new("system", "Be brief."),
                Message::new("user", "Capital of France?")
            ])
        );
        assert_eq!(samples[0].answer, "Paris");
        assert_eq!(
            Value::Object(samples[0].metadata.clone()),
            json!({"level": 1})
        );
    }

    #[test]
    fn messages_column_keeps_a_rows_own_system_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = data(
            dir.path(),
            "d.jsonl",
            &[
                r#"{"chat": [{"role": "user", "content": "Hi"}]}"#,
                r#"{"chat": [{"role": "system", "content": "Own."}, {"role": "user", "content": "Yo"}]}"#,
            ],
        );
        let settings = json!({"path": path, "messages_column": "chat", "answer_column": null, "system": "Default."});
        let samples = read_all::<Jsonl>(&config(settings), "train").unwrap();
        let roles = |s: &Sample| match &s.prompt {
            Prompt::Messages(m) => m
                .iter()
                .map(|m| format!("{}:{}", m.role, m.content))
                .collect::<Vec<_>>(),
            Prompt::Text(_) => panic!("expected messages"),
        };
        assert_eq!(roles(&samples[0]), ["system:Default.", "user:Hi"]);
        assert_eq!(roles(&samples[1]), ["system:Own.", "user:Yo"]);
        assert_eq!(samples[1].answer, "");
    }

    #[test]
    fn row_errors_carry_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = data(
            dir.path(),
            "d.jsonl",
            &[
                r#"{"prompt": "ok", "answer": "1"}"#,
                r#"{"prompt": "no answer"}"#,
                r#"{"prompt": "x", "answer": [1]}"#,
                r#"{"messages": "not a list", "answer": "1"}"#,
                "{broken",
            ],
        );
        let mut dataset = Jsonl::open(
            &Config::from_json(&config(json!({"path": path}))).unwrap(),
            "train",
        )
        .unwrap();
        assert_eq!(dataset.size_hint(), (5, Some(5)));
        let results: Vec<Result<Sample, Error>> =
            std::iter::from_fn(|| dataset.next_sample()).collect();
        assert!(results[0].is_ok());
        let errors: Vec<String> = results[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(errors[0], "row 2: missing column `answer`");
        assert_eq!(
            errors[1],
            "row 3: column `answer` must be a string or a number, got [1]"
        );
        assert_eq!(errors[2], "row 4: missing column `prompt`");
        assert!(
            errors[3].starts_with("row 5: invalid JSON: "),
            "{}",
            errors[3]
        );

        let bad_messages = json!({"path": path, "messages_column": "messages"});
        let err = read_all::<Jsonl>(&config(bad_messages), "train").unwrap_err();
        assert_eq!(err.row(), Some(1));
        assert_eq!(err.message(), "missing column `messages`");
    }

    #[test]
    fn per_split_paths_and_open_errors() {
        let dir = tempfile::tempdir().unwrap();
        let train = data(
            dir.path(),
            "t.jsonl",
            &[r#"{"prompt": "t", "answer": "1"}"#],
        );
        let settings = config(json!({"path": {"train": train}}));
        assert_eq!(read_all::<Jsonl>(&settings, "train").unwrap().len(), 1);
        let err = read_all::<Jsonl>(&settings, "eval").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no file for split `eval` in `path` (it has: train)"
        );
        let err = read_all::<Jsonl>("{}", "train").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid config: missing field `path`"),
            "{err}"
        );
    }
}
