//! Platform-specific glue. Everything that differs between macOS and other systems
//! lives here, so the rest of the crate is platform-neutral.

/// mlx-rs seeds its default RNG with `mach_approximate_time`, a macOS-only symbol; on
/// other systems we provide it from the monotonic clock so the link succeeds.
#[cfg(not(target_os = "macos"))]
#[no_mangle]
pub extern "C" fn mach_approximate_time() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    since_epoch.wrapping_add(start.elapsed().as_nanos() as u64)
}

/// Name of the MLX build this binary runs on, for `doctor` and error messages.
pub fn mlx_build() -> &'static str {
    if cfg!(target_os = "macos") {
        "mlx-rs bundled MLX (Metal + Accelerate)"
    } else {
        "MLX from the PyPI wheel provisioned by `cargo xtask mlx`"
    }
}
