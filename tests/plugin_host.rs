//! The plugin host against real shared libraries: first-party plugins built by cargo,
//! misbehaving Rust fixtures (one built against an SDK patched to ABI major 2), and
//! plugins written in C compiled here with the system C compiler.

mod plugin_build;

use std::path::{Path, PathBuf};

use lora_grpo::error::PluginError;
use lora_grpo::plugin::{PluginHost, PluginKind, Prompt, RewardInput, SearchPath};
use plugin_build as build;
use serde_json::{json, Value};

fn host(dirs: &[&Path]) -> PluginHost {
    PluginHost::with_search_path(SearchPath::new(dirs.iter().map(|d| d.to_path_buf())))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A batch of completions for one prompt each, with empty metadata.
fn score(
    plugin: &mut lora_grpo::plugin::RewardPlugin,
    items: &[(&str, &str, u64)],
) -> Result<Vec<f32>, PluginError> {
    let metadata = json!({});
    let batch: Vec<RewardInput<'_>> = items
        .iter()
        .map(|&(completion, answer, group)| RewardInput {
            prompt: "p",
            completion,
            answer,
            metadata: &metadata,
            group,
        })
        .collect();
    plugin.score(&batch)
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let err = host(&[])
        .load_reward("/no/such/dir/libreward.so", "{}")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin file /no/such/dir/libreward.so does not exist"
    );
}

#[test]
fn library_without_entry_symbol_is_not_a_plugin() {
    let lib = build::c_fixture("not_a_plugin.c", "not_a_plugin", &build::sdk_include(), &[]);
    let err = host(&[]).load_reward(path_str(&lib), "{}").unwrap_err();
    assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a lora-grpo plugin: it exports no `lora_grpo_plugin_entry_v1` function",
            lib.display()
        )
    );

    // A file with a library's name that is not a library at all.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(build::library_file("fake"));
    std::fs::write(&fake, "not an ELF file").unwrap();
    let err = host(&[]).load_reward(path_str(&fake), "{}").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot load {}: ", fake.display())),
        "{err}"
    );
}

#[test]
fn rust_plugin_built_for_abi_major_2_shows_both_versions() {
    let sdk = build::sdk_with_abi_major_2();
    let lib = build::rust_fixture("misbehaving-reward", "misbehaving-reward-abi2", &sdk);
    let err = host(&[]).load_reward(path_str(&lib), "{}").unwrap_err();
    let sdk_version = lora_grpo_plugin::SDK_VERSION;
    assert_eq!(
        err.to_string(),
        format!(
            "{} was built for another plugin ABI major version\n  \
             host:   ABI 1.0, SDK {sdk_version}\n  \
             plugin: ABI 2.0, SDK 2.0.0\n\
             rebuild the plugin against lora-grpo-plugin {sdk_version}",
            lib.display()
        )
    );
}

#[test]
fn c_plugin_built_against_a_header_for_abi_major_2_is_refused() {
    let include = build::include_with_abi_major(2);
    let lib = build::c_fixture("reward.c", "c_reward_abi2", &include, &[]);
    match host(&[]).load_reward(path_str(&lib), "{}").unwrap_err() {
        PluginError::AbiMismatch {
            host_abi,
            plugin_abi,
            plugin_sdk,
            ..
        } => assert_eq!(
            (host_abi.as_str(), plugin_abi.as_str(), plugin_sdk.as_str()),
            ("1.0", "2.0", "c-header")
        ),
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
}

#[test]
fn c_plugin_loads_scores_and_reports_its_header() {
    let lib = build::c_fixture("reward.c", "c_reward", &build::sdk_include(), &[]);
    let dir = lib.parent().unwrap();
    let mut host = host(&[dir]);
    let mut reward = host.load_reward("c-length", "{}").unwrap();
    let info = reward.info().clone();
    assert_eq!(
        (
            info.kind,
            info.name.as_str(),
            info.version.as_str(),
            info.sdk_version.as_str(),
            info.abi
        ),
        (PluginKind::Reward, "c-length", "1.2.0", "c-header", (1, 0))
    );
    assert_eq!(info.description, "Completion length in bytes, written in C");
    assert_eq!(info.path, lib);
    // Length in bytes + group / 2.
    let scores = score(
        &mut reward,
        &[("abc", "", 0), ("", "", 3), ("héllo", "", 1)],
    )
    .unwrap();
    assert_eq!(scores, vec![3.0, 1.5, 6.5]);

    let err = host
        .load_reward("c-length", r#"{"mode": "reject"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `c-length` rejected its config (in `create`): the C fixture rejects configs that say reject"
    );
}

#[test]
fn c_plugin_with_a_null_vtable_slot_is_refused() {
    let lib = build::c_fixture(
        "reward.c",
        "c_reward_null",
        &build::sdk_include(),
        &["LG_FIXTURE_NULL_SCORE"],
    );
    let err = host(&[]).load_reward(path_str(&lib), "{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has a bad plugin header: reward vtable function `score` is null",
            lib.display()
        )
    );
}

