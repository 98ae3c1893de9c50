//! Sampling filters and draws against hand-computed distributions.
//! Run with `--test-threads=1` (MLX).

use lora_grpo::error::GenerateError;
use lora_grpo::generate::{filter_logprobs, policy_logprobs, sample, SamplingParams};
use mlx_rs::{random, Array};

const P: [f64; 5] = [0.5, 0.2, 0.15, 0.1, 0.05];
/// The same distribution in another order, so that filters are checked per row.
const ORDER: [usize; 5] = [3, 4, 0, 2, 1];

/// Two rows of logits: ln P, and ln P permuted by ORDER (row 1, column j = P[ORDER[j]]).
fn logits() -> Array {
    let row0: Vec<f32> = P.iter().map(|p| p.ln() as f32).collect();
    let row1: Vec<f32> = ORDER.iter().map(|&i| P[i].ln() as f32).collect();
    Array::from_slice(&[row0, row1].concat(), &[2, 5])
}

/// Which entries of P survive a filter, per row (row 1 mapped back to P's order).
fn kept(params: SamplingParams) -> [Vec<bool>; 2] {
    let lp = policy_logprobs(&logits(), params.temperature).unwrap();
    let out = filter_logprobs(&lp, &params).unwrap();
    let v = out.as_slice::<f32>();
    let row0: Vec<bool> = v[..5].iter().map(|x| x.is_finite()).collect();
    let mut row1 = vec![false; 5];
    for (j, &i) in ORDER.iter().enumerate() {
        row1[i] = v[5 + j].is_finite();
    }
    [row0, row1]
}

fn params(top_k: usize, top_p: f32, min_p: f32) -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        top_k,
        top_p,
        min_p,
    }
}

