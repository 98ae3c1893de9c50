//! Recipes read from real YAML files in tests/fixtures/recipes: values and defaults,
//! errors with their exact line, column, key path and suggestion, `--set` overrides,
//! the YAML written back, and the `lora-grpo recipe check` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use lora_grpo::error::RecipeError;
use lora_grpo::grpo::{ImportanceSampling, LossType, ScaleRewards};
use lora_grpo::optim::Schedule;
use lora_grpo::recipe::{Diagnostic, Recipe};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recipes")
        .join(name)
}

fn load(name: &str, sets: &[&str]) -> Result<Recipe, RecipeError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Recipe::load(&fixture(name), &sets)
}

fn diagnostics(name: &str, sets: &[&str]) -> Vec<Diagnostic> {
    match load(name, sets) {
        Err(RecipeError::Invalid(d)) => d,
        other => panic!("expected diagnostics for {name}, got {other:?}"),
    }
}

/// The only diagnostic, as (line, column, key, message); the origin must be the file.
fn single(name: &str) -> (Option<usize>, Option<usize>, String, String) {
    let d = diagnostics(name, &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].origin, fixture(name).display().to_string());
    (
        d[0].line,
        d[0].column,
        d[0].key.clone(),
        d[0].message.clone(),
    )
}

#[test]
fn full_recipe_reads_every_section() {
    let r = load("full.yaml", &[]).unwrap();
    assert_eq!(r.model.path, PathBuf::from("models/qwen3-0.6b-4bit"));
    assert!(r.model.dequantize && r.model.quantize.is_none());
    assert_eq!(
        (r.lora.num_layers, r.lora.rank, r.lora.scale, r.lora.dropout),
        (-1, 16, 10.0, 0.05)
    );
    assert_eq!(
        r.lora.keys.as_deref(),
        Some(
            &[
                "self_attn.q_proj".to_string(),
                "self_attn.v_proj".into(),
                "mlp.down_proj".into()
            ][..]
        )
    );
    let g = &r.grpo;
    assert_eq!(
        (g.group_size, g.batch_size, g.num_iterations, g.steps),
        (6, 2, 2, 50)
    );
    assert_eq!(g.loss_type, LossType::DrGrpo);
    assert_eq!(g.importance_sampling, ImportanceSampling::Sequence);
    assert_eq!(g.scale_rewards, ScaleRewards::Batch);
    assert_eq!(
        (g.epsilon, g.epsilon_high, g.epsilon_high(), g.beta),
        (0.2, Some(0.28), 0.28, 0.04)
    );
    assert!(g.mask_truncated_completions && g.filter_equal_reward_groups);
    assert_eq!(
        (
            g.max_completion_length,
            g.gradient_accumulation_steps,
            g.max_grad_norm
        ),
        (128, 3, None)
    );
    assert_eq!(g.total_updates(), 100);
    let s = &r.sampling;
    assert_eq!(
        (s.temperature, s.top_p, s.top_k, s.min_p),
        (0.7, 0.95, 50, 0.05)
    );
    assert_eq!(s.stop, vec!["</answer>".to_string(), "\n\n".into()]);
    let o = &r.optimizer;
    assert_eq!(
        (o.lr, o.weight_decay, o.betas, o.eps),
        (2e-5, 0.01, [0.9, 0.99], 1e-6)
    );
    assert_eq!(
        (o.bias_correction, o.schedule, o.warmup_steps),
        (false, Schedule::Cosine, 10)
    );
    assert_eq!(r.data.plugin, "math-answer");
    assert_eq!(
        serde_json::Value::Object(r.data.config.clone()),
        json!({"path": "data/gsm8k.jsonl", "answer_key": "answer", "limit": 500})
    );
    assert_eq!(
        (r.data.train_split.as_str(), r.data.eval_split.as_deref()),
        ("train", Some("test"))
    );
    assert_eq!(
        r.data.system_prompt.as_deref(),
        Some("Think step by step.\nAnswer inside <answer></answer>.\n")
    );
    assert!(!r.data.chat_template && !r.data.shuffle);
    assert_eq!(r.rewards.len(), 2);
    assert_eq!(
        (r.rewards[0].display_name(), r.rewards[0].weight),
        ("math-answer", 1.0)
    );
    assert_eq!(
        serde_json::Value::Object(r.rewards[0].config.clone()),
        json!({"tolerance": 1e-6})
    );
    assert_eq!(
        (r.rewards[1].display_name(), r.rewards[1].weight),
        ("format-strict", 0.25)
    );
    assert!(r.rewards[1].config.is_empty());
    assert_eq!(
        (r.output_dir.as_path(), r.checkpoint_every, r.seed),
        (Path::new("adapters/math"), 25, 1234)
    );
    assert_eq!(
        (r.eval.every, r.eval.num_samples, r.eval.greedy),
        (10, 32, false)
    );
    assert_eq!(
        r.plugin_dirs,
        vec![
            PathBuf::from("plugins/build"),
            PathBuf::from("/opt/lora-grpo/plugins")
        ]
    );
}