#[test]
fn wrong_kind_for_the_slot_names_both_kinds() {
    let dir = build::first_party();
    let mut host = host(&[&dir]);
    let err = host.load_reward("arithmetic", "{}").unwrap_err();
    let lib = dir.join(build::library_file("lora-grpo-dataset-arithmetic"));
    assert_eq!(
        err.to_string(),
        format!(
            "plugin `arithmetic` ({}) is a dataset plugin, but it was named where a reward plugin is needed",
            lib.display()
        )
    );
    let math = dir.join(build::library_file("lora-grpo-reward-math-answer"));
    match host
        .load_dataset(path_str(&math), "{}", "train")
        .unwrap_err()
    {
        PluginError::WrongKind {
            expected,
            found,
            name,
            ..
        } => {
            assert_eq!(
                (expected, found, name.as_str()),
                (PluginKind::Dataset, PluginKind::Reward, "math-answer")
            )
        }
        other => panic!("expected wrong kind, got {other:?}"),
    }
}

#[test]
fn unknown_name_lists_the_directories_searched() {
    let dir = build::first_party();
    let missing = PathBuf::from("/no/such/plugin/dir");
    let err = host(&[&missing, &dir])
        .load_reward("no-such-reward", "{}")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no reward plugin named `no-such-reward` in the plugin search path:\n  {} (missing)\n  {}",
            missing.display(),
            dir.display()
        )
    );
}

#[test]
fn first_directory_wins_when_two_hold_the_same_name() {
    let lib = build::c_fixture("reward.c", "c_reward", &build::sdk_include(), &[]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        std::fs::copy(&lib, dir.path().join(build::library_file("c_reward"))).unwrap();
    }
    let info = host(&[b.path(), a.path()])
        .info("c-length", PluginKind::Reward)
        .unwrap();
    assert_eq!(info.path, b.path().join(build::library_file("c_reward")));
}

#[test]
fn config_rejections_carry_the_plugins_own_message() {
    let dir = build::first_party();
    let mut host = host(&[&dir]);
    let err = host
        .load_reward("math-answer", r#"{"extract": []}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `math-answer` rejected its config (in `create`): `extract` must name at least one extractor"
    );
    let err = host
        .load_dataset("jsonl", r#"{"path": "/no/such/data.jsonl"}"#, "train")
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "plugin `jsonl` rejected its config (in `open`): cannot open /no/such/data.jsonl: "
        ),
        "{err}"
    );
    let fixture = build::rust_fixture_current("misbehaving-reward");
    let err = host
        .load_reward(path_str(&fixture), r#"{"mode": "reject"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehaving` rejected its config (in `create`): mode `reject` is not allowed here (fixture)"
    );
}

