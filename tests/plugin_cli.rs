//! The plugin subcommands of the `lora-grpo` binary: `plugins list`, `plugins check`
//! and `new-plugin`, run as a user would.

mod plugin_build;

use std::path::Path;
use std::process::{Command, Output};

use plugin_build as build;

fn lora_grpo(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lora-grpo"));
    cmd.args(args).env_remove("LORA_GRPO_PLUGIN_PATH");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn list_searches_lora_grpo_plugin_path() {
    let lib = build::c_fixture("reward.c", "c_reward", &build::sdk_include(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(lib.file_name().unwrap());
    std::fs::copy(&lib, &copy).unwrap();
    let stdout = run_ok(lora_grpo(&["plugins", "list"]).env("LORA_GRPO_PLUGIN_PATH", dir.path()));
    let line = stdout
        .lines()
        .find(|l| l.contains("c-length"))
        .unwrap_or_else(|| panic!("c-length not listed:\n{stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields,
        ["reward", "c-length", "1.2.0", copy.to_str().unwrap()]
    );
    let searched = stdout.split("searched, in order:\n").nth(1).unwrap();
    assert_eq!(
        searched.lines().next().unwrap().trim(),
        dir.path().to_str().unwrap()
    );
}

#[test]
fn check_runs_a_sample_call_on_a_first_party_dataset() {
    build::first_party();
    // By name: the binary's own directory (target/debug) is on the search path.
    let stdout = run_ok(&mut lora_grpo(&[
        "plugins",
        "check",
        "arithmetic",
        "--config",
        r#"{"count": 4, "seed": 9}"#,
        "--samples",
        "2",
    ]));
    assert!(
        stdout.starts_with("ok: dataset plugin `arithmetic` 0.1.0 (SDK 0.1.0, ABI 1.0)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("split `train`: 4 to 4 samples\nfirst 2 samples:\n"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("  prompt:   \"What is ").count(),
        2,
        "{stdout}"
    );
}

#[test]
fn check_fails_with_the_plugins_error() {
    let lib = build::rust_fixture_current("misbehaving-reward");
    let out = lora_grpo(&[
        "plugins",
        "check",
        lib.to_str().unwrap(),
        "--config",
        r#"{"mode": "nan"}"#,
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "reward plugin `misbehaving` returned bad scores for a batch of 4: score 3 is NaN"
        ),
        "{stderr}"
    );
}

/// Scaffolds a plugin, runs its own tests, builds it and checks the library, all
/// without touching the generated files.
fn scaffold_build_and_check(name: &str, kind: &str, check_args: &[&str]) -> String {
    let parent = tempfile::tempdir().unwrap();
    let stdout = run_ok(&mut lora_grpo(&[
        "new-plugin",
        name,
        "--kind",
        kind,
        "--dir",
        parent.path().to_str().unwrap(),
    ]));
    let dir = parent.path().join(name);
    assert!(
        stdout.starts_with(&format!(
            "Created {kind} plugin `{name}` in {}\n",
            dir.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("cargo build --release"), "{stdout}");
    // Same dependency versions as the workspace, so the build needs no network and
    // reuses the fixtures' compiled dependencies.
    std::fs::copy(
        build::workspace().join("Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let target = build::scratch().join("target");
    for command in ["test", "build"] {
        build::run(
            build::cargo()
                .current_dir(&dir)
                .args([command, "--quiet", "--target-dir"])
                .arg(&target),
        );
    }
    let lib = target.join("debug").join(build::library_file(name));
    let mut args = vec!["plugins", "check", lib.to_str().unwrap()];
    args.extend_from_slice(check_args);
    run_ok(&mut lora_grpo(&args))
}

#[test]
fn scaffolded_reward_builds_tests_and_passes_check() {
    let report = scaffold_build_and_check("my-reward", "reward", &[]);
    assert!(
        report.starts_with("ok: reward plugin `my-reward` 0.1.0"),
        "{report}"
    );
    // The template scores 1 when the completion contains the reference answer.
    let scores: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("sample call"))
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(scores, ["1.0000", "0.0000", "1.0000", "0.0000"], "{report}");
}

#[test]
fn scaffolded_dataset_builds_tests_and_passes_check() {
    let report = scaffold_build_and_check("my_words", "dataset", &["--split", "eval"]);
    assert!(
        report.starts_with("ok: dataset plugin `my_words` 0.1.0"),
        "{report}"
    );
    assert!(report.contains("split `eval`: 2 to 2 samples"), "{report}");
    assert!(
        report.contains("  prompt:   \"Repeat the word: lantern\"\n  answer:   \"lantern\"\n"),
        "{report}"
    );
}

#[test]
fn new_plugin_refuses_bad_names_and_existing_directories() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    let out = lora_grpo(&["new-plugin", "9lives", "--kind", "reward", "--dir", dir])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("invalid plugin name `9lives`"),
        "{}",
        text(&out)
    );
    std::fs::create_dir(Path::new(dir).join("taken")).unwrap();
    let out = lora_grpo(&["new-plugin", "taken", "--kind", "dataset", "--dir", dir])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("taken already exists"),
        "{}",
        text(&out)
    );
}
