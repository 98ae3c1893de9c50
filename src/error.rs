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

/// A recipe that cannot be read, parsed, typed or validated, or written back.
#[derive(Debug, Error)]
pub enum RecipeError {
    #[error("cannot read recipe {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, type and value problems, each with file, line, column and key.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<crate::recipe::Diagnostic>),
    #[error("cannot serialize the recipe: {0}")]
    Serialize(String),
    #[error("cannot write recipe {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Bad input to the GRPO math (a shape or count that does not fit the group layout).
#[derive(Debug, Error)]
pub enum GrpoError {
    #[error("{count} rewards cannot be split into groups of {group_size}")]
    Ragged { count: usize, group_size: usize },
    #[error("reward of completion {index} is {value}, not a finite number")]
    NonFiniteReward { index: usize, value: f32 },
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
