//! Drives the generated vtables the way the host does, without loading a library.

use std::ffi::c_void;
use std::ptr;

use crate::abi::{
    prompt_kind, status, DatasetVTable, ErrorOut, OwnedBytes, OwnedScores, RawSample, RewardBatch,
    RewardVTable, SizeHint, StrRef,
};
use crate::{Config, Dataset, Error, Message, Prompt, RewardFunction, RewardInput, Sample};

/// Scores `bonus + completion length + group`, and panics or fails on request.
struct Probe {
    bonus: f32,
}

impl RewardFunction for Probe {
    fn new(config: &Config) -> Result<Self, Error> {
        match config.value().get("bonus") {
            None => Ok(Probe { bonus: 0.0 }),
            Some(v) => v
                .as_f64()
                .map(|b| Probe { bonus: b as f32 })
                .ok_or_else(|| Error::new("`bonus` must be a number")),
        }
    }

    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
        let mut out = Vec::new();
        for input in batch {
            match input.completion {
                "panic" => panic!("asked to panic on `{}`", input.prompt),
                "fail" => {
                    return Err(Error::new(format!(
                        "cannot score for answer {}",
                        input.answer
                    )))
                }
                c => {
                    let weight = input
                        .metadata
                        .get("weight")
                        .and_then(|w| w.as_f64())
                        .unwrap_or(1.0);
                    out.push(self.bonus + weight as f32 * c.len() as f32 + input.group as f32)
                }
            }
        }
        Ok(out)
    }
}

fn take_message(error: &ErrorOut) -> String {
    // SAFETY: written by the plugin side as an owned UTF-8 buffer.
    let text = String::from_utf8(
        unsafe { std::slice::from_raw_parts(error.message.ptr, error.message.len) }.to_vec(),
    )
    .unwrap();
    let vtable = RewardVTable::of::<Probe>();
    unsafe {
        (vtable.free_bytes)(OwnedBytes {
            ptr: error.message.ptr,
            len: error.message.len,
        })
    };
    text
}

fn create(vtable: &RewardVTable, config: &str) -> Result<*mut c_void, (i32, String)> {
    let mut instance = ptr::null_mut();
    let mut error = ErrorOut::EMPTY;
    let code = unsafe { (vtable.create)(StrRef::new(config), &mut instance, &mut error) };
    if code == status::OK {
        Ok(instance)
    } else {
        Err((code, take_message(&error)))
    }
}

fn score(
    vtable: &RewardVTable,
    instance: *mut c_void,
    completions: &[&str],
    metadata: &[&str],
) -> Result<Vec<f32>, (i32, String)> {
    let n = completions.len();
    let prompts: Vec<StrRef> = (0..n).map(|_| StrRef::new("p")).collect();
    let completions: Vec<StrRef> = completions.iter().map(|c| StrRef::new(c)).collect();
    let answers: Vec<StrRef> = (0..n).map(|_| StrRef::new("42")).collect();
    let metadata: Vec<StrRef> = metadata.iter().map(|m| StrRef::new(m)).collect();
    let groups: Vec<u64> = (0..n as u64).map(|i| i / 2).collect();
    let batch = RewardBatch {
        len: n,
        prompts: prompts.as_ptr(),
        completions: completions.as_ptr(),
        answers: answers.as_ptr(),
        metadata: metadata.as_ptr(),
        group_ids: groups.as_ptr(),
    };
    let mut scores = OwnedScores::EMPTY;
    let mut error = ErrorOut::EMPTY;
    let code = unsafe { (vtable.score)(instance, &batch, &mut scores, &mut error) };
    if code != status::OK {
        return Err((code, take_message(&error)));
    }
    let out = unsafe { std::slice::from_raw_parts(scores.ptr, scores.len) }.to_vec();
    unsafe { (vtable.free_scores)(scores) };
    Ok(out)
}

