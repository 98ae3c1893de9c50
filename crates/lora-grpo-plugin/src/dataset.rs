//! The dataset-format side of the SDK.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Config, Error};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What the model is asked: plain text, or chat messages for the chat template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    Messages(Vec<Message>),
}

impl Prompt {
    /// `user` alone as text, or as a user message after `system` when one is given.
    pub fn with_system(system: Option<&str>, user: impl Into<String>) -> Prompt {
        match system {
            Some(system) => Prompt::Messages(vec![
                Message::new("system", system),
                Message::new("user", user),
            ]),
            None => Prompt::Text(user.into()),
        }
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Prompt::Text(text)
    }
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Prompt::Text(text.to_owned())
    }
}

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub prompt: Prompt,
    /// Reference answer handed to reward functions (may be empty).
    pub answer: String,
    /// Anything else reward functions may need, passed to them as JSON.
    pub metadata: Map<String, Value>,
    /// 1-based row in the source, for error messages; `None` for generated data.
    pub row: Option<u64>,
}

impl Sample {
    pub fn new(prompt: impl Into<Prompt>, answer: impl Into<String>) -> Self {
        Sample {
            prompt: prompt.into(),
            answer: answer.into(),
            metadata: Map::new(),
            row: None,
        }
    }
}

/// A dataset format. Implement it and export it with
/// [`export_dataset!`](crate::export_dataset).
pub trait Dataset: Send + Sized + 'static {
    /// Opens `split` (e.g. `train` or `eval`) of the source the config describes.
    fn open(config: &Config, split: &str) -> Result<Self, Error>;

    /// The next sample, `None` at the end. Report a bad row with [`Error::at_row`].
    fn next_sample(&mut self) -> Option<Result<Sample, Error>>;

    /// Bounds on the number of samples still to come, as in `Iterator::size_hint`.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Opens `split` with config text and reads every sample, stopping at the first error:
/// a shortcut for a plugin's unit tests.
pub fn read_all<D: Dataset>(config: &str, split: &str) -> Result<Vec<Sample>, Error> {
    let mut dataset = D::open(&Config::from_json(config)?, split)?;
    std::iter::from_fn(|| dataset.next_sample()).collect()
}
