//! `cargo xtask mlx`: makes stock mlx-rs/mlx-sys build on Linux with MLX from PyPI.
//!
//! Steps, each cached under target/mlx/<key>/ with a stamp so re-runs are instant:
//! wheel download -> OpenBLAS swap -> mlx-c (CMake) -> bindings (bindgen) -> cargo config.
//! The cache key holds the mlx-sys version, so a new mlx-sys provisions anew.

use crate::{bindings, prereq, shell};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bump when the provisioning steps change so existing caches are rebuilt.
const RECIPE: u32 = 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Backend {
    #[default]
    Cpu,
    Cuda,
}

impl Backend {
    /// PyPI package that ships this backend's libmlx.so.
    pub fn wheel(self) -> &'static str {
        match self {
            Backend::Cpu => "mlx-cpu",
            Backend::Cuda => "mlx-cuda-13",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

#[derive(Default)]
pub struct Options {
    pub backend: Backend,
    pub force: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut opts = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--backend" => {
                    opts.backend = match it.next().map(String::as_str) {
                        Some("cpu") => Backend::Cpu,
                        Some("cuda") => Backend::Cuda,
                        other => bail!("--backend expects cpu or cuda, got {other:?}"),
                    }
                }
                "--force" => opts.force = true,
                other => bail!("unknown option `{other}` for `cargo xtask mlx` (see `cargo xtask help`)"),
            }
        }
        Ok(opts)
    }
}

/// The mlx-sys crate that Cargo.lock resolves to, and the MLX version it pins.
pub struct MlxSys {
    pub version: String,
    pub mlx_c_dir: PathBuf,
    pub mlx_version: String,
}

pub fn provision(root: &Path, opts: &Options) -> Result<()> {
    if cfg!(target_os = "macos") {
        eprintln!("macOS: mlx-rs builds MLX with Metal itself; nothing to provision.");
        return Ok(());
    }
    let sys = locate_mlx_sys(root)?;
    let key = format!("mlx-sys-{}-mlx-{}-{}-r{RECIPE}", sys.version, sys.mlx_version, std::env::consts::ARCH);
    let cache = root.join("target/mlx").join(&key);
    eprintln!(
        "MLX {} for mlx-sys {} ({} backend), cache {}",
        sys.mlx_version,
        sys.version,
        opts.backend.name(),
        cache.display()
    );
    if opts.force && cache.exists() {
        fs::remove_dir_all(&cache).with_context(|| format!("removing {}", cache.display()))?;
    }
    let found = prereq::ensure()?;

    // Headers and link-time libmlx.so come from the CPU wheel for every backend; the
    // CUDA wheel only replaces the library the binary loads at run time.
    let cpu_wheel = cached(&cache, "wheel-cpu", |dir| fetch_wheel(Backend::Cpu, &sys.mlx_version, dir, &found))?;
    let runtime_lib = match opts.backend {
        Backend::Cpu => cpu_wheel.join("mlx/lib"),
        Backend::Cuda => cached(&cache, "wheel-cuda", |dir| fetch_wheel(Backend::Cuda, &sys.mlx_version, dir, &found))?
            .join("mlx/lib"),
    };
    let compat = cache.join("compat");
    write_if_changed(&compat.join("mlx_c_compat.h"), COMPAT_HEADER)?;
    let mlx_c = cached(&cache, "mlx-c", |dir| build_mlx_c(&sys, &cpu_wheel, &compat, dir))?;
    let bindings = cached(&cache, "bindings", |dir| bindings::generate(&sys.mlx_c_dir, &found.libclang_dir, dir))?;

    let config = cargo_config(&host_triple()?, &mlx_c, &cpu_wheel.join("mlx/lib"), &runtime_lib, &bindings, &sys);
    let config_path = root.join("target/mlx/cargo-config.toml");
    if write_if_changed(&config_path, &config)? {
        eprintln!("wrote {}", config_path.display());
    }
    eprintln!("MLX ready: libmlx.so at run time from {}", runtime_lib.display());
    Ok(())
}

/// Runs `step` into `cache/name` unless a stamp says it already completed; a failed
/// step leaves no stamp, so the next run redoes it from scratch.
fn cached(cache: &Path, name: &str, step: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let dir = cache.join(name);
    let stamp = cache.join(format!("{name}.done"));
    if stamp.exists() && dir.exists() {
        eprintln!("  {name}: up to date");
        return Ok(dir);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    eprintln!("  {name}: building");
    let start = std::time::Instant::now();
    step(&dir).with_context(|| format!("MLX provisioning step `{name}` failed"))?;
    fs::write(&stamp, b"")?;
    eprintln!("  {name}: done in {:.1}s", start.elapsed().as_secs_f64());
    Ok(dir)
}

/// Finds mlx-sys through `cargo metadata` and reads the MLX tag its mlx-c pins.
pub fn locate_mlx_sys(root: &Path) -> Result<MlxSys> {
    let json = shell::output(shell::cargo(root).args(["metadata", "--format-version", "1", "--locked"]))?;
    let meta: Value = serde_json::from_str(&json).context("parsing `cargo metadata` output")?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|pkgs| pkgs.iter().find(|p| p["name"] == "mlx-sys"))
        .context("mlx-sys is not among the resolved dependencies")?;
    let version = pkg["version"].as_str().context("mlx-sys without version")?.to_string();
    let manifest = PathBuf::from(pkg["manifest_path"].as_str().context("mlx-sys without manifest_path")?);
    let mlx_c_dir = manifest.parent().context("mlx-sys manifest has no directory")?.join("src/mlx-c");
    let cmake = fs::read_to_string(mlx_c_dir.join("CMakeLists.txt"))
        .with_context(|| format!("reading {}", mlx_c_dir.join("CMakeLists.txt").display()))?;
    let mlx_version = cmake
        .lines()
        .find_map(|line| line.trim().strip_prefix("GIT_TAG v"))
        .map(|tag| tag.trim_end_matches(')').trim().to_string())
        .context("mlx-c's CMakeLists.txt names no `GIT_TAG v<version>` for MLX")?;
    Ok(MlxSys { version, mlx_c_dir, mlx_version })
}

