//! `--set key.path=value` overrides: the value is read as YAML and grafted into the
//! document before the schema types it, so an override is checked exactly like the file
//! (errors name the `--set` argument and the key path).

use std::rc::Rc;

use super::de::join;
use super::yaml::{self, Entry, Loc, Node, Scalar, Value};
use super::Diagnostic;

/// Applies one `key.path=value` argument to the document.
pub(crate) fn apply(root: &mut Node, arg: &str) -> Result<(), Diagnostic> {
    let origin: Rc<str> = Rc::from(format!("--set {arg}"));
    let loc = Loc {
        origin: origin.clone(),
        position: None,
    };
    let Some((path, text)) = arg.split_once('=') else {
        return Err(loc.diagnostic("", "expected `key.path=value`"));
    };
    let path = path.trim();
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(loc.diagnostic(path, "the key path has an empty part"));
    }
    let mut value = match yaml::parse(text, &origin)? {
        Some(node) => node,
        // `key=` sets null, like an empty YAML value.
        None => Node {
            value: Value::Scalar(Scalar {
                text: String::new(),
                plain: true,
            }),
            loc: loc.clone(),
        },
    };
    forget_positions(&mut value, &loc);
    graft(root, &segments, value, &loc, "")
}

/// Overrides carry no file position: their line and column would be inside the argument.
fn forget_positions(node: &mut Node, loc: &Loc) {
    node.loc = loc.clone();
    match &mut node.value {
        Value::Scalar(_) => {}
        Value::Seq(items) => items.iter_mut().for_each(|n| forget_positions(n, loc)),
        Value::Map(entries) => entries.iter_mut().for_each(|e| {
            e.key_loc = loc.clone();
            forget_positions(&mut e.value, loc)
        }),
    }
}

fn graft(
    node: &mut Node,
    segments: &[&str],
    value: Node,
    loc: &Loc,
    path: &str,
) -> Result<(), Diagnostic> {
    let Some((first, rest)) = segments.split_first() else {
        *node = value;
        return Ok(());
    };
    let here = join(path, first);
    // A key that is absent or null becomes a section, so `--set eval.every=5` works on a
    // recipe without an `eval:` block.
    if matches!(&node.value, Value::Scalar(s) if s.plain && yaml::resolve_plain(&s.text) == yaml::Resolved::Null)
    {
        node.value = Value::Map(Vec::new());
    }
    let describe = node.describe();
    match &mut node.value {
        Value::Map(entries) => {
            let index = match entries.iter().position(|e| e.key == *first) {
                Some(i) => i,
                None => {
                    let empty = Node {
                        value: Value::Scalar(Scalar {
                            text: String::new(),
                            plain: true,
                        }),
                        loc: loc.clone(),
                    };
                    entries.push(Entry {
                        key: first.to_string(),
                        key_loc: loc.clone(),
                        value: empty,
                    });
                    entries.len() - 1
                }
            };
            graft(&mut entries[index].value, rest, value, loc, &here)
        }
        Value::Seq(items) => {
            let len = items.len();
            let item = first
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| {
                    let message = match len {
                        0 => format!("`{path}` is an empty list"),
                        1 => format!("`{path}` has 1 item; the only index is 0"),
                        _ => format!(
                            "`{path}` has {len} items; expected an index from 0 to {}",
                            len - 1
                        ),
                    };
                    loc.diagnostic(&here, message)
                })?;
            graft(item, rest, value, loc, &here)
        }
        Value::Scalar(_) => Err(loc.diagnostic(
            &here,
            format!("`{path}` is {describe}, not a section with keys"),
        )),
    }
}
