//! A YAML document as a tree whose nodes remember where they were written, so that
//! every later error (wrong type, unknown key, bad value) can point at a line and column.

use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::Diagnostic;

/// Where a node came from: a file position, or a `--set` argument (no position).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loc {
    pub origin: Rc<str>,
    /// 1-based line and column, when the node was read from a file.
    pub position: Option<(usize, usize)>,
}

impl Loc {
    fn at(origin: &Rc<str>, span: &Span) -> Loc {
        // saphyr counts lines from 1 and columns from 0; editors count both from 1.
        Loc {
            origin: origin.clone(),
            position: Some((span.start.line(), span.start.col() + 1)),
        }
    }

    /// A diagnostic at this location about the key at `path`.
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            origin: self.origin.to_string(),
            line: self.position.map(|p| p.0),
            column: self.position.map(|p| p.1),
            key: path.to_string(),
            message: message.into(),
        }
    }
}

/// One node of the document with its location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry; keys are always strings here, with their own location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_loc: Loc,
    pub value: Node,
}

/// A scalar's text. Quoted and block scalars (and `!!str`) are always strings; plain
/// ones are typed by the YAML 1.2 core schema (see [`Scalar::resolve`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub plain: bool,
}

/// A scalar after core-schema resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    /// Types a plain scalar by the YAML 1.2 core schema (`yes`/`on` stay strings, as in 1.2).
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }
}

pub(crate) fn resolve_plain(t: &str) -> Resolved<'_> {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let radix = |prefix: &str, radix: u32| {
        t.strip_prefix(prefix)
            .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix)))
            .and_then(|d| u64::from_str_radix(d, radix).ok())
    };
    if let Some(v) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return int(v as i128);
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = t.parse::<i128>() {
            return int(v);
        }
    }
    if is_core_float(unsigned) {
        if let Ok(v) = t.parse::<f64>() {
            return Resolved::Float(v);
        }
    }
    Resolved::Str(t)
}

fn int(v: i128) -> Resolved<'static> {
    if let Ok(i) = i64::try_from(v) {
        Resolved::Int(i)
    } else if let Ok(u) = u64::try_from(v) {
        Resolved::UInt(u)
    } else {
        Resolved::Float(v as f64)
    }
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`, sign already removed.
fn is_core_float(t: &str) -> bool {
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((whole, frac)) => digits(whole) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

impl Node {
    /// An empty mapping, used when a file holds no document at all.
    pub fn empty_map(loc: Loc) -> Node {
        Node {
            value: Value::Map(Vec::new()),
            loc,
        }
    }

    /// A short description for "found ..." in type errors.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Map(_) => "a mapping".to_string(),
            Value::Seq(items) => format!("a list of {} items", items.len()),
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)".to_string(),
                Resolved::Bool(b) => format!("boolean `{b}`"),
                Resolved::Int(i) => format!("integer `{i}`"),
                Resolved::UInt(u) => format!("integer `{u}`"),
                Resolved::Float(f) => format!("number `{f}`"),
                Resolved::Str(s) => format!("string {s:?}"),
            },
        }
    }
}

/// Parses one YAML document. `Ok(None)` means the text holds no document (empty or
/// comments only).
pub(crate) fn parse(text: &str, origin: &Rc<str>) -> Result<Option<Node>, Diagnostic> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        origin,
        anchors: HashMap::new(),
    };
    builder.document()
}

struct Builder<'a, 'o> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    origin: &'o Rc<str>,
    anchors: HashMap<usize, Node>,
}

impl<'a> Builder<'a, '_> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => {
                let m = e.marker();
                Err(Diagnostic {
                    origin: self.origin.to_string(),
                    line: Some(m.line()),
                    column: Some(m.col() + 1),
                    key: String::new(),
                    message: format!("invalid YAML: {}", e.info()),
                })
            }
            None => Err(self.error_at(None, "invalid YAML: unexpected end of input")),
        }
    }

    fn error_at(&self, span: Option<&Span>, message: &str) -> Diagnostic {
        let loc = match span {
            Some(span) => Loc::at(self.origin, span),
            None => Loc {
                origin: self.origin.clone(),
                position: None,
            },
        };
        loc.diagnostic("", message)
    }

    fn document(&mut self) -> Result<Option<Node>, Diagnostic> {
        let mut root = None;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(_) if root.is_some() => {
                    return Err(self.error_at(
                        Some(&span),
                        "a recipe holds one YAML document, found a second `---`",
                    ));
                }
                Event::DocumentStart(_) => {
                    let (event, span) = self.next()?;
                    root = Some(self.node(event, span)?);
                }
                _ => return Err(self.error_at(Some(&span), "invalid YAML: unexpected content")),
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, Diagnostic> {
        let loc = Loc::at(self.origin, &span);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = self.check_tag(tag.as_deref(), &span)?;
                let plain = style == ScalarStyle::Plain && !forced_string;
                (
                    Node {
                        value: Value::Scalar(Scalar {
                            text: text.into_owned(),
                            plain,
                        }),
                        loc,
                    },
                    anchor,
                )
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_tag(tag.as_deref(), &span)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                (
                    Node {
                        value: Value::Seq(items),
                        loc,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, tag) => {
                self.check_tag(tag.as_deref(), &span)?;
                (
                    Node {
                        value: Value::Map(self.entries()?),
                        loc,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let target = self.anchors.get(&id).cloned();
                return target
                    .ok_or_else(|| self.error_at(Some(&span), "alias to an unknown anchor"));
            }
            _ => return Err(self.error_at(Some(&span), "invalid YAML: unexpected event")),
        };
        // saphyr numbers anchors from 1; 0 means the node has none.
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn entries(&mut self) -> Result<Vec<Entry>, Diagnostic> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            let key = match event {
                Event::MappingEnd => return Ok(entries),
                Event::Scalar(text, ..) => text.into_owned(),
                _ => return Err(self.error_at(Some(&span), "mapping keys must be plain names")),
            };
            let key_loc = Loc::at(self.origin, &span);
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                let line = first
                    .key_loc
                    .position
                    .map_or(String::new(), |p| format!(" (first on line {})", p.0));
                return Err(key_loc.diagnostic(&key, format!("key `{key}` given twice{line}")));
            }
            let (event, span) = self.next()?;
            let value = self.node(event, span)?;
            entries.push(Entry {
                key,
                key_loc,
                value,
            });
        }
    }

    /// Only `!!str` (force a string) and the other core-schema tags are accepted.
    fn check_tag(&self, tag: Option<&Tag>, span: &Span) -> Result<bool, Diagnostic> {
        match tag {
            None => Ok(false),
            Some(tag) if tag.is_yaml_core_schema() => Ok(tag.suffix == "str"),
            Some(tag) => Err(self.error_at(Some(span), &format!("unsupported YAML tag `{tag}`"))),
        }
    }
}
