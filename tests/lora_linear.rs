//! LoRA adapters on the model's own linear layer: the update math, the on/off switch
//! (the reference policy), and gradients that reach only the adapters, checked against
//! finite differences. Run with `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::model::CausalLm;
use mlx_rs::error::Exception;
use mlx_rs::module::{Module, ModuleParameters};
use mlx_rs::ops::indexing::{TryIndexMutOp, TryIndexOp};
use mlx_rs::{nn, random, Array};

fn normal(shape: &[i32], seed: u64, std: f32) -> Array {
    let key = random::key(seed).unwrap();
    random::normal::<f32>(shape, None, std, &key).unwrap()
}

#[test]
fn the_update_is_scale_times_x_a_b_and_can_be_switched_off() {
    let mut model = load_fixture("llama_q4");
    let layer = &mut model.model.layers[0].self_attn.q_proj;
    let x = normal(&[2, 3, 64], 1, 1.0);
    let base = layer.forward(&x).unwrap();
    let (a, b) = (normal(&[64, 4], 2, 0.1), normal(&[4, 64], 3, 0.1));
    layer.set_lora(a.clone(), b.clone(), 2.0).unwrap();
    let with = layer.forward(&x).unwrap();
    let expected = base
        .add(
            x.matmul(&a)
                .unwrap()
                .matmul(&b)
                .unwrap()
                .multiply(Array::from_f32(2.0))
                .unwrap(),
        )
        .unwrap();
    assert!(max_abs_diff(&with, &expected) < 1e-5);
    assert!(
        max_abs_diff(&with, &base) > 1e-2,
        "the adapter must change the output"
    );
    layer.lora_enabled = false;
    assert_eq!(max_abs_diff(&layer.forward(&x).unwrap(), &base), 0.0);
    assert!(
        layer.set_lora(normal(&[32, 4], 4, 0.1), b, 1.0).is_err(),
        "wrong input size"
    );
}

fn logits(model: &mut CausalLm, ids: &[i32]) -> Array {
    model
        .forward(&Array::from_slice(ids, &[1, ids.len() as i32]), None)
        .unwrap()
}

const IDS: [i32; 7] = [1, 17, 42, 99, 7, 200, 3];

/// Adapters on q_proj and v_proj of every layer (mlx-lm's default keys).
fn attach(model: &mut CausalLm, b_std: f32) {
    for (path, layer) in model.linear_layers_mut() {
        if path.ends_with("q_proj") || path.ends_with("v_proj") {
            let (d_in, d_out) = layer.dims();
            let seed = path.len() as u64;
            let b = match b_std {
                0.0 => Array::zeros::<f32>(&[4, d_out]).unwrap(),
                s => normal(&[4, d_out], seed + 100, s),
            };
            layer
                .set_lora(normal(&[d_in, 4], seed, 0.2), b, 2.0)
                .unwrap();
        }
    }
}

#[test]
fn adapters_off_is_the_base_model() {
    let mut model = load_fixture("qwen3_q5");
    let base = logits(&mut model, &IDS);
    attach(&mut model, 0.0);
    assert_eq!(
        max_abs_diff(&logits(&mut model, &IDS), &base),
        0.0,
        "lora_b = 0 starts at the base model"
    );
    attach(&mut model, 0.1);
    assert!(max_abs_diff(&logits(&mut model, &IDS), &base) > 1e-3);
    model.set_adapters_enabled(false);
    assert_eq!(max_abs_diff(&logits(&mut model, &IDS), &base), 0.0);
    model.set_adapters_enabled(true);
    assert!(max_abs_diff(&logits(&mut model, &IDS), &base) > 1e-3);
}

/// Negative log-likelihood of IDS[1..] given IDS[..-1].
fn nll(model: &mut CausalLm, tokens: Array) -> Result<Vec<Array>, Exception> {
    let logits = model.forward(&tokens, None)?;
    let lp = nn::log_softmax(&logits.try_index((.., ..-1, ..))?, -1)?;
    let targets = tokens.try_index((.., 1..))?.expand_dims(-1)?;
    Ok(vec![lp
        .take_along_axis(&targets, -1)?
        .sum(None)?
        .negative()?])
}

#[test]
fn gradients_reach_only_the_adapters_and_match_finite_differences() {
    let mut model = load_fixture("llama_q4");
    attach(&mut model, 0.1);
    let mut trainable: Vec<String> = model
        .trainable_parameters()
        .flatten()
        .keys()
        .map(|k| k.to_string())
        .collect();
    trainable.sort();
    let mut expected: Vec<String> = (0..2)
        .flat_map(|i| {
            ["q_proj", "v_proj"].into_iter().flat_map(move |p| {
                ["lora_a", "lora_b"].map(|w| format!("model.layers.{i}.self_attn.{p}.{w}"))
            })
        })
        .collect();
    expected.sort();
    assert_eq!(trainable, expected);

    let tokens = Array::from_slice(&IDS, &[1, IDS.len() as i32]);
    let mut vg = nn::value_and_grad(nll);
    let (_, grads) = vg(&mut model, tokens.clone()).unwrap();
    assert_eq!(grads.len(), 8);
    let key = "model.layers.1.self_attn.v_proj.lora_b";
    let g = grads[key].try_index((2, 5)).unwrap().item_exact::<f32>();

    // Central difference on that one entry of lora_b.
    let eps = 1e-2f32;
    let mut loss_at = |delta: f32| -> f32 {
        let layer = &mut model.model.layers[1].self_attn.v_proj;
        let b = layer.lora_b.value.clone().unwrap();
        let mut bump = Array::zeros::<f32>(b.shape()).unwrap();
        bump.try_index_mut((2, 5), Array::from_f32(delta)).unwrap();
        layer.lora_b.value = Some(b.add(&bump).unwrap());
        let loss = nll(&mut model, tokens.clone()).unwrap()[0].item_exact::<f32>();
        let layer = &mut model.model.layers[1].self_attn.v_proj;
        layer.lora_b.value = Some(b);
        loss
    };
    let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
    assert!(g.abs() > 1e-3, "gradient too small to check: {g}");
    assert!(
        (numeric - g).abs() < 0.02 * g.abs().max(1.0),
        "analytic {g} vs numeric {numeric}"
    );
}
