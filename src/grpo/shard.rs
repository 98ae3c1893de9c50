//! A GRPO step split over data-parallel ranks: which of the step's prompts each rank rolls
//! out, where its completions sit in the step (so its groups are those one process would
//! sample), and the per-completion numbers every rank gathers so that advantages (`batch`
//! scaling too), filters and reward metrics are computed over the whole step, identically
//! everywhere.

use mlx_rs::error::Exception;
use mlx_rs::Array;

use super::rollout::Rollout;
use crate::distributed::World;
use crate::generate::GlobalRows;
use crate::error::{DistributedError, TrainError};

/// This rank's consecutive share of a step's prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Index of its first prompt within the step.
    pub first: usize,
    /// Prompts it takes.
    pub len: usize,
}

impl Shard {
    /// Rank `rank` of `ranks` takes `batch_size / ranks` prompts; the batch must divide.
    pub fn new(batch_size: usize, rank: usize, ranks: usize) -> Result<Self, TrainError> {
        if ranks == 0 || !batch_size.is_multiple_of(ranks) {
            return Err(TrainError::Distributed(DistributedError::Config(format!(
                "grpo.batch_size {batch_size} cannot be split evenly over {ranks} ranks: make it a multiple of {ranks}"
            ))));
        }
        let len = batch_size / ranks;
        Ok(Shard { first: rank * len, len })
    }

    /// The shard's completions in the step's prompt-major order (`group` per prompt).
    pub fn completions(&self, group: usize) -> std::ops::Range<usize> {
        self.first * group..(self.first + self.len) * group
    }

    /// Where the shard's completions sit among the step's `batch_size * group`: sampled
    /// as rows of the whole step, the ranks' groups do not depend on how it is split.
    pub fn global_rows(&self, batch_size: usize, group: usize) -> GlobalRows {
        GlobalRows { first: self.first * group, total: batch_size * group }
    }
}

/// Numbers of each completion of a step that the whole step's statistics need.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionTable {
    /// Weighted reward sum per completion.
    pub rewards: Vec<f32>,
    /// `[reward function][completion]` scores.
    pub scores: Vec<Vec<f32>>,
    /// Sampled tokens per completion.
    pub lengths: Vec<f32>,
    /// 1 for completions cut at the length limit.
    pub truncated: Vec<f32>,
    /// Whether any rank was asked to stop (Ctrl-C) by the time it gathered.
    pub interrupted: bool,
}

impl CompletionTable {
    /// This rank's completions.
    pub fn local(rewards: Vec<f32>, scores: Vec<Vec<f32>>, rollouts: &[Rollout], interrupted: bool) -> Self {
        CompletionTable {
            rewards,
            scores,
            lengths: rollouts.iter().map(|r| r.tokens.len() as f32).collect(),
            truncated: rollouts.iter().map(|r| r.truncated as u8 as f32).collect(),
            interrupted,
        }
    }

    /// Every rank's completions in rank order (the step's order); this table as is when
    /// there is one rank.
    pub fn gather(self, world: &World) -> Result<Self, Exception> {
        if !world.is_distributed() {
            return Ok(self);
        }
        // One row per completion: reward, scores..., length, truncated, interrupt flag.
        let columns = self.scores.len() + 4;
        let rows = self.rewards.len();
        let mut flat = Vec::with_capacity(rows * columns);
        for i in 0..rows {
            flat.push(self.rewards[i]);
            flat.extend(self.scores.iter().map(|s| s[i]));
            flat.extend([self.lengths[i], self.truncated[i], self.interrupted as u8 as f32]);
        }
        let local = Array::from_slice(&flat, &[rows as i32, columns as i32]);
        let all = world.all_gather(&local, "gathering the rewards")?;
        let all = all.as_slice::<f32>();
        let column = |c: usize| all.iter().skip(c).step_by(columns).copied().collect::<Vec<f32>>();
        Ok(CompletionTable {
            rewards: column(0),
            scores: (0..self.scores.len()).map(|k| column(1 + k)).collect(),
            lengths: column(columns - 3),
            truncated: column(columns - 2),
            interrupted: column(columns - 1).iter().any(|&f| f != 0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_batch_and_sample_as_rows_of_the_whole_step() {
        let whole = Shard::new(4, 0, 1).unwrap();
        let halves = [Shard::new(4, 0, 2).unwrap(), Shard::new(4, 1, 2).unwrap()];
        assert_eq!(halves[1], Shard { first: 2, len: 2 });
        assert_eq!(halves[1].completions(3), 6..12);
        assert_eq!(whole.global_rows(4, 3), GlobalRows { first: 0, total: 12 });
        assert_eq!(halves[0].global_rows(4, 3), GlobalRows { first: 0, total: 12 });
        assert_eq!(halves[1].global_rows(4, 3), GlobalRows { first: 6, total: 12 });
        let err = Shard::new(6, 0, 4).unwrap_err().to_string();
        assert!(err.contains("batch_size 6") && err.contains("multiple of 4"), "{err}");
    }
}
