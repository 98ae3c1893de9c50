//! The `extern "C"` functions behind the vtables. Each one runs the author's safe code
//! inside `catch_unwind`, because a panic unwinding out of `extern "C"` aborts the host.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::{Map, Value};

use crate::abi::{
    prompt_kind, status, DatasetVTable, ErrorOut, OwnedBytes, OwnedScores, RawSample, RewardBatch,
    RewardVTable, SizeHint, StrRef,
};
use crate::{Config, Dataset, Error, Prompt, RewardFunction, RewardInput, Sample};

impl RewardVTable {
    /// The vtable for reward function `T`.
    pub const fn of<T: RewardFunction>() -> Self {
        RewardVTable {
            create: reward_create::<T>,
            score: reward_score::<T>,
            destroy: destroy::<T>,
            free_scores,
            free_bytes,
        }
    }
}

impl DatasetVTable {
    /// The vtable for dataset format `T`.
    pub const fn of<T: Dataset>() -> Self {
        DatasetVTable {
            open: dataset_open::<T>,
            size_hint: dataset_size_hint::<T>,
            next: dataset_next::<T>,
            close: destroy::<T>,
            free_bytes,
        }
    }
}

impl OwnedBytes {
    /// Hands `text` to the host, which gives it back through `free_bytes`.
    pub fn from_string(text: String) -> Self {
        let bytes = Box::into_raw(text.into_bytes().into_boxed_slice());
        OwnedBytes {
            ptr: bytes.cast(),
            len: bytes.len(),
        }
    }
}

impl OwnedScores {
    /// Hands `scores` to the host, which gives them back through `free_scores`.
    pub fn from_vec(scores: Vec<f32>) -> Self {
        let scores = Box::into_raw(scores.into_boxed_slice());
        OwnedScores {
            ptr: scores.cast(),
            len: scores.len(),
        }
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `f`, turning its error or panic into a status plus a message in `error`.
fn guard(error: *mut ErrorOut, f: impl FnOnce() -> Result<i32, Error>) -> i32 {
    let (code, message, row) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => return code,
        Ok(Err(err)) => (
            status::ERROR,
            err.message().to_owned(),
            err.row().unwrap_or(0),
        ),
        Err(payload) => (status::PANIC, panic_message(payload.as_ref()), 0),
    };
    if !error.is_null() {
        // SAFETY: the host passes a valid, writable `ErrorOut` (or null).
        unsafe {
            error.write(ErrorOut {
                message: OwnedBytes::from_string(message),
                row,
            })
        };
    }
    code
}

/// A string argument from the host; invalid UTF-8 is the host's bug but still an error.
///
/// # Safety
/// `s` must be valid for `'a`.
unsafe fn str_arg<'a>(s: StrRef, what: &str) -> Result<&'a str, Error> {
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { s.as_bytes() };
    std::str::from_utf8(bytes).map_err(|e| Error::new(format!("{what} is not UTF-8: {e}")))
}

/// A column of `len` entries; null is allowed only when empty.
///
/// # Safety
/// A non-null `ptr` must point to `len` values valid for `'a`.
unsafe fn column<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Error> {
    if len == 0 {
        Ok(&[])
    } else if ptr.is_null() {
        Err(Error::new(format!("batch column `{what}` is null")))
    } else {
        // SAFETY: forwarded to the caller.
        Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
    }
}

/// Boxes a new instance and stores it in `out`.
///
/// # Safety
/// `out` must be null or valid for writes.
unsafe fn store_instance<T>(out: *mut *mut c_void, instance: T) -> Result<i32, Error> {
    if out.is_null() {
        return Err(Error::new("instance out-pointer is null"));
    }
    // SAFETY: checked non-null above; validity is the caller's promise.
    unsafe { out.write(Box::into_raw(Box::new(instance)).cast()) };
    Ok(status::OK)
}

/// The instance behind a pointer from `create`/`open`.
///
/// # Safety
/// `instance` must be null or a live pointer made by `store_instance::<T>`, used by one
/// thread at a time.
unsafe fn instance_mut<'a, T>(instance: *mut c_void) -> Result<&'a mut T, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { instance.cast::<T>().as_mut() }.ok_or_else(|| Error::new("instance pointer is null"))
}

unsafe extern "C" fn reward_create<T: RewardFunction>(
    config: StrRef,
    instance: *mut *mut c_void,
    error: *mut ErrorOut,
) -> i32 {
    guard(error, || {
        // SAFETY: the host passes a config string that lives for the call.
        let config = Config::from_json(unsafe { str_arg(config, "config") }?)?;
        let function = T::new(&config)?;
        // SAFETY: the host passes a writable out-pointer.
        unsafe { store_instance(instance, function) }
    })
}

