//! A loaded reward plugin.

use std::ffi::c_void;

use lora_grpo_plugin::abi::{OwnedScores, RewardBatch, RewardVTable, StrRef};
use lora_grpo_plugin::RewardInput;

use super::ffi::{self, Status};
use super::{CallStats, PluginInfo};
use crate::error::PluginError;

/// One instance of a reward function, created from its recipe config. Dropping it
/// destroys the instance (the library stays loaded).
pub struct RewardPlugin {
    info: PluginInfo,
    vtable: &'static RewardVTable,
    instance: *mut c_void,
    stats: CallStats,
}

impl std::fmt::Debug for RewardPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardPlugin")
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

// SAFETY: the ABI lets the host move an instance between threads as long as one thread
// uses it at a time, which `&mut self` on every call guarantees (Rust plugins' types are
// `Send` by the SDK's trait bound).
unsafe impl Send for RewardPlugin {}

impl RewardPlugin {
    /// Calls the plugin's `create` with `config_json`.
    pub(super) fn create(
        info: PluginInfo,
        vtable: &'static RewardVTable,
        config_json: &str,
    ) -> Result<Self, PluginError> {
        let mut instance = std::ptr::null_mut();
        // SAFETY: the header checks passed; the config string outlives the call.
        let status = unsafe {
            ffi::call(vtable.free_bytes, |error| {
                (vtable.create)(StrRef::new(config_json), &mut instance, error)
            })
        };
        let name = &info.name;
        match status {
            Status::Ok => {}
            Status::Error { message, .. } => {
                return Err(PluginError::ConfigRejected {
                    plugin: name.clone(),
                    call: "create",
                    message,
                })
            }
            other => return Err(other.into_error(name, "create")),
        }
        Ok(RewardPlugin {
            info,
            vtable,
            instance,
            stats: CallStats::default(),
        })
    }

    /// The plugin's header.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The name recipes use.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Timing of the `score` calls so far.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// Scores `batch`: one finite value per input, in order. A plugin error, a panic
    /// inside the plugin, the wrong number of scores or a NaN/infinite score is an
    /// error; the plugin stays usable afterwards. An empty batch gives no scores
    /// without calling the plugin.
    pub fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, PluginError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let vtable = self.vtable;
        let (instance, info) = (self.instance, &self.info);
        self.stats.time(batch.len(), || {
            let metadata: Vec<String> = batch.iter().map(|s| metadata_text(s.metadata)).collect();
            let strs = |f: &dyn Fn(usize) -> StrRef| (0..batch.len()).map(f).collect::<Vec<_>>();
            let prompts = strs(&|i| StrRef::new(batch[i].prompt));
            let completions = strs(&|i| StrRef::new(batch[i].completion));
            let answers = strs(&|i| StrRef::new(batch[i].answer));
            let metadata = strs(&|i| StrRef::new(&metadata[i]));
            let groups: Vec<u64> = batch.iter().map(|s| s.group).collect();
            let raw = RewardBatch {
                len: batch.len(),
                prompts: prompts.as_ptr(),
                completions: completions.as_ptr(),
                answers: answers.as_ptr(),
                metadata: metadata.as_ptr(),
                group_ids: groups.as_ptr(),
            };
            let mut scores = OwnedScores::EMPTY;
            // SAFETY: every column holds `len` entries that outlive the call; the
            // instance came from this vtable's `create`.
            let status = unsafe {
                ffi::call(vtable.free_bytes, |error| {
                    (vtable.score)(instance, &raw, &mut scores, error)
                })
            };
            match status {
                Status::Ok => {}
                other => return Err(other.into_error(&info.name, "score")),
            }
            // SAFETY: on OK the plugin handed over `scores`, freed by its `free_scores`.
            let scores = unsafe { take_scores(scores, vtable) };
            validate(scores, batch.len(), &info.name)
        })
    }
}

impl Drop for RewardPlugin {
    fn drop(&mut self) {
        // SAFETY: the instance came from `create` and is destroyed exactly once.
        unsafe { (self.vtable.destroy)(self.instance) };
    }
}

/// Metadata as JSON text; `null` goes as empty text, which plugins read as `{}`.
fn metadata_text(metadata: &serde_json::Value) -> String {
    match metadata {
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Copies the scores (`None` when the plugin returned null with a non-zero length) and
/// hands the buffer back.
///
/// # Safety
/// `scores` must be empty or a live buffer from the plugin that owns `vtable`.
unsafe fn take_scores(scores: OwnedScores, vtable: &RewardVTable) -> Option<Vec<f32>> {
    if scores.ptr.is_null() {
        return (scores.len == 0).then(Vec::new);
    }
    // SAFETY: a non-null buffer holds `len` scores until it is freed below.
    let copy = unsafe { std::slice::from_raw_parts(scores.ptr, scores.len) }.to_vec();
    // SAFETY: freed once, by the library that allocated it.
    unsafe { (vtable.free_scores)(scores) };
    Some(copy)
}

fn validate(
    scores: Option<Vec<f32>>,
    expected: usize,
    plugin: &str,
) -> Result<Vec<f32>, PluginError> {
    let bad = |problem: String| PluginError::BadScores {
        plugin: plugin.to_owned(),
        batch: expected,
        problem,
    };
    let scores = scores.ok_or_else(|| bad("null score buffer with a non-zero length".into()))?;
    if scores.len() != expected {
        return Err(bad(format!(
            "expected {expected} scores, got {}",
            scores.len()
        )));
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(i) => Err(bad(format!("score {i} is {}", scores[i]))),
        None => Ok(scores),
    }
}
