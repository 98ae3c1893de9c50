//! Builds real plugin libraries for the plugin tests: first-party plugins with cargo in
//! this workspace, Rust fixtures (also against a copy of the SDK patched to another ABI
//! major) and C fixtures with the system C compiler.

#![allow(dead_code)] // each test crate uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Where fixture crates are copied and built (their own target dir, so their libraries
/// never show up among the workspace's plugins).
pub fn scratch() -> PathBuf {
    target_dir().join("test-plugins")
}

pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `lib<name>.so` (or the platform's spelling).
pub fn library_file(crate_name: &str) -> String {
    format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    )
}

pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tests in one binary share these builds; cargo itself serializes across binaries.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds the first-party plugin packages into the workspace's `target/debug` (a no-op
/// when `cargo build --workspace` already did) and returns that directory.
pub fn first_party() -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = cargo();
    cmd.current_dir(workspace()).args(["build", "--quiet"]);
    for package in [
        "lora-grpo-reward-math-answer",
        "lora-grpo-reward-format",
        "lora-grpo-reward-length",
        "lora-grpo-dataset-jsonl",
        "lora-grpo-dataset-gsm8k",
        "lora-grpo-dataset-arithmetic",
    ] {
        cmd.args(["-p", package]);
    }
    run(&mut cmd);
    target_dir().join("debug")
}

/// The library of first-party package `package`.
pub fn first_party_lib(package: &str) -> PathBuf {
    first_party().join(library_file(package))
}

/// Copies fixture crate `tests/fixtures/plugins/<name>` to `scratch()/src/<package>`
/// under the package name `package`, points its SDK dependency at `sdk`, builds it and
/// returns the library.
pub fn rust_fixture(name: &str, package: &str, sdk: &Path) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let from = workspace().join("tests/fixtures/plugins").join(name);
    let dir = scratch().join("src").join(package);
    copy_dir(&from, &dir);
    let manifest = std::fs::read_to_string(from.join("Cargo.toml")).unwrap();
    let local = r#"lora-grpo-plugin = { path = "../../../../crates/lora-grpo-plugin" }"#;
    let own_name = format!("name = \"{name}\"");
    assert!(
        manifest.contains(local),
        "{name}/Cargo.toml must depend on the SDK by `{local}`"
    );
    assert!(
        manifest.contains(&own_name),
        "{name}/Cargo.toml must have `{own_name}`"
    );
    let sdk_line = format!(
        "lora-grpo-plugin = {{ path = {:?} }}",
        sdk.display().to_string()
    );
    let manifest = manifest
        .replace(local, &sdk_line)
        .replace(&own_name, &format!("name = \"{package}\""));
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file pins the same dependency versions and needs no network.
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = scratch().join("target");
    run(cargo()
        .current_dir(&dir)
        .args(["build", "--quiet", "--target-dir"])
        .arg(&target));
    target.join("debug").join(library_file(package))
}

/// A fixture built against this workspace's SDK.
pub fn rust_fixture_current(name: &str) -> PathBuf {
    rust_fixture(name, name, &workspace().join("crates/lora-grpo-plugin"))
}

/// A copy of the SDK whose ABI major is 2 (entry symbol `..._v2`) and version 2.0.0:
/// what a plugin built by a future lora-grpo looks like to this host.
pub fn sdk_with_abi_major_2() -> PathBuf {
    let from = workspace().join("crates/lora-grpo-plugin");
    let dir = scratch().join("sdk-abi2");
    copy_dir(&from, &dir);
    let patch = |file: &str, edits: &[(&str, &str)]| {
        let path = dir.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (old, new) in edits {
            assert!(text.contains(old), "{file} no longer contains `{old}`");
            text = text.replace(old, new);
        }
        std::fs::write(path, text).unwrap();
    };
    patch(
        "src/abi.rs",
        &[
            (
                "pub const ABI_MAJOR: u32 = 1;",
                "pub const ABI_MAJOR: u32 = 2;",
            ),
            (
                "\"lora_grpo_plugin_entry_v1\"",
                "\"lora_grpo_plugin_entry_v2\"",
            ),
        ],
    );
    patch(
        "src/lib.rs",
        &[(
            "fn lora_grpo_plugin_entry_v1()",
            "fn lora_grpo_plugin_entry_v2()",
        )],
    );
    patch(
        "Cargo.toml",
        &[
            ("version.workspace = true", "version = \"2.0.0\""),
            ("edition.workspace = true", "edition = \"2021\""),
            (
                "license.workspace = true",
                "license = \"MIT OR Apache-2.0\"",
            ),
        ],
    );
    dir
}

/// Compiles C file `tests/fixtures/plugins/c/<file>` into a shared library with the
/// system compiler (`$CC`, default `cc`), against `include` and with `defines`.
pub fn c_fixture(file: &str, out_name: &str, include: &Path, defines: &[&str]) -> PathBuf {
    let source = workspace().join("tests/fixtures/plugins/c").join(file);
    let out = scratch().join("c").join(library_file(out_name));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args([
        "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O1",
    ])
    .arg("-I")
    .arg(include)
    .args(defines.iter().map(|d| format!("-D{d}")))
    .arg("-o")
    .arg(&out)
    .arg(&source);
    run(&mut cmd);
    out
}

/// The SDK's C header directory.
pub fn sdk_include() -> PathBuf {
    workspace().join("crates/lora-grpo-plugin/include")
}

/// A copy of the SDK's C header with `LG_ABI_MAJOR` set to `major`.
pub fn include_with_abi_major(major: u32) -> PathBuf {
    let header = std::fs::read_to_string(sdk_include().join("lora_grpo_plugin.h")).unwrap();
    let old = "#define LG_ABI_MAJOR 1\n";
    assert!(header.contains(old), "the header no longer defines `{old}`");
    let dir = scratch().join(format!("include-abi{major}"));
    std::fs::create_dir_all(&dir).unwrap();
    let patched = header.replace(old, &format!("#define LG_ABI_MAJOR {major}\n"));
    std::fs::write(dir.join("lora_grpo_plugin.h"), patched).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
