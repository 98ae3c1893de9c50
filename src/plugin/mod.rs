//! The plugin host: finds reward and dataset plugins (shared libraries built with the
//! `lora-grpo-plugin` SDK, or written in C against its header), checks their ABI header
//! before calling anything, and wraps them in safe types.
//!
//! ```no_run
//! use lora_grpo::plugin::{PluginHost, RewardInput};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), lora_grpo::error::PluginError> {
//! // The recipe's plugin directory first, then LORA_GRPO_PLUGIN_PATH and the workspace's
//! // target/{release,debug}.
//! let mut host = PluginHost::new(["recipes/plugins".into()]);
//! let mut dataset = host.load_dataset("arithmetic", r#"{"seed": 1}"#, "train")?;
//! let sample = dataset.next().expect("not empty")?;
//! let mut reward = host.load_reward("math-answer", "{}")?;
//! let metadata = json!(sample.metadata);
//! let input = RewardInput {
//!     prompt: "What is 2 + 3?",
//!     completion: "<answer>5</answer>",
//!     answer: &sample.answer,
//!     metadata: &metadata,
//!     group: 0,
//! };
//! let scores = reward.score(&[input])?;
//! println!("{scores:?} after {}", reward.stats());
//! # Ok(()) }
//! ```
//!
//! Libraries stay loaded until the process exits: unloading Rust libraries that may have
//! registered thread-local destructors is unsafe, and a run loads only a handful.

mod check;
mod dataset;
mod ffi;
mod library;
mod reward;
pub mod scaffold;
mod search;
mod stats;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use check::{check, CheckOutcome, CheckReport, ListReport};
pub use dataset::DatasetPlugin;
pub use library::PluginInfo;
pub use lora_grpo_plugin::{Message, Prompt, RewardInput, Sample};
pub use reward::RewardPlugin;
pub use search::{SearchPath, PLUGIN_PATH_ENV};
pub use stats::CallStats;

use crate::error::PluginError;
use library::Loaded;

/// What a plugin provides; a recipe slot needs one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Scores completions.
    Reward,
    /// Yields prompts and reference answers.
    Dataset,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Reward => "reward",
            PluginKind::Dataset => "dataset",
        })
    }
}

/// Finds and loads plugins. Loaded libraries are remembered by path, so looking a
/// plugin up twice or listing the search path opens each file once.
#[derive(Debug)]
pub struct PluginHost {
    search: SearchPath,
    opened: HashMap<PathBuf, Result<Loaded, PluginError>>,
}

impl PluginHost {
    /// A host over the standard search path with `extra_dirs` (e.g. the recipe's plugin
    /// directory) searched first; see [`SearchPath::standard`].
    pub fn new(extra_dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        PluginHost::with_search_path(SearchPath::standard(extra_dirs))
    }

    /// A host that searches exactly `search`.
    pub fn with_search_path(search: SearchPath) -> Self {
        PluginHost {
            search,
            opened: HashMap::new(),
        }
    }

    /// Where names are looked up, in priority order.
    pub fn search_path(&self) -> &SearchPath {
        &self.search
    }

    /// Loads a reward plugin by name or path and creates it from `config_json` (a JSON
    /// object as text; empty means no settings).
    pub fn load_reward(
        &mut self,
        name_or_path: &str,
        config_json: &str,
    ) -> Result<RewardPlugin, PluginError> {
        let (info, vtable) = self
            .find(name_or_path, Some(PluginKind::Reward))?
            .into_reward()?;
        RewardPlugin::create(info, vtable, config_json)
    }

    /// Loads a dataset plugin by name or path and opens `split` of the source that
    /// `config_json` describes.
    pub fn load_dataset(
        &mut self,
        name_or_path: &str,
        config_json: &str,
        split: &str,
    ) -> Result<DatasetPlugin, PluginError> {
        let (info, vtable) = self
            .find(name_or_path, Some(PluginKind::Dataset))?
            .into_dataset()?;
        DatasetPlugin::open(info, vtable, config_json, split)
    }

    /// The header of the plugin `name_or_path` names, which must be of `kind`.
    pub fn info(
        &mut self,
        name_or_path: &str,
        kind: PluginKind,
    ) -> Result<PluginInfo, PluginError> {
        let loaded = self.find(name_or_path, Some(kind))?;
        match loaded.info.kind == kind {
            true => Ok(loaded.info),
            false => Err(loaded.wrong_kind(kind)),
        }
    }

    /// The header of the plugin `name_or_path` names, whatever its kind.
    pub fn info_any(&mut self, name_or_path: &str) -> Result<PluginInfo, PluginError> {
        Ok(self.find(name_or_path, None)?.info)
    }

    /// Every shared library in the search path: its header, or why it is not usable.
    /// Libraries without the plugin entry symbol are left out.
    pub fn list(&mut self) -> Vec<(PathBuf, Result<PluginInfo, PluginError>)> {
        self.search
            .candidates()
            .into_iter()
            .filter_map(|path| match self.open(&path) {
                Err(PluginError::NotAPlugin { .. }) => None,
                result => Some((path, result.map(|loaded| loaded.info))),
            })
            .collect()
    }

    /// Resolves `name_or_path`; by name, a plugin of `kind` is preferred over one of
    /// another kind (which the caller then reports as the wrong kind).
    fn find(
        &mut self,
        name_or_path: &str,
        kind: Option<PluginKind>,
    ) -> Result<Loaded, PluginError> {
        if is_path(name_or_path) {
            return self.open(Path::new(name_or_path));
        }
        let found = self.by_name(name_or_path);
        let preferred = found
            .iter()
            .position(|l| Some(l.info.kind) == kind)
            .unwrap_or(0);
        match found.into_iter().nth(preferred) {
            Some(loaded) => Ok(loaded),
            None => Err(self.not_found(name_or_path, kind)),
        }
    }

    /// Every plugin called `name` in the search path, in priority order.
    fn by_name(&mut self, name: &str) -> Vec<Loaded> {
        self.search
            .candidates()
            .into_iter()
            .filter_map(|path| self.open(&path).ok())
            .filter(|loaded| loaded.info.name == name)
            .collect()
    }

    fn not_found(&mut self, name: &str, kind: Option<PluginKind>) -> PluginError {
        let unreadable = self.list().into_iter().filter(|(_, r)| r.is_err()).count();
        let hint = match unreadable {
            0 => String::new(),
            n => format!(
                "\n{n} librar{} in these directories could not be read as plugins; \
                 `lora-grpo plugins list` says why",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        PluginError::NotFound {
            name: name.to_owned(),
            kind,
            searched: self.search.describe(),
            hint,
        }
    }

    /// Opens `path` once; later calls return the first outcome.
    fn open(&mut self, path: &Path) -> Result<Loaded, PluginError> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.opened
            .entry(key)
            .or_insert_with(|| library::open(path))
            .clone()
    }
}

/// A recipe names a plugin by path when the text has a directory part or a library
/// extension; anything else is a plugin name.
fn is_path(name_or_path: &str) -> bool {
    let path = Path::new(name_or_path);
    path.components().count() > 1
        || path.extension().and_then(|e| e.to_str()) == Some(std::env::consts::DLL_EXTENSION)
}
