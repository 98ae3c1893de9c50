//! Group-relative advantages from rewards, computed on the host (rewards come from
//! plugins as plain floats).
//!
//! As in TRL's `GRPOTrainer`: `A = (r - mean of r's group) / (std + 1e-4)`, where `std` is
//! the group's (`group`) or the whole batch's (`batch`) standard deviation with Bessel's
//! correction (TRL's `nanstd` multiplies the variance by `n / (n - 1)`, like `torch.std`),
//! and `none` skips the division (Dr. GRPO). The baseline mean is always the group's.

use serde::{Deserialize, Serialize};

use crate::error::GrpoError;

/// Added to the standard deviation before dividing, as TRL does.
pub const ADVANTAGE_EPS: f64 = 1e-4;

/// How advantages are scaled after subtracting the group mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the standard deviation of the completion's own group.
    Group,
    /// Divide by the standard deviation of all rewards in the batch.
    Batch,
    /// Do not divide (Dr. GRPO): advantages keep the reward's scale.
    None,
}

/// Advantages of one generation batch, in rollout order: group 0's completions first.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One advantage per completion.
    pub values: Vec<f32>,
    /// Each group's reward standard deviation (Bessel-corrected), for metrics.
    pub group_std: Vec<f32>,
    /// Whether each group's rewards are all exactly equal, so it teaches nothing.
    pub equal_groups: Vec<bool>,
    group_size: usize,
}

impl Advantages {
    /// Indices of the completions to train on: all of them, or with `filter_equal_groups`
    /// only those of groups whose rewards differ (DAPO's dynamic-sampling filter).
    pub fn kept(&self, filter_equal_groups: bool) -> Vec<usize> {
        (0..self.values.len())
            .filter(|i| !(filter_equal_groups && self.equal_groups[i / self.group_size]))
            .collect()
    }

    /// The fraction of groups whose rewards are all equal.
    pub fn equal_fraction(&self) -> f32 {
        let equal = self.equal_groups.iter().filter(|&&e| e).count();
        equal as f32 / self.equal_groups.len().max(1) as f32
    }
}

/// Computes advantages for `rewards` laid out as consecutive groups of `group_size`.
///
/// Statistics are taken in f64. Filtering equal groups (see [`Advantages::kept`]) happens
/// after this, so `batch` scaling always sees every reward that was sampled.
pub fn compute_advantages(
    rewards: &[f32],
    group_size: usize,
    scale: ScaleRewards,
) -> Result<Advantages, GrpoError> {
    if group_size < 2 || rewards.is_empty() || !rewards.len().is_multiple_of(group_size) {
        return Err(GrpoError::Ragged {
            count: rewards.len(),
            group_size,
        });
    }
    if let Some((index, &value)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(GrpoError::NonFiniteReward { index, value });
    }
    let rewards: Vec<f64> = rewards.iter().map(|&r| f64::from(r)).collect();
    let groups: Vec<&[f64]> = rewards.chunks(group_size).collect();
    let group_std: Vec<f64> = groups.iter().map(|g| unbiased_std(g)).collect();
    let batch_std = unbiased_std(&rewards);

    let mut values = Vec::with_capacity(rewards.len());
    for (g, group) in groups.iter().enumerate() {
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        let divisor = match scale {
            ScaleRewards::Group => group_std[g] + ADVANTAGE_EPS,
            ScaleRewards::Batch => batch_std + ADVANTAGE_EPS,
            ScaleRewards::None => 1.0,
        };
        values.extend(group.iter().map(|r| ((r - mean) / divisor) as f32));
    }
    Ok(Advantages {
        values,
        group_std: group_std.iter().map(|&s| s as f32).collect(),
        equal_groups: groups
            .iter()
            .map(|g| g.iter().all(|&r| r == g[0]))
            .collect(),
        group_size,
    })
}

/// Standard deviation with Bessel's correction (divides by n - 1); n >= 2 here.
fn unbiased_std(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}
