//! Data-parallel GRPO over MLX's ring backend on localhost: two ranks started by
//! `lora-grpo launch -n 2` end with the adapters of one process training on the same
//! global batch, resuming on another number of ranks continues the same run, and a rank
//! that dies or finds no peers stops the run quickly with a message naming it, leaving the
//! last checkpoint usable, Ctrl-C stops every rank at one step; ranks started by `mlx.launch` work too (ignored test: needs
//! Python mlx). Run with `--test-threads=1` (MLX).

#[path = "plugin_build/mod.rs"]
mod plugin_build;
mod tiny_run;

use lora_grpo::grpo::{run, RunOptions};
use lora_grpo::recipe::Recipe;
use tiny_run::{adapters, model_dir};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lora-grpo");

/// A recipe file (4 prompts x 4 completions per step, distributed over the ring backend)
/// whose output goes to `root/out`.
fn recipe_file(root: &Path, out: &str, steps: u64, timeout_s: f64) -> PathBuf {
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
  batch_size: 4
  steps: {steps}
  max_completion_length: 10
  loss_type: dapo
optimizer:
  lr: 0.02
data:
  plugin: arithmetic
  config: {{count: {{train: 16}}, max: 9}}
rewards:
  - plugin: length
    config: {{mode: linear, per_unit: -0.1}}
output_dir: {out}
checkpoint_every: 1
seed: 5
plugin_dirs: [{plugins}]
distributed:
  backend: ring
  timeout_s: {timeout_s}
"#,
        model = model_dir(root).display(),
        out = root.join(out).display(),
        plugins = plugins().display(),
    );
    let path = root.join(format!("{out}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The first-party plugins, built once per test binary.
fn plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(plugin_build::first_party)
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn max_difference(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(p, q)| (p - q).abs()))
        .fold(0f32, f32::max)
}

/// `lora-grpo launch -n 2 -- run RECIPE ARGS...`, waited for.
fn launch_two(recipe: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["launch", "-n", "2", "--", "run", "--no-progress"])
        .arg(recipe)
        .args(args)
        .output()
        .unwrap()
}

fn in_process(recipe: &Path, options: &RunOptions) {
    run(Recipe::load(recipe, &[]).unwrap(), options).unwrap();
}

#[test]
fn two_ranks_train_exactly_what_one_process_trains() {
    let root = tempfile::tempdir().unwrap();
    let single = recipe_file(root.path(), "single", 3, 60.0);
    in_process(&single, &RunOptions::default());

    let pair = recipe_file(root.path(), "pair", 3, 60.0);
    let out = launch_two(&pair, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "launch failed:\n{stderr}");
    assert!(stderr.contains("[rank 1] lora-grpo: rank 1 of 2 (ring backend): prompts 2..4"), "{stderr}");

    // The same groups were sampled (same rewards and lengths per step) ...
    let (m1, m2) = (metrics(&root.path().join("single")), metrics(&root.path().join("pair")));
    assert_eq!(m2.len(), 3, "only rank 0 writes metrics");
    for (a, b) in m1.iter().zip(&m2) {
        for key in ["reward_mean", "reward_std", "completion_length_mean", "loss", "grad_norm"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "step {}: {key} {x} vs {y}", a["step"]);
        }
        assert_eq!(b["ranks"], 2);
    }
    // ... and the averaged gradients made the same updates, up to summation order.
    let worst = max_difference(
        &adapters(&root.path().join("single/adapters.safetensors")),
        &adapters(&root.path().join("pair/adapters.safetensors")),
    );
    assert!(worst < 1e-4, "adapters differ by {worst}");
    let changed = max_difference(
        &adapters(&root.path().join("pair/0000001_adapters.safetensors")),
        &adapters(&root.path().join("pair/adapters.safetensors")),
    );
    assert!(changed > 1e-3, "training did not move the adapters ({changed})");

    // A 2-rank run stopped after step 2 and resumed in one process ends the same way:
    // the data position and the sampling seeds belong to the step, not to the ranks.
    let part = recipe_file(root.path(), "part", 2, 60.0);
    assert!(launch_two(&part, &[]).status.success());
    let part = recipe_file(root.path(), "part", 3, 60.0);
    in_process(&part, &RunOptions { resume: Some(root.path().join("part")), ..RunOptions::default() });
    let worst = max_difference(
        &adapters(&root.path().join("single/adapters.safetensors")),
        &adapters(&root.path().join("part/adapters.safetensors")),
    );
    assert!(worst < 1e-4, "resumed adapters differ by {worst}");
}

