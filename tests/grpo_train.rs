//! End-to-end GRPO runs on a tiny model: the reward it is trained on goes up, an
//! interrupted run keeps its checkpoint, a resumed run ends with exactly the adapters
//! of an uninterrupted one (also when moved), resuming refuses a changed adapter or
//! incomplete optimizer state without touching the run, the logs hold each evaluation
//! once, and micro-batching does not change an update.
//! Run with `--test-threads=1` (MLX).

#[path = "plugin_build/mod.rs"]
mod plugin_build;
mod tiny_run;

use lora_grpo::grpo::{run, RunOptions};
use lora_grpo::recipe::Recipe;
use tiny_run::{adapters, model_dir};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A recipe whose reward (a length penalty) a random model can learn within a few steps:
/// ending early with `<|im_end|>` scores higher.
fn recipe(root: &Path, out: &str, steps: u64, extra: &[String]) -> Recipe {
    let plugins = plugin_build::first_party();
    let text = format!(
        r#"
model:
  path: {model}
lora:
  num_layers: -1
  rank: 4
  scale: 10.0
grpo:
  group_size: 4
  batch_size: 2
  steps: {steps}
  max_completion_length: 12
  loss_type: dapo
optimizer:
  lr: 0.02
sampling:
  temperature: 1.0
data:
  plugin: arithmetic
  config: {{count: {{train: 16, eval: 4}}, max: 9}}
  eval_split: eval
rewards:
  - plugin: length
    config: {{mode: linear, per_unit: -0.1}}
output_dir: {out}
checkpoint_every: 2
eval:
  num_samples: 4
  success_threshold: -0.5
seed: 3
plugin_dirs: [{plugins}]
"#,
        model = model_dir(root).display(),
        out = root.join(out).display(),
        plugins = plugins.display(),
    );
    Recipe::parse(&text, "test recipe", extra).unwrap()
}

/// `key` of every line of the JSON-lines file `dir/file`.
fn column(dir: &Path, file: &str, key: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()[key].clone())
        .collect()
}

fn rewards(dir: &Path) -> Vec<f64> {
    column(dir, "metrics.jsonl", "reward_mean").iter().map(|v| v.as_f64().unwrap()).collect()
}

fn eval_steps(dir: &Path) -> Vec<u64> {
    column(dir, "eval.jsonl", "step").iter().map(|v| v.as_u64().unwrap()).collect()
}

#[test]
fn training_raises_the_reward_and_writes_mlx_lm_adapters() {
    let root = tempfile::tempdir().unwrap();
    let summary = run(recipe(root.path(), "run", 12, &[]), &RunOptions::default()).unwrap();
    let out = root.path().join("run");
    let r = rewards(&out);
    assert_eq!(r.len(), 12);
    // One reward of weight 1: its own mean and std are the total's.
    for (total, own) in [("reward_mean", "reward/length"), ("reward_std", "reward_std/length")] {
        assert_eq!(column(&out, "metrics.jsonl", total), column(&out, "metrics.jsonl", own), "{own}");
    }
    let (first, last) = ((r[0] + r[1] + r[2]) / 3.0, (r[9] + r[10] + r[11]) / 3.0);
    assert!(last > first + 0.2, "reward did not go up: {r:?}");
    assert_eq!(summary.steps, 12);
    // mlx-lm's files: final adapters, numbered checkpoints, config.
    for name in ["adapters.safetensors", "0000002_adapters.safetensors", "0000012_adapters.safetensors", "adapter_config.json", "recipe.yaml", "reward_curve.svg"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let weights = adapters(&out.join("adapters.safetensors"));
    // 2 blocks x 7 linears x (lora_a, lora_b); hidden 64, rank 4.
    assert_eq!(weights.len(), 28);
    assert_eq!(weights["model.layers.0.self_attn.q_proj.lora_a"].len(), 64 * 4);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["fine_tune_type"], "lora");
    assert_eq!(config["num_layers"], -1);
    assert_eq!(config["lora_parameters"]["rank"], 4);
    assert!(summary.eval_before.is_some() && summary.eval_after.is_some());
    // The curve's accuracy line runs through the evaluations before and after training.
    let svg = std::fs::read_to_string(out.join("reward_curve.svg")).unwrap();
    let lines: Vec<usize> = svg.split("points=\"").skip(1).map(|p| p.split('"').next().unwrap().split(' ').count()).collect();
    assert_eq!(lines, vec![12, eval_steps(&out).len()], "{svg}");
    assert_eq!(eval_steps(&out), vec![0, 12]);
}

