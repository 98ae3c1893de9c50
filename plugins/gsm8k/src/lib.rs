//! Dataset plugin `gsm8k`: GSM8K-style JSON Lines rows
//! `{"question": "...", "answer": "<worked solution>\n#### 72"}`.
//!
//! The reference answer is the text after the last `####` (thousands commas removed);
//! the worked solution goes to reward functions as metadata `solution`, together with
//! any other columns of the row.
//!
//! Config:
//! ```json
//! {"path": {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"},
//!  "template": "{question}\nGive the final answer after ####.",
//!  "system": "You are a careful math tutor."}
//! ```
//! `path` is one file or a file per split; `template` (default `{question}`) must
//! contain `{question}`; `system` turns the prompt into chat messages.

use lora_grpo_plugin::jsonl::{JsonLines, Row, SplitPath};
use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::serde_json::Value;
use lora_grpo_plugin::{export_dataset, Config, Dataset, Error, Prompt, Sample};

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields)]
struct Settings {
    path: SplitPath,
    #[serde(default = "question_only")]
    template: String,
    #[serde(default)]
    system: Option<String>,
}

fn question_only() -> String {
    "{question}".into()
}

/// One open split; see the crate docs for the config.
#[derive(Debug)]
pub struct Gsm8k {
    settings: Settings,
    rows: JsonLines,
}

impl Dataset for Gsm8k {
    fn open(config: &Config, split: &str) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        if !settings.template.contains("{question}") {
            return Err(Error::new("`template` must contain `{question}`"));
        }
        let rows = JsonLines::open(settings.path.for_split(split)?)?;
        Ok(Gsm8k { settings, rows })
    }

    fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
        let row = self.rows.next_row()?;
        Some(row.and_then(|row| self.sample(row)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl Gsm8k {
    fn sample(&self, mut row: Row) -> Result<Sample, Error> {
        let question = row.take_string("question")?;
        let solution = row.take_string("answer")?;
        let answer = final_answer(&solution).ok_or_else(|| {
            Error::at_row(row.number, "`answer` has no final answer after `####`")
        })?;
        let text = self.settings.template.replace("{question}", &question);
        let mut sample = Sample::new(
            Prompt::with_system(self.settings.system.as_deref(), text),
            answer,
        );
        sample.metadata = std::mem::take(&mut row.fields);
        sample
            .metadata
            .insert("solution".into(), Value::String(solution));
        sample.row = Some(row.number);
        Ok(sample)
    }
}

/// The text after the last `####`, trimmed, without thousands commas; `None` if blank.
pub fn final_answer(solution: &str) -> Option<String> {
    let (_, after) = solution.rsplit_once("####")?;
    let answer = after.trim().replace(',', "");
    (!answer.is_empty()).then_some(answer)
}

export_dataset!(Gsm8k, name = "gsm8k");

#[cfg(test)]
mod tests {
    use super::*;
    use lora_grpo_plugin::serde_json::json;
    use lora_grpo_plugin::{read_all, Message};

    // The first training row of GSM8K (openai/grade-school-math, train.jsonl).
    const NATALIA: &str = r#"{"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"}"#;

    #[test]
    fn final_answer_is_after_the_last_marker() {
        assert_eq!(final_answer("a\n#### 72"), Some("72".into()));
        assert_eq!(final_answer("#### 1 \n#### 1,250 "), Some("1250".into()));
        assert_eq!(final_answer("#### -3"), Some("-3".into()));
        assert_eq!(final_answer("no marker 5"), None);
        assert_eq!(final_answer("####   "), None);
    }

    #[test]
    fn reads_gsm8k_rows_with_template_and_system() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.jsonl");
        std::fs::write(&path, format!("{NATALIA}\n")).unwrap();
        let settings = json!({
            "path": {"train": path},
            "template": "Q: {question}\nEnd with #### N.",
            "system": "Think step by step."
        });
        let samples = read_all::<Gsm8k>(&settings.to_string(), "train").unwrap();
        assert_eq!(samples.len(), 1);
        let s = &samples[0];
        assert_eq!(s.answer, "72");
        assert_eq!(s.row, Some(1));
        let Prompt::Messages(messages) = &s.prompt else {
            panic!("expected messages")
        };
        assert_eq!(messages[0], Message::new("system", "Think step by step."));
        assert!(messages[1].content.starts_with("Q: Natalia sold clips"));
        assert!(messages[1]
            .content
            .ends_with("April and May?\nEnd with #### N."));
        assert!(s.metadata["solution"]
            .as_str()
            .unwrap()
            .ends_with("#### 72"));
    }

    #[test]
    fn bad_rows_and_configs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, format!("{NATALIA}\n{{\"question\": \"q\", \"answer\": \"no marker\"}}\n{{\"question\": 1}}\n")).unwrap();
        let settings = json!({"path": path}).to_string();
        let mut dataset = Gsm8k::open(&Config::from_json(&settings).unwrap(), "train").unwrap();
        assert_eq!(dataset.next_sample().unwrap().unwrap().answer, "72");
        let err = dataset.next_sample().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 2: `answer` has no final answer after `####`"
        );
        let err = dataset.next_sample().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 3: column `question` must be a string, got a number"
        );
        assert!(dataset.next_sample().is_none());

        let bad_template = json!({"path": path, "template": "Solve it"}).to_string();
        let err = read_all::<Gsm8k>(&bad_template, "train").unwrap_err();
        assert_eq!(err.to_string(), "`template` must contain `{question}`");
    }
}