fn trainer_step(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("trainer_state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
}

/// A `lora-grpo launch -n 2` in the background, with its stderr lines collected.
struct Background {
    launcher: std::process::Child,
    received: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Background {
    fn start(recipe: &Path) -> Self {
        let mut launcher = Command::new(BIN)
            .args(["launch", "-n", "2", "--", "run", "--no-progress"])
            .arg(recipe)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, received) = mpsc::channel();
        let stderr = launcher.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        Background { launcher, received, log: Vec::new() }
    }

    /// Collects output until `done` holds (at most 60 s).
    fn wait_for(&mut self, mut done: impl FnMut(&[String]) -> bool) {
        let started = Instant::now();
        while !done(&self.log) {
            assert!(started.elapsed() < Duration::from_secs(60), "timed out; output:\n{}", self.log.join("\n"));
            if let Ok(line) = self.received.recv_timeout(Duration::from_millis(100)) {
                self.log.push(line);
            }
        }
    }

    /// Waits (at most `limit`) for the launcher to exit; returns its status and output.
    fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let since = Instant::now();
        let status = loop {
            if let Some(status) = self.launcher.try_wait().unwrap() {
                break status;
            }
            assert!(since.elapsed() < limit, "the launch did not stop within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.received.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        (status, self.log.join("\n"))
    }
}

#[test]
fn a_dead_rank_stops_the_launch_and_the_last_checkpoint_resumes() {
    let root = tempfile::tempdir().unwrap();
    let recipe = recipe_file(root.path(), "run", 100_000, 30.0);
    let out = root.path().join("run");
    let mut launch = Background::start(&recipe);
    // Rank 1's process id comes first; then wait for two saved checkpoints.
    launch.wait_for(|log| log.iter().any(|l| l.starts_with("launch: rank 1 is process ")) && trainer_step(&out).is_some_and(|s| s >= 2));
    let rank1: i32 = launch
        .log
        .iter()
        .find_map(|l| l.strip_prefix("launch: rank 1 is process "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A real death: SIGKILL, no chance to say goodbye.
    assert_eq!(unsafe { libc::kill(rank1, libc::SIGKILL) }, 0);
    let (status, log) = launch.finish(Duration::from_secs(20));
    assert!(!status.success());
    assert!(log.contains("rank 1 was killed by signal 9; stopped the other ranks"), "{log}");

    // The last checkpoint is whole: one process resumes it for one more step.
    let last = trainer_step(&out).unwrap();
    let more = format!("grpo.steps={}", last + 1);
    let resumed = Recipe::load(&recipe, &[more]).unwrap();
    let summary = run(resumed, &RunOptions { resume: Some(out.clone()), ..RunOptions::default() }).unwrap();
    assert_eq!(summary.steps, last + 1);
    assert_eq!(trainer_step(&out), Some(last + 1));
}

#[test]
fn ctrl_c_stops_every_rank_at_the_same_step_with_a_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let recipe = recipe_file(root.path(), "run", 100_000, 30.0);
    let out = root.path().join("run");
    let mut launch = Background::start(&recipe);
    launch.wait_for(|_| trainer_step(&out).is_some_and(|s| s >= 1));
    assert_eq!(unsafe { libc::kill(launch.launcher.id() as i32, libc::SIGINT) }, 0);
    let (status, log) = launch.finish(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let step = trainer_step(&out).unwrap();
    assert!(log.contains(&format!("[rank 0] interrupted: checkpoint of step {step} saved")), "{log}");
    assert!(log.contains("[rank 1] interrupt: finishing this step"), "{log}");
    assert_eq!(metrics(&out).len() as u64, step, "one metrics line per step, from rank 0 only");
}

#[test]
fn a_rank_without_peers_times_out_with_a_clear_message() {
    let root = tempfile::tempdir().unwrap();
    let recipe = recipe_file(root.path(), "run", 2, 2.0);
    // Two ranks in the hostfile, but rank 1 never starts: rank 0 waits in accept().
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let hostfile = root.path().join("hosts.json");
    std::fs::write(&hostfile, format!(r#"[["127.0.0.1:{}"], ["127.0.0.1:{}"]]"#, ports[0], ports[1])).unwrap();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--no-progress"])
        .arg(&recipe)
        .env("MLX_RANK", "0")
        .env("MLX_HOSTFILE", &hostfile)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("rank 0: connecting to the other ranks did not finish within 2s (distributed.timeout_s)"),
        "{stderr}"
    );
}

#[test]
fn misconfigured_ranks_fail_with_the_reason() {
    let root = tempfile::tempdir().unwrap();
    // 4 prompts per step cannot be split over 3 ranks: every rank refuses, the launch names one.
    let recipe = recipe_file(root.path(), "run", 2, 30.0);
    let out = Command::new(BIN).args(["launch", "-n", "3", "--", "run"]).arg(&recipe).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("grpo.batch_size 4 cannot be split evenly over 3 ranks"), "{stderr}");
    assert!(stderr.contains("exited with status 1; stopped the other ranks"), "{stderr}");
    // A launched rank whose recipe is not distributed would train alone into a shared directory.
    let text = std::fs::read_to_string(&recipe).unwrap().replace("backend: ring", "backend: off");
    std::fs::write(&recipe, text).unwrap();
    let out = Command::new(BIN).args(["run"]).arg(&recipe).env("MLX_RANK", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("started as rank 1 (MLX_RANK is set) but the recipe's distributed.backend is off"), "{stderr}");
    assert!(!root.path().join("run").exists(), "nothing was written");
}

#[test]
#[ignore = "needs Python mlx 0.32.2 for mlx.launch (pip install \"mlx[cpu]==0.32.2\")"]
fn ranks_started_by_mlx_launch_train_what_one_process_trains() {
    let root = tempfile::tempdir().unwrap();
    let single = recipe_file(root.path(), "single", 2, 60.0);
    in_process(&single, &RunOptions::default());
    // mlx.launch writes its own hostfile and sets MLX_RANK/MLX_HOSTFILE for each rank.
    let pair = recipe_file(root.path(), "pair", 2, 60.0);
    let out = Command::new("mlx.launch")
        .args(["--backend", "ring", "-n", "2", "--", BIN, "run", "--no-progress"])
        .arg(&pair)
        .output()
        .expect("mlx.launch on PATH");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rank 1 of 2 (ring backend)"), "{stderr}");
    assert_eq!(metrics(&root.path().join("pair")).len(), 2);
    let worst = max_difference(
        &adapters(&root.path().join("single/adapters.safetensors")),
        &adapters(&root.path().join("pair/adapters.safetensors")),
    );
    assert!(worst < 1e-4, "adapters differ by {worst}");
}