#[test]
fn top_k_keeps_the_k_most_likely() {
    let expected = vec![true, true, false, false, false];
    assert_eq!(kept(params(2, 1.0, 0.0)), [expected.clone(), expected]);
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_the_mass() {
    // 0.5 + 0.2 = 0.7 < 0.75, so 0.15 is needed too; 0.5 + 0.2 + 0.15 = 0.85 >= 0.75.
    let expected = vec![true, true, true, false, false];
    assert_eq!(kept(params(0, 0.75, 0.0)), [expected.clone(), expected]);
    // The most likely token always stays.
    let only_top = vec![true, false, false, false, false];
    assert_eq!(kept(params(0, 0.3, 0.0)), [only_top.clone(), only_top]);
}

#[test]
fn top_p_applies_to_the_distribution_renormalised_after_top_k() {
    // After top-k 3: 0.5/0.85 = 0.588, 0.2/0.85 = 0.235 -> 0.824 >= 0.8, so two remain
    // (without renormalising, 0.5 + 0.2 = 0.7 < 0.8 would keep three).
    let expected = vec![true, true, false, false, false];
    assert_eq!(kept(params(3, 0.8, 0.0)), [expected.clone(), expected]);
}

#[test]
fn min_p_drops_tokens_below_a_fraction_of_the_top_one() {
    // min_p 0.35: threshold 0.175 keeps 0.5 and 0.2; min_p 0.25: threshold 0.125 adds 0.15.
    let two = vec![true, true, false, false, false];
    assert_eq!(kept(params(0, 1.0, 0.35)), [two.clone(), two]);
    let three = vec![true, true, true, false, false];
    assert_eq!(kept(params(0, 1.0, 0.25)), [three.clone(), three]);
}

#[test]
fn temperature_scales_logits_before_the_softmax() {
    // log_softmax(ln p / 2) = ln(sqrt(p) / sum(sqrt(p))).
    let lp = policy_logprobs(&logits(), 2.0).unwrap();
    let total: f64 = P.iter().map(|p| p.sqrt()).sum();
    for (i, &got) in lp.as_slice::<f32>()[..5].iter().enumerate() {
        let expected = (P[i].sqrt() / total).ln();
        assert!(
            (got as f64 - expected).abs() < 1e-6,
            "token {i}: {got} vs {expected}"
        );
    }
}

/// Draws `n` tokens from one distribution in one batched call; returns frequencies and
/// the reported log-probs.
fn draw(params: SamplingParams, n: i32, seed: u64) -> (Vec<f64>, Vec<f32>, Vec<u32>) {
    let row: Vec<f32> = P.iter().map(|p| p.ln() as f32).collect();
    let many = Array::repeat_axis::<f32>(Array::from_slice(&row, &[1, 5]), n, 0).unwrap();
    let key = random::key(seed).unwrap();
    let s = sample(&many, &params, &key).unwrap();
    let tokens = s.tokens.as_slice::<u32>().to_vec();
    let mut freq = vec![0.0; 5];
    for &t in &tokens {
        freq[t as usize] += 1.0 / n as f64;
    }
    (freq, s.logprobs.as_slice::<f32>().to_vec(), tokens)
}

#[test]
fn draws_follow_the_filtered_tempered_distribution() {
    let n = 20000;
    // Top-k 3 at T = 1: 0.5, 0.2, 0.15 renormalised by 0.85.
    let (freq, logprobs, tokens) = draw(params(3, 1.0, 0.0), n, 1);
    let expected = [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85, 0.0, 0.0];
    for i in 0..5 {
        assert!(
            (freq[i] - expected[i]).abs() < 0.015,
            "top-k: token {i} drawn {:.4}, expected {:.4}",
            freq[i],
            expected[i]
        );
    }
    // Reported log-probs are of the unfiltered distribution: ln P[token].
    for (t, lp) in tokens.iter().zip(&logprobs) {
        assert!((*lp as f64 - P[*t as usize].ln()).abs() < 1e-6);
    }
    // T = 2, no filter: proportional to sqrt(p).
    let t2 = SamplingParams {
        temperature: 2.0,
        ..SamplingParams::default()
    };
    let (freq, _, _) = draw(t2, n, 2);
    let total: f64 = P.iter().map(|p| p.sqrt()).sum();
    for i in 0..5 {
        let e = P[i].sqrt() / total;
        assert!(
            (freq[i] - e).abs() < 0.015,
            "T=2: token {i} drawn {:.4}, expected {e:.4}",
            freq[i]
        );
    }
}

#[test]
fn greedy_takes_the_argmax_and_reports_its_logprob() {
    let s = sample(
        &logits(),
        &SamplingParams::greedy(),
        &random::key(0).unwrap(),
    )
    .unwrap();
    assert_eq!(s.tokens.as_slice::<u32>(), &[0, 2]);
    for &lp in s.logprobs.as_slice::<f32>() {
        assert!((lp as f64 - 0.5f64.ln()).abs() < 1e-6);
    }
}

#[test]
fn the_same_key_gives_the_same_tokens() {
    let p = SamplingParams::default();
    let (_, _, a) = draw(p, 64, 9);
    let (_, _, b) = draw(p, 64, 9);
    let (_, _, c) = draw(p, 64, 10);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn out_of_range_settings_are_rejected_by_name() {
    let bad = [
        (
            SamplingParams {
                temperature: -1.0,
                ..SamplingParams::default()
            },
            "temperature",
        ),
        (
            SamplingParams {
                top_p: 0.0,
                ..SamplingParams::default()
            },
            "top_p",
        ),
        (
            SamplingParams {
                top_p: 1.5,
                ..SamplingParams::default()
            },
            "top_p",
        ),
        (
            SamplingParams {
                min_p: 2.0,
                ..SamplingParams::default()
            },
            "min_p",
        ),
    ];
    for (p, field) in bad {
        match p.validate() {
            Err(GenerateError::Sampling { name, .. }) => assert_eq!(name, field),
            other => panic!("{field}: expected a sampling error, got {other:?}"),
        }
    }
    assert!(SamplingParams::greedy().validate().is_ok());
}
