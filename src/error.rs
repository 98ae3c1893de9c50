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

/// A failure to read, check or run a model (src/model).
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: `{key}` {problem}")]
    Config {
        path: std::path::PathBuf,
        key: String,
        problem: String,
    },
    #[error("unsupported model_type `{model_type}` in {path}; supported: {supported}")]
    UnsupportedModelType {
        path: std::path::PathBuf,
        model_type: String,
        supported: String,
    },
    #[error("no weights in {dir}: expected model.safetensors, model.safetensors.index.json or model*.safetensors")]
    NoWeights { dir: std::path::PathBuf },
    #[error("cannot load safetensors file {path}: {message}")]
    Safetensors {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("missing tensor `{key}` in {file}{others}")]
    MissingTensor {
        key: String,
        file: std::path::PathBuf,
        /// ", and N more" when several are missing.
        others: String,
    },
    #[error("unexpected tensor `{key}` in {file}: the model has no such parameter{others}")]
    UnexpectedTensor {
        key: String,
        file: std::path::PathBuf,
        others: String,
    },
    #[error("tensor `{key}` in {file} has shape {found:?}, expected {expected:?}{detail}")]
    ShapeMismatch {
        key: String,
        file: std::path::PathBuf,
        found: Vec<i32>,
        expected: Vec<i32>,
        /// What the expected shape comes from, e.g. " (4-bit, group size 64)".
        detail: String,
    },
    #[error("tensor `{key}` in {file} has dtype {found:?}, expected {expected}")]
    DtypeMismatch {
        key: String,
        file: std::path::PathBuf,
        found: mlx_rs::Dtype,
        expected: &'static str,
    },
    #[error("tensor `{key}` appears in both {first} and {second}")]
    DuplicateTensor {
        key: String,
        first: std::path::PathBuf,
        second: std::path::PathBuf,
    },
    #[error("{index} puts `{key}` in {expected}, but it is in {found}")]
    IndexMismatch {
        index: std::path::PathBuf,
        key: String,
        expected: String,
        found: std::path::PathBuf,
    },
    #[error("token id {token} at position {position} of row {row} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange {
        row: usize,
        position: usize,
        token: u32,
        vocab: i32,
    },
    #[error("invalid model input: {0}")]
    Input(String),
    #[error("MLX error in the model: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}

/// A failure in the generation engine (src/generate).
#[derive(Debug, Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid sampling setting `{name}` = {value}: {expected}")]
    Sampling {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid generation request: {0}")]
    Request(String),
    #[error("MLX error during generation: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}