#[test]
fn minimal_recipe_gets_the_documented_defaults() {
    let r = load("minimal.yaml", &[]).unwrap();
    assert_eq!(
        (r.model.quantize.clone(), r.model.dequantize),
        (None, false)
    );
    assert_eq!(
        (
            r.lora.num_layers,
            r.lora.rank,
            r.lora.scale,
            r.lora.dropout,
            r.lora.keys.clone()
        ),
        (16, 8, 20.0, 0.0, None)
    );
    let g = &r.grpo;
    assert_eq!(
        (
            g.group_size,
            g.batch_size,
            g.loss_type,
            g.epsilon,
            g.epsilon_high()
        ),
        (8, 4, LossType::Dapo, 0.2, 0.2)
    );
    assert_eq!(
        (
            g.beta,
            g.num_iterations,
            g.importance_sampling,
            g.scale_rewards
        ),
        (0.0, 1, ImportanceSampling::Token, ScaleRewards::Group)
    );
    assert!(!g.mask_truncated_completions && !g.filter_equal_reward_groups);
    assert_eq!(
        (
            g.max_completion_length,
            g.gradient_accumulation_steps,
            g.max_grad_norm,
            g.steps
        ),
        (256, 1, Some(1.0), 100)
    );
    let s = &r.sampling;
    assert_eq!(
        (s.temperature, s.top_p, s.top_k, s.min_p, s.stop.len()),
        (1.0, 1.0, 0, 0.0, 0)
    );
    let o = &r.optimizer;
    assert_eq!(
        (o.lr, o.weight_decay, o.betas, o.eps, o.bias_correction),
        (1e-5, 0.0, [0.9, 0.999], 1e-8, true)
    );
    assert_eq!((o.schedule, o.warmup_steps), (Schedule::Constant, 0));
    assert!(r.data.config.is_empty());
    assert_eq!(
        (
            r.data.train_split.as_str(),
            r.data.eval_split.clone(),
            r.data.system_prompt.clone()
        ),
        ("train", None, None)
    );
    assert!(r.data.chat_template && r.data.shuffle);
    assert_eq!(
        (r.rewards[0].weight, r.rewards[0].name.clone()),
        (1.0, None)
    );
    assert_eq!(
        (r.output_dir.as_path(), r.checkpoint_every, r.seed),
        (Path::new("adapters"), 100, 0)
    );
    assert_eq!(
        (r.eval.every, r.eval.num_samples, r.eval.greedy),
        (0, 64, true)
    );
    assert!(r.plugin_dirs.is_empty());
}

#[test]
fn misspelled_key_points_at_it_and_suggests_the_right_one() {
    // `  epsilno: 0.3` is line 5; the key starts in column 3.
    let (line, column, key, message) = single("unknown_key.yaml");
    assert_eq!((line, column), (Some(5), Some(3)));
    assert_eq!(key, "grpo.epsilno");
    assert_eq!(message, "unknown key `epsilno`; did you mean `epsilon`?");
}

