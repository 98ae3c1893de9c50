//! Running external commands with readable failures, and timing set-up stages.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `cargo` as invoked by the user (the same toolchain), in the workspace root.
pub fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Runs a command with inherited output; a non-zero exit is an error naming it.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; stderr is included in the error on failure.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when the program can be started (used to probe for tools).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn describe(cmd: &Command) -> String {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    format!("`{} {}`", cmd.get_program().to_string_lossy(), args.join(" "))
}

/// Records how long each named stage took and prints a table at the end.
pub struct StageTimer {
    stages: Vec<(String, Duration)>,
}

impl StageTimer {
    pub fn new() -> Self {
        Self { stages: Vec::new() }
    }

    pub fn stage<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("==> {name}");
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        eprintln!("==> {name}: {:.1}s", took.as_secs_f64());
        self.stages.push((name.to_string(), took));
        result
    }

    pub fn summary(&self) {
        eprintln!("stage times:");
        for (name, took) in &self.stages {
            eprintln!("  {:<30} {:>8.1}s", name, took.as_secs_f64());
        }
    }
}
