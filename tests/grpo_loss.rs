//! The GRPO loss and token log-probs on MLX, checked against values worked out by hand
//! (arithmetic in the comments) and against an independent f64 implementation written
//! with plain loops, whose finite differences also check MLX's gradients.
//! Run single-threaded: `cargo test --test grpo_loss -- --test-threads=1`.

use lora_grpo::grpo::{
    completion_mask, grpo_loss, token_log_probs, token_log_probs_with_entropy, ImportanceSampling,
    LossConfig, LossInputs, LossOutput, LossType,
};
use lora_grpo::optim::GradReduction;
use mlx_rs::error::Exception;
use mlx_rs::transforms::value_and_grad;
use mlx_rs::{Array, Dtype};

fn values(a: &Array) -> Vec<f32> {
    let a = a.as_dtype(Dtype::Float32).unwrap();
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}

fn scalar(a: &Array) -> f64 {
    f64::from(values(a)[0])
}

fn array(rows: &[Vec<f64>]) -> Array {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Array::from_slice(&flat, &[rows.len() as i32, rows[0].len() as i32])
}

fn config(loss_type: LossType, importance_sampling: ImportanceSampling, beta: f32) -> LossConfig {
    LossConfig {
        loss_type,
        importance_sampling,
        epsilon_low: 0.2,
        epsilon_high: 0.2,
        beta,
        max_completion_length: 4,
    }
}

/// A batch as plain numbers: `[N][T]` rows, one advantage per row.
#[derive(Clone)]
struct Batch {
    logp: Vec<Vec<f64>>,
    old: Vec<Vec<f64>>,
    reference: Vec<Vec<f64>>,
    mask: Vec<Vec<f64>>,
    adv: Vec<f64>,
    batch_tokens: f64,
}

impl Batch {
    fn run(&self, cfg: &LossConfig) -> LossOutput {
        let (logp, old, reference, mask) = (
            array(&self.logp),
            array(&self.old),
            array(&self.reference),
            array(&self.mask),
        );
        let adv = Array::from_slice(
            &self.adv.iter().map(|&a| a as f32).collect::<Vec<_>>(),
            &[self.adv.len() as i32],
        );
        let inputs = LossInputs {
            logp: &logp,
            logp_old: &old,
            ref_logp: (cfg.beta != 0.0).then_some(&reference),
            mask: &mask,
            advantages: &adv,
            batch_tokens: self.batch_tokens as f32,
        };
        grpo_loss(cfg, &inputs).unwrap()
    }

    /// d loss / d logp through MLX autodiff; every other input goes in as an argument.
    fn mlx_grad(&self, cfg: &LossConfig) -> Vec<f32> {
        let cfg = *cfg;
        let batch_tokens = self.batch_tokens as f32;
        let f = move |args: &[Array]| -> Result<Vec<Array>, Exception> {
            let inputs = LossInputs {
                logp: &args[0],
                logp_old: &args[1],
                ref_logp: (cfg.beta != 0.0).then_some(&args[2]),
                mask: &args[3],
                advantages: &args[4],
                batch_tokens,
            };
            Ok(grpo_loss(&cfg, &inputs)?.into_arrays())
        };
        let adv = Array::from_slice(
            &self.adv.iter().map(|&a| a as f32).collect::<Vec<_>>(),
            &[self.adv.len() as i32],
        );
        let args = [
            array(&self.logp),
            array(&self.old),
            array(&self.reference),
            array(&self.mask),
            adv,
        ];
        let (_, grads) = value_and_grad(f)(&args).unwrap();
        values(&grads[0])
    }
}