#[test]
fn unknown_key_with_no_close_match_lists_the_valid_keys() {
    let (line, column, key, message) = single("unknown_key_far.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(3), Some(3), "model.revision")
    );
    assert_eq!(
        message,
        "unknown key `revision` (valid keys: `path`, `quantize`, `dequantize`)"
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    // `  group_size: eight`: the value starts in column 15 of line 4.
    let (line, column, key, message) = single("wrong_type.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(4), Some(15), "grpo.group_size")
    );
    assert_eq!(
        message,
        "expected a whole number (0 or more), found string \"eight\""
    );
}

#[test]
fn misspelled_name_suggests_the_closest_choice() {
    let (line, column, key, message) = single("bad_enum.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(4), Some(14), "grpo.loss_type")
    );
    assert_eq!(message, "unknown value `dr-grpo`, expected one of `grpo`, `bnpo`, `dr_grpo`, `dapo`; did you mean `dr_grpo`?");
}

#[test]
fn key_inside_a_list_item_is_named_by_index() {
    let (line, column, key, message) = single("reward_typo.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(8), Some(5), "rewards.1.wieght")
    );
    assert_eq!(message, "unknown key `wieght`; did you mean `weight`?");
}

#[test]
fn missing_required_key_points_at_its_section() {
    let (line, column, key, message) = single("missing_plugin.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(3), Some(1), "data.plugin")
    );
    assert_eq!(message, "missing required key `plugin`");
}

#[test]
fn yaml_1_1_booleans_and_quoted_numbers_are_type_errors() {
    let (line, column, key, message) = single("strict_scalars.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(5), Some(12), "data.shuffle")
    );
    assert_eq!(message, "expected a boolean, found string \"yes\"");
    let (line, column, key, message) = single("quoted_number.yaml");
    assert_eq!(
        (line, column, key.as_str()),
        (Some(4), Some(7), "optimizer.lr")
    );
    assert_eq!(message, "expected a number, found string \"1e-5\"");
}

#[test]
fn all_bad_values_are_reported_at_once_with_their_keys() {
    let found: Vec<(Option<usize>, Option<usize>, String)> = diagnostics("bad_values.yaml", &[])
        .into_iter()
        .map(|d| (d.line, d.column, d.key))
        .collect();
    let expected = [
        (4, 9, "lora.rank"),
        (6, 15, "grpo.group_size"),
        (7, 12, "grpo.epsilon"),
        (9, 16, "sampling.temperature"),
        // The duplicate reward has no `name`: reported at its list item.
        (14, 5, "rewards.1.name"),
        (16, 10, "eval.every"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(l, c, k)| (Some(l), Some(c), k.to_string()))
        .collect();
    assert_eq!(found, expected);
    let messages: Vec<String> = diagnostics("bad_values.yaml", &[])
        .into_iter()
        .map(|d| d.message)
        .collect();
    assert_eq!(messages[2], "must be a finite number in [0, 1), got -0.1");
    assert_eq!(
        messages[4],
        "two rewards are both named `math-answer`; give one a distinct `name`"
    );
}

#[test]
fn syntax_error_and_duplicate_key_have_positions() {
    let (line, column, key, message) = single("syntax_error.yaml");
    assert_eq!((line, column, key.as_str()), (Some(5), Some(8), ""));
    assert!(message.starts_with("invalid YAML: "), "{message}");
    let (line, column, key, message) = single("duplicate_key.yaml");
    assert_eq!((line, column, key.as_str()), (Some(7), Some(1), "data"));
    assert_eq!(message, "key `data` given twice (first on line 3)");
}

#[test]
fn a_recipe_must_be_a_mapping() {
    let err = |text: &str| match Recipe::parse(text, "inline.yaml", &[]) {
        Err(RecipeError::Invalid(d)) => d[0].to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err("- model\n- data\n"),
        "inline.yaml:1:1: a recipe is a mapping of sections, found a list of 2 items"
    );
    assert_eq!(
        err("# nothing here\n"),
        "inline.yaml:1:1: `model`: missing required key `model`"
    );
}

#[test]
fn anchors_and_aliases_are_followed() {
    let r = load("anchors.yaml", &[]).unwrap();
    assert_eq!(
        serde_json::Value::Object(r.rewards[0].config.clone()),
        json!({"path": "data/gsm8k.jsonl", "limit": 100})
    );
    assert_eq!(r.rewards[0].config, r.data.config);
}

#[test]
fn overrides_are_typed_by_the_schema_and_applied_in_order() {
    let r = load(
        "minimal.yaml",
        &[
            "grpo.epsilon=0.3",
            "grpo.loss_type=bnpo",
            "grpo.epsilon=0.25",
            "optimizer.betas=[0.8, 0.95]",
            "sampling.stop=[\"</answer>\"]",
            "rewards.0.weight=2",
            "eval.every=5",
            "data.eval_split=test",
            "data.system_prompt=\"a: b\"",
            "data.config.limit=10",
            "model.quantize.bits=8",
        ],
    )
    .unwrap();
    assert_eq!((r.grpo.epsilon, r.grpo.loss_type), (0.25, LossType::Bnpo));
    assert_eq!(r.optimizer.betas, [0.8, 0.95]);
    assert_eq!(r.sampling.stop, vec!["</answer>".to_string()]);
    assert_eq!(r.rewards[0].weight, 2.0);
    assert_eq!(
        (r.eval.every, r.data.eval_split.as_deref()),
        (5, Some("test"))
    );
    assert_eq!(r.data.system_prompt.as_deref(), Some("a: b"));
    assert_eq!(
        serde_json::Value::Object(r.data.config.clone()),
        json!({"limit": 10})
    );
    let q = r.model.quantize.unwrap();
    assert_eq!((q.bits, q.group_size), (8, 64));
    // An empty value is null: this removes the upper clipping range again.
    let r = load("full.yaml", &["grpo.epsilon_high="]).unwrap();
    assert_eq!((r.grpo.epsilon_high, r.grpo.epsilon_high()), (None, 0.2));
}

#[test]
fn override_errors_name_the_argument_and_key() {
    let one = |set: &str| {
        let d = diagnostics("minimal.yaml", &[set]);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].origin.as_str(), d[0].line, d[0].column),
            (format!("--set {set}").as_str(), None, None)
        );
        (d[0].key.clone(), d[0].message.clone())
    };
    assert_eq!(
        one("grpo.epsilom=0.3"),
        (
            "grpo.epsilom".to_string(),
            "unknown key `epsilom`; did you mean `epsilon`?".to_string()
        )
    );
    assert_eq!(
        one("grpo.beta=lots"),
        (
            "grpo.beta".to_string(),
            "expected a number, found string \"lots\"".to_string()
        )
    );
    assert_eq!(one("grpo.group_size=1").0, "grpo.group_size");
    assert_eq!(
        one("lora.rank=-1"),
        (
            "lora.rank".to_string(),
            "expected a whole number (0 or more), found integer `-1`".to_string()
        )
    );
    assert_eq!(
        one("lora.keys=self_attn.q_proj"),
        (
            "lora.keys".to_string(),
            "expected a list, found string \"self_attn.q_proj\"".to_string()
        )
    );
    assert_eq!(
        one("rewards.3.weight=2"),
        (
            "rewards.3".to_string(),
            "`rewards` has 1 item; the only index is 0".to_string()
        )
    );
    assert_eq!(
        one("model.path.x=1"),
        (
            "model.path.x".to_string(),
            "`model.path` is string \"models/tiny\", not a section with keys".to_string()
        )
    );
    assert_eq!(
        one("grpo.epsilon"),
        (String::new(), "expected `key.path=value`".to_string())
    );
    assert_eq!(
        one("grpo..beta=1"),
        (
            "grpo..beta".to_string(),
            "the key path has an empty part".to_string()
        )
    );
}

