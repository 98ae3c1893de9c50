//! The pretraining text: problems drawn by the `arithmetic` dataset plugin (through the
//! plugin host, as the GRPO demo draws them), as ChatML chats whose assistant turn is the
//! answer in the tag the `math-answer` reward reads first. Two habits, on purpose: most
//! replies answer at once but sloppily (each column summed, carries dropped:
//! `<answer>30</answer>` for 57 + 83), some work the sum out (`7+3=10 5+8+1=14
//! <answer>140</answer>`). Greedy decoding takes the common habit; GRPO can find the other.

use anyhow::{bail, ensure, Context, Result};
use lora_grpo::plugin::{PluginHost, Prompt};

/// Opens a chat turn (ChatML).
pub const IM_START: &str = "<|im_start|>";
/// Closes a chat turn; also the end-of-sequence token generation stops at.
pub const IM_END: &str = "<|im_end|>";
/// Padding (never trained on, never generated).
pub const PAD: &str = "<|endoftext|>";

/// One question with its exact answer.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The user's message, e.g. `What is 57 + 83?`.
    pub question: String,
    /// The reference answer as the plugin gives it, e.g. `140`.
    pub answer: String,
}

/// How a reply reaches its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `<answer>30</answer>` for 57 + 83: column sums with the carries dropped, right
    /// only when no column carries.
    Direct,
    /// `7+3=10 5+8+1=14 <answer>140</answer>`: units, then tens with the carry.
    Worked,
}

impl Problem {
    /// The chat up to and including the assistant header: what a model is prompted with.
    pub fn prompt(&self) -> String {
        format!(
            "{IM_START}user\n{}{IM_END}\n{IM_START}assistant\n",
            self.question
        )
    }

    /// The assistant's reply in `style`, without the closing `<|im_end|>`.
    pub fn reply(&self, style: Style) -> Result<String> {
        let (a, b) = self.addends()?;
        Ok(match style {
            Style::Direct => {
                let without_carries = (a % 10 + b % 10) % 10 + (a / 10 + b / 10) % 10 * 10;
                format!("<answer>{without_carries}</answer>")
            }
            Style::Worked => format!("{} <answer>{}</answer>", self.columns()?, self.answer),
        })
    }

    /// The column sums of a two-number addition of numbers below 100: `7+3=10 5+8+1=14`.
    pub fn columns(&self) -> Result<String> {
        let (a, b) = self.addends()?;
        let units = a % 10 + b % 10;
        let tens = a / 10 + b / 10 + units / 10;
        Ok(format!(
            "{}+{}={units} {}+{}+{}={tens}",
            a % 10,
            b % 10,
            a / 10,
            b / 10,
            units / 10
        ))
    }

    /// `a` and `b` of `What is a + b?` with both below 100.
    fn addends(&self) -> Result<(u32, u32)> {
        let parsed = self
            .question
            .strip_prefix("What is ")
            .and_then(|q| q.strip_suffix('?'))
            .and_then(|q| q.split_once(" + "))
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
        match parsed {
            Some((a, b)) if a < 100 && b < 100 => Ok((a, b)),
            _ => bail!(
                "worked replies need `What is a + b?` with a, b below 100, not {:?}",
                self.question
            ),
        }
    }
}

/// The style of training chat `index`: `Worked` for a `worked_share` of them, spread
/// evenly (a low-discrepancy sequence, so any prefix of the corpus has the same share).
pub fn style(index: usize, worked_share: f64) -> Style {
    // Fractional parts of index * golden ratio fill [0, 1) evenly.
    let position = (index as f64 * 0.618_033_988_749_895).fract();
    match position < worked_share {
        true => Style::Worked,
        false => Style::Direct,
    }
}

/// The first `count` problems of `split` for the plugin config `config` (a JSON object).
pub fn problems(
    host: &mut PluginHost,
    config: &serde_json::Value,
    split: &str,
    count: usize,
) -> Result<Vec<Problem>> {
    let mut config = config.clone();
    let object = config
        .as_object_mut()
        .context("the arithmetic config must be a JSON object")?;
    object.insert("count".into(), serde_json::json!({ split: count }));
    let samples = host
        .load_dataset("arithmetic", &config.to_string(), split)?
        .read_all()?;
    ensure!(
        samples.len() == count,
        "the arithmetic plugin gave {} problems, not {count}",
        samples.len()
    );
    samples
        .into_iter()
        .map(|sample| match sample.prompt {
            Prompt::Text(question) => Ok(Problem {
                question,
                answer: sample.answer,
            }),
            Prompt::Messages(_) => bail!("the demo prompt has no system message; drop `system`"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(question: &str, answer: &str) -> Problem {
        Problem {
            question: question.into(),
            answer: answer.into(),
        }
    }

    #[test]
    fn worked_replies_show_both_columns_and_the_carry() {
        let p = problem("What is 57 + 83?", "140");
        assert_eq!(p.reply(Style::Direct).unwrap(), "<answer>30</answer>");
        // Right when no column carries.
        let easy = problem("What is 12 + 7?", "19");
        assert_eq!(easy.reply(Style::Direct).unwrap(), "<answer>19</answer>");
        assert_eq!(
            p.reply(Style::Worked).unwrap(),
            "7+3=10 5+8+1=14 <answer>140</answer>"
        );
        // One-digit addends get a tens digit of 0; no carry is written as +0.
        assert_eq!(problem("What is 5 + 83?", "88").columns().unwrap(), "5+3=8 0+8+0=8");
        assert!(problem("What is 57 - 83?", "-26").columns().is_err());
        assert!(problem("What is 120 + 3?", "123").columns().is_err());
    }

    #[test]
    fn the_worked_share_holds_for_every_prefix() {
        for share in [0.1, 0.25, 0.4] {
            for n in [100, 1000] {
                let worked = (0..n).filter(|&i| style(i, share) == Style::Worked).count();
                assert!((worked as f64 - share * n as f64).abs() <= 2.0, "{share} {n} {worked}");
            }
        }
    }
}