#[test]
fn panics_inside_plugins_become_errors_and_the_host_goes_on() {
    let lib = build::rust_fixture_current("misbehaving-reward");
    let mut host = host(&[]);
    let mut panicky = host
        .load_reward(path_str(&lib), r#"{"mode": "panic"}"#)
        .unwrap();
    let err = score(&mut panicky, &[("abc", "", 0)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehaving` panicked in `score`: fixture panic on completion \"abc\""
    );
    // The same instance can be called again, and the library still works.
    assert!(matches!(
        score(&mut panicky, &[("x", "", 0)]),
        Err(PluginError::Panicked { .. })
    ));
    let mut fine = host.load_reward(path_str(&lib), "{}").unwrap();
    assert_eq!(score(&mut fine, &[("abcd", "", 0)]).unwrap(), vec![4.0]);

    let err = host
        .load_reward(path_str(&lib), r#"{"mode": "panic_create"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehaving` panicked in `create`: fixture panics while creating"
    );

    let dataset = build::rust_fixture_current("panicky-dataset");
    let mut samples = host
        .load_dataset(path_str(&dataset), r#"{"n": 3, "panic_at": 2}"#, "train")
        .unwrap();
    assert_eq!(samples.next().unwrap().unwrap().answer, "1");
    let err = samples.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `panicky` panicked in `next`: fixture dataset panics at sample 2"
    );
    assert!(samples.next().is_none(), "a reader stops after a panic");
}

#[test]
fn non_finite_or_missing_scores_are_rejected() {
    let lib = build::rust_fixture_current("misbehaving-reward");
    let mut host = host(&[]);
    let batch = [("a", "", 0), ("bb", "", 0), ("ccc", "", 1)];
    let mut check = |mode: &str| {
        let mut reward = host
            .load_reward(path_str(&lib), &json!({"mode": mode}).to_string())
            .unwrap();
        score(&mut reward, &batch).unwrap_err().to_string()
    };
    assert_eq!(
        check("nan"),
        "reward plugin `misbehaving` returned bad scores for a batch of 3: score 2 is NaN"
    );
    assert_eq!(
        check("infinite"),
        "reward plugin `misbehaving` returned bad scores for a batch of 3: score 0 is inf"
    );
    assert_eq!(
        check("short"),
        "reward plugin `misbehaving` returned bad scores for a batch of 3: expected 3 scores, got 2"
    );
    assert_eq!(
        check("fail"),
        "plugin `misbehaving` failed in `score`: cannot score 3 completions"
    );
}

#[test]
fn dataset_row_errors_name_the_row_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(&data, "{\"prompt\": \"a\", \"answer\": \"1\"}\n{\"prompt\": 5, \"answer\": \"2\"}\n{\"prompt\": \"c\", \"answer\": \"3\"}\n").unwrap();
    let mut host = host(&[&build::first_party()]);
    let config = json!({"path": data}).to_string();
    let mut rows = host.load_dataset("jsonl", &config, "train").unwrap();
    assert_eq!(rows.remaining().unwrap(), (3, Some(3)));
    assert_eq!(rows.next().unwrap().unwrap().answer, "1");
    let err = rows.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset plugin `jsonl` (split `train`), row 2: column `prompt` must be a string, got a number"
    );
    let third = rows.next().unwrap().unwrap();
    assert_eq!((third.answer.as_str(), third.row), ("3", Some(3)));
    assert!(rows.next().is_none());
    assert_eq!(rows.stats().calls, 4);
}

