//! `cargo xtask cuda-bundle`: packs the CUDA 13 libmlx.so and its NVRTC headers into
//! parts that fit the lent GPU machine's 64 MiB per-call carry (see scripts/gpu.sh).

use crate::{mlx, shell};
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Leaves room beside a part for the working tree and the lora-grpo binary.
const PART_BYTES: &str = "30M";

pub fn build(root: &Path) -> Result<()> {
    let sys = mlx::locate_mlx_sys(root)?;
    let out = root.join("target/cuda-bundle");
    let stamp = out.join(format!("mlx-{}.done", sys.mlx_version));
    if stamp.exists() {
        eprintln!("{} is up to date for MLX {}", out.display(), sys.mlx_version);
        return Ok(());
    }
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    let work = out.join("work");
    fs::create_dir_all(&work)?;
    shell::run(
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
            .args(["--only-binary=:all:", "--dest"])
            .arg(&work)
            .arg(format!("{}=={}", mlx::Backend::Cuda.wheel(), sys.mlx_version)),
    )?;
    let wheel = fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no CUDA wheel")?;
    shell::run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&work))?;
    let lib = work.join("mlx/lib/libmlx.so");
    // Debug symbols are a fifth of the library and useless on the device.
    shell::run(Command::new("strip").arg("--strip-unneeded").arg(&lib))?;
    shell::run(Command::new("xz").args(["-T0", "-9e", "-k"]).arg(&lib))?;
    shell::run(
        Command::new("split")
            .args(["-b", PART_BYTES, "-d"])
            .arg(work.join("mlx/lib/libmlx.so.xz"))
            .arg(out.join("libmlx.so.xz.part-")),
    )?;
    shell::run(
        Command::new("tar")
            .arg("-C")
            .arg(work.join("mlx/include"))
            .arg("-cJf")
            .arg(out.join("mlx-include.tar.xz"))
            .args(["cccl", "cute", "cutlass"]),
    )?;
    // gpu.sh links these names to the device's OpenBLAS.
    let dynamic = shell::output(Command::new("readelf").arg("-d").arg(&lib))?;
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .filter(|name| name.starts_with("libblas") || name.starts_with("liblapack"))
        .collect();
    fs::write(out.join("needed.txt"), needed.join("\n") + "\n")?;
    fs::remove_dir_all(&work)?;
    let manifest = shell::output(
        Command::new("sh")
            .arg("-c")
            .arg("sha256sum libmlx.so.xz.part-* mlx-include.tar.xz needed.txt")
            .current_dir(&out),
    )?;
    fs::write(out.join("MANIFEST"), manifest)?;
    fs::write(&stamp, b"")?;
    for entry in fs::read_dir(&out)?.flatten() {
        let len = entry.metadata()?.len();
        eprintln!("  {:<40} {:>6.1} MiB", entry.file_name().to_string_lossy(), len as f64 / 1048576.0);
    }
    eprintln!("carry one part per call to the GPU machine; see scripts/gpu.sh");
    Ok(())
}
