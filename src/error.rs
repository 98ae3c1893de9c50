//! Typed errors, one enum per domain. The binary turns them into `anyhow` reports.

use thiserror::Error;

/// A failure inside MLX itself (an op, an eval, a device query).
#[derive(Debug, Error)]
pub enum MlxError {
    #[error("MLX operation `{op}` failed: {source}")]
    Op {
        op: &'static str,
        #[source]
        source: mlx_rs::error::Exception,
    },
    #[error("MLX self-check `{check}` gave a wrong result: {detail}")]
    WrongResult { check: &'static str, detail: String },
}

/// A LoRA adapter directory that cannot be read, written or applied.
#[derive(Debug, Error)]
pub enum AdapterError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid adapter config: {source}")]
    Config {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {detail}")]
    Unsupported { path: std::path::PathBuf, detail: String },
    #[error("{path}: cannot read or write the safetensors file: {detail}")]
    Safetensors { path: std::path::PathBuf, detail: String },
    #[error("adapter `{path}` does not fit the model: {detail}")]
    Mismatch { path: std::path::PathBuf, detail: String },
    #[error("MLX operation `{op}` failed: {source}")]
    Mlx {
        op: &'static str,
        #[source]
        source: mlx_rs::error::Exception,
    },
}
