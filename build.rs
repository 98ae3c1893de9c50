//! On Linux, links the binary and tests to the MLX that `cargo xtask mlx` provisioned
//! (rpath, so no LD_LIBRARY_PATH is needed) and stops early when it is missing or stale.
//! On macOS mlx-sys builds MLX itself and this script does nothing.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LORA_GRPO_MLX_LIB_DIR");
    println!("cargo:rerun-if-env-changed=LORA_GRPO_MLX_SYS_VERSION");
    println!("cargo:rerun-if-changed=Cargo.lock");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        return;
    }
    let Ok(lib_dir) = env::var("LORA_GRPO_MLX_LIB_DIR") else {
        fail("MLX is not provisioned for this checkout. Run `cargo xtask mlx` first (see README.md).");
    };
    if !Path::new(&lib_dir).join("libmlx.so").exists() {
        fail(&format!("{lib_dir}/libmlx.so is missing. Run `cargo xtask mlx` again."));
    }
    let provisioned = env::var("LORA_GRPO_MLX_SYS_VERSION").unwrap_or_default();
    if let Some(locked) = locked_mlx_sys_version() {
        if locked != provisioned {
            fail(&format!(
                "MLX was provisioned for mlx-sys {provisioned}, but Cargo.lock now has mlx-sys {locked}. Run `cargo xtask mlx` again."
            ));
        }
    }
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{lib_dir}");
}

fn locked_mlx_sys_version() -> Option<String> {
    let lock = fs::read_to_string("Cargo.lock").ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"mlx-sys\"" {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