#[test]
fn a_resumed_run_ends_with_the_adapters_of_an_uninterrupted_one() {
    // With adapter dropout, so its masks must be drawn again exactly after the resume.
    let dropout = ["lora.dropout=0.2".to_string()];
    let root = tempfile::tempdir().unwrap();
    run(recipe(root.path(), "whole", 4, &dropout), &RunOptions::default()).unwrap();
    run(recipe(root.path(), "parts", 2, &dropout), &RunOptions::default()).unwrap();
    // Moved (as to another machine): the resumed run continues where it now is, not in the
    // saved recipe's output_dir.
    std::fs::rename(root.path().join("parts"), root.path().join("moved")).unwrap();
    let options = RunOptions { resume: Some(root.path().join("moved")), ..RunOptions::default() };
    let summary = run(recipe(root.path(), "parts", 4, &dropout), &options).unwrap();
    assert_eq!(summary.steps, 4);
    assert!(!root.path().join("parts").exists(), "the resumed run wrote into the old output_dir");
    // Before training, at the end of the first 2 steps, and at the end.
    assert_eq!(eval_steps(&root.path().join("moved")), vec![0, 2, 4]);
    // Resuming a finished run trains nothing and logs no second final evaluation.
    let again = run(recipe(root.path(), "parts", 4, &dropout), &options).unwrap();
    assert_eq!(again.steps, 4);
    assert_eq!(eval_steps(&root.path().join("moved")), vec![0, 2, 4]);
    let whole = adapters(&root.path().join("whole/adapters.safetensors"));
    let parts = adapters(&root.path().join("moved/adapters.safetensors"));
    assert_eq!(whole.keys().collect::<Vec<_>>(), parts.keys().collect::<Vec<_>>());
    // Two identical uninterrupted runs already differ by ~2e-6 here (OpenBLAS threading
    // changes summation order); a lost optimizer moment or data position moves far more.
    let worst = whole
        .iter()
        .flat_map(|(k, a)| a.iter().zip(&parts[k]).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "adapters differ after resume by {worst}");
    let (rw, rp) = (rewards(&root.path().join("whole")), rewards(&root.path().join("moved")));
    assert_eq!(rw.len(), 4);
    assert!(rw.iter().zip(&rp).all(|(a, b)| (a - b).abs() < 1e-3), "{rw:?} vs {rp:?}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("moved/adapter_config.json")).unwrap()).unwrap();
    assert!((config["lora_parameters"]["dropout"].as_f64().unwrap() - 0.2).abs() < 1e-6);
}

#[test]
fn micro_batching_changes_neither_the_update_nor_the_reported_loss() {
    // dapo normalises by the step's tokens, so 4 micro-batches sum to the 1-batch update;
    // the logged loss is the update's, not a per-micro-batch mean.
    let root = tempfile::tempdir().unwrap();
    let metrics = |out: &str, micro: usize| {
        let extra = [format!("grpo.gradient_accumulation_steps={micro}")];
        run(recipe(root.path(), out, 1, &extra), &RunOptions::default()).unwrap();
        let text = std::fs::read_to_string(root.path().join(out).join("metrics.jsonl")).unwrap();
        serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap()).unwrap()
    };
    let (one, four) = (metrics("one", 1), metrics("four", 4));
    let (a, b) = (one["loss"].as_f64().unwrap(), four["loss"].as_f64().unwrap());
    assert!(a.abs() > 1e-6 && (a - b).abs() < 1e-5 * (1.0 + a.abs()), "loss {a} vs {b}");
    let (x, y) = (adapters(&root.path().join("one/adapters.safetensors")), adapters(&root.path().join("four/adapters.safetensors")));
    let worst = x.iter().flat_map(|(k, a)| a.iter().zip(&y[k]).map(|(p, q)| (p - q).abs())).fold(0f32, f32::max);
    assert!(worst < 1e-5, "adapters differ by {worst}");
}

