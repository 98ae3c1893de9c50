//! Reading the JSON and Jinja files of a model directory that sit beside `tokenizer.json`:
//! special tokens, chat templates and generation EOS ids.

use crate::error::TokenizerError;
use serde_json::{Map, Value};
use std::fs;
use std::path::{Path, PathBuf};

/// The named special tokens Hugging Face passes to chat templates (`special_tokens_map`).
pub(crate) const SPECIAL_TOKEN_KEYS: [&str; 7] =
    ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

/// What `tokenizer_config.json` says, reduced to what generation and templates need.
#[derive(Debug)]
pub(crate) struct TokenizerConfig {
    pub path: PathBuf,
    pub special_tokens: SpecialTokens,
    pub chat_templates: Vec<TemplateSource>,
}

/// One chat template and the file it came from (named in errors).
#[derive(Debug, Clone)]
pub(crate) struct TemplateSource {
    pub name: String,
    pub source: String,
    pub path: PathBuf,
}

impl TokenizerConfig {
    pub fn read(dir: &Path) -> Result<Self, TokenizerError> {
        let path = dir.join("tokenizer_config.json");
        let root = read_json_object(&path, "the tokenizer settings (special tokens, chat template)")?;
        let mut special_tokens = SpecialTokens::default();
        for key in SPECIAL_TOKEN_KEYS {
            if let Some(text) = special_token(&path, &root, key)? {
                special_tokens.0.push((key, text));
            }
        }
        // Separate .jinja files take priority over templates inside the config, as in transformers.
        let mut chat_templates = template_files(dir)?;
        if chat_templates.is_empty() {
            chat_templates = embedded_templates(&path, &root)?;
        }
        Ok(Self { path, special_tokens, chat_templates })
    }
}

/// (key, token text) for each of [`SPECIAL_TOKEN_KEYS`] that the config sets.
#[derive(Debug, Default)]
pub(crate) struct SpecialTokens(Vec<(&'static str, String)>);

impl SpecialTokens {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, t)| t.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(k, t)| (*k, t.as_str()))
    }
}

/// A special token is a string, null, or a serialized `AddedToken` object with `content`.
fn special_token(path: &Path, root: &Map<String, Value>, key: &str) -> Result<Option<String>, TokenizerError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(obj)) => match obj.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            other => Err(invalid(path, format!("{key}.content"), "a string", other)),
        },
        other => Err(invalid(path, key, "a string, null or an object with `content`", other)),
    }
}

/// `chat_template` is one template string or a list of `{name, template}` objects.
fn embedded_templates(path: &Path, root: &Map<String, Value>) -> Result<Vec<TemplateSource>, TokenizerError> {
    let named = |name: &str, source: &str| TemplateSource {
        name: name.to_string(),
        source: source.to_string(),
        path: path.to_path_buf(),
    };
    match root.get("chat_template") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![named("default", s)]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = |f: &str| match item.get(f) {
                    Some(Value::String(s)) => Ok(s.as_str()),
                    other => Err(invalid(path, format!("chat_template[{i}].{f}"), "a string", other)),
                };
                Ok(named(field("name")?, field("template")?))
            })
            .collect(),
        other => Err(invalid(path, "chat_template", "a string or a list of {name, template} objects", other)),
    }
}

/// `chat_template.jinja` (the default) and `additional_chat_templates/<name>.jinja`.
fn template_files(dir: &Path) -> Result<Vec<TemplateSource>, TokenizerError> {
    let mut found = Vec::new();
    let default = dir.join("chat_template.jinja");
    if default.is_file() {
        found.push(TemplateSource { name: "default".into(), source: read_text(&default)?, path: default });
    }
    let extra_dir = dir.join("additional_chat_templates");
    if extra_dir.is_dir() {
        let entries = fs::read_dir(&extra_dir).map_err(|source| read_error(&extra_dir, source))?;
        let mut paths = Vec::new();
        for entry in entries {
            paths.push(entry.map_err(|source| read_error(&extra_dir, source))?.path());
        }
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "jinja") {
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                found.push(TemplateSource { name, source: read_text(&path)?, path });
            }
        }
    }
    Ok(found)
}

/// EOS ids from `generation_config.json` (`eos_token_id`: an id or a list of ids), if the file exists.
pub(crate) fn generation_eos_ids(dir: &Path, vocab_size: usize) -> Result<Vec<u32>, TokenizerError> {
    let path = dir.join("generation_config.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let root = read_json_object(&path, "generation settings")?;
    let key = "eos_token_id";
    let values: Vec<&Value> = match root.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
    };
    values
        .into_iter()
        .map(|v| {
            let id = v
                .as_u64()
                .ok_or_else(|| invalid(&path, key, "a token id or a list of token ids", Some(v)))?;
            match u32::try_from(id) {
                Ok(id) if (id as usize) < vocab_size => Ok(id),
                _ => Err(TokenizerError::TokenIdOutOfRange { path: path.clone(), key: key.into(), id, vocab_size }),
            }
        })
        .collect()
}

fn read_json_object(path: &Path, what: &'static str) -> Result<Map<String, Value>, TokenizerError> {
    if !path.is_file() {
        return Err(TokenizerError::MissingFile { path: path.to_path_buf(), what });
    }
    let text = read_text(path)?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(invalid(path, "(top level)", "a JSON object", Some(&other))),
        Err(source) => Err(TokenizerError::Json { path: path.to_path_buf(), source }),
    }
}

fn read_text(path: &Path) -> Result<String, TokenizerError> {
    fs::read_to_string(path).map_err(|source| read_error(path, source))
}

fn read_error(path: &Path, source: std::io::Error) -> TokenizerError {
    TokenizerError::Read { path: path.to_path_buf(), source }
}

fn invalid(path: &Path, key: impl Into<String>, expected: &'static str, found: Option<&Value>) -> TokenizerError {
    let found = match found {
        None => "nothing".to_string(),
        Some(v) => {
            let mut s = v.to_string();
            if s.len() > 60 {
                s.truncate(s.floor_char_boundary(57));
                s.push_str("...");
            }
            s
        }
    };
    TokenizerError::InvalidKey { path: path.to_path_buf(), key: key.into(), expected, found }
}
