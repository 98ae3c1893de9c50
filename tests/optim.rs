//! Learning-rate schedules, AdamW updates (both with and without bias correction),
//! gradient-norm clipping and accumulation, against hand-computed numbers and plain f64
//! re-statements of the published update rules.
//! Run single-threaded: `cargo test --test optim -- --test-threads=1`.

use std::rc::Rc;

use lora_grpo::optim::{
    clip_grad_norm, AdamW, GradAccumulator, GradReduction, LrSchedule, Schedule,
};
use lora_grpo::recipe::OptimizerConfig;
use mlx_rs::macros::ModuleParameters;
use mlx_rs::module::{FlattenedModuleParam, Param};
use mlx_rs::Array;

fn values(a: &Array) -> Vec<f32> {
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}

fn assert_all_near(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() < tol,
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn schedule(schedule: Schedule, warmup: u64, total: u64) -> LrSchedule {
    LrSchedule {
        schedule,
        peak: 1.0,
        warmup,
        total,
    }
}

#[test]
fn constant_schedule_warms_up_linearly_then_holds() {
    let s = schedule(Schedule::Constant, 2, 6);
    let lrs: Vec<f64> = (0..8).map(|u| s.lr(u)).collect();
    // Warmup updates 0 and 1 use 1/2 and 2/2 of the peak.
    assert_eq!(lrs, vec![0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn linear_schedule_decays_over_the_updates_after_warmup() {
    // 6 updates, 2 of warmup: 4 decay updates at progress 0, 1/4, 2/4, 3/4.
    let s = schedule(Schedule::Linear, 2, 6);
    let lrs: Vec<f64> = (0..8).map(|u| s.lr(u)).collect();
    assert_eq!(lrs, vec![0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.25, 0.25]);
    let s = schedule(Schedule::Linear, 0, 4);
    assert_eq!(
        (0..4).map(|u| s.lr(u)).collect::<Vec<_>>(),
        vec![1.0, 0.75, 0.5, 0.25]
    );
}

#[test]
fn cosine_schedule_follows_half_a_cosine() {
    // Progress 0, 1/4, 1/2, 3/4: (1 + cos(pi p)) / 2 = 1, (1 + 0.7071068) / 2, 0.5, (1 - 0.7071068) / 2.
    let s = schedule(Schedule::Cosine, 2, 6);
    let want = [0.5, 1.0, 1.0, 0.8535534, 0.5, 0.1464466];
    for (u, w) in want.iter().enumerate() {
        assert!(
            (s.lr(u as u64) - w).abs() < 1e-7,
            "update {u}: {} vs {w}",
            s.lr(u as u64)
        );
    }
}

#[derive(Debug, Clone, ModuleParameters)]
struct Tiny {
    #[param]
    w: Param<Array>,
}

fn grads(g: &[f32]) -> FlattenedModuleParam {
    [(Rc::from("w"), Array::from_slice(g, &[g.len() as i32]))]
        .into_iter()
        .collect()
}

fn optimizer_config(
    bias_correction: bool,
    schedule: Schedule,
    warmup_steps: u64,
) -> OptimizerConfig {
    OptimizerConfig {
        lr: 0.1,
        weight_decay: 0.01,
        betas: [0.9, 0.999],
        eps: 1e-8,
        bias_correction,
        schedule,
        warmup_steps,
    }
}

// One step from w = [1, -2] with g = [0.5, -0.1], lr 0.1, wd 0.01, betas (0.9, 0.999):
//   decay:  w * (1 - 0.1 * 0.01) = [0.999, -1.998]
//   m = 0.1 g = [0.05, -0.01],  v = 0.001 g^2 = [0.00025, 0.00001]
//   MLX (no bias correction): m / sqrt(v) = 0.1 g / (sqrt(0.001) |g|) = +-3.1622777
//     w = [0.999 - 0.31622777, -1.998 + 0.31622777] = [0.68277223, -1.68177223]
//   PyTorch (bias corrected): m / c1 = g, v / c2 = g^2, update = g / |g| = +-1
//     w = [0.999 - 0.1, -1.998 + 0.1] = [0.899, -1.898]
#[test]
fn one_adamw_step_matches_hand_arithmetic() {
    for (bias_correction, want) in [(false, [0.68277223, -1.68177223]), (true, [0.899, -1.898])] {
        let mut model = Tiny {
            w: Param::new(Array::from_slice(&[1.0f32, -2.0], &[2])),
        };
        let mut opt = AdamW::new(
            &optimizer_config(bias_correction, Schedule::Constant, 0),
            10,
        );
        let lr = opt.update(&mut model, &grads(&[0.5, -0.1])).unwrap();
        assert_eq!((lr, opt.updates()), (0.1, 1));
        // MLX keeps betas in f32 (1 - 0.999f32 = 1.0000467e-3), which moves w by ~2e-6.
        assert_all_near(
            &values(&model.w),
            &want,
            1e-5,
            &format!("bias_correction {bias_correction}"),
        );
    }
}

/// PyTorch's AdamW (decoupled decay, bias-corrected moments) or MLX's (no correction),
/// re-stated in f64 from their documentation.
fn reference_adamw(
    bias_correction: bool,
    lrs: &[f64],
    grads: &[[f64; 2]],
    mut w: [f64; 2],
) -> [f64; 2] {
    let (b1, b2, eps, wd) = (0.9f64, 0.999f64, 1e-8, 0.01);
    let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
    for (t, (lr, g)) in lrs.iter().zip(grads).enumerate() {
        let step = (t + 1) as i32;
        for i in 0..2 {
            w[i] *= 1.0 - lr * wd;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let (mh, vh) = if bias_correction {
                (m[i] / (1.0 - b1.powi(step)), v[i] / (1.0 - b2.powi(step)))
            } else {
                (m[i], v[i])
            };
            w[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    w
}

#[test]
fn several_scheduled_adamw_steps_match_the_reference_rules() {
    let steps = [[0.5, -0.1], [0.25, 0.3], [-0.4, 0.05], [0.1, -0.2]];
    for bias_correction in [false, true] {
        let mut model = Tiny {
            w: Param::new(Array::from_slice(&[1.0f32, -2.0], &[2])),
        };
        // Linear schedule over 4 updates with 1 warmup update: 0.1, 0.1 * 2/3, 0.1 * 1/3 ...
        let mut opt = AdamW::new(&optimizer_config(bias_correction, Schedule::Linear, 1), 4);
        let mut lrs = Vec::new();
        for g in &steps {
            lrs.push(
                opt.update(&mut model, &grads(&[g[0] as f32, g[1] as f32]))
                    .unwrap(),
            );
        }
        let expected_lrs = [0.1, 0.1, 0.1 * 2.0 / 3.0, 0.1 / 3.0];
        for (got, want) in lrs.iter().zip(expected_lrs) {
            assert!((got - want).abs() < 1e-12, "lr {got} vs {want}");
        }
        let want = reference_adamw(bias_correction, &expected_lrs, &steps, [1.0, -2.0]);
        assert_all_near(
            &values(&model.w),
            &want,
            1e-5,
            &format!("bias_correction {bias_correction}"),
        );
    }
}

#[test]
fn resumed_update_count_continues_the_bias_correction() {
    // Two updates in one go equal one update, then a fresh optimizer told it is at
    // update 1 with the first one's moments.
    let config = optimizer_config(true, Schedule::Constant, 0);
    let mut straight = Tiny {
        w: Param::new(Array::from_slice(&[1.0f32, -2.0], &[2])),
    };
    let mut opt = AdamW::new(&config, 10);
    opt.update(&mut straight, &grads(&[0.5, -0.1])).unwrap();
    let moments = opt.state_mut().clone();
    opt.update(&mut straight, &grads(&[0.25, 0.3])).unwrap();

    let mut resumed = Tiny {
        w: Param::new(Array::from_slice(&[1.0f32, -2.0], &[2])),
    };
    let mut first = AdamW::new(&config, 10);
    first.update(&mut resumed, &grads(&[0.5, -0.1])).unwrap();
    let mut second = AdamW::new(&config, 10);
    *second.state_mut() = moments;
    second.set_updates(1);
    second.update(&mut resumed, &grads(&[0.25, 0.3])).unwrap();
    assert_eq!(values(&resumed.w), values(&straight.w));
}

#[test]
fn clipping_scales_all_gradients_by_one_global_norm() {
    // Norm of {[3, 4], [12]} = sqrt(9 + 16 + 144) = 13.
    let g: FlattenedModuleParam = [
        (Rc::from("a"), Array::from_slice(&[3.0f32, 4.0], &[2])),
        (Rc::from("b"), Array::from_slice(&[12.0f32], &[1])),
    ]
    .into_iter()
    .collect();
    let (clipped, norm) = clip_grad_norm(&g, 6.5).unwrap();
    assert_all_near(&values(&norm), &[13.0], 1e-5, "norm");
    // Scale 6.5 / (13 + 1e-6) = 0.5 (to 1e-7).
    assert_all_near(&values(&clipped[&Rc::from("a")]), &[1.5, 2.0], 1e-5, "a");
    assert_all_near(&values(&clipped[&Rc::from("b")]), &[6.0], 1e-5, "b");
    // Under the limit nothing changes.
    let (same, _) = clip_grad_norm(&g, 20.0).unwrap();
    assert_eq!(values(&same[&Rc::from("a")]), vec![3.0, 4.0]);
    assert_eq!(values(&same[&Rc::from("b")]), vec![12.0]);
}

#[test]
fn accumulator_sums_or_averages_micro_batches_and_resets() {
    let mut acc = GradAccumulator::new();
    acc.add(grads(&[1.0, 2.0])).unwrap();
    acc.add(grads(&[3.0, 6.0])).unwrap();
    acc.add(grads(&[-1.0, 1.0])).unwrap();
    assert_eq!(acc.count(), 3);
    let summed = acc.finish(GradReduction::Sum).unwrap();
    assert_eq!(values(&summed[&Rc::from("w")]), vec![3.0, 9.0]);
    assert_eq!(acc.count(), 0);
    acc.add(grads(&[1.0, 2.0])).unwrap();
    acc.add(grads(&[3.0, 6.0])).unwrap();
    let mean = acc.finish(GradReduction::Mean).unwrap();
    assert_eq!(values(&mean[&Rc::from("w")]), vec![2.0, 4.0]);
}
