//! Tokenizer tests on the real Qwen3 and Llama 3.1 tokenizer files, compared exactly with
//! the outputs of Python transformers recorded in tests/fixtures/tokenizer/expected.json
//! (made by make_expected.py beside it). The tokenizer files come from
//! `cargo xtask fixtures`; without them every test here fails and says so.

mod chat;
mod config_errors;
mod encode;
mod stream;
mod support;
