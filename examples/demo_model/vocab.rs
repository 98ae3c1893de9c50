//! The demo tokenizer: byte-level BPE (as GPT-2 and Qwen) trained on the corpus, with
//! every digit its own pre-token so numbers are spelt digit by digit (as Llama 3 and
//! Qwen do; merged digit groups make arithmetic much harder to learn), and the ChatML
//! special tokens.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    Tokenizer, TokenizerImpl,
};

use crate::corpus::{IM_END, IM_START, PAD};

/// Special tokens, in id order (0, 1, 2).
const SPECIALS: [&str; 3] = [PAD, IM_START, IM_END];

/// ChatML (as Qwen2.5): one `<|im_start|>role\n...<|im_end|>\n` block per message, then
/// the assistant header when a generation prompt is asked for. No default system message.
pub const CHAT_TEMPLATE: &str = "{%- for message in messages %}\
{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{%- endfor %}\
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/// Trains the tokenizer on `texts` (chats with special tokens inside; BPE never merges
/// across them) up to `vocab_size` tokens, fewer when the corpus runs out of pairs.
pub fn train(texts: &[String], vocab_size: usize) -> Result<Tokenizer> {
    let mut tokenizer: TokenizerImpl<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerImpl::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(
            SPECIALS
                .iter()
                .map(|s| AddedToken::from(*s, true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let pieces = texts.iter().flat_map(|t| split_specials(t));
    tokenizer
        .train(&mut trainer, pieces)
        .map_err(|e| anyhow!("training the BPE tokenizer: {e}"))?;
    let tokenizer = Tokenizer::from(tokenizer);
    for (id, special) in SPECIALS.iter().enumerate() {
        let found = tokenizer.token_to_id(special);
        anyhow::ensure!(
            found == Some(id as u32),
            "special token {special} got id {found:?}, expected {id}"
        );
    }
    Ok(tokenizer)
}

/// The text between special tokens.
fn split_specials(text: &str) -> Vec<&str> {
    let mut pieces = vec![text];
    for special in SPECIALS {
        pieces = pieces.iter().flat_map(|p| p.split(special)).collect();
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// Writes `tokenizer.json` and `tokenizer_config.json` (chat template, special tokens)
/// into `dir`.
pub fn save(tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    let path = dir.join("tokenizer.json");
    tokenizer
        .save(&path, true)
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    let added: serde_json::Map<String, serde_json::Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, content)| {
            let entry = json!({
                "content": content, "lstrip": false, "normalized": false,
                "rstrip": false, "single_word": false, "special": true
            });
            (id.to_string(), entry)
        })
        .collect();
    let config = json!({
        "add_bos_token": false,
        "add_prefix_space": false,
        "added_tokens_decoder": added,
        "bos_token": null,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": false,
        "eos_token": IM_END,
        "errors": "replace",
        "model_max_length": 512,
        "pad_token": PAD,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": null
    });
    let path = dir.join("tokenizer_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Token ids of `text`, special tokens recognised, nothing added.
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tokenizer
        .encode(text, false)
        .map_err(|e| anyhow!("tokenizing {text:?}: {e}"))?
        .get_ids()
        .to_vec())
}

/// The id of a special token.
pub fn id(tokenizer: &Tokenizer, token: &str) -> Result<u32> {
    tokenizer
        .token_to_id(token)
        .ok_or_else(|| anyhow!("the tokenizer has no token {token}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Problem, Style};

    fn corpus() -> Vec<String> {
        [
            ("What is 57 + 83?", "140"),
            ("What is 12 + 7?", "19"),
            ("What is 40 + 8?", "48"),
        ]
        .iter()
        .map(|(q, a)| {
            let p = Problem {
                question: q.to_string(),
                answer: a.to_string(),
            };
            let reply = p.reply(Style::Worked).unwrap();
            format!("{}{reply}{IM_END}\n", p.prompt())
        })
        .collect()
    }

    #[test]
    fn specials_come_first_and_digits_stay_single_tokens() {
        let tokenizer = train(&corpus(), 400).unwrap();
        for (id, special) in SPECIALS.iter().enumerate() {
            assert_eq!(tokenizer.token_to_id(special), Some(id as u32));
        }
        let ids = encode(&tokenizer, "1234 + 56").unwrap();
        let pieces: Vec<String> = ids
            .iter()
            .map(|&i| tokenizer.decode(&[i], false).unwrap())
            .collect();
        assert_eq!(pieces.concat(), "1234 + 56");
        let digits: Vec<&String> = pieces
            .iter()
            .filter(|p| p.contains(char::is_numeric))
            .collect();
        assert_eq!(digits, ["1", "2", "3", "4", "5", "6"]);
        // Frequent words were merged: "assistant" is one token.
        assert_eq!(encode(&tokenizer, "assistant").unwrap().len(), 1);
    }

    #[test]
    fn prompt_and_reply_encode_apart_as_together() {
        // Training encodes them apart, generation continues the encoded prompt: the two
        // must give the same ids as the whole chat.
        let tokenizer = train(&corpus(), 400).unwrap();
        let p = Problem {
            question: "What is 91 + 9?".into(),
            answer: "100".into(),
        };
        let reply = p.reply(Style::Worked).unwrap();
        let mut apart = encode(&tokenizer, &p.prompt()).unwrap();
        apart.extend(encode(&tokenizer, &reply).unwrap());
        apart.push(id(&tokenizer, IM_END).unwrap());
        let whole = encode(&tokenizer, &format!("{}{reply}{IM_END}", p.prompt())).unwrap();
        assert_eq!(apart, whole);
        let text = tokenizer.decode(&apart, false).unwrap();
        assert_eq!(text, format!("{}{reply}{IM_END}", p.prompt()));
    }
}
