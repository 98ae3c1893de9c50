//! The generation engine and the forward passes it rests on, checked against each other
//! and against mlx-lm's greedy goldens: KV-cache decoding equals a full forward, left
//! padding changes nothing, a GRPO group's shared prefill equals separate prefills,
//! seeded sampling is reproducible, returned log-probs equal a full forward's, stop
//! rules end rows early without disturbing the others, and memory stays flat.
//! Run with `--test-threads=1` (MLX).

mod common;

use common::*;
use lora_grpo::generate::{
    generate, FinishReason, GenerateConfig, GlobalRows, KvCache, NoStop, SamplingParams,
};
use lora_grpo::model::CausalLm;
use mlx_rs::module::Parameter;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::{memory, nn, Array};

fn row(ids: &[u32]) -> Array {
    let ids: Vec<i32> = ids.iter().map(|&t| t as i32).collect();
    Array::from_slice(&ids, &[1, ids.len() as i32])
}

fn greedy(max_tokens: usize) -> GenerateConfig {
    GenerateConfig {
        max_tokens,
        sampling: SamplingParams::greedy(),
        ..GenerateConfig::default()
    }
}

fn sampled(max_tokens: usize, seed: u64) -> GenerateConfig {
    GenerateConfig {
        max_tokens,
        seed,
        sampling: SamplingParams {
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            min_p: 0.02,
        },
        ..GenerateConfig::default()
    }
}

const PROMPTS: [&[u32]; 3] = [&[5, 80, 13], &[1, 17, 42, 99, 7, 200, 3, 64, 9], &[250, 4]];

fn prompts() -> Vec<Vec<u32>> {
    PROMPTS.iter().map(|p| p.to_vec()).collect()
}

#[test]
fn cached_prefill_and_decode_equal_a_full_forward() {
    for name in ["llama_q4", "qwen2_bf16", "qwen3_f32"] {
        let mut model = load_fixture(name);
        let ids = PROMPTS[1];
        let full = model.forward(&row(ids), None).unwrap();
        let mut cache = model.new_cache(vec![0]);
        // Prefill 4 tokens, then one token per step.
        let mut parts = vec![model.forward_cached(&row(&ids[..4]), &mut cache).unwrap()];
        for i in 4..ids.len() {
            parts.push(
                model
                    .forward_cached(&row(&ids[i..i + 1]), &mut cache)
                    .unwrap(),
            );
        }
        let stepped = mlx_rs::ops::concatenate(&parts, 1).unwrap();
        let err = max_abs_diff(&stepped, &full);
        assert!(
            err < 1e-4,
            "{name}: cached logits differ from the full forward by {err}"
        );
        assert_eq!(cache.len(), ids.len() as i32);
    }
}

#[test]
fn left_padded_rows_give_the_logits_of_unpadded_rows() {
    for name in ["llama_f32", "qwen2_q3", "qwen3_q5"] {
        let mut model = load_fixture(name);
        let width = PROMPTS.iter().map(|p| p.len()).max().unwrap();
        let padding: Vec<i32> = PROMPTS.iter().map(|p| (width - p.len()) as i32).collect();
        // Padding ids are arbitrary valid tokens: they must not matter.
        let ids: Vec<i32> = PROMPTS
            .iter()
            .flat_map(|p| {
                std::iter::repeat_n(77, width - p.len()).chain(p.iter().map(|&t| t as i32))
            })
            .collect();
        let batch = Array::from_slice(&ids, &[PROMPTS.len() as i32, width as i32]);
        let padded = model.forward(&batch, Some(&padding)).unwrap();
        for (i, p) in PROMPTS.iter().enumerate() {
            let alone = model.forward(&row(p), None).unwrap();
            let pad = padding[i];
            let ours = padded
                .try_index((i as i32..i as i32 + 1, pad.., ..))
                .unwrap();
            let err = max_abs_diff(&ours, &alone);
            assert!(err < 1e-4, "{name}, row {i}: padded logits differ by {err}");
        }
    }
}

