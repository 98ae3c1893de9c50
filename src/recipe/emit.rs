//! Writes a resolved recipe back as block YAML. Strings that a YAML reader could take for
//! another type (`true`, `1e-5`, `null`, text with `: `) are double-quoted; floats always
//! carry a dot so YAML 1.1 readers (PyYAML) read them as floats too.

use std::fmt::Write;

use serde_json::{Map, Number, Value};

use super::yaml::{resolve_plain, Resolved};

/// The YAML text of a JSON-shaped value whose top level is a mapping.
pub(crate) fn to_yaml(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(&mut out, map, 0);
    out
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", scalar_text(key));
        write_value(out, value, indent);
    }
}

/// Writes what follows `key:` or `- `: inline for scalars and flat lists, else a block.
fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            out.push('\n');
            for item in items {
                let _ = write!(out, "{:indent$}  -", "");
                match item {
                    // A mapping item starts on the dash line: `- plugin: x`.
                    Value::Object(map) if !map.is_empty() => {
                        let mut block = String::new();
                        write_map(&mut block, map, indent + 4);
                        out.push(' ');
                        out.push_str(block.trim_start());
                    }
                    other => write_value(out, other, indent + 2),
                }
            }
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// Flow form of a scalar, an empty container or a list of scalars.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => scalar_text(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar_text(k), inline(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

fn number_text(n: &Number) -> String {
    if n.is_f64() {
        let mut text = n.to_string();
        // `1e-5` is a float in YAML 1.2 but a string to YAML 1.1 readers: write `1.0e-5`.
        if let Some(mut e) = text.find('e') {
            if !text[..e].contains('.') {
                text.insert_str(e, ".0");
                e += 2;
            }
            if !matches!(text.as_bytes().get(e + 1), Some(b'-' | b'+')) {
                text.insert(e + 1, '+');
            }
        }
        text
    } else {
        n.to_string()
    }
}

/// A string as a plain scalar when that reads back as the same string, else quoted.
fn scalar_text(s: &str) -> String {
    let safe_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    let safe_start = s.starts_with(|c: char| c.is_ascii_alphanumeric() || "_./".contains(c));
    if safe_chars && safe_start && matches!(resolve_plain(s), Resolved::Str(_)) {
        s.to_string()
    } else {
        // JSON string escapes are a subset of YAML's double-quoted ones.
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}
