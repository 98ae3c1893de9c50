//! Where plugins are looked up by name.

use std::path::{Path, PathBuf};

/// Environment variable with extra plugin directories, separated like `PATH`.
pub const PLUGIN_PATH_ENV: &str = "LORA_GRPO_PLUGIN_PATH";

/// Plugin directories in priority order; the first plugin with the wanted name wins.
/// Only libraries directly inside each directory count (no recursion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// Exactly `dirs`, in this order (duplicates dropped).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut unique: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            let key = canonical(&dir);
            if !unique.iter().any(|d| canonical(d) == key) {
                unique.push(dir);
            }
        }
        SearchPath { dirs: unique }
    }

    /// `extra` (e.g. the recipe's plugin directory), then every directory in
    /// `LORA_GRPO_PLUGIN_PATH`, then the running binary's directory, then this
    /// workspace's `target/release` and `target/debug` (where `cargo build` puts the
    /// first-party plugins).
    pub fn standard(extra: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut dirs: Vec<PathBuf> = extra.into_iter().collect();
        if let Some(paths) = std::env::var_os(PLUGIN_PATH_ENV) {
            dirs.extend(std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        dirs.push(workspace.join("release"));
        dirs.push(workspace.join("debug"));
        SearchPath::new(dirs)
    }

    /// The directories, in priority order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// One directory per line, marking those that do not exist.
    pub fn describe(&self) -> String {
        self.dirs
            .iter()
            .map(|d| match d.is_dir() {
                true => format!("  {}", d.display()),
                false => format!("  {} (missing)", d.display()),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Shared libraries in each directory, sorted by name, directories in priority
    /// order. Missing or unreadable directories contribute nothing.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut libs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_library(p))
                .collect();
            libs.sort();
            found.extend(libs);
        }
        found
    }
}

fn is_library(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some(std::env::consts::DLL_EXTENSION)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
