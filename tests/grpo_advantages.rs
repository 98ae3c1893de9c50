//! Advantages checked against hand-computed values (arithmetic in the comments), with
//! the standard deviation Bessel-corrected as TRL's `nanstd` and `torch.std` compute it.

use lora_grpo::error::GrpoError;
use lora_grpo::grpo::{compute_advantages, ScaleRewards};

// Three groups of four: one mixed, one all equal, one with a single success.
const REWARDS: [f32; 12] = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 0.0, 0.0, 0.0];

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() < 1e-6,
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn group_scaling_divides_by_each_groups_unbiased_std_plus_eps() {
    let a = compute_advantages(&REWARDS, 4, ScaleRewards::Group).unwrap();
    // Group 0: mean 0.5, deviations +-0.5, variance (4 * 0.25) / (4 - 1) = 1/3.
    let s0 = (1.0f64 / 3.0).sqrt() + 1e-4;
    // Group 1: all 2.0, std 0: advantages 0 / (0 + 1e-4) = 0.
    // Group 2: mean 0.75, deviations 2.25, -0.75 x3; squares 5.0625 + 3 * 0.5625 = 6.75;
    // variance 6.75 / 3 = 2.25, std 1.5.
    let s2 = 1.5 + 1e-4;
    #[rustfmt::skip]
    let want = [
        0.5 / s0, -0.5 / s0, -0.5 / s0, 0.5 / s0,
        0.0, 0.0, 0.0, 0.0,
        2.25 / s2, -0.75 / s2, -0.75 / s2, -0.75 / s2,
    ];
    assert_close(&a.values, &want);
    assert_close(&a.group_std, &[(1.0f64 / 3.0).sqrt(), 0.0, 1.5]);
    assert_eq!(a.equal_groups, vec![false, true, false]);
    assert!((a.equal_fraction() - 1.0 / 3.0).abs() < 1e-7);
}

#[test]
fn batch_scaling_keeps_group_means_but_uses_the_batch_std() {
    let a = compute_advantages(&REWARDS, 4, ScaleRewards::Batch).unwrap();
    // All 12 rewards: sum 13, mean 13/12; sum of squares 1 + 1 + 4 * 4 + 9 = 27;
    // squared deviations 27 - 12 * (13/12)^2 = 27 - 169/12 = 155/12; variance / 11 = 155/132.
    let s = (155.0f64 / 132.0).sqrt() + 1e-4;
    #[rustfmt::skip]
    let want = [
        0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s,
        0.0, 0.0, 0.0, 0.0,
        2.25 / s, -0.75 / s, -0.75 / s, -0.75 / s,
    ];
    assert_close(&a.values, &want);
}

#[test]
fn no_scaling_only_subtracts_the_group_mean() {
    let a = compute_advantages(&REWARDS, 4, ScaleRewards::None).unwrap();
    assert_close(
        &a.values,
        &[
            0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 2.25, -0.75, -0.75, -0.75,
        ],
    );
}

#[test]
fn filtering_drops_only_groups_whose_rewards_are_all_equal() {
    let a = compute_advantages(&REWARDS, 4, ScaleRewards::Group).unwrap();
    assert_eq!(a.kept(false), (0..12).collect::<Vec<_>>());
    assert_eq!(a.kept(true), vec![0, 1, 2, 3, 8, 9, 10, 11]);
    // Nearly equal is not equal: a tiny difference still carries a signal.
    let a = compute_advantages(
        &[1.0, 1.0, 1.0, 1.0 + 1e-6, 0.5, 0.5],
        2,
        ScaleRewards::Group,
    )
    .unwrap();
    assert_eq!(a.equal_groups, vec![true, false, true]);
    assert_eq!(a.kept(true), vec![2, 3]);
}

#[test]
fn ragged_batches_and_non_finite_rewards_are_refused() {
    assert!(matches!(
        compute_advantages(&REWARDS[..10], 4, ScaleRewards::Group),
        Err(GrpoError::Ragged {
            count: 10,
            group_size: 4
        })
    ));
    assert!(matches!(
        compute_advantages(&[], 4, ScaleRewards::Group),
        Err(GrpoError::Ragged { count: 0, .. })
    ));
    assert!(matches!(
        compute_advantages(&REWARDS, 1, ScaleRewards::Group),
        Err(GrpoError::Ragged { group_size: 1, .. })
    ));
    let mut bad = REWARDS;
    bad[5] = f32::NAN;
    let err = compute_advantages(&bad, 4, ScaleRewards::Group).unwrap_err();
    assert!(matches!(err, GrpoError::NonFiniteReward { index: 5, .. }));
    assert_eq!(
        err.to_string(),
        "reward of completion 5 is NaN, not a finite number"
    );
}
