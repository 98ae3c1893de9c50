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

/// A failure loading a tokenizer directory, encoding, decoding or rendering a chat template.
/// File problems name the file and the key or line at fault.
#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("{}: file not found; expected {what}", .path.display())]
    MissingFile { path: std::path::PathBuf, what: &'static str },
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON: {source}", .path.display())]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: not a tokenizer the `tokenizers` library can load: {message}", .path.display())]
    TokenizerJson { path: std::path::PathBuf, message: String },
    #[error("{}: `{key}` should be {expected}, found {found}", .path.display())]
    InvalidKey { path: std::path::PathBuf, key: String, expected: &'static str, found: String },
    #[error("{}: `{key}` names the token {token:?}, which is not in the vocabulary of tokenizer.json", .path.display())]
    UnknownToken { path: std::path::PathBuf, key: String, token: String },
    #[error("{}: `{key}` holds token id {id}, but the vocabulary has only {vocab_size} tokens", .path.display())]
    TokenIdOutOfRange { path: std::path::PathBuf, key: String, id: u64, vocab_size: usize },
    #[error("{}: no chat template (looked in tokenizer_config.json, chat_template.jinja and additional_chat_templates/)", .dir.display())]
    NoChatTemplate { dir: std::path::PathBuf },
    #[error("chat template {requested} not found; this tokenizer has: {available}")]
    UnknownChatTemplate { requested: String, available: String },
    #[error("cannot apply a chat template to an empty conversation")]
    EmptyConversation,
    #[error("chat template argument `{key}` is reserved: pass it through its own option")]
    ReservedTemplateArgument { key: String },
    #[error("{}: chat template `{name}`{}: {detail}", .path.display(), line_suffix(*.line))]
    Template { path: std::path::PathBuf, name: String, line: Option<usize>, detail: String },
    #[error("{}: chat template `{name}` raised an exception: {message}", .path.display())]
    TemplateRaised { path: std::path::PathBuf, name: String, message: String },
    #[error("tokenizer {op} failed: {message}")]
    Codec { op: &'static str, message: String },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}
