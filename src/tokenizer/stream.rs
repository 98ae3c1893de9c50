//! Incremental detokenization for generation: one [`IncrementalDecoder`] per sequence turns
//! each new token into the text it completes, and [`IncrementalDecoder::find_stop`] looks
//! for stop strings only where new text can complete one.
//!
//! Byte-level BPE tokens can end in the middle of a UTF-8 character (an emoji is often 2-4
//! tokens). Each step decodes only a short window: the tokens of the previous chunk (as
//! context, so decoders that treat the first token specially see the same input as a
//! full decode) plus the tokens not yet shown. Text is released only once it no longer
//! ends in U+FFFD, the replacement character an incomplete UTF-8 sequence decodes to.

use super::Tokenizer;
use crate::error::TokenizerError;

const REPLACEMENT: char = '\u{FFFD}';

/// The growing text of one generated sequence.
#[derive(Clone, Debug, Default)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the context window in `ids`.
    prefix: usize,
    /// Tokens before this index are part of `text`.
    read: usize,
    text: String,
    skip_special_tokens: bool,
}

/// A stop string found in the decoded text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopMatch {
    /// Index of the stop string in the list given to [`IncrementalDecoder::find_stop`].
    pub stop: usize,
    /// Byte offset in [`IncrementalDecoder::text`] where the stop string starts.
    pub start: usize,
}

impl IncrementalDecoder {
    /// `skip_special_tokens` as in [`Tokenizer::decode`]: leave out EOS, chat markers etc.
    pub fn new(skip_special_tokens: bool) -> Self {
        Self { skip_special_tokens, ..Self::default() }
    }

    /// Appends one token and returns the text it completes (empty while a character is
    /// still incomplete or the token decodes to nothing).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<&str, TokenizerError> {
        self.ids.push(id);
        let before = self.text.len();
        let (context, window) = self.decode_window(tokenizer)?;
        if window.len() > context.len() && !window.ends_with(REPLACEMENT) {
            self.append(&context, &window)?;
        }
        Ok(&self.text[before..])
    }

    /// Ends the sequence: text still held back (an incomplete character) is added as
    /// `decode` would show it, with U+FFFD. Returns that text.
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<&str, TokenizerError> {
        let before = self.text.len();
        if self.read < self.ids.len() {
            let (context, window) = self.decode_window(tokenizer)?;
            self.append(&context, &window)?;
        }
        Ok(&self.text[before..])
    }

    /// All text released so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All token ids pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The earliest stop string that ends after byte `since` of [`text`](Self::text).
    /// Pass the text length from before the latest `push`: only the new text and the
    /// few bytes before it that a stop string could span are searched.
    pub fn find_stop<S: AsRef<str>>(&self, stops: &[S], since: usize) -> Option<StopMatch> {
        stops
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.as_ref().is_empty())
            .filter_map(|(i, s)| {
                let s = s.as_ref();
                // A match that ends after `since` starts at most len-1 bytes before it.
                let from = self.text.ceil_char_boundary(since.saturating_sub(s.len() - 1));
                self.text[from..].find(s).map(|pos| StopMatch { stop: i, start: from + pos })
            })
            .min_by_key(|m| (m.start, m.stop))
    }

    /// Decodes the context tokens alone and the context plus the unread tokens.
    fn decode_window(&self, tokenizer: &Tokenizer) -> Result<(String, String), TokenizerError> {
        let context = tokenizer.decode(&self.ids[self.prefix..self.read], self.skip_special_tokens)?;
        let window = tokenizer.decode(&self.ids[self.prefix..], self.skip_special_tokens)?;
        Ok((context, window))
    }

    fn append(&mut self, context: &str, window: &str) -> Result<(), TokenizerError> {
        let Some(new_text) = window.strip_prefix(context) else {
            return Err(TokenizerError::Codec {
                op: "incremental decode",
                message: format!(
                    "decoding tokens {:?} changed the text of the tokens before them ({context:?} became {window:?})",
                    &self.ids[self.read..]
                ),
            });
        };
        self.text.push_str(new_text);
        self.prefix = self.read;
        self.read = self.ids.len();
        Ok(())
    }
}
