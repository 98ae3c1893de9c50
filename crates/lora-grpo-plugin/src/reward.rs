//! The reward-function side of the SDK.

use serde_json::Value;

use crate::{Config, Error};

/// One completion to score, with what the dataset said about its prompt.
#[derive(Debug, Clone, Copy)]
pub struct RewardInput<'a> {
    /// The prompt as the model saw it.
    pub prompt: &'a str,
    /// The sampled completion.
    pub completion: &'a str,
    /// The dataset's reference answer (may be empty).
    pub answer: &'a str,
    /// The dataset row's metadata, always a JSON object.
    pub metadata: &'a Value,
    /// Completions sampled for the same prompt share a group id.
    pub group: u64,
}

/// A reward function. Implement it and export it with
/// [`export_reward!`](crate::export_reward).
pub trait RewardFunction: Send + Sized + 'static {
    /// Builds the function from its recipe config; an `Err` is shown to the user as is.
    fn new(config: &Config) -> Result<Self, Error>;

    /// Scores every completion in `batch`: exactly one finite `f32` each, in order.
    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error>;
}

/// Scores `(completion, answer)` pairs with an empty prompt and metadata, each pair in
/// its own group: a shortcut for a plugin's unit tests.
pub fn score_pairs<R: RewardFunction>(
    reward: &mut R,
    pairs: &[(&str, &str)],
) -> Result<Vec<f32>, Error> {
    let metadata = Value::Object(serde_json::Map::new());
    let batch: Vec<RewardInput<'_>> = pairs
        .iter()
        .zip(0..)
        .map(|(&(completion, answer), group)| RewardInput {
            prompt: "",
            completion,
            answer,
            metadata: &metadata,
            group,
        })
        .collect();
    reward.score(&batch)
}
