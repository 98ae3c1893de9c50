//! Chat templates: the real Qwen3 and Llama 3.1 templates and a template exercising the
//! Jinja features real templates use, against transformers; template selection and errors.

use crate::support::*;
use lora_grpo::error::TokenizerError;
use lora_grpo::tokenizer::{ChatMessage, ChatOptions, Tokenizer};
use serde_json::{json, Value};

fn options(case: &Value) -> ChatOptions {
    ChatOptions {
        add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
        extra: case["kwargs"].as_object().unwrap().clone(),
        tools: case["tools"].as_array().cloned(),
        ..ChatOptions::default()
    }
}

#[test]
fn real_chat_templates_render_and_encode_like_transformers() {
    let mut bad = Mismatches::default();
    let mut count = 0;
    for name in NAMES {
        let tok = tokenizer(name);
        for case in expected_for(name)["chats"].as_array().unwrap() {
            let chat = text(&case["chat"]);
            let msgs = messages(&expected()["chats"][chat]);
            let opts = options(case);
            let what = format!(
                "{name} {chat} gen={} {} tools={}",
                opts.add_generation_prompt,
                case["kwargs"],
                opts.tools.is_some()
            );
            bad.check(&what, tok.apply_chat_template_with(&msgs, &opts).unwrap(), text(&case["text"]).to_string());
            bad.check(format!("{what} ids"), tok.encode_chat(&msgs, &opts).unwrap(), ids(&case["ids"]));
            if case["kwargs"].as_object().unwrap().is_empty() && opts.tools.is_none() {
                let plain = tok.apply_chat_template(&msgs, opts.add_generation_prompt).unwrap();
                bad.check(format!("{what} (plain call)"), plain, text(&case["text"]).to_string());
            }
            count += 1;
        }
    }
    assert_eq!(count, 11, "all chat cases of expected.json were checked");
    bad.assert_none();
}

#[test]
fn llama_chat_ids_have_a_single_bos() {
    let tok = tokenizer("llama3_1");
    let msgs = [ChatMessage::user("Hello")];
    let ids = tok.encode_chat(&msgs, &ChatOptions { add_generation_prompt: true, ..Default::default() }).unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == 128000).count(), 1);
    assert_eq!(ids[0], 128000);
}

/// features.jinja, placed as chat_template.jinja: it must win over the config's template.
#[test]
fn jinja_features_render_like_transformers() {
    let want = &expected()["features"];
    let dir = edited_dir(text(&want["tokenizer"]), |_| {});
    let template_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer").join(text(&want["template"]));
    std::fs::copy(&template_path, dir.path().join("chat_template.jinja")).unwrap();
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let opts = ChatOptions {
        add_generation_prompt: want["add_generation_prompt"].as_bool().unwrap(),
        tools: Some(want["tools"].as_array().unwrap().clone()),
        extra: want["kwargs"].as_object().unwrap().clone(),
        ..ChatOptions::default()
    };
    let got = tok.apply_chat_template_with(&messages(&want["messages"]), &opts).unwrap();
    let want = text(&want["text"]);
    if got != want {
        let line = got.lines().zip(want.lines()).position(|(a, b)| a != b);
        panic!("features.jinja differs from transformers (first differing line {line:?})\n--- got\n{got}\n--- want\n{want}");
    }
}