#[test]
fn padded_training_forward_has_the_gradients_of_unpadded_rows() {
    // Loss: sum of next-token log-probs of the real tokens; gradient w.r.t. the final norm.
    let mut model = load_fixture("llama_f32");
    model.model.norm.weight.unfreeze(true);
    fn loss(
        model: &mut CausalLm,
        (tokens, padding): (Array, Vec<i32>),
    ) -> Result<Vec<Array>, mlx_rs::error::Exception> {
        let logits = model.forward(&tokens, Some(&padding))?;
        let lp = nn::log_softmax(&logits.try_index((.., ..-1, ..))?, -1)?;
        let targets = tokens.try_index((.., 1..))?.expand_dims(-1)?;
        let picked = lp.take_along_axis(&targets, -1)?.squeeze_axes(&[-1])?;
        // Only predictions of real tokens from real tokens: column c > padding.
        let t = tokens.dim(1) - 1;
        let cols = mlx_rs::ops::arange::<i32, i32>(1, t + 1, None)?.reshape(&[1, t])?;
        let pads = Array::from_slice(&padding, &[padding.len() as i32, 1]);
        let real = cols.gt(&pads)?.as_dtype(mlx_rs::Dtype::Float32)?;
        Ok(vec![picked.multiply(&real)?.sum(None)?.negative()?])
    }
    let mut vg = nn::value_and_grad(loss);
    let (a, b) = (PROMPTS[0], PROMPTS[1]);
    let ids: Vec<i32> = std::iter::repeat_n(0, b.len() - a.len())
        .chain(a.iter().map(|&t| t as i32))
        .chain(b.iter().map(|&t| t as i32))
        .collect();
    let batch = Array::from_slice(&ids, &[2, b.len() as i32]);
    let (value, grads) = vg(&mut model, (batch, vec![(b.len() - a.len()) as i32, 0])).unwrap();
    let key = "model.norm.weight";
    assert_eq!(grads.len(), 1, "only the unfrozen norm weight is trainable");
    let (mut v_sum, mut g_sum) = (0.0, None::<Array>);
    for p in [a, b] {
        let (v, g) = vg(&mut model, (row(p), vec![0])).unwrap();
        v_sum += v[0].item_exact::<f32>();
        g_sum = Some(match g_sum {
            None => g[key].clone(),
            Some(s) => s.add(&g[key]).unwrap(),
        });
    }
    assert!((value[0].item_exact::<f32>() - v_sum).abs() < 1e-3 * v_sum.abs());
    let err = max_abs_diff(&grads[key], g_sum.as_ref().unwrap());
    let scale = g_sum
        .unwrap()
        .abs()
        .unwrap()
        .max(None)
        .unwrap()
        .item_exact::<f32>();
    assert!(
        scale > 0.0 && err < 1e-4 * scale.max(1.0),
        "gradient differs by {err} (scale {scale})"
    );
}

#[test]
fn batched_ragged_greedy_equals_one_by_one_and_mlx_lm() {
    for name in ["llama_q4", "qwen2_bf16", "qwen3_f32"] {
        let mut model = load_fixture(name);
        let batched = generate(&mut model, &prompts(), &greedy(10), &mut NoStop).unwrap();
        for (i, p) in prompts().into_iter().enumerate() {
            let alone = generate(
                &mut model,
                std::slice::from_ref(&p),
                &greedy(10),
                &mut NoStop,
            )
            .unwrap();
            let (b, a) = (&batched.completions[i], &alone.completions[0]);
            assert_eq!(b.tokens, a.tokens, "{name}, prompt {i}");
            for (x, y) in b.logprobs.iter().zip(&a.logprobs) {
                assert!(
                    (x - y).abs() < 1e-4,
                    "{name}, prompt {i}: log-prob {x} vs {y}"
                );
            }
        }
        // Prefill in 2-column chunks (padding spans whole chunks) changes nothing.
        let chunked = GenerateConfig {
            prefill_chunk: 2,
            ..greedy(10)
        };
        let chunked = generate(&mut model, &prompts(), &chunked, &mut NoStop).unwrap();
        for (c, b) in chunked.completions.iter().zip(&batched.completions) {
            assert_eq!(c.tokens, b.tokens, "{name}: chunked prefill");
        }
        // The first two prompts are mlx-lm's greedy cases.
        for (i, case) in golden(name)["greedy"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(
                batched.completions[i].tokens,
                u32s(&case["tokens"]),
                "{name} vs mlx-lm, prompt {i}"
            );
        }
    }
}