/// The loss written out with loops in f64, straight from the formula in src/grpo/loss.rs's module docs.
fn reference_loss(cfg: &LossConfig, b: &Batch) -> f64 {
    let (lo, hi) = (
        1.0 - f64::from(cfg.epsilon_low),
        1.0 + f64::from(cfg.epsilon_high),
    );
    let n = b.logp.len();
    let mut seq_sums = vec![0.0; n];
    let mut seq_lens = vec![0.0; n];
    for i in 0..n {
        let t_len = b.logp[i].len();
        let len: f64 = b.mask[i].iter().sum();
        let seq_log_ratio: f64 = (0..t_len)
            .filter(|&t| b.mask[i][t] > 0.0)
            .map(|t| b.logp[i][t] - b.old[i][t])
            .sum::<f64>()
            / len.max(1.0);
        for t in 0..t_len {
            if b.mask[i][t] == 0.0 {
                continue;
            }
            let log_ratio = match cfg.importance_sampling {
                ImportanceSampling::Token => b.logp[i][t] - b.old[i][t],
                ImportanceSampling::Sequence => seq_log_ratio,
            };
            let ratio = log_ratio.exp();
            let clipped = ratio.clamp(lo, hi);
            let a = b.adv[i];
            let mut loss = -(ratio * a).min(clipped * a);
            if cfg.beta != 0.0 {
                let d = b.reference[i][t] - b.logp[i][t];
                loss += f64::from(cfg.beta) * (d.exp() - d - 1.0);
            }
            seq_sums[i] += loss * b.mask[i][t];
        }
        seq_lens[i] = len;
    }
    let total: f64 = seq_sums.iter().sum();
    let tokens: f64 = seq_lens.iter().sum();
    match cfg.loss_type {
        LossType::Grpo => {
            seq_sums
                .iter()
                .zip(&seq_lens)
                .map(|(s, l)| s / l.max(1.0))
                .sum::<f64>()
                / n as f64
        }
        LossType::Bnpo => total / tokens.max(1.0),
        LossType::DrGrpo => total / (n as f64 * cfg.max_completion_length as f64),
        LossType::Dapo => total / b.batch_tokens.max(1.0),
    }
}

/// The hand-worked batch: 2 completions, 3 positions, the last of row 0 is padding
/// filled with a huge log-prob that must not leak into anything.
///   row 0: A = +1, ratios 1.5, 1.0 (log-ratios ln 1.5, 0), padding
///   row 1: A = -2, ratios 0.5, 1.1, 1.3
fn hand_batch() -> Batch {
    let logp = vec![
        vec![1.5f64.ln(), 0.0, 1e30],
        vec![0.5f64.ln(), 1.1f64.ln(), 1.3f64.ln()],
    ];
    Batch {
        old: vec![vec![0.0; 3]; 2],
        // ref - logp = ln 2 at row 0 token 0, 0 elsewhere.
        reference: vec![vec![logp[0][0] + 2f64.ln(), 0.0, 0.0], logp[1].clone()],
        logp,
        mask: vec![vec![1.0, 1.0, 0.0], vec![1.0, 1.0, 1.0]],
        adv: vec![1.0, -2.0],
        batch_tokens: 10.0,
    }
}

fn assert_near(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-5, "{what}: got {got}, want {want}");
}

// Per-token losses of the hand batch with eps = 0.2 (clip range [0.8, 1.2]):
//   row 0: t0 -min(1.5*1, 1.2*1) = -1.2   t1 -min(1.0, 1.0) = -1.0         sum -2.2 over 2
//   row 1: t0 -min(0.5*-2, 0.8*-2) = 1.6  t1 -(1.1*-2) = 2.2
//          t2 -min(1.3*-2, 1.2*-2) = 2.6                                     sum  6.4 over 3
//   total 4.2 over 5 tokens.
#[test]
fn token_level_loss_types_match_hand_arithmetic() {
    let b = hand_batch();
    let token = ImportanceSampling::Token;
    // grpo: mean(-2.2 / 2, 6.4 / 3) = (-1.1 + 2.133333) / 2.
    assert_near(
        scalar(&b.run(&config(LossType::Grpo, token, 0.0)).loss),
        (-1.1 + 6.4 / 3.0) / 2.0,
        "grpo",
    );
    // bnpo: 4.2 / 5.
    assert_near(
        scalar(&b.run(&config(LossType::Bnpo, token, 0.0)).loss),
        0.84,
        "bnpo",
    );
    // dr_grpo: 4.2 / (2 sequences * max_completion_length 4).
    assert_near(
        scalar(&b.run(&config(LossType::DrGrpo, token, 0.0)).loss),
        0.525,
        "dr_grpo",
    );
    // dapo: 4.2 / 10 tokens in the whole generation batch.
    assert_near(
        scalar(&b.run(&config(LossType::Dapo, token, 0.0)).loss),
        0.42,
        "dapo",
    );
}

