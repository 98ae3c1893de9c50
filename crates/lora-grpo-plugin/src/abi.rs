//! The C ABI between the lora-grpo host and a plugin library, version 1.
//!
//! Plugin authors never touch these types: [`export_reward!`](crate::export_reward) and
//! [`export_dataset!`](crate::export_dataset) generate them. They are public for the host
//! and for plugins written in other languages; `include/lora_grpo_plugin.h` is the same
//! contract in C.
//!
//! Rules: strings cross as pointer + length (UTF-8, no terminator); enums cross as plain
//! integers; memory is freed by whoever allocated it (the host hands back plugin buffers
//! through the vtable's `free_*` functions); every vtable function returns a [`status`]
//! and never unwinds. A new minor version only appends fields, so the header and vtables
//! carry their sizes.

use std::ffi::c_void;

/// Major version of this ABI; it is part of the entry symbol's name.
pub const ABI_MAJOR: u32 = 1;
/// Minor version: additions that hosts of the same major can detect through struct sizes.
pub const ABI_MINOR: u32 = 0;
/// `const PluginHeader *lora_grpo_plugin_entry_v1(void)`: the plugin's header.
pub const ENTRY_SYMBOL: &str = "lora_grpo_plugin_entry_v1";
/// `const AbiProbe *lora_grpo_plugin_abi(void)`: the same in every ABI major, so a host
/// can say which version a library was built for even when it cannot load it.
pub const PROBE_SYMBOL: &str = "lora_grpo_plugin_abi";

/// Results of vtable calls.
pub mod status {
    /// The call succeeded.
    pub const OK: i32 = 0;
    /// `next` only: the dataset has no more samples.
    pub const DONE: i32 = 1;
    /// The plugin reported an error; `ErrorOut` holds its message.
    pub const ERROR: i32 = 2;
    /// The plugin panicked; `ErrorOut` holds the panic message.
    pub const PANIC: i32 = 3;
}

/// What a plugin provides, in [`PluginHeader::kind`].
pub mod kind {
    /// Scores completions: the header's vtable is a [`RewardVTable`](super::RewardVTable).
    pub const REWARD: u32 = 1;
    /// Yields samples: the header's vtable is a [`DatasetVTable`](super::DatasetVTable).
    pub const DATASET: u32 = 2;
}

/// How [`RawSample::prompt`] is encoded.
pub mod prompt_kind {
    /// Plain prompt text.
    pub const TEXT: u32 = 0;
    /// A JSON array of `{"role": ..., "content": ...}` chat messages.
    pub const MESSAGES: u32 = 1;
}