#[test]
fn a_group_shares_one_prefill_that_equals_separate_prefills() {
    let mut model = load_fixture("qwen3_q5");
    let p = PROMPTS[1];
    // One prompt prefilled once and repeated 3 times...
    let mut shared = model.new_cache(vec![0]);
    let logits = model.forward_cached(&row(p), &mut shared).unwrap();
    shared.select_rows(&[0, 0, 0]).unwrap();
    // ...against the prompt prefilled as a batch of 3 rows.
    let three = Array::from_slice(
        &[p, p, p]
            .concat()
            .iter()
            .map(|&t| t as i32)
            .collect::<Vec<_>>(),
        &[3, p.len() as i32],
    );
    let mut separate = model.new_cache(vec![0, 0, 0]);
    let logits3 = model.forward_cached(&three, &mut separate).unwrap();
    for r in 0..3 {
        let err = max_abs_diff(&logits3.try_index(r..r + 1).unwrap(), &logits);
        assert!(err < 1e-5, "prefill row {r} differs by {err}");
    }
    // Different next tokens per row, then both caches must agree.
    let next = Array::from_slice(&[3i32, 100, 7], &[3, 1]);
    let a = model.forward_cached(&next, &mut shared).unwrap();
    let b = model.forward_cached(&next, &mut separate).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-5);
    assert_eq!(shared.len(), separate.len());

    // End to end: G completions of one prompt equal one completion each of G copies.
    let config = GenerateConfig {
        completions_per_prompt: 3,
        ..sampled(12, 5)
    };
    let grouped = generate(&mut model, &[p.to_vec()], &config, &mut NoStop).unwrap();
    let copies = vec![p.to_vec(); 3];
    let separate = generate(&mut model, &copies, &sampled(12, 5), &mut NoStop).unwrap();
    for (g, s) in grouped.completions.iter().zip(&separate.completions) {
        assert_eq!(g.tokens, s.tokens);
    }
    assert_eq!(
        grouped.stats.prompt_tokens,
        p.len(),
        "the group's prompt is prefilled once"
    );
    let distinct: std::collections::HashSet<_> = grouped
        .completions
        .iter()
        .map(|c| c.tokens.clone())
        .collect();
    assert!(
        distinct.len() > 1,
        "sampled completions of a group should differ"
    );
}

#[test]
fn seeded_sampling_is_reproducible_and_the_seed_matters() {
    let mut model = load_fixture("llama_f32");
    let config = GenerateConfig {
        completions_per_prompt: 2,
        ..sampled(16, 42)
    };
    let a = generate(&mut model, &prompts(), &config, &mut NoStop).unwrap();
    let b = generate(&mut model, &prompts(), &config, &mut NoStop).unwrap();
    assert_eq!(a.completions, b.completions);
    let c = generate(
        &mut model,
        &prompts(),
        &GenerateConfig { seed: 43, ..config },
        &mut NoStop,
    )
    .unwrap();
    assert_ne!(
        a.completions.iter().map(|x| &x.tokens).collect::<Vec<_>>(),
        c.completions.iter().map(|x| &x.tokens).collect::<Vec<_>>()
    );
}

