//! Rust bindings for mlx-c, generated as mlx-sys's own build script would, plus the
//! 16-bit float types that mlx-c's half.h only declares on ARM.

use anyhow::{Context, Result};
use std::path::Path;

/// Seen only by bindgen: mlx-rs expects `float16_t` as bindgen's `__BindgenFloat16`
/// (from `_Float16`) and `bfloat16_t` as `u16`.
const HALF_TYPES: &str = "\
#pragma once
#include <stdint.h>
#define MLX_HALF_H
#define HAS_FLOAT16
#define HAS_BFLOAT16
typedef _Float16 float16_t;
typedef uint16_t bfloat16_t;
";

pub fn generate(mlx_c_dir: &Path, libclang_dir: &Path, out: &Path) -> Result<()> {
    // clang-sys loads libclang at run time from LIBCLANG_PATH; pick the >= 15 one.
    std::env::set_var("LIBCLANG_PATH", libclang_dir);
    let half = out.join("half_types.h");
    std::fs::write(&half, HALF_TYPES)?;
    let mut headers: Vec<_> = std::fs::read_dir(mlx_c_dir.join("mlx/c"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    headers.sort();
    // Same options as mlx-sys's bindgen_config.rs, so mlx-rs sees identical items.
    let builder = headers.iter().fold(
        bindgen::Builder::default()
            .rust_target("1.73.0".parse().context("bindgen rust target")?)
            .clang_arg(format!("-I{}", mlx_c_dir.display()))
            .clang_arg(format!("-include{}", half.display()))
            .blocklist_function("malloc")
            .blocklist_function("realloc"),
        |b, h| b.header(h.to_string_lossy()),
    );
    let bindings = builder.generate().context("bindgen could not generate the mlx-c bindings")?;
    bindings
        .write_to_file(out.join("bindings.rs"))
        .context("writing bindings.rs")?;
    Ok(())
}