#[test]
fn token_level_metrics_match_hand_counts() {
    let stats = hand_batch()
        .run(&config(LossType::Bnpo, ImportanceSampling::Token, 0.0))
        .stats()
        .unwrap();
    // Low-clipped: ratio < 0.8 with A < 0 -> row 1 t0 only: 1 of 5 counted tokens.
    // High-clipped: ratio > 1.2 with A > 0 -> row 0 t0 only (row 1 t2 has A < 0).
    assert_near(f64::from(stats.clip_low), 0.2, "clip_low");
    assert_near(f64::from(stats.clip_high), 0.2, "clip_high");
    assert_near(f64::from(stats.clip_region), 0.4, "clip_region");
    // Mean ratio over counted tokens: (1.5 + 1.0 + 0.5 + 1.1 + 1.3) / 5 = 1.08.
    assert_near(f64::from(stats.ratio_mean), 1.08, "ratio_mean");
    assert_eq!(stats.kl_mean, None);
    assert_near(f64::from(stats.loss), 0.84, "loss");
}

#[test]
fn kl_term_adds_beta_times_k3() {
    // k3 at row 0 t0 with ref - logp = ln 2: e^(ln 2) - ln 2 - 1 = 1 - ln 2 = 0.3068528;
    // every other counted token has ref = logp, so k3 = 0.
    let k3 = 1.0 - 2f64.ln();
    let out = hand_batch().run(&config(LossType::Grpo, ImportanceSampling::Token, 0.1));
    // grpo: row 0's sum grows by 0.1 * k3, divided by its 2 tokens and the 2 rows.
    assert_near(
        scalar(&out.loss),
        (-1.1 + 6.4 / 3.0) / 2.0 + 0.1 * k3 / 4.0,
        "grpo + kl",
    );
    assert_near(
        f64::from(out.stats().unwrap().kl_mean.unwrap()),
        k3 / 5.0,
        "kl_mean",
    );
    // The Vec a value_and_grad closure returns reads back into the same numbers.
    let stats = out.stats().unwrap();
    let arrays = out.into_arrays();
    assert_eq!(arrays.len(), 6);
    assert_eq!(
        LossOutput::from_arrays(&arrays).unwrap().stats().unwrap(),
        stats
    );
    assert!(LossOutput::from_arrays(&arrays[..4]).is_none());
    let out = hand_batch().run(&config(LossType::Bnpo, ImportanceSampling::Token, 0.1));
    assert_near(scalar(&out.loss), (4.2 + 0.1 * k3) / 5.0, "bnpo + kl");
}

#[test]
fn sequence_level_ratio_is_the_geometric_mean_of_token_ratios() {
    // Row 0: exp((ln 1.5 + 0) / 2) = sqrt(1.5) = 1.2247 > 1.2 with A > 0: clipped to 1.2,
    //   so each of its 2 tokens loses -1.2.
    // Row 1: (0.5 * 1.1 * 1.3)^(1/3) = 0.715^(1/3) = 0.8939, inside [0.8, 1.2]:
    //   each of its 3 tokens loses -(0.8939 * -2) = 1.7879.
    let r1 = 0.715f64.cbrt();
    let b = hand_batch();
    let seq = ImportanceSampling::Sequence;
    assert_near(
        scalar(&b.run(&config(LossType::Grpo, seq, 0.0)).loss),
        (-1.2 + 2.0 * r1) / 2.0,
        "grpo",
    );
    assert_near(
        scalar(&b.run(&config(LossType::Bnpo, seq, 0.0)).loss),
        (2.0 * -1.2 + 3.0 * 2.0 * r1) / 5.0,
        "bnpo",
    );
    assert_near(
        scalar(&b.run(&config(LossType::Dapo, seq, 0.0)).loss),
        (2.0 * -1.2 + 3.0 * 2.0 * r1) / 10.0,
        "dapo",
    );
    // Sequence metrics average over sequences: row 0 high-clipped, row 1 not clipped.
    let stats = b.run(&config(LossType::Grpo, seq, 0.0)).stats().unwrap();
    assert_near(f64::from(stats.clip_high), 0.5, "clip_high");
    assert_near(f64::from(stats.clip_low), 0.0, "clip_low");
    assert_near(
        f64::from(stats.ratio_mean),
        (1.5f64.sqrt() + r1) / 2.0,
        "ratio_mean",
    );
}