/// Downloads and unpacks the wheel, then points its bundled BLAS/LAPACK at OpenBLAS
/// (the wheel ships netlib's reference BLAS, about 20x slower).
fn fetch_wheel(backend: Backend, version: &str, dir: &Path, found: &prereq::Found) -> Result<()> {
    let download = dir.join("download");
    shell::run(
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check"])
            .args(["--no-deps", "--only-binary=:all:", "--dest"])
            .arg(&download)
            .arg(format!("{}=={version}", backend.wheel())),
    )?;
    let wheel = fs::read_dir(&download)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    shell::run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(dir))?;
    fs::remove_dir_all(&download)?;
    let mut swapped = 0;
    for libs in fs::read_dir(dir)?.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".libs")) {
        for lib in fs::read_dir(libs.path())?.flatten() {
            let name = lib.file_name().to_string_lossy().into_owned();
            let system = if name.starts_with("libblas-") {
                "libblas.so.3"
            } else if name.starts_with("liblapack-") {
                "liblapack.so.3"
            } else {
                continue;
            };
            fs::remove_file(lib.path())?;
            std::os::unix::fs::symlink(found.openblas_dir.join(system), lib.path())?;
            swapped += 1;
        }
    }
    if backend == Backend::Cpu && swapped != 2 {
        bail!("expected the wheel to bundle one BLAS and one LAPACK library, found {swapped}");
    }
    if !dir.join("mlx/lib/libmlx.so").exists() {
        bail!("the {} wheel has no mlx/lib/libmlx.so", backend.wheel());
    }
    Ok(())
}

/// Force-included into mlx-c's C++ build: GCC 12 lacks `<format>` (fmt stands in), and
/// mlx-c's half.h only defines its 16-bit float types on ARM (same bits as u16).
const COMPAT_HEADER: &str = "\
#pragma once
#include <stdint.h>
#define MLX_HALF_H
#define HAS_FLOAT16
#define HAS_BFLOAT16
typedef uint16_t float16_t;
typedef uint16_t bfloat16_t;
#ifdef __cplusplus
#if __has_include(<format>)
#include <format>
#else
#define FMT_HEADER_ONLY
#include <fmt/format.h>
namespace std { using fmt::format; }
#endif
#endif
";

fn build_mlx_c(sys: &MlxSys, wheel: &Path, compat: &Path, dir: &Path) -> Result<()> {
    let build = dir.join("build");
    shell::run(
        Command::new("cmake")
            .arg("-S")
            .arg(&sys.mlx_c_dir)
            .arg("-B")
            .arg(&build)
            .args(["-DMLX_C_USE_SYSTEM_MLX=ON", "-DMLX_C_BUILD_EXAMPLES=OFF", "-DCMAKE_BUILD_TYPE=Release"])
            .args(["-DCMAKE_POSITION_INDEPENDENT_CODE=ON", "-DBUILD_SHARED_LIBS=OFF"])
            .arg(format!("-DMLX_DIR={}", wheel.join("mlx/share/cmake/MLX").display()))
            .arg(format!("-DCMAKE_CXX_FLAGS=-include {}", compat.join("mlx_c_compat.h").display()))
            .arg("-Wno-dev"),
    )?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    shell::run(Command::new("cmake").arg("--build").arg(&build).args(["--parallel", &jobs.to_string()]))?;
    let lib = build.join("libmlxc.a");
    if !lib.exists() {
        bail!("mlx-c built but {} is missing", lib.display());
    }
    fs::rename(&lib, dir.join("libmlxc.a"))?;
    fs::remove_dir_all(&build)?;
    Ok(())
}

fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let info = shell::output(Command::new(rustc).arg("-vV"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("`rustc -vV` printed no host triple")
}

/// The build-script override for mlx-sys (`links = "mlx"`) plus the environment our
/// own build.rs reads to set the rpath and to notice a changed mlx-sys.
fn cargo_config(triple: &str, mlx_c: &Path, link_lib: &Path, runtime_lib: &Path, bindings: &Path, sys: &MlxSys) -> String {
    format!(
        "# Written by `cargo xtask mlx`; rerun it instead of editing.\n\
         [target.{triple}.mlx]\n\
         rustc-link-search = [\"native={mlx_c}\", \"native={link_lib}\"]\n\
         rustc-link-lib = [\"static=mlxc\", \"dylib=mlx\", \"dylib=stdc++\"]\n\
         rustc-env = {{ OUT_DIR = \"{bindings}\" }}\n\n\
         [env]\n\
         LORA_GRPO_MLX_LIB_DIR = \"{runtime_lib}\"\n\
         LORA_GRPO_MLX_SYS_VERSION = \"{version}\"\n",
        mlx_c = mlx_c.display(),
        link_lib = link_lib.display(),
        bindings = bindings.display(),
        runtime_lib = runtime_lib.display(),
        version = sys.version,
    )
}

/// Writes only when the content differs, so Cargo sees no change on a re-run.
fn write_if_changed(path: &Path, content: &str) -> Result<bool> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    fs::create_dir_all(path.parent().context("path without parent")?)?;
    fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}
