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