#[test]
fn resolved_recipe_reads_back_identical_and_saves_atomically() {
    for name in ["full.yaml", "minimal.yaml", "anchors.yaml"] {
        let recipe = load(name, &[]).unwrap();
        let text = recipe.to_yaml().unwrap();
        let again = Recipe::parse(&text, "resolved.yaml", &[]).unwrap();
        assert_eq!(again, recipe, "{name} changed on the way through:\n{text}");
    }
    let recipe = load(
        "full.yaml",
        &["sampling.stop=[\"true\", \"1e-5\", \"null\", \"x: y\", \"#c\", \"\"]"],
    );
    // Strings that look like other types must be written quoted; the empty stop string
    // is refused by validation, so check the others only.
    assert!(recipe.is_err());
    let recipe = load(
        "full.yaml",
        &["sampling.stop=[\"true\", \"1e-5\", \"null\", \"x: y\", \"#c\", \" lead\"]"],
    )
    .unwrap();
    let again = Recipe::parse(&recipe.to_yaml().unwrap(), "resolved.yaml", &[]).unwrap();
    assert_eq!(
        again.sampling.stop,
        ["true", "1e-5", "null", "x: y", "#c", " lead"]
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recipe.yaml");
    recipe.save(&path).unwrap();
    assert_eq!(Recipe::load(&path, &[]).unwrap(), recipe);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["recipe.yaml"],
        "no temporary file is left behind"
    );
}

