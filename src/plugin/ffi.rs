//! Turning vtable statuses and plugin-owned buffers into Rust values.

use lora_grpo_plugin::abi::{status, ErrorOut, OwnedBytes};

use crate::error::PluginError;

/// The plugin's `free_bytes`.
pub(super) type FreeBytes = unsafe extern "C" fn(OwnedBytes);

/// What one vtable call reported.
pub(super) enum Status {
    Ok,
    Done,
    Error { message: String, row: u64 },
    Panic { message: String },
    Unknown(i32),
}

impl Status {
    /// The failure as a host error, for a status the caller does not accept.
    pub(super) fn into_error(self, plugin: &str, call: &'static str) -> PluginError {
        match self {
            Status::Error { message, .. } => PluginError::Failed {
                plugin: plugin.to_owned(),
                call,
                message,
            },
            Status::Panic { message } => PluginError::Panicked {
                plugin: plugin.to_owned(),
                call,
                message,
            },
            Status::Ok => PluginError::UnknownStatus {
                plugin: plugin.to_owned(),
                call,
                status: status::OK,
            },
            Status::Done => PluginError::UnknownStatus {
                plugin: plugin.to_owned(),
                call,
                status: status::DONE,
            },
            Status::Unknown(status) => PluginError::UnknownStatus {
                plugin: plugin.to_owned(),
                call,
                status,
            },
        }
    }
}

/// Runs one vtable call with a fresh `ErrorOut` and collects its status and message,
/// handing the message buffer back to the plugin.
///
/// # Safety
/// `call` must be a vtable call of the plugin whose `free_bytes` is given.
pub(super) unsafe fn call(free: FreeBytes, call: impl FnOnce(*mut ErrorOut) -> i32) -> Status {
    let mut error = ErrorOut::EMPTY;
    let code = call(&mut error);
    let message = || {
        // SAFETY: on ERROR/PANIC the plugin filled `message` with a buffer it owns.
        let text = unsafe { take_bytes(error.message, free) };
        String::from_utf8_lossy(&text).into_owned()
    };
    match code {
        status::OK => Status::Ok,
        status::DONE => Status::Done,
        status::ERROR => Status::Error {
            row: error.row,
            message: message(),
        },
        status::PANIC => Status::Panic { message: message() },
        other => Status::Unknown(other),
    }
}

/// Copies a plugin buffer and returns it to the plugin.
///
/// # Safety
/// `bytes` must be empty or a live buffer from the plugin whose `free_bytes` is given.
pub(super) unsafe fn take_bytes(bytes: OwnedBytes, free: FreeBytes) -> Vec<u8> {
    if bytes.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null buffer holds `len` bytes until it is freed below.
    let copy = unsafe { std::slice::from_raw_parts(bytes.ptr, bytes.len) }.to_vec();
    // SAFETY: freed once, by the library that allocated it.
    unsafe { free(bytes) };
    copy
}