#[test]
fn first_party_rewards_score_through_the_host_and_are_timed() {
    let mut host = host(&[&build::first_party()]);
    let mut math = host.load_reward("math-answer", r#"{"wrong": -1}"#).unwrap();
    let scores = score(
        &mut math,
        &[
            ("so the total is \\boxed{1,250}", "1250", 0),
            ("#### 71", "She sold 72 in all.\n#### 72", 0),
            ("<answer>3/4</answer>", "0.75", 1),
        ],
    )
    .unwrap();
    assert_eq!(scores, vec![1.0, -1.0, 1.0]);
    score(&mut math, &[("7", "7", 0), ("8", "7", 0)]).unwrap();
    let stats = *math.stats();
    assert_eq!((stats.calls, stats.items), (2, 5));
    assert!(
        stats.total >= stats.max
            && stats.max >= stats.last
            && stats.last > std::time::Duration::ZERO
    );

    let mut format = host
        .load_reward("format", r#"{"tags": ["think", "answer"], "partial": 0.5}"#)
        .unwrap();
    let scores = score(
        &mut format,
        &[
            ("<think>a</think><answer>1</answer>", "", 0),
            ("<answer>1</answer>", "", 0),
        ],
    );
    assert_eq!(scores.unwrap(), vec![1.0, 0.5]);

    let mut length = host
        .load_reward(
            "length",
            r#"{"mode": "linear", "per_unit": -0.5, "unit": "words"}"#,
        )
        .unwrap();
    assert_eq!(
        score(&mut length, &[("one two three", "", 0)]).unwrap(),
        vec![-1.5]
    );
}

#[test]
fn arithmetic_through_the_host_matches_the_python_reference() {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(build::workspace().join("plugins/arithmetic/tests/golden.json"))
            .unwrap(),
    )
    .unwrap();
    let mut host = host(&[&build::first_party()]);
    for split in ["train", "eval"] {
        let dataset = host
            .load_dataset("arithmetic", r#"{"count": 5}"#, split)
            .unwrap();
        assert_eq!(dataset.remaining().unwrap(), (5, Some(5)));
        let samples: Vec<_> = dataset.map(Result::unwrap).collect();
        let got: Vec<Value> = samples
            .iter()
            .map(|s| json!([s.metadata["expression"], s.answer]))
            .collect();
        assert_eq!(Value::Array(got), golden[format!("default_{split}")]);
        let Prompt::Text(prompt) = &samples[0].prompt else {
            panic!("expected text")
        };
        assert_eq!(
            prompt,
            &format!(
                "What is {}?",
                samples[0].metadata["expression"].as_str().unwrap()
            )
        );
    }
}

#[test]
fn chat_prompts_and_metadata_cross_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gsm8k.jsonl");
    let row = json!({"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4", "id": "q1"});
    std::fs::write(&data, format!("{row}\n")).unwrap();
    let mut host = host(&[&build::first_party()]);
    let config = json!({"path": {"test": data}, "system": "Be brief."}).to_string();
    let samples = host
        .load_dataset("gsm8k", &config, "test")
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(samples.len(), 1);
    let s = &samples[0];
    let Prompt::Messages(messages) = &s.prompt else {
        panic!("expected messages")
    };
    let pairs: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    assert_eq!(pairs, [("system", "Be brief."), ("user", "What is 2 + 2?")]);
    assert_eq!((s.answer.as_str(), s.row), ("4", Some(1)));
    assert_eq!(
        Value::Object(s.metadata.clone()),
        json!({"id": "q1", "solution": "2 + 2 = 4\n#### 4"})
    );
}

#[test]
fn list_shows_plugins_and_unusable_libraries_but_skips_other_libraries() {
    let good = build::c_fixture("reward.c", "c_reward", &build::sdk_include(), &[]);
    let abi2 = build::c_fixture(
        "reward.c",
        "c_reward_abi2",
        &build::include_with_abi_major(2),
        &[],
    );
    let other = build::c_fixture("not_a_plugin.c", "not_a_plugin", &build::sdk_include(), &[]);
    let dir = tempfile::tempdir().unwrap();
    for lib in [&good, &abi2, &other] {
        std::fs::copy(lib, dir.path().join(lib.file_name().unwrap())).unwrap();
    }
    let listed = host(&[dir.path()]).list();
    let names: Vec<(String, Result<String, String>)> = listed
        .iter()
        .map(|(path, r)| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                file,
                r.as_ref()
                    .map(|i| i.name.clone())
                    .map_err(|e| e.to_string()),
            )
        })
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0].0, build::library_file("c_reward"));
    assert_eq!(names[0].1, Ok("c-length".to_owned()));
    assert_eq!(names[1].0, build::library_file("c_reward_abi2"));
    assert!(names[1]
        .1
        .as_ref()
        .unwrap_err()
        .contains("plugin: ABI 2.0, SDK c-header"));
}

#[test]
fn c_dataset_samples_are_decoded_and_malformed_ones_rejected() {
    let lib = build::c_fixture("dataset.c", "c_dataset", &build::sdk_include(), &[]);
    let mut host = host(&[]);
    let err = host.load_dataset(path_str(&lib), "", "eval").unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `c-samples` rejected its config (in `open`): the C dataset only has a train split"
    );
    let mut samples = host.load_dataset(path_str(&lib), "", "train").unwrap();
    assert_eq!(samples.remaining().unwrap(), (3, Some(3)));
    let first = samples.next().unwrap().unwrap();
    assert_eq!(first.prompt, Prompt::Text("What is 1 + 1?".into()));
    assert_eq!((first.answer.as_str(), first.row), ("2", Some(1)));
    assert_eq!(Value::Object(first.metadata), json!({"source": "C"}));
    let err = samples.next().unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "dataset plugin `c-samples` (split `train`) returned a bad sample: chat messages are not a JSON list of role/content: "
        ),
        "{err}"
    );
    let err = samples.next().unwrap().unwrap_err().to_string();
    assert_eq!(
        err,
        "dataset plugin `c-samples` (split `train`) returned a bad sample: `answer` is not UTF-8"
    );
    assert!(samples.next().is_none());
    assert_eq!(samples.remaining().unwrap(), (0, Some(0)));
    let stats = *samples.stats();
    assert_eq!((stats.calls, stats.items), (4, 3));
}

#[test]
fn undefined_status_codes_are_errors() {
    let lib = build::c_fixture("reward.c", "c_reward", &build::sdk_include(), &[]);
    let err = host(&[])
        .load_reward(path_str(&lib), r#"{"status7": true}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `c-length` returned status 7 from `create`, which ABI 1 does not allow there"
    );
}