/// A borrowed UTF-8 string; `ptr` may be null when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    /// Borrows `s` for as long as the caller keeps `s` alive.
    pub const fn new(s: &str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes this refers to.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a` (or `len` must be 0).
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Bytes the plugin allocated and the host returns through the vtable's `free_bytes`.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBytes {
    pub ptr: *mut u8,
    pub len: usize,
}

impl OwnedBytes {
    /// No buffer; `free_bytes` ignores it.
    pub const EMPTY: OwnedBytes = OwnedBytes {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

/// Scores the plugin allocated and the host returns through `free_scores`.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedScores {
    pub ptr: *mut f32,
    pub len: usize,
}

impl OwnedScores {
    /// No buffer; `free_scores` ignores it.
    pub const EMPTY: OwnedScores = OwnedScores {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

/// Filled by the plugin when a call returns `ERROR` or `PANIC`.
#[repr(C)]
#[derive(Debug)]
pub struct ErrorOut {
    /// The message (freed by the host through `free_bytes`).
    pub message: OwnedBytes,
    /// The 1-based source row a dataset error is about; 0 when none.
    pub row: u64,
}

impl ErrorOut {
    /// What the host passes in before a call.
    pub const EMPTY: ErrorOut = ErrorOut {
        message: OwnedBytes::EMPTY,
        row: 0,
    };
}

/// Returned by [`PROBE_SYMBOL`]; frozen for every ABI major.
#[repr(C)]
#[derive(Debug)]
pub struct AbiProbe {
    pub abi_major: u32,
    pub abi_minor: u32,
    /// Version of the SDK the plugin was built with.
    pub sdk_version: StrRef,
}

// SAFETY: the probe and header only point at immutable statics.
unsafe impl Sync for AbiProbe {}
unsafe impl Sync for PluginHeader {}

/// The probe every plugin built with this SDK exports.
pub static PROBE: AbiProbe = AbiProbe {
    abi_major: ABI_MAJOR,
    abi_minor: ABI_MINOR,
    sdk_version: StrRef::new(crate::SDK_VERSION),
};

/// Returned by [`ENTRY_SYMBOL`]: who the plugin is and where its functions are.
#[repr(C)]
#[derive(Debug)]
pub struct PluginHeader {
    pub abi_major: u32,
    pub abi_minor: u32,
    /// `sizeof(PluginHeader)` as the plugin was compiled.
    pub header_size: u32,
    /// Size of the vtable `vtable` points to.
    pub vtable_size: u32,
    /// One of [`kind`].
    pub kind: u32,
    pub reserved: u32,
    /// Short name used in recipes, e.g. `math-answer`.
    pub name: StrRef,
    /// The plugin's own version.
    pub version: StrRef,
    /// Version of the SDK the plugin was built with.
    pub sdk_version: StrRef,
    pub description: StrRef,
    /// A [`RewardVTable`] or [`DatasetVTable`], by `kind`.
    pub vtable: *const c_void,
}

impl PluginHeader {
    /// A header for the current ABI; used by the export macros.
    pub const fn new(
        kind: u32,
        name: &'static str,
        version: &'static str,
        description: &'static str,
        vtable: *const c_void,
        vtable_size: usize,
    ) -> Self {
        PluginHeader {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            header_size: std::mem::size_of::<PluginHeader>() as u32,
            vtable_size: vtable_size as u32,
            kind,
            reserved: 0,
            name: StrRef::new(name),
            version: StrRef::new(version),
            sdk_version: StrRef::new(crate::SDK_VERSION),
            description: StrRef::new(description),
            vtable,
        }
    }
}

/// One scoring call: `len` samples, each column an array of `len` entries.
#[repr(C)]
#[derive(Debug)]
pub struct RewardBatch {
    pub len: usize,
    pub prompts: *const StrRef,
    pub completions: *const StrRef,
    pub answers: *const StrRef,
    /// Per-sample metadata as JSON object text (from the dataset row).
    pub metadata: *const StrRef,
    /// Completions of the same prompt share a group id.
    pub group_ids: *const u64,
}

/// Functions of a reward plugin. `instance` is the pointer `create` returned.
#[repr(C)]
pub struct RewardVTable {
    /// Builds an instance from JSON config text.
    pub create: unsafe extern "C" fn(
        config: StrRef,
        instance: *mut *mut c_void,
        error: *mut ErrorOut,
    ) -> i32,
    /// Scores a batch into `scores` (one f32 per completion, freed with `free_scores`).
    pub score: unsafe extern "C" fn(
        instance: *mut c_void,
        batch: *const RewardBatch,
        scores: *mut OwnedScores,
        error: *mut ErrorOut,
    ) -> i32,
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
    pub free_scores: unsafe extern "C" fn(scores: OwnedScores),
    pub free_bytes: unsafe extern "C" fn(bytes: OwnedBytes),
}

/// How many samples a dataset expects to yield; `upper == u64::MAX` means unknown.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SizeHint {
    pub lower: u64,
    pub upper: u64,
}

/// One sample from a dataset; every buffer is freed with `free_bytes`.
#[repr(C)]
#[derive(Debug)]
pub struct RawSample {
    /// One of [`prompt_kind`].
    pub prompt_kind: u32,
    pub reserved: u32,
    pub prompt: OwnedBytes,
    pub answer: OwnedBytes,
    /// JSON object text.
    pub metadata: OwnedBytes,
    /// 1-based source row, 0 when the format has no rows.
    pub row: u64,
}

impl RawSample {
    /// What the host passes in before a call.
    pub const EMPTY: RawSample = RawSample {
        prompt_kind: prompt_kind::TEXT,
        reserved: 0,
        prompt: OwnedBytes::EMPTY,
        answer: OwnedBytes::EMPTY,
        metadata: OwnedBytes::EMPTY,
        row: 0,
    };
}

/// Functions of a dataset plugin. `instance` is the reader `open` returned.
#[repr(C)]
pub struct DatasetVTable {
    /// Opens one split of a source described by JSON config text.
    pub open: unsafe extern "C" fn(
        config: StrRef,
        split: StrRef,
        instance: *mut *mut c_void,
        error: *mut ErrorOut,
    ) -> i32,
    pub size_hint: unsafe extern "C" fn(
        instance: *mut c_void,
        hint: *mut SizeHint,
        error: *mut ErrorOut,
    ) -> i32,
    /// `OK` with a sample, `DONE` at the end, or `ERROR`/`PANIC`.
    pub next: unsafe extern "C" fn(
        instance: *mut c_void,
        sample: *mut RawSample,
        error: *mut ErrorOut,
    ) -> i32,
    pub close: unsafe extern "C" fn(instance: *mut c_void),
    pub free_bytes: unsafe extern "C" fn(bytes: OwnedBytes),
}