#[test]
fn an_interrupt_saves_a_checkpoint_after_the_current_step() {
    let root = tempfile::tempdir().unwrap();
    let options = RunOptions { interrupt: Some(Arc::new(AtomicBool::new(true))), ..RunOptions::default() };
    let summary = run(recipe(root.path(), "run", 10, &[]), &options).unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.steps, 1);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("run/trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 1);
    assert!(root.path().join("run/0000001_adapters.safetensors").is_file());
    // Starting again over that run is refused (it would mix two runs) unless asked for.
    let err = run(recipe(root.path(), "run", 1, &[]), &RunOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("output_dir ") && err.contains("already holds a run") && err.contains("--resume"), "{err}");
    std::fs::write(root.path().join("run/notes.txt"), "mine").unwrap();
    let options = RunOptions { overwrite: true, ..RunOptions::default() };
    run(recipe(root.path(), "run", 2, &[]), &options).unwrap();
    assert!(!root.path().join("run/0000001_adapters.safetensors").exists(), "the old run's checkpoint is gone");
    assert!(root.path().join("run/0000002_adapters.safetensors").is_file());
    assert_eq!(rewards(&root.path().join("run")).len(), 2);
    assert!(root.path().join("run/notes.txt").is_file(), "files a run did not write are kept");
}


#[test]
fn resume_refuses_a_changed_adapter_or_incomplete_optimizer_state() {
    let root = tempfile::tempdir().unwrap();
    run(recipe(root.path(), "run", 2, &[]), &RunOptions::default()).unwrap();
    let dir = root.path().join("run");
    let resume = || RunOptions { resume: Some(dir.clone()), ..RunOptions::default() };

    let saved_recipe = std::fs::read(dir.join("recipe.yaml")).unwrap();
    let scale = ["lora.scale=5.0".to_string()];
    let err = run(recipe(root.path(), "run", 3, &scale), &resume()).unwrap_err().to_string();
    assert_eq!(std::fs::read(dir.join("recipe.yaml")).unwrap(), saved_recipe, "a refused resume rewrote recipe.yaml");
    assert!(err.contains("scale 5, dropout 0") && err.contains("adapter_config.json (num_layers -1, rank 4, scale 10,"), "{err}");

    // Drop one parameter's moments: resuming would silently restart them from zero.
    let file = dir.join("optimizer.safetensors");
    let (mut moments, metadata) = mlx_rs::Array::load_safetensors_with_metadata(&file).unwrap();
    let key = "model.layers.1.mlp.down_proj.lora_b";
    assert!(moments.remove(&format!("{key}.m")).is_some() && moments.remove(&format!("{key}.v")).is_some());
    let metadata: std::collections::HashMap<String, String> = metadata.into_iter().collect();
    // Loaded arrays read the file lazily: write beside it, then replace it.
    let edited = dir.join("edited.safetensors");
    mlx_rs::Array::save_safetensors(moments, Some(&metadata), &edited).unwrap();
    std::fs::rename(&edited, &file).unwrap();
    let err = run(recipe(root.path(), "run", 3, &[]), &resume()).unwrap_err().to_string();
    assert!(err.contains("optimizer.safetensors has no moments for `model.layers.1.mlp.down_proj.lora_b`"), "{err}");
}

#[test]
fn resume_of_a_directory_that_is_no_run_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("typo");
    let options = RunOptions { resume: Some(typo.clone()), ..RunOptions::default() };
    let err = run(recipe(root.path(), "run", 2, &[]), &options).unwrap_err().to_string();
    assert!(err.contains("is this a lora-grpo run directory?"), "{err}");
    assert!(!typo.exists() && !root.path().join("run").exists());
}

#[test]
fn a_fresh_run_starts_its_logs_empty() {
    // Left by a run that failed before its first checkpoint (no trainer_state.json).
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("eval.jsonl"), "{\"step\":0,\"accuracy\":0.5}\n").unwrap();
    std::fs::write(out.join("metrics.jsonl"), "{\"step\":1,\"reward_mean\":9.0}\n").unwrap();
    run(recipe(root.path(), "run", 2, &[]), &RunOptions::default()).unwrap();
    assert_eq!(eval_steps(&out), vec![0, 2]);
    assert!(rewards(&out).iter().all(|&r| r != 9.0) && rewards(&out).len() == 2);
}