#[test]
fn global_rows_make_a_rows_tokens_independent_of_its_batch() {
    // What data-parallel ranks rely on: prompt 1's group sampled alone, as rows 2..4 of
    // a batch of 6, equals the same group sampled among all three prompts.
    let mut model = load_fixture("llama_f32");
    let config = GenerateConfig {
        completions_per_prompt: 2,
        global_rows: Some(GlobalRows { first: 0, total: 6 }),
        ..sampled(12, 42)
    };
    let all = generate(&mut model, &prompts(), &config, &mut NoStop).unwrap();
    let alone = GenerateConfig { global_rows: Some(GlobalRows { first: 2, total: 6 }), ..config.clone() };
    let one = generate(&mut model, &prompts()[1..2], &alone, &mut NoStop).unwrap();
    let tokens = |c: &[lora_grpo::generate::Completion]| c.iter().map(|x| x.tokens.clone()).collect::<Vec<_>>();
    assert_eq!(tokens(&one.completions), tokens(&all.completions[2..4]));
    // The two completions of a group draw differently, and the row and the seed matter.
    assert_ne!(all.completions[2].tokens, all.completions[3].tokens);
    let shifted = GenerateConfig { global_rows: Some(GlobalRows { first: 4, total: 6 }), ..config.clone() };
    let moved = generate(&mut model, &prompts()[1..2], &shifted, &mut NoStop).unwrap();
    assert_ne!(tokens(&moved.completions), tokens(&one.completions));
    let reseeded = GenerateConfig { seed: 43, ..config.clone() };
    let other = generate(&mut model, &prompts(), &reseeded, &mut NoStop).unwrap();
    assert_ne!(tokens(&other.completions), tokens(&all.completions));
    // The rows must lie inside the batch.
    let outside = GenerateConfig { global_rows: Some(GlobalRows { first: 5, total: 6 }), ..config };
    let err = generate(&mut model, &prompts()[1..2], &outside, &mut NoStop).unwrap_err().to_string();
    assert!(err.contains("global rows 5..7 lie outside a batch of 6 completions"), "{err}");
}