unsafe extern "C" fn reward_score<T: RewardFunction>(
    instance: *mut c_void,
    batch: *const RewardBatch,
    scores: *mut OwnedScores,
    error: *mut ErrorOut,
) -> i32 {
    guard(error, || {
        // SAFETY: the host passes the pointer `create` returned, the batch and the
        // out-pointer all valid for the call.
        let function = unsafe { instance_mut::<T>(instance) }?;
        let batch = unsafe { batch.as_ref() }.ok_or_else(|| Error::new("batch pointer is null"))?;
        if scores.is_null() {
            return Err(Error::new("scores out-pointer is null"));
        }
        let n = batch.len;
        // SAFETY: every column holds `len` entries that live for the call.
        let (prompts, completions, answers, metadata, groups) = unsafe {
            (
                column(batch.prompts, n, "prompts")?,
                column(batch.completions, n, "completions")?,
                column(batch.answers, n, "answers")?,
                column(batch.metadata, n, "metadata")?,
                column(batch.group_ids, n, "group_ids")?,
            )
        };
        let metadata = metadata
            .iter()
            .enumerate()
            .map(|(i, text)| {
                // SAFETY: as above.
                let text = unsafe { str_arg(*text, "metadata") }?;
                parse_metadata(text).map_err(|e| Error::new(format!("metadata of sample {i}: {e}")))
            })
            .collect::<Result<Vec<Value>, Error>>()?;
        let mut inputs = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: as above.
            let input = unsafe {
                RewardInput {
                    prompt: str_arg(prompts[i], "prompt")?,
                    completion: str_arg(completions[i], "completion")?,
                    answer: str_arg(answers[i], "answer")?,
                    metadata: &metadata[i],
                    group: groups[i],
                }
            };
            inputs.push(input);
        }
        let result = function.score(&inputs)?;
        // SAFETY: checked non-null above.
        unsafe { scores.write(OwnedScores::from_vec(result)) };
        Ok(status::OK)
    })
}

/// Metadata arrives as JSON object text; empty text means no metadata.
fn parse_metadata(text: &str) -> Result<Value, Error> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str(text)? {
        value @ Value::Object(_) => Ok(value),
        other => Err(Error::new(format!("expected a JSON object, got {other}"))),
    }
}

unsafe extern "C" fn dataset_open<T: Dataset>(
    config: StrRef,
    split: StrRef,
    instance: *mut *mut c_void,
    error: *mut ErrorOut,
) -> i32 {
    guard(error, || {
        // SAFETY: the host passes strings that live for the call and a writable out-pointer.
        let config = Config::from_json(unsafe { str_arg(config, "config") }?)?;
        let split = unsafe { str_arg(split, "split") }?;
        let dataset = T::open(&config, split)?;
        unsafe { store_instance(instance, dataset) }
    })
}

unsafe extern "C" fn dataset_size_hint<T: Dataset>(
    instance: *mut c_void,
    hint: *mut SizeHint,
    error: *mut ErrorOut,
) -> i32 {
    guard(error, || {
        // SAFETY: the host passes the pointer `open` returned.
        let dataset = unsafe { instance_mut::<T>(instance) }?;
        if hint.is_null() {
            return Err(Error::new("size hint out-pointer is null"));
        }
        let (lower, upper) = dataset.size_hint();
        let upper = upper.map_or(u64::MAX, |u| u as u64);
        // SAFETY: checked non-null above.
        unsafe {
            hint.write(SizeHint {
                lower: lower as u64,
                upper,
            })
        };
        Ok(status::OK)
    })
}

unsafe extern "C" fn dataset_next<T: Dataset>(
    instance: *mut c_void,
    sample: *mut RawSample,
    error: *mut ErrorOut,
) -> i32 {
    guard(error, || {
        // SAFETY: the host passes the pointer `open` returned.
        let dataset = unsafe { instance_mut::<T>(instance) }?;
        if sample.is_null() {
            return Err(Error::new("sample out-pointer is null"));
        }
        match dataset.next_sample() {
            None => Ok(status::DONE),
            Some(Err(err)) => Err(err),
            Some(Ok(next)) => {
                let raw = raw_sample(next)?;
                // SAFETY: checked non-null above.
                unsafe { sample.write(raw) };
                Ok(status::OK)
            }
        }
    })
}

/// Encodes a sample for the host: chat messages and metadata as JSON text.
fn raw_sample(sample: Sample) -> Result<RawSample, Error> {
    let (kind, prompt) = match sample.prompt {
        Prompt::Text(text) => (prompt_kind::TEXT, text),
        Prompt::Messages(messages) => (prompt_kind::MESSAGES, serde_json::to_string(&messages)?),
    };
    let metadata = serde_json::to_string(&sample.metadata)?;
    Ok(RawSample {
        prompt_kind: kind,
        reserved: 0,
        prompt: OwnedBytes::from_string(prompt),
        answer: OwnedBytes::from_string(sample.answer),
        metadata: OwnedBytes::from_string(metadata),
        row: sample.row.unwrap_or(0),
    })
}

/// Drops an instance; a panicking `Drop` is swallowed since the host cannot act on it.
unsafe extern "C" fn destroy<T>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: the host passes a pointer from `store_instance::<T>` exactly once.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        drop(unsafe { Box::from_raw(instance.cast::<T>()) })
    }));
}

unsafe extern "C" fn free_bytes(bytes: OwnedBytes) {
    if bytes.ptr.is_null() {
        return;
    }
    // SAFETY: non-null buffers come from `OwnedBytes::from_string`, freed once by the host.
    let slice = std::ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len);
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(slice) })));
}

unsafe extern "C" fn free_scores(scores: OwnedScores) {
    if scores.ptr.is_null() {
        return;
    }
    // SAFETY: non-null buffers come from `OwnedScores::from_vec`, freed once by the host.
    let slice = std::ptr::slice_from_raw_parts_mut(scores.ptr, scores.len);
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(slice) })));
}
