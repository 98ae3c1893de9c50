//! The error a plugin returns to the host: a message, and for datasets the row it is about.

use std::fmt;

/// An error reported by a plugin. The host shows `message` as the plugin's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    row: Option<u64>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            row: None,
        }
    }

    /// An error about one source row (1-based), e.g. a malformed JSON line.
    pub fn at_row(row: u64, message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            row: Some(row),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn row(&self) -> Option<u64> {
        self.row
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(row) => write!(f, "row {row}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(message)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(err.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::new(err.to_string())
    }
}
