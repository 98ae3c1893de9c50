//! The pretraining text: problems drawn by the `arithmetic` dataset plugin (through the
//! plugin host, as the GRPO demo draws them), as ChatML chats whose assistant turn is the
//! answer in the tag the `math-answer` reward reads first: `<answer>-26</answer>`.

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
    /// The user's message, e.g. `What is 57 - 83?`.
    pub question: String,
    /// The reference answer as the plugin gives it, e.g. `-26`.
    pub answer: String,
}

impl Problem {
    /// The chat up to and including the assistant header: what a model is prompted with.
    pub fn prompt(&self) -> String {
        format!(
            "{IM_START}user\n{}{IM_END}\n{IM_START}assistant\n",
            self.question
        )
    }

    /// The assistant's reply, without the closing `<|im_end|>`.
    pub fn reply(&self) -> String {
        format!("<answer>{}</answer>", self.answer)
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
