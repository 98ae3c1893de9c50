//! System prerequisites for building mlx-c on Linux, each mapped to the Debian
//! package that provides it. Installed automatically only when running as root in CI.

use crate::shell;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Oldest libclang whose bindgen accepts `_Float16` on x86 (14 rejects it).
const MIN_LIBCLANG: u32 = 15;

/// What the provisioning needs from the system, found on this machine.
pub struct Found {
    pub libclang_dir: PathBuf,
    pub openblas_dir: PathBuf,
}

struct Missing {
    what: &'static str,
    package: String,
}

/// Multiarch directory name Debian uses for this machine's libraries.
pub fn multiarch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else {
        "x86_64-linux-gnu"
    }
}

/// Checks every prerequisite; installs the missing ones as root in CI, otherwise
/// fails with one message that names all Debian packages to install.
pub fn ensure() -> Result<Found> {
    let missing = missing();
    if !missing.is_empty() {
        let packages: Vec<&str> = missing.iter().map(|m| m.package.as_str()).collect();
        if running_as_root() && std::env::var_os("CI").is_some() {
            eprintln!("installing build prerequisites: {}", packages.join(" "));
            shell::run(Command::new("apt-get").args(["update", "-qq"]))?;
            shell::run(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends"])
                    .args(&packages)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
        } else {
            let list: Vec<String> = missing
                .iter()
                .map(|m| format!("  - {} (Debian package {})", m.what, m.package))
                .collect();
            bail!(
                "missing build prerequisites for MLX on Linux:\n{}\ninstall them with:\n  sudo apt-get update && sudo apt-get install -y {}",
                list.join("\n"),
                packages.join(" ")
            );
        }
    }
    let still_missing = self::missing();
    if let Some(m) = still_missing.first() {
        bail!("{} is still missing after installing {}", m.what, m.package);
    }
    Ok(Found {
        libclang_dir: find_libclang().expect("checked above"),
        openblas_dir: openblas_dir(),
    })
}

fn missing() -> Vec<Missing> {
    let mut missing = Vec::new();
    let mut need = |ok: bool, what: &'static str, package: &dyn Fn() -> String| {
        if !ok {
            missing.push(Missing { what, package: package() });
        }
    };
    need(shell::succeeds(Command::new("cmake").arg("--version")), "cmake", &|| "cmake".into());
    need(shell::succeeds(Command::new("c++").arg("--version")), "a C++ compiler", &|| "g++".into());
    need(find_libclang().is_some(), "libclang >= 15 (for bindgen)", &libclang_package);
    need(
        openblas_dir().join("libblas.so.3").exists(),
        "OpenBLAS (replaces the wheel's slow reference BLAS)",
        &|| "libopenblas0-pthread".into(),
    );
    need(Path::new("/usr/include/fmt/format.h").exists(), "fmt headers", &|| "libfmt-dev".into());
    need(
        shell::succeeds(Command::new("python3").args(["-m", "pip", "--version"])),
        "python3 with pip (downloads the MLX wheel)",
        &|| "python3-pip".into(),
    );
    missing
}

fn openblas_dir() -> PathBuf {
    Path::new("/usr/lib").join(multiarch()).join("openblas-pthread")
}

/// Newest `/usr/lib/llvm-N/lib` with a libclang of at least `MIN_LIBCLANG`, or
/// `LIBCLANG_PATH` when the user points at one.
fn find_libclang() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBCLANG_PATH") {
        return Some(PathBuf::from(dir));
    }
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir("/usr/lib").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_prefix("llvm-").and_then(|v| v.parse::<u32>().ok()) else {
            continue;
        };
        let lib = entry.path().join("lib");
        let has_lib = std::fs::read_dir(&lib)
            .map(|it| it.flatten().any(|f| f.file_name().to_string_lossy().starts_with("libclang.so")))
            .unwrap_or(false);
        if version >= MIN_LIBCLANG && has_lib && best.as_ref().map_or(true, |(v, _)| version > *v) {
            best = Some((version, lib));
        }
    }
    best.map(|(_, dir)| dir)
}

/// The newest libclang dev package apt knows about (Debian 12: 19; Ubuntu 22.04: 15).
fn libclang_package() -> String {
    for version in (MIN_LIBCLANG..=21).rev() {
        let name = format!("libclang-{version}-dev");
        let known = Command::new("apt-cache")
            .args(["show", "--no-all-versions", &name])
            .output()
            .map(|o| o.status.success() && !o.stdout.is_empty())
            .unwrap_or(false);
        if known {
            return name;
        }
    }
    "libclang-19-dev".to_string()
}

fn running_as_root() -> bool {
    shell::output(Command::new("id").arg("-u"))
        .map(|uid| uid.trim() == "0")
        .unwrap_or(false)
}
