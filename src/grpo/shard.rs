//! A GRPO step split over data-parallel ranks: which of the step's prompts each rank rolls
//! out, the seeds that make its groups those one process would sample, and the
//! per-completion numbers every rank gathers so that advantages (`batch` scaling too),
//! filters and reward metrics are computed over the whole step, identically everywhere.

use mlx_rs::error::Exception;
use mlx_rs::Array;

use super::data::splitmix64;
use super::rollout::Rollout;
use crate::distributed::World;
use crate::error::TrainError;

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
            return Err(TrainError::Data(format!(
                "grpo.batch_size {batch_size} cannot be split evenly over {ranks} ranks: make it a multiple of {ranks}"
            )));
        }
        let len = batch_size / ranks;
        Ok(Shard { first: rank * len, len })
    }

    /// The shard's completions in the step's prompt-major order (`group` per prompt).
    pub fn completions(&self, group: usize) -> std::ops::Range<usize> {
        self.first * group..(self.first + self.len) * group
    }

    /// One sampling seed per completion of the shard, from the step's seed and the
    /// completion's place in the whole step, so the ranks' groups do not depend on how
    /// the step is split.
    pub fn completion_seeds(&self, step_seed: u64, group: usize) -> Vec<u64> {
        self.completions(group)
            .map(|c| {
                let mut state = step_seed ^ (c as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                splitmix64(&mut state)
            })
            .collect()
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
    fn shards_tile_the_batch_and_seeds_follow_the_global_position() {
        let whole = Shard::new(4, 0, 1).unwrap();
        let halves = [Shard::new(4, 0, 2).unwrap(), Shard::new(4, 1, 2).unwrap()];
        assert_eq!(halves[1], Shard { first: 2, len: 2 });
        assert_eq!(halves[1].completions(3), 6..12);
        let joined = [halves[0].completion_seeds(9, 3), halves[1].completion_seeds(9, 3)].concat();
        assert_eq!(joined, whole.completion_seeds(9, 3));
        let mut distinct = joined.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 12);
        let err = Shard::new(6, 0, 4).unwrap_err().to_string();
        assert!(err.contains("batch_size 6") && err.contains("multiple of 4"), "{err}");
    }
}