#[test]
fn returned_logprobs_equal_log_softmax_of_a_full_forward_at_temperature() {
    for name in ["llama_q4", "qwen2_bf16"] {
        let mut model = load_fixture(name);
        let config = GenerateConfig {
            completions_per_prompt: 2,
            ..sampled(8, 11)
        };
        let temperature = config.sampling.temperature;
        let out = generate(&mut model, &prompts(), &config, &mut NoStop).unwrap();
        for c in &out.completions {
            let prompt = PROMPTS[c.prompt_index];
            let full: Vec<u32> = prompt.iter().chain(&c.tokens).copied().collect();
            let logits = model.forward(&row(&full), None).unwrap();
            let lp = nn::log_softmax(
                logits.multiply(Array::from_f32(1.0 / temperature)).unwrap(),
                -1,
            )
            .unwrap();
            for (k, (&tok, &ours)) in c.tokens.iter().zip(&c.logprobs).enumerate() {
                // The token at completion position k is predicted at column len(prompt) + k - 1.
                let col = (prompt.len() + k - 1) as i32;
                let expected = lp
                    .try_index((0, col, tok as i32))
                    .unwrap()
                    .item_exact::<f32>();
                assert!(
                    (ours - expected).abs() < 1e-4,
                    "{name}: token {k}: {ours} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn eos_and_stop_condition_end_rows_without_disturbing_the_others() {
    let mut model = load_fixture("llama_f32");
    let g = golden("llama_f32");
    let long = u32s(&g["greedy"][1]["tokens"]);
    let short = u32s(&g["greedy"][0]["tokens"]);
    // EOS: the first greedy token of prompt 0 after its first that prompt 1 never produces.
    let cut = (1..short.len())
        .find(|&k| !long.contains(&short[k]) && !short[..k].contains(&short[k]))
        .unwrap();
    let eos = short[cut];
    let config = GenerateConfig {
        eos_token_ids: vec![eos],
        ..greedy(10)
    };
    let prompts = vec![
        u32s(&g["greedy"][0]["prompt"]),
        u32s(&g["greedy"][1]["prompt"]),
    ];
    let out = generate(&mut model, &prompts, &config, &mut NoStop).unwrap();
    assert_eq!(out.completions[0].tokens, short[..=cut].to_vec());
    assert_eq!(out.completions[0].finish_reason, FinishReason::Eos);
    assert_eq!(
        out.completions[1].tokens, long,
        "the other row continues unchanged"
    );
    assert_eq!(out.completions[1].finish_reason, FinishReason::Length);
    assert_eq!(out.stats.generated_tokens, cut + 1 + 10);

    // A stop condition (what stop strings do) on completion 1 after 4 tokens.
    let mut seen = Vec::new();
    let mut stop = |c: usize, tokens: &[u32]| {
        seen.push((c, tokens.len()));
        c == 1 && tokens.len() == 4
    };
    let out = generate(&mut model, &prompts, &greedy(6), &mut stop).unwrap();
    assert_eq!(out.completions[1].tokens, long[..4].to_vec());
    assert_eq!(out.completions[1].finish_reason, FinishReason::Stop);
    assert_eq!(out.completions[0].tokens, short[..6].to_vec());
    assert!(
        seen.contains(&(0, 5)) && !seen.contains(&(1, 5)),
        "a stopped row is not asked again"
    );
}

#[test]
fn memory_stays_flat_over_repeated_rollouts() {
    let mut model = load_fixture("qwen2_q3");
    let config = GenerateConfig {
        completions_per_prompt: 4,
        ..sampled(24, 1)
    };
    let mut active = Vec::new();
    for _ in 0..4 {
        let out = generate(&mut model, &prompts(), &config, &mut NoStop).unwrap();
        assert!(out.stats.peak_memory_bytes > 0);
        assert_eq!(out.completions.len(), 12);
        active.push(memory::active_memory().unwrap());
    }
    // Nothing from a rollout (cache, logits) outlives it.
    assert!(
        active.windows(2).all(|w| w[0] == w[1]),
        "active memory grew: {active:?}"
    );
}

#[test]
fn select_rows_drops_rows_and_trims_shared_padding() {
    let mut cache = KvCache::new(1, vec![3, 1, 2]);
    let k = Array::zeros::<f32>(&[3, 2, 5, 4]).unwrap();
    cache.update(0, &k, &k).unwrap();
    cache.advance(5);
    cache.select_rows(&[0, 2, 2]).unwrap();
    // Rows with padding 3 and 2: two leading columns are padding everywhere and go.
    assert_eq!(cache.left_padding(), &[1, 0, 0]);
    assert_eq!(cache.len(), 3);
    let shapes: Vec<Vec<i32>> = cache.arrays().map(|a| a.shape().to_vec()).collect();
    assert_eq!(shapes[0][0], 3);
}

#[test]
fn overlapped_decoding_gives_the_same_results() {
    let mut model = load_fixture("qwen2_bf16");
    let g = golden("qwen2_bf16");
    let eos = u32s(&g["greedy"][0]["tokens"])[4];
    // Greedy with rows stopping early at different steps.
    let greedy_eos = GenerateConfig {
        eos_token_ids: vec![eos],
        completions_per_prompt: 2,
        ..greedy(10)
    };
    // Sampling without early stops: the same rows draw with the same keys.
    let sampling = GenerateConfig {
        completions_per_prompt: 3,
        ..sampled(10, 3)
    };
    for config in [greedy_eos, sampling] {
        let on = GenerateConfig {
            overlap: true,
            ..config.clone()
        };
        let off = GenerateConfig {
            overlap: false,
            ..config
        };
        let a = generate(&mut model, &prompts(), &on, &mut NoStop).unwrap();
        let b = generate(&mut model, &prompts(), &off, &mut NoStop).unwrap();
        assert_eq!(a.completions, b.completions);
        assert_eq!(a.stats.generated_tokens, b.stats.generated_tokens);
    }
}