/// Selection rule of transformers' get_chat_template: name, else tool_use with tools, else default.
#[test]
fn named_templates_are_selected_like_transformers() {
    let dir = edited_dir("qwen3", |config| {
        config.insert(
            "chat_template".into(),
            json!([
                {"name": "default", "template": "default:{{ messages | length }}"},
                {"name": "tool_use", "template": "tools:{{ tools | length }}"},
                {"name": "rag", "template": "rag:{{ documents[0].title }}"}
            ]),
        );
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let msgs = [ChatMessage::user("a"), ChatMessage::assistant("b")];
    assert_eq!(tok.apply_chat_template(&msgs, false).unwrap(), "default:2");
    let with_tools = ChatOptions { tools: Some(vec![json!({"name": "f"})]), ..Default::default() };
    assert_eq!(tok.apply_chat_template_with(&msgs, &with_tools).unwrap(), "tools:1");
    let rag = ChatOptions {
        template: Some("rag".into()),
        documents: Some(vec![json!({"title": "Doc", "text": "..."})]),
        ..Default::default()
    };
    assert_eq!(tok.apply_chat_template_with(&msgs, &rag).unwrap(), "rag:Doc");
    let missing = ChatOptions { template: Some("nope".into()), ..Default::default() };
    let err = tok.apply_chat_template_with(&msgs, &missing).unwrap_err();
    assert!(matches!(err, TokenizerError::UnknownChatTemplate { .. }), "{err:?}");
    assert!(err.to_string().contains("default, tool_use, rag"), "{err}");
}

fn with_template(template: &str) -> tempfile::TempDir {
    let template = template.to_string();
    edited_dir("qwen3", move |config| {
        config.insert("chat_template".into(), Value::String(template));
    })
}

#[test]
fn raise_exception_reports_the_templates_message_and_file() {
    let dir = with_template(
        "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}ok",
    );
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap(), "ok");
    let err = tok.apply_chat_template(&[ChatMessage::assistant("hi")], false).unwrap_err();
    match &err {
        TokenizerError::TemplateRaised { path, name, message } => {
            assert!(path.ends_with("tokenizer_config.json"), "{}", path.display());
            assert_eq!(name, "default");
            assert_eq!(message, "Conversation roles must start with user");
        }
        other => panic!("expected TemplateRaised, got {other:?}"),
    }
}

#[test]
fn template_syntax_errors_name_the_file_and_line_when_used() {
    let dir = with_template("line one\n{% for m in messages %}\n{{ m.content }\n{% endfor %}");
    // Loading succeeds: plain-text use of the tokenizer does not need the template.
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.encode("hi", false).unwrap(), vec![6023]);
    let err = tok.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap_err();
    match &err {
        TokenizerError::Template { path, line, .. } => {
            assert!(path.ends_with("tokenizer_config.json"));
            assert_eq!(*line, Some(3), "{err}");
        }
        other => panic!("expected Template, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("tokenizer_config.json") && shown.contains("line 3"), "{shown}");
}

#[test]
fn template_runtime_errors_name_the_line() {
    let dir = with_template("{{ messages[0].content }}\n{{ messages[0].content.no_such_method() }}");
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let err = tok.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap_err();
    assert!(matches!(err, TokenizerError::Template { line: Some(2), .. }), "{err:?}");
}

/// transformers always passes `tools` and `documents`, as None when absent, so templates
/// testing `tools is not none` (Llama 3.1, Mistral) take the no-tools branch.
#[test]
fn absent_tools_and_documents_are_none() {
    let dir = with_template("{{ tools is none }}|{{ documents is none }}|{{ tools is defined }}|{{ add_generation_prompt }}");
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap(), "True|True|True|False");
}

#[test]
fn strftime_now_prints_todays_utc_date() {
    let dir = with_template("{{ strftime_now('%Y-%m-%d') }}");
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let got = tok.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap();
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]).output().expect("run date");
    assert_eq!(got, String::from_utf8(out.stdout).unwrap().trim());
}

#[test]
fn conversation_and_argument_misuse_are_errors() {
    let tok = tokenizer("qwen3");
    assert!(matches!(tok.apply_chat_template(&[], true), Err(TokenizerError::EmptyConversation)));
    let mut extra = serde_json::Map::new();
    extra.insert("messages".into(), json!([]));
    let opts = ChatOptions { extra, ..Default::default() };
    let err = tok.apply_chat_template_with(&[ChatMessage::user("hi")], &opts).unwrap_err();
    assert!(matches!(&err, TokenizerError::ReservedTemplateArgument { key } if key == "messages"), "{err:?}");
}

#[test]
fn a_directory_without_chat_template_says_where_it_looked() {
    let dir = edited_dir("qwen3", |config| {
        config.remove("chat_template");
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let err = tok.apply_chat_template(&[ChatMessage::user("hi")], true).unwrap_err();
    assert!(matches!(err, TokenizerError::NoChatTemplate { .. }), "{err:?}");
    assert!(err.to_string().contains("chat_template.jinja"), "{err}");
}
