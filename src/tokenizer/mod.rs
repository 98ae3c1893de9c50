//! Tokenizers of Hugging Face / MLX model directories: `tokenizer.json` through the
//! `tokenizers` crate, chat templates from `tokenizer_config.json` (or `chat_template.jinja`)
//! rendered like transformers does, and the EOS ids generation stops on.
//!
//! Behaviour follows transformers 5, which the tests compare against:
//! - `tokenizer.json`'s post-processor alone decides which special tokens `encode` adds;
//!   transformers ignores `add_bos_token`/`add_eos_token` when that file exists.
//! - `decode` does no `clean_up_tokenization_spaces`: transformers skips it for BPE models.

mod chat;
mod config;
mod pyjson;
mod stream;
mod strftime;

pub use chat::{ChatMessage, ChatOptions};
pub use stream::{IncrementalDecoder, StopMatch};

use crate::error::TokenizerError;
use chat::ChatTemplates;
use config::{SpecialTokens, TokenizerConfig};
use std::path::{Path, PathBuf};

/// A model directory's tokenizer, special tokens and chat templates.
#[derive(Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    dir: PathBuf,
    special_tokens: SpecialTokens,
    bos_token_id: Option<u32>,
    eos_token_ids: Vec<u32>,
    pad_token_id: Option<u32>,
    chat: ChatTemplates,
}

impl Tokenizer {
    /// Loads `tokenizer.json`, `tokenizer_config.json`, and if present `generation_config.json`,
    /// `chat_template.jinja` and `additional_chat_templates/*.jinja` from `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(TokenizerError::MissingFile { path, what: "the tokenizer in Hugging Face `tokenizers` format" });
        }
        // The small config first: its errors should not wait for a 10 MB vocabulary to parse.
        let config = TokenizerConfig::read(&dir)?;
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| TokenizerError::TokenizerJson { path: path.clone(), message: e.to_string() })?;

        let token_id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            let Some(token) = config.special_tokens.get(key) else { return Ok(None) };
            inner.token_to_id(token).map(Some).ok_or_else(|| TokenizerError::UnknownToken {
                path: config.path.clone(),
                key: key.to_string(),
                token: token.to_string(),
            })
        };
        let bos_token_id = token_id("bos_token")?;
        let pad_token_id = token_id("pad_token")?;
        // Union of the tokenizer's EOS and generation_config.json's list, tokenizer's first.
        let mut eos_token_ids: Vec<u32> = token_id("eos_token")?.into_iter().collect();
        for id in config::generation_eos_ids(&dir, inner.get_vocab_size(true))? {
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        }
        let chat = ChatTemplates::new(dir.clone(), config.chat_templates)?;
        Ok(Self {
            inner,
            dir,
            special_tokens: config.special_tokens,
            bos_token_id,
            eos_token_ids,
            pad_token_id,
            chat,
        })
    }

    /// The directory the tokenizer was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Token ids of `text`. With `add_special_tokens`, the post-processor's tokens (e.g.
    /// Llama 3's BOS) are added. Special tokens written in the text are always matched.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| TokenizerError::Codec { op: "encode", message: e.to_string() })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of a raw (non-chat) prompt: special tokens are added unless the text
    /// already starts with the BOS token, as mlx-lm does, so BOS never appears twice.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let has_bos = self.bos_token().is_some_and(|bos| text.starts_with(bos));
        self.encode(text, !has_bos)
    }

    /// Text of `ids`; incomplete UTF-8 at the end shows as U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Codec { op: "decode", message: e.to_string() })
    }

    /// Renders the default chat template (`tokenizer.apply_chat_template(messages,
    /// tokenize=False, add_generation_prompt=...)` in transformers).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let options = ChatOptions { add_generation_prompt, ..ChatOptions::default() };
        self.apply_chat_template_with(messages, &options)
    }

    /// Renders a chat template with tools, documents, a named template or extra variables.
    pub fn apply_chat_template_with(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
    ) -> Result<String, TokenizerError> {
        self.chat.render(messages, &self.special_tokens, options)
    }

    /// Token ids of the rendered conversation. Like transformers, the text is encoded
    /// without adding special tokens: templates write BOS themselves, so it is not doubled.
    pub fn encode_chat(&self, messages: &[ChatMessage], options: &ChatOptions) -> Result<Vec<u32>, TokenizerError> {
        let text = self.apply_chat_template_with(messages, options)?;
        self.encode(&text, false)
    }

    /// Ids that end generation: `eos_token` of `tokenizer_config.json`, then the ids of
    /// `generation_config.json`'s `eos_token_id` not already listed.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Id of `pad_token`, if the tokenizer config names one.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token_id
    }

    /// Id of `bos_token`, if the tokenizer config names one.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    /// Text of `bos_token`, if the tokenizer config names one.
    pub fn bos_token(&self) -> Option<&str> {
        self.special_tokens.get("bos_token")
    }

    /// Number of token ids, added tokens included (`len(tokenizer)` in transformers).
    /// A model's embedding table may be larger (padded); never smaller.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token given as text (e.g. `"<|im_end|>"`), if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
