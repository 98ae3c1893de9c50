//! Training recipes: the YAML schema (see [`Recipe`] for every key and its default),
//! `--set key.path=value` overrides, value validation, and the resolved recipe written
//! back as YAML.
//!
//! Every problem is reported as a [`Diagnostic`] naming the file, line and column, and
//! the dotted key path; misspelled keys and names get a "did you mean".

mod de;
mod emit;
mod overrides;
mod schema;
mod validate;
mod yaml;

use std::fmt;
use std::path::Path;
use std::rc::Rc;

use serde::Deserialize;

pub use schema::{
    DataConfig, DistributedConfig, EvalConfig, GrpoConfig, LoraConfig, ModelConfig, OptimizerConfig, QuantizeConfig,
    Recipe, RewardConfig, SamplingConfig,
};

use crate::error::RecipeError;
use yaml::{Loc, Node};

/// One problem in a recipe, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name, or `--set key=value` for an override.
    pub origin: String,
    /// 1-based line, when the problem is at a place in the file.
    pub line: Option<usize>,
    /// 1-based column, when the problem is at a place in the file.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `grpo.epsilon` or `rewards.0.weight` (empty for syntax errors).
    pub key: String,
    /// What is wrong and, where it can tell, what was meant.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Recipe {
    /// Reads a recipe file, applies `--set` overrides in order, and validates it.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Recipe, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Recipe::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses recipe text; `origin` names it in diagnostics (usually the file path).
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Recipe, RecipeError> {
        let origin: Rc<str> = Rc::from(origin);
        let start = Loc {
            origin: origin.clone(),
            position: Some((1, 1)),
        };
        let mut root =
            yaml::parse(text, &origin)?.unwrap_or_else(|| Node::empty_map(start.clone()));
        if !matches!(root.value, yaml::Value::Map(_)) {
            return Err(root
                .loc
                .diagnostic(
                    "",
                    format!(
                        "a recipe is a mapping of sections, found {}",
                        root.describe()
                    ),
                )
                .into());
        }
        for arg in overrides {
            overrides::apply(&mut root, arg)?;
        }
        let recipe = Recipe::deserialize(de::NodeDe {
            node: &root,
            path: String::new(),
        })
        .map_err(|e| e.into_diagnostic(&start))?;
        let problems: Vec<Diagnostic> = validate::validate(&recipe)
            .into_iter()
            .map(|(path, message)| locate(&root, &path, &start).diagnostic(&path, message))
            .collect();
        if problems.is_empty() {
            Ok(recipe)
        } else {
            Err(RecipeError::Invalid(problems))
        }
    }

    /// The recipe as YAML, every default filled in; parsing it gives this recipe back.
    pub fn to_yaml(&self) -> Result<String, RecipeError> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => Ok(emit::to_yaml(&map)),
            Ok(_) => Err(RecipeError::Serialize(
                "the recipe did not serialize to a mapping".into(),
            )),
            Err(e) => Err(RecipeError::Serialize(e.to_string())),
        }
    }

    /// Writes [`Recipe::to_yaml`] to `path` atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), RecipeError> {
        let text = format!(
            "# Resolved recipe (all defaults filled in), written by lora-grpo.\n{}",
            self.to_yaml()?
        );
        let write_error = |source| RecipeError::Write {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).map_err(write_error)?;
        std::fs::rename(&tmp, path).map_err(write_error)
    }
}

/// The location of the value at `path`; for a value that came from a default, the key
/// of its nearest written ancestor section.
fn locate(root: &Node, path: &str, start: &Loc) -> Loc {
    let mut node = root;
    let mut ancestor = start;
    for segment in path.split('.') {
        let child = match &node.value {
            yaml::Value::Map(entries) => entries
                .iter()
                .find(|e| e.key == segment)
                .map(|e| (&e.key_loc, &e.value)),
            yaml::Value::Seq(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|n| (&n.loc, n)),
            yaml::Value::Scalar(_) => None,
        };
        match child {
            Some((loc, next)) => (ancestor, node) = (loc, next),
            None => return ancestor.clone(),
        }
    }
    node.loc.clone()
}

impl From<Diagnostic> for RecipeError {
    fn from(d: Diagnostic) -> Self {
        RecipeError::Invalid(vec![d])
    }
}
