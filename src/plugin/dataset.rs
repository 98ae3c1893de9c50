//! A loaded dataset plugin: one open split, read as an iterator of samples.

use std::ffi::c_void;

use lora_grpo_plugin::abi::{prompt_kind, DatasetVTable, RawSample, SizeHint, StrRef};
use lora_grpo_plugin::{Message, Prompt, Sample};
use serde_json::{Map, Value};

use super::ffi::{self, FreeBytes, Status};
use super::{CallStats, PluginInfo};
use crate::error::PluginError;

/// One open split of a dataset. Iterate it for samples; a bad row is an `Err` item and
/// reading may go on after it. Dropping it closes the reader.
pub struct DatasetPlugin {
    info: PluginInfo,
    split: String,
    vtable: &'static DatasetVTable,
    instance: *mut c_void,
    stats: CallStats,
    /// Set at the end and after a panic, so the plugin is not called again.
    finished: bool,
}

impl std::fmt::Debug for DatasetPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetPlugin")
            .field("info", &self.info)
            .field("split", &self.split)
            .field("stats", &self.stats)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

// SAFETY: as for `RewardPlugin`: one thread at a time, enforced by `&mut self`.
unsafe impl Send for DatasetPlugin {}

impl DatasetPlugin {
    /// Calls the plugin's `open` with `config_json` and `split`.
    pub(super) fn open(
        info: PluginInfo,
        vtable: &'static DatasetVTable,
        config_json: &str,
        split: &str,
    ) -> Result<Self, PluginError> {
        let mut instance = std::ptr::null_mut();
        // SAFETY: the header checks passed; both strings outlive the call.
        let status = unsafe {
            ffi::call(vtable.free_bytes, |error| {
                (vtable.open)(
                    StrRef::new(config_json),
                    StrRef::new(split),
                    &mut instance,
                    error,
                )
            })
        };
        match status {
            Status::Ok => Ok(DatasetPlugin {
                info,
                split: split.to_owned(),
                vtable,
                instance,
                stats: CallStats::default(),
                finished: false,
            }),
            Status::Error { message, .. } => Err(PluginError::ConfigRejected {
                plugin: info.name,
                call: "open",
                message,
            }),
            other => Err(other.into_error(&info.name, "open")),
        }
    }

    /// The plugin's header.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The split this reader was opened for.
    pub fn split(&self) -> &str {
        &self.split
    }

    /// Timing of the `next` calls so far.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// The plugin's bounds on the samples still to come, as in `Iterator::size_hint`.
    pub fn remaining(&self) -> Result<(usize, Option<usize>), PluginError> {
        if self.finished {
            return Ok((0, Some(0)));
        }
        let mut hint = SizeHint { lower: 0, upper: 0 };
        // SAFETY: the instance came from this vtable's `open`; `&self` with `!Sync`
        // keeps calls on one thread.
        let status = unsafe {
            ffi::call(self.vtable.free_bytes, |error| {
                (self.vtable.size_hint)(self.instance, &mut hint, error)
            })
        };
        match status {
            Status::Ok => {
                let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
                let upper = (hint.upper != u64::MAX).then(|| to_usize(hint.upper));
                Ok((to_usize(hint.lower), upper))
            }
            other => Err(other.into_error(&self.info.name, "size_hint")),
        }
    }

    /// Reads every remaining sample, stopping at the first error.
    pub fn read_all(&mut self) -> Result<Vec<Sample>, PluginError> {
        self.by_ref().collect()
    }

    fn next_sample(&mut self) -> Option<Result<Sample, PluginError>> {
        if self.finished {
            return None;
        }
        let (vtable, instance) = (self.vtable, self.instance);
        let mut raw = RawSample::EMPTY;
        // SAFETY: the instance came from this vtable's `open`.
        let status = self.stats.time(0, || unsafe {
            ffi::call(vtable.free_bytes, |error| {
                (vtable.next)(instance, &mut raw, error)
            })
        });
        if matches!(status, Status::Ok) {
            self.stats.items += 1;
        }
        let plugin = || self.info.name.clone();
        match status {
            Status::Ok => {
                // SAFETY: on OK the plugin filled `raw` with buffers it owns.
                Some(
                    unsafe { decode(raw, vtable.free_bytes) }.map_err(|problem| {
                        PluginError::BadSample {
                            plugin: plugin(),
                            split: self.split.clone(),
                            problem,
                        }
                    }),
                )
            }
            Status::Done => {
                self.finished = true;
                None
            }
            Status::Error { message, row } if row > 0 => Some(Err(PluginError::Row {
                plugin: plugin(),
                split: self.split.clone(),
                row,
                message,
            })),
            other => {
                self.finished = matches!(other, Status::Panic { .. } | Status::Unknown(_));
                Some(Err(other.into_error(&self.info.name, "next")))
            }
        }
    }
}

impl Iterator for DatasetPlugin {
    type Item = Result<Sample, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_sample()
    }

    /// The plugin's own hint; `(0, None)` if asking it fails.
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.remaining().unwrap_or((0, None))
    }
}

impl Drop for DatasetPlugin {
    fn drop(&mut self) {
        // SAFETY: the instance came from `open` and is closed exactly once.
        unsafe { (self.vtable.close)(self.instance) };
    }
}

/// Copies a sample out of plugin memory (returning every buffer) and decodes it.
///
/// # Safety
/// Every buffer in `raw` must be empty or owned by the plugin whose `free_bytes` is given.
unsafe fn decode(raw: RawSample, free: FreeBytes) -> Result<Sample, String> {
    // SAFETY: forwarded to the caller; each buffer is taken once.
    let (prompt, answer, metadata) = unsafe {
        (
            ffi::take_bytes(raw.prompt, free),
            ffi::take_bytes(raw.answer, free),
            ffi::take_bytes(raw.metadata, free),
        )
    };
    let text = |bytes: Vec<u8>, field: &str| {
        String::from_utf8(bytes).map_err(|_| format!("`{field}` is not UTF-8"))
    };
    let prompt = text(prompt, "prompt")?;
    let prompt = match raw.prompt_kind {
        prompt_kind::TEXT => Prompt::Text(prompt),
        prompt_kind::MESSAGES => Prompt::Messages(
            serde_json::from_str::<Vec<Message>>(&prompt)
                .map_err(|e| format!("chat messages are not a JSON list of role/content: {e}"))?,
        ),
        other => return Err(format!("unknown prompt kind {other}")),
    };
    let metadata = text(metadata, "metadata")?;
    let metadata = match metadata.trim() {
        "" => Map::new(),
        json => match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(format!("metadata must be a JSON object, got {other}")),
            Err(e) => return Err(format!("metadata is not JSON: {e}")),
        },
    };
    Ok(Sample {
        prompt,
        answer: text(answer, "answer")?,
        metadata,
        row: (raw.row > 0).then_some(raw.row),
    })
}