#[test]
fn reward_vtable_scores_with_config_metadata_and_groups() {
    let vtable = RewardVTable::of::<Probe>();
    let instance = create(&vtable, r#"{"bonus": 0.5}"#).unwrap();
    // lengths 1, 2, 3 and groups 0, 0, 1; the second sample weighs its length by 2.
    let scores = score(
        &vtable,
        instance,
        &["a", "bb", "ccc"],
        &["", r#"{"weight": 2}"#, "{}"],
    );
    assert_eq!(scores.unwrap(), vec![1.5, 4.5, 4.5]);
    assert_eq!(
        score(&vtable, instance, &[], &[]).unwrap(),
        Vec::<f32>::new()
    );
    unsafe { (vtable.destroy)(instance) };
}

#[test]
fn reward_errors_and_panics_come_back_as_messages() {
    let vtable = RewardVTable::of::<Probe>();
    assert_eq!(
        create(&vtable, r#"{"bonus": "x"}"#).unwrap_err(),
        (status::ERROR, "`bonus` must be a number".into())
    );
    assert_eq!(
        create(&vtable, "[]").unwrap_err(),
        (status::ERROR, "config must be a JSON object, got []".into())
    );
    let instance = create(&vtable, "").unwrap();
    assert_eq!(
        score(&vtable, instance, &["ok", "fail"], &["", ""]).unwrap_err(),
        (status::ERROR, "cannot score for answer 42".into())
    );
    assert_eq!(
        score(&vtable, instance, &["panic"], &[""]).unwrap_err(),
        (status::PANIC, "asked to panic on `p`".into())
    );
    assert_eq!(
        score(&vtable, instance, &["ok"], &["[1]"]).unwrap_err(),
        (
            status::ERROR,
            "metadata of sample 0: expected a JSON object, got [1]".into()
        )
    );
    // The instance still works after a caught panic.
    assert_eq!(score(&vtable, instance, &["ok"], &[""]).unwrap(), vec![2.0]);
    unsafe { (vtable.destroy)(instance) };
}

#[test]
fn reward_rejects_null_pointers_instead_of_crashing() {
    let vtable = RewardVTable::of::<Probe>();
    let mut error = ErrorOut::EMPTY;
    let code = unsafe { (vtable.create)(StrRef::new("{}"), ptr::null_mut(), &mut error) };
    assert_eq!(
        (code, take_message(&error)),
        (status::ERROR, "instance out-pointer is null".into())
    );
    let batch = RewardBatch {
        len: 1,
        prompts: ptr::null(),
        completions: ptr::null(),
        answers: ptr::null(),
        metadata: ptr::null(),
        group_ids: ptr::null(),
    };
    let instance = create(&vtable, "{}").unwrap();
    let mut scores = OwnedScores::EMPTY;
    let code = unsafe { (vtable.score)(instance, &batch, &mut scores, &mut error) };
    assert_eq!(
        (code, take_message(&error)),
        (status::ERROR, "batch column `prompts` is null".into())
    );
    unsafe { (vtable.destroy)(instance) };
}

/// Yields `count` samples; the second has chat messages, row 3 is malformed.
struct Rows {
    next: u64,
    count: u64,
}

impl Dataset for Rows {
    fn open(config: &Config, split: &str) -> Result<Self, Error> {
        if split == "explode" {
            panic!("no such split: {split}");
        }
        let count = config
            .value()
            .get("count")
            .and_then(|c| c.as_u64())
            .unwrap_or(4);
        Ok(Rows { next: 1, count })
    }

    fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
        if self.next > self.count {
            return None;
        }
        let row = self.next;
        self.next += 1;
        Some(match row {
            2 => {
                let mut sample = Sample::new(Prompt::with_system(Some("Be brief."), "Hi"), "hello");
                sample.metadata.insert("id".into(), 2.into());
                sample.row = Some(2);
                Ok(sample)
            }
            3 => Err(Error::at_row(3, "missing column `question`")),
            _ => Ok(Sample::new(format!("q{row}"), format!("a{row}"))),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.count + 1 - self.next) as usize;
        (left, Some(left))
    }
}

fn bytes(b: &OwnedBytes) -> String {
    String::from_utf8(unsafe { std::slice::from_raw_parts(b.ptr, b.len) }.to_vec()).unwrap()
}

#[test]
fn dataset_vtable_yields_samples_errors_and_end() {
    let vtable = DatasetVTable::of::<Rows>();
    let mut instance = ptr::null_mut();
    let mut error = ErrorOut::EMPTY;
    let code = unsafe {
        (vtable.open)(
            StrRef::new(""),
            StrRef::new("train"),
            &mut instance,
            &mut error,
        )
    };
    assert_eq!(code, status::OK);

    let mut hint = SizeHint { lower: 9, upper: 9 };
    assert_eq!(
        unsafe { (vtable.size_hint)(instance, &mut hint, &mut error) },
        status::OK
    );
    assert_eq!((hint.lower, hint.upper), (4, 4));

    let next = || {
        let mut sample = RawSample::EMPTY;
        let mut error = ErrorOut::EMPTY;
        let code = unsafe { (vtable.next)(instance, &mut sample, &mut error) };
        (code, sample, error)
    };
    let (code, s, _) = next();
    assert_eq!(code, status::OK);
    assert_eq!(
        (
            s.prompt_kind,
            bytes(&s.prompt),
            bytes(&s.answer),
            bytes(&s.metadata),
            s.row
        ),
        (prompt_kind::TEXT, "q1".into(), "a1".into(), "{}".into(), 0)
    );
    for b in [s.prompt, s.answer, s.metadata] {
        unsafe { (vtable.free_bytes)(b) };
    }

    let (code, s, _) = next();
    assert_eq!(code, status::OK);
    assert_eq!(s.prompt_kind, prompt_kind::MESSAGES);
    let messages: Vec<Message> = serde_json::from_str(&bytes(&s.prompt)).unwrap();
    assert_eq!(
        messages,
        vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi")
        ]
    );
    assert_eq!((bytes(&s.metadata), s.row), (r#"{"id":2}"#.into(), 2));

    let (code, _, e) = next();
    assert_eq!((code, e.row), (status::ERROR, 3));
    assert_eq!(bytes(&e.message), "missing column `question`");

    assert_eq!(next().0, status::OK);
    assert_eq!(next().0, status::DONE);
    unsafe { (vtable.close)(instance) };
}

#[test]
fn dataset_open_panic_is_caught() {
    let vtable = DatasetVTable::of::<Rows>();
    let mut instance = ptr::null_mut();
    let mut error = ErrorOut::EMPTY;
    let code = unsafe {
        (vtable.open)(
            StrRef::new("{}"),
            StrRef::new("explode"),
            &mut instance,
            &mut error,
        )
    };
    assert_eq!(
        (code, bytes(&error.message)),
        (status::PANIC, "no such split: explode".into())
    );
    assert!(instance.is_null());
}