#[test]
fn floats_are_written_so_yaml_1_1_readers_see_floats() {
    let r = load("minimal.yaml", &["optimizer.lr=1e-7", "optimizer.eps=1e20"]).unwrap();
    let text = r.to_yaml().unwrap();
    assert!(text.contains("\n  lr: 1.0e-7\n"), "{text}");
    assert!(text.contains("\n  eps: 1.0e+20\n"), "{text}");
}

#[test]
fn recipe_check_command_prints_the_resolved_recipe_or_the_error() {
    let bin = env!("CARGO_BIN_EXE_lora-grpo");
    let ok = Command::new(bin)
        .args(["recipe", "check"])
        .arg(fixture("minimal.yaml"))
        .args(["--set", "grpo.beta=0.04"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let printed = String::from_utf8(ok.stdout).unwrap();
    let reread = Recipe::parse(&printed, "stdout", &[]).unwrap();
    assert_eq!(reread, load("minimal.yaml", &["grpo.beta=0.04"]).unwrap());

    let bad = Command::new(bin)
        .args(["recipe", "check"])
        .arg(fixture("unknown_key.yaml"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    let expected = format!(
        "{}:5:3: `grpo.epsilno`: unknown key `epsilno`; did you mean `epsilon`?",
        fixture("unknown_key.yaml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

/// Every shipped recipe parses and validates (they are documented, not all run in CI).
#[test]
fn shipped_recipes_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            lora_grpo::recipe::Recipe::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} recipes found in {}", dir.display());
}

#[test]
fn distributed_section_is_checked_like_the_others() {
    use lora_grpo::distributed::Backend;
    let r = load("minimal.yaml", &[]).unwrap();
    assert_eq!((r.distributed.backend, r.distributed.timeout_s), (Backend::Off, 900.0));
    let r = load("minimal.yaml", &["distributed.backend=nccl", "distributed.timeout_s=30"]).unwrap();
    assert_eq!((r.distributed.backend, r.distributed.timeout_s), (Backend::Nccl, 30.0));
    let problems = |set: &str| -> Vec<(String, String)> {
        diagnostics("minimal.yaml", &[set]).into_iter().map(|d| (d.key, d.message)).collect()
    };
    assert_eq!(
        problems("distributed.backend=rnig"),
        [(
            "distributed.backend".to_string(),
            "unknown value `rnig`, expected one of `off`, `any`, `ring`, `jaccl`, `nccl`, `mpi`; did you mean `ring`?".to_string()
        )]
    );
    assert_eq!(
        problems("distributed.timeout=5"),
        [("distributed.timeout".to_string(), "unknown key `timeout`; did you mean `timeout_s`?".to_string())]
    );
    assert_eq!(
        problems("distributed.timeout_s=0"),
        [("distributed.timeout_s".to_string(), "must be a finite number in (0, 10000000], got 0".to_string())]
    );
}

#[test]
fn a_missing_recipe_file_is_reported_once_with_its_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_lora-grpo"))
        .args(["run", "no/such/recipe.yaml"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: cannot read recipe no/such/recipe.yaml: "), "{err}");
    // The OS error is part of the message; it is not repeated as a "caused by" line.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
