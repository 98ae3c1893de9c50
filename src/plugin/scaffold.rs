//! `lora-grpo new-plugin`: writes a standalone plugin crate that builds outside this
//! workspace, passes its own test and `lora-grpo plugins check` as generated.

use std::fs;
use std::path::{Path, PathBuf};

use super::PluginKind;
use crate::error::ScaffoldError;

/// Where the new crate gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A local checkout of `crates/lora-grpo-plugin`.
    Path(PathBuf),
    /// A crates.io version requirement.
    Version(String),
}

impl SdkSource {
    /// The SDK of the source tree this binary was built from when it is still there,
    /// else the crates.io release of the same version.
    pub fn default_for_this_build() -> Self {
        let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/lora-grpo-plugin");
        match local.join("Cargo.toml").is_file() {
            true => SdkSource::Path(local),
            false => SdkSource::Version(lora_grpo_plugin::SDK_VERSION.to_owned()),
        }
    }

    fn dependency_line(&self) -> String {
        match self {
            SdkSource::Path(path) => format!(
                "lora-grpo-plugin = {{ path = {} }}",
                toml_string(&path.display().to_string())
            ),
            SdkSource::Version(version) => format!("lora-grpo-plugin = {}", toml_string(version)),
        }
    }
}

/// A crate written by [`scaffold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffolded {
    pub dir: PathBuf,
    pub name: String,
    pub kind: PluginKind,
    /// The library `cargo build --release` will produce, relative to `dir`.
    pub library: PathBuf,
}

impl Scaffolded {
    /// What to do next, for the terminal.
    pub fn next_steps(&self) -> String {
        let dir = self.dir.display();
        let lib = self.library.display();
        format!(
            "Created {kind} plugin `{name}` in {dir}\n\n\
             Next steps:\n  \
             cd {dir}\n  \
             cargo test                 # the example test in src/lib.rs\n  \
             cargo build --release      # builds {lib}\n  \
             lora-grpo plugins check {lib}\n\n\
             Then edit src/lib.rs. Recipes can name the plugin by the library's path, or as \
             `{name}` once its directory is in the recipe's plugin directories or in \
             LORA_GRPO_PLUGIN_PATH.\n",
            kind = self.kind,
            name = self.name,
        )
    }
}

/// Writes crate `name` (a reward function or a dataset format, with a unit test) into
/// `parent/name`, which must not exist yet.
pub fn scaffold(
    name: &str,
    kind: PluginKind,
    parent: &Path,
    sdk: &SdkSource,
) -> Result<Scaffolded, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ScaffoldError::BadName {
            name: name.to_owned(),
        });
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists { path: dir });
    }
    let (template, description) = match kind {
        PluginKind::Reward => (REWARD_TEMPLATE, "A lora-grpo reward function"),
        PluginKind::Dataset => (DATASET_TEMPLATE, "A lora-grpo dataset format"),
    };
    let lib = template
        .replace("{{name}}", name)
        .replace("{{Type}}", &type_name(name));
    let manifest = MANIFEST_TEMPLATE
        .replace("{{name}}", name)
        .replace("{{description}}", description)
        .replace("{{sdk}}", &sdk.dependency_line());
    let write = |path: PathBuf, text: &str| {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        fs::write(&path, text).map_err(|source| ScaffoldError::Io { path, source })
    };
    write(dir.join("Cargo.toml"), &manifest)?;
    write(dir.join("src/lib.rs"), &lib)?;
    write(dir.join(".gitignore"), "/target\n")?;
    let file = format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    );
    Ok(Scaffolded {
        dir,
        name: name.to_owned(),
        kind,
        library: Path::new("target/release").join(file),
    })
}

/// `my-plugin` -> `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

const MANIFEST_TEMPLATE: &str = r##"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2021"
description = "{{description}}"
publish = false

[lib]
# cdylib: the library lora-grpo loads; rlib: lets `cargo test` call the plugin directly.
crate-type = ["cdylib", "rlib"]

[dependencies]
{{sdk}}

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"##;

const REWARD_TEMPLATE: &str = r##"//! Reward plugin `{{name}}`: scores each completion by whether it contains the
//! reference answer. Replace `score` with your own logic.
//!
//! Config (from the recipe, all optional): `{"correct": 1.0, "wrong": 0.0}`.

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::{export_reward, Config, Error, RewardFunction, RewardInput};

#[derive(Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields, default)]
struct Settings {
    correct: f32,
    wrong: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { correct: 1.0, wrong: 0.0 }
    }
}

pub struct {{Type}} {
    settings: Settings,
}

impl RewardFunction for {{Type}} {
    fn new(config: &Config) -> Result<Self, Error> {
        Ok({{Type}} { settings: config.parse()? })
    }

    fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
        Ok(batch
            .iter()
            .map(|input| {
                let answer = input.answer.trim();
                match !answer.is_empty() && input.completion.contains(answer) {
                    true => self.settings.correct,
                    false => self.settings.wrong,
                }
            })
            .collect())
    }
}

export_reward!({{Type}}, name = "{{name}}");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_completions_that_contain_the_answer() {
        let config = Config::from_json(r#"{"wrong": -1.0}"#).unwrap();
        let mut reward = {{Type}}::new(&config).unwrap();
        let pairs = [("The answer is 42.", "42"), ("No idea.", "42")];
        let scores = lora_grpo_plugin::score_pairs(&mut reward, &pairs).unwrap();
        assert_eq!(scores, vec![1.0, -1.0]);
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        let config = Config::from_json(r#"{"corect": 1.0}"#).unwrap();
        assert!({{Type}}::new(&config).is_err());
    }
}
"##;

const DATASET_TEMPLATE: &str = r##"//! Dataset plugin `{{name}}`: asks to repeat words, a different list per split.
//! Replace the word lists with your own source (see `lora_grpo_plugin::jsonl` for
//! reading JSON Lines files).
//!
//! Config (from the recipe, all optional): `{"system": "Be brief."}`.

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::{export_dataset, Config, Dataset, Error, Prompt, Sample};

#[derive(Deserialize, Default)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields, default)]
struct Settings {
    system: Option<String>,
}

pub struct {{Type}} {
    settings: Settings,
    words: &'static [&'static str],
    next: usize,
}

impl Dataset for {{Type}} {
    fn open(config: &Config, split: &str) -> Result<Self, Error> {
        let words: &'static [&'static str] = match split {
            "train" => &["apple", "river", "stone", "cloud"],
            "eval" => &["lantern", "meadow"],
            other => return Err(Error::new(format!("unknown split `{other}` (train or eval)"))),
        };
        Ok({{Type}} { settings: config.parse()?, words, next: 0 })
    }

    fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
        let word = self.words.get(self.next)?;
        self.next += 1;
        let prompt = Prompt::with_system(self.settings.system.as_deref(), format!("Repeat the word: {word}"));
        Some(Ok(Sample::new(prompt, *word)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.words.len() - self.next;
        (left, Some(left))
    }
}

export_dataset!({{Type}}, name = "{{name}}");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_yield_their_words() {
        let train = lora_grpo_plugin::read_all::<{{Type}}>("{}", "train").unwrap();
        assert_eq!(train.len(), 4);
        assert_eq!(train[0], Sample::new("Repeat the word: apple", "apple"));
        let eval = lora_grpo_plugin::read_all::<{{Type}}>("{}", "eval").unwrap();
        assert_eq!(eval[1].answer, "meadow");
        assert!(lora_grpo_plugin::read_all::<{{Type}}>("{}", "test").is_err());
    }
}
"##;