#[test]
fn gradient_of_hand_batch_is_zero_where_clipped() {
    // grpo, token level. Unclipped token: loss -ratio * A, d/dlogp = -ratio * A, weighted
    // by 1 / (rows * row tokens). Row 0: t0 clipped -> 0; t1: -1 * 1 / (2 * 2) = -0.25.
    // Row 1: t0 clipped -> 0; t1: 2.2 / (2 * 3) = 0.366667; t2 unclipped: 2.6 / 6 = 0.433333.
    let g = hand_batch().mlx_grad(&config(LossType::Grpo, ImportanceSampling::Token, 0.0));
    let want = [0.0, -0.25, 0.0, 0.0, 2.2 / 6.0, 2.6 / 6.0];
    for (i, (got, want)) in g.iter().zip(want).enumerate() {
        assert_near(f64::from(*got), want, &format!("gradient {i}"));
    }
}

/// Deterministic pseudo-random numbers in [lo, hi) (a 64-bit LCG), for larger cases.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// 4 completions of up to 5 tokens with mixed lengths and advantage signs. Log-ratios
/// are kept off the clip boundaries (+-0.2 in ratio) so finite differences are smooth.
fn random_batch(seed: u64) -> Batch {
    let mut rng = Lcg(seed);
    let lens = [5usize, 3, 1, 4];
    let mut b = Batch {
        logp: vec![],
        old: vec![],
        reference: vec![],
        mask: vec![],
        adv: vec![],
        batch_tokens: 20.0,
    };
    for (i, &len) in lens.iter().enumerate() {
        let old: Vec<f64> = (0..5).map(|_| rng.next(-3.0, -0.1)).collect();
        let logp: Vec<f64> = old
            .iter()
            .map(|o| {
                // Ratios in [0.6, 0.75] u [0.85, 1.15] u [1.25, 1.5]: clipped and unclipped, never at the edge.
                let r = [
                    rng.next(0.6, 0.75),
                    rng.next(0.85, 1.15),
                    rng.next(1.25, 1.5),
                ][(rng.next(0.0, 3.0)) as usize];
                o + r.ln()
            })
            .collect();
        b.reference
            .push(logp.iter().map(|l| l + rng.next(-0.5, 0.5)).collect());
        b.old.push(old);
        b.logp.push(logp);
        b.mask
            .push((0..5).map(|t| if t < len { 1.0 } else { 0.0 }).collect());
        b.adv.push(if i % 2 == 0 {
            rng.next(0.3, 1.5)
        } else {
            -rng.next(0.3, 1.5)
        });
    }
    b
}

