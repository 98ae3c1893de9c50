//! Chat templates rendered with minijinja the way transformers renders them with Jinja2:
//! `trim_blocks` + `lstrip_blocks`, loop controls, `raise_exception`, Python's `tojson`,
//! `strftime_now`, Python string methods, and Python's spelling of True/False/None.

use super::config::{SpecialTokens, TemplateSource};
use super::{pyjson, strftime};
use crate::error::TokenizerError;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One message of a conversation, as chat templates see it (`message.role`, `message.content`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Everything besides the messages that `apply_chat_template` passes to a template.
#[derive(Clone, Debug, Default)]
pub struct ChatOptions {
    /// End with the header that starts the assistant's reply.
    pub add_generation_prompt: bool,
    /// A named template (`tokenizer_config.json` list or `additional_chat_templates/`);
    /// `None` picks `tool_use` when tools are given and it exists, else `default`.
    pub template: Option<String>,
    /// JSON schemas of tools; templates see `tools` (none when absent, as in transformers).
    pub tools: Option<Vec<serde_json::Value>>,
    /// Documents for retrieval templates; templates see `documents` (none when absent).
    pub documents: Option<Vec<serde_json::Value>>,
    /// Further template variables, e.g. `enable_thinking: false` for Qwen3.
    /// They override the special-token variables of the same name.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Variables set by the other [`ChatOptions`] fields, so `extra` may not use them.
const RESERVED: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];

/// The compiled chat templates of one tokenizer directory.
#[derive(Debug)]
pub(crate) struct ChatTemplates {
    env: Environment<'static>,
    sources: Vec<TemplateSource>,
    /// Templates that failed to compile: reported when first used, so that loading a
    /// tokenizer for plain-text prompts never fails on a template it does not need.
    broken: BTreeMap<String, (Option<usize>, String)>,
    dir: PathBuf,
}

/// Marks errors that came from the template's own `raise_exception(...)` call.
#[derive(Debug)]
struct RaisedByTemplate(String);

impl std::fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

impl ChatTemplates {
    pub fn new(dir: PathBuf, sources: Vec<TemplateSource>) -> Result<Self, TokenizerError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(|e| {
            TokenizerError::Template { path: dir.clone(), name: "(syntax)".into(), line: None, detail: e.to_string() }
        })?;
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", pyjson::tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", |format: String| strftime::strftime_now(&format));

        let mut broken = BTreeMap::new();
        for src in &sources {
            if let Err(err) = env.add_template_owned(src.name.clone(), src.source.clone()) {
                broken.insert(src.name.clone(), describe(&err));
            }
        }
        Ok(Self { env, sources, broken, dir })
    }

    /// Renders `messages` with the special-token variables and `options`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        special_tokens: &SpecialTokens,
        options: &ChatOptions,
    ) -> Result<String, TokenizerError> {
        if messages.is_empty() {
            return Err(TokenizerError::EmptyConversation);
        }
        let source = self.select(options)?;
        if let Some((line, detail)) = self.broken.get(&source.name) {
            return Err(TokenizerError::Template {
                path: source.path.clone(),
                name: source.name.clone(),
                line: *line,
                detail: detail.clone(),
            });
        }
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        for (key, token) in special_tokens.iter() {
            ctx.insert(key.to_string(), Value::from(token));
        }
        for (key, value) in &options.extra {
            if RESERVED.contains(&key.as_str()) {
                return Err(TokenizerError::ReservedTemplateArgument { key: key.clone() });
            }
            ctx.insert(key.clone(), Value::from(Serde(value)));
        }
        ctx.insert("messages".into(), Value::from(Serde(messages)));
        ctx.insert("tools".into(), Value::from(Serde(&options.tools)));
        ctx.insert("documents".into(), Value::from(Serde(&options.documents)));
        ctx.insert("add_generation_prompt".into(), Value::from(options.add_generation_prompt));

        let template = self.env.get_template(&source.name).map_err(|e| template_error(source, &e))?;
        template.render(ctx).map_err(|e| template_error(source, &e))
    }

    /// transformers' rule: an explicit name, else `tool_use` when tools are given, else `default`.
    fn select(&self, options: &ChatOptions) -> Result<&TemplateSource, TokenizerError> {
        if self.sources.is_empty() {
            return Err(TokenizerError::NoChatTemplate { dir: self.dir.clone() });
        }
        let find = |name: &str| self.sources.iter().find(|s| s.name == name);
        let found = match &options.template {
            Some(name) => find(name),
            None if options.tools.is_some() => find("tool_use").or_else(|| find("default")),
            None => find("default"),
        };
        found.ok_or_else(|| TokenizerError::UnknownChatTemplate {
            requested: options.template.as_deref().map_or("`default`".into(), |n| format!("`{n}`")),
            available: self.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(RaisedByTemplate(message)))
}

/// Jinja2 prints Python objects: `True`, `False`, `None` (minijinja would print lowercase).
fn python_formatter(out: &mut minijinja::Output, state: &mut minijinja::State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        minijinja::value::ValueKind::Bool => out.write_str(if value.is_true() { "True" } else { "False" })?,
        minijinja::value::ValueKind::None => out.write_str("None")?,
        _ => minijinja::escape_formatter(out, state, value)?,
    }
    Ok(())
}

fn template_error(src: &TemplateSource, err: &Error) -> TokenizerError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(raised) = e.downcast_ref::<RaisedByTemplate>() {
            return TokenizerError::TemplateRaised {
                path: src.path.clone(),
                name: src.name.clone(),
                message: raised.0.clone(),
            };
        }
        cause = e.source();
    }
    let (line, detail) = describe(err);
    TokenizerError::Template { path: src.path.clone(), name: src.name.clone(), line, detail }
}

/// The template line and a message for a minijinja error.
fn describe(err: &Error) -> (Option<usize>, String) {
    let detail = match err.detail() {
        Some(detail) => format!("{} ({detail})", err.kind()),
        None => err.kind().to_string(),
    };
    (err.line(), detail)
}