#[test]
fn every_variant_matches_the_f64_reference_in_value_and_gradient() {
    let h = 1e-5;
    for seed in [1u64, 7, 42] {
        let b = random_batch(seed);
        for loss_type in [
            LossType::Grpo,
            LossType::Bnpo,
            LossType::DrGrpo,
            LossType::Dapo,
        ] {
            for sampling in [ImportanceSampling::Token, ImportanceSampling::Sequence] {
                for beta in [0.0f32, 0.05] {
                    let cfg = LossConfig {
                        epsilon_high: 0.28,
                        ..config(loss_type, sampling, beta)
                    };
                    let what = format!("seed {seed} {loss_type:?} {sampling:?} beta {beta}");
                    let got = scalar(&b.run(&cfg).loss);
                    let want = reference_loss(&cfg, &b);
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{what}: loss {got} vs {want}"
                    );

                    let grad = b.mlx_grad(&cfg);
                    for i in 0..b.logp.len() {
                        for t in 0..b.logp[i].len() {
                            let (mut up, mut down) = (b.clone(), b.clone());
                            up.logp[i][t] += h;
                            down.logp[i][t] -= h;
                            let fd = (reference_loss(&cfg, &up) - reference_loss(&cfg, &down))
                                / (2.0 * h);
                            let g = f64::from(grad[i * b.logp[i].len() + t]);
                            assert!(
                                (g - fd).abs() < 1e-4 + 1e-3 * fd.abs(),
                                "{what}: d/dlogp[{i}][{t}] {g} vs {fd}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn micro_batches_recombine_into_the_whole_batch_loss() {
    // Split the 4 completions into 2 micro-batches of 2 and combine as each loss type
    // says: dapo adds (batch-wide normalizer), the others average equal-sized halves.
    let b = random_batch(3);
    let half = |rows: std::ops::Range<usize>| Batch {
        logp: b.logp[rows.clone()].to_vec(),
        old: b.old[rows.clone()].to_vec(),
        reference: b.reference[rows.clone()].to_vec(),
        mask: b.mask[rows.clone()].to_vec(),
        adv: b.adv[rows].to_vec(),
        batch_tokens: b.batch_tokens,
    };
    for loss_type in [LossType::Grpo, LossType::DrGrpo, LossType::Dapo] {
        let cfg = config(loss_type, ImportanceSampling::Token, 0.05);
        let whole = reference_loss(&cfg, &b);
        let parts = scalar(&half(0..2).run(&cfg).loss) + scalar(&half(2..4).run(&cfg).loss);
        let combined = match loss_type.grad_reduction() {
            GradReduction::Sum => parts,
            GradReduction::Mean => parts / 2.0,
        };
        assert!(
            (combined - whole).abs() < 1e-5,
            "{loss_type:?}: {combined} vs {whole}"
        );
    }
    assert_eq!(LossType::Dapo.grad_reduction(), GradReduction::Sum);
    assert_eq!(LossType::Bnpo.grad_reduction(), GradReduction::Mean);
}

#[test]
fn garbage_at_masked_positions_never_reaches_loss_or_gradient() {
    let mut b = hand_batch();
    b.old[0][2] = -1e30;
    b.reference[0][2] = f64::INFINITY;
    for loss_type in [LossType::Grpo, LossType::Dapo] {
        let cfg = config(loss_type, ImportanceSampling::Sequence, 0.1);
        assert!(scalar(&b.run(&cfg).loss).is_finite());
        let g = b.mlx_grad(&cfg);
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_eq!(g[2], 0.0, "padding gets no gradient");
    }
}

#[test]
fn kl_without_reference_log_probs_is_an_error() {
    let b = hand_batch();
    let (logp, mask) = (array(&b.logp), array(&b.mask));
    let adv = Array::from_slice(&[1.0f32, -2.0], &[2]);
    let inputs = LossInputs {
        logp: &logp,
        logp_old: &logp,
        ref_logp: None,
        mask: &mask,
        advantages: &adv,
        batch_tokens: 5.0,
    };
    assert!(grpo_loss(
        &config(LossType::Grpo, ImportanceSampling::Token, 0.1),
        &inputs
    )
    .is_err());
}

#[test]
fn mismatched_shapes_are_refused_instead_of_broadcast() {
    let b = hand_batch();
    let (logp, mask) = (array(&b.logp), array(&b.mask));
    let row_mask = array(&b.mask[..1]);
    let adv = Array::from_slice(&[1.0f32, -2.0], &[2]);
    let adv_column = Array::from_slice(&[1.0f32, -2.0], &[2, 1]);
    let cfg = config(LossType::Grpo, ImportanceSampling::Token, 0.0);
    let run = |mask: &Array, advantages: &Array| {
        let inputs = LossInputs {
            logp: &logp,
            logp_old: &logp,
            ref_logp: None,
            mask,
            advantages,
            batch_tokens: 5.0,
        };
        grpo_loss(&cfg, &inputs).err().map(|e| e.to_string())
    };
    assert_eq!(run(&mask, &adv), None);
    let err = run(&row_mask, &adv).unwrap();
    assert!(
        err.contains("`logp` has shape [2, 3], the mask [1, 3]"),
        "{err}"
    );
    let err = run(&mask, &adv_column).unwrap();
    assert!(
        err.contains("advantages have shape [2, 1], expected [2]"),
        "{err}"
    );
}

#[test]
fn completion_mask_covers_each_completions_tokens() {
    let m = completion_mask(&[3, 0, 5, 1], 4);
    assert_eq!(m.shape(), &[4, 4]);
    assert_eq!(
        values(&m),
        vec![1., 1., 1., 0., 0., 0., 0., 0., 1., 1., 1., 1., 1., 0., 0., 0.]
    );
}

// Log-softmax of [1, 2, 3]: log-sum-exp = 3 + ln(1 + e^-1 + e^-2) = 3.4076059644;
// log p = [-2.4076059644, -1.4076059644, -0.4076059644].
// At temperature 2 the row is [0.5, 1, 1.5]: lse = 1.5 + ln(1 + e^-0.5 + e^-1)
// = 1.5 + ln(1.9744101) = 2.1802688; log p = [-1.6802688, -1.1802688, -0.6802688].
#[test]
fn token_log_probs_match_hand_log_softmax() {
    let logits = Array::from_slice(&[1.0f32, 2.0, 3.0, 3.0, 2.0, 1.0], &[1, 2, 3]);
    let tokens = Array::from_slice(&[2i32, 0], &[1, 2]);
    let lp = token_log_probs(&logits, &tokens, 1.0).unwrap();
    assert_eq!(lp.shape(), &[1, 2]);
    let got = values(&lp);
    assert_near(f64::from(got[0]), -0.4076059644, "token 2 of [1,2,3]");
    assert_near(f64::from(got[1]), -0.4076059644, "token 0 of [3,2,1]");
    let got = values(&token_log_probs(&logits, &tokens, 2.0).unwrap());
    assert_near(f64::from(got[0]), -0.6802688, "temperature 2, token 2");
    assert_near(f64::from(got[1]), -0.6802688, "temperature 2, token 0");

    // Shifting every logit by 1000 changes nothing (no overflow in exp); f32 spacing near
    // 1000 is 6e-5, which bounds the agreement.
    let big = Array::from_slice(&[1001.0f32, 1002.0, 1003.0], &[1, 1, 3]);
    let got = values(&token_log_probs(&big, &Array::from_slice(&[0i32], &[1, 1]), 1.0).unwrap());
    assert!(
        (f64::from(got[0]) + 2.4076059644).abs() < 1e-4,
        "shifted logits: {}",
        got[0]
    );

    // bf16 logits are upcast: 1, 2, 3 are exact in bf16, so the answer is the f32 one.
    let half = logits.as_dtype(Dtype::Bfloat16).unwrap();
    let got = token_log_probs(&half, &tokens, 1.0).unwrap();
    assert_eq!(got.dtype(), Dtype::Float32);
    assert_near(f64::from(values(&got)[0]), -0.4076059644, "bf16 input");
}

#[test]
fn entropy_matches_an_f64_loop() {
    let rows = [[0.5f64, -1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0]];
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let logits = Array::from_slice(&flat, &[2, 1, 4]);
    let tokens = Array::from_slice(&[2i32, 1], &[2, 1]);
    let (lp, entropy) = token_log_probs_with_entropy(&logits, &tokens, 0.7).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let scaled: Vec<f64> = row.iter().map(|v| v / 0.7).collect();
        let lse = scaled.iter().map(|v| v.exp()).sum::<f64>().ln();
        let h: f64 = scaled.iter().map(|v| -(v - lse).exp() * (v - lse)).sum();
        assert_near(f64::from(values(&entropy)[i]), h, "entropy");
        let token = [2, 1][i];
        assert_near(f64::from(values(&lp)[i]), scaled[token] - lse, "log-prob");
    }
    // A uniform row over 4 tokens has entropy ln 4.
    assert_near(f64::from(values(&entropy)[1]), 4f64.ln(), "uniform");
}
