//! A serde `Deserializer` over the located YAML tree: the schema's derived `Deserialize`
//! impls drive it, and every error comes back with the key path and position of the
//! node that caused it (plus a "did you mean" for misspelled keys and names).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{Entry, Loc, Node, Resolved, Value};
use super::Diagnostic;

/// A deserialization error; the innermost node that saw it fills in where.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    /// A key that was required but absent: its path extends the map's path.
    missing_key: Option<&'static str>,
    /// For a type mismatch, what was expected: the message is rewritten with the node's
    /// own description, which says more than serde's ("found map").
    expected: Option<String>,
    located: Option<(Loc, String)>,
}

impl DeError {
    fn new(message: String) -> Self {
        DeError {
            message,
            missing_key: None,
            expected: None,
            located: None,
        }
    }

    /// Records the node's location and key path unless an inner node already did.
    fn at(self, node: &Node, path: &str) -> Self {
        self.at_loc(&node.loc, path, Some(node))
    }

    fn at_loc(mut self, loc: &Loc, path: &str, node: Option<&Node>) -> Self {
        if self.located.is_none() {
            if let (Some(expected), Some(node)) = (&self.expected, node) {
                self.message = format!("expected {expected}, found {}", node.describe());
            }
            let path = match self.missing_key {
                Some(key) => join(path, key),
                None => path.to_string(),
            };
            self.located = Some((loc.clone(), path));
        }
        self
    }

    /// A missing key found in the section at `path` is reported at the section's own key
    /// (`data:`) rather than at the section's first entry.
    fn at_section_key(mut self, key_loc: &Loc, path: &str) -> Self {
        if let (Some(missing), Some((loc, located_path))) = (self.missing_key, &mut self.located) {
            if *located_path == join(path, missing) {
                *loc = key_loc.clone();
            }
        }
        self
    }

    pub fn into_diagnostic(self, fallback: &Loc) -> Diagnostic {
        let (loc, path) = self
            .located
            .unwrap_or_else(|| (fallback.clone(), String::new()));
        loc.diagnostic(&path, self.message)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let expected = plain_expected(&exp.to_string());
        DeError {
            message: format!("expected {expected}, found {unexp}"),
            expected: Some(expected),
            ..DeError::new(String::new())
        }
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::new(format!(
            "expected {}, found {unexp}",
            plain_expected(&exp.to_string())
        ))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {len} items"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!(
            "unknown value `{variant}`, expected one of {}{}",
            list(expected),
            did_you_mean(variant, expected)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(field, expected);
        let hint = if hint.is_empty() {
            format!(" (valid keys: {})", list(expected))
        } else {
            hint
        };
        DeError::new(format!("unknown key `{field}`{hint}"))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            missing_key: Some(field),
            ..DeError::new(format!("missing required key `{field}`"))
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("key `{field}` given twice"))
    }
}

/// Says serde's primitive names (`u32`, `f64`) in words a recipe author uses.
fn plain_expected(serde_name: &str) -> String {
    match serde_name {
        "u8" | "u16" | "u32" | "u64" | "u128" => "a whole number (0 or more)".to_string(),
        "i8" | "i16" | "i32" | "i64" | "i128" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        other => other.to_string(),
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "; did you mean `x`?" for the closest candidate within a small edit distance.
fn did_you_mean(given: &str, candidates: &[&str]) -> String {
    // A third of the word may be wrong (at least one edit), as in most CLI suggesters.
    let limit = 1 + given.chars().count() / 3;
    candidates
        .iter()
        .map(|c| (strsim::osa_distance(given, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map_or(String::new(), |(_, c)| format!("; did you mean `{c}`?"))
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Deserializes one node; `path` is its dotted key path (`grpo.epsilon`, `rewards.0`).
pub(crate) struct NodeDe<'a> {
    pub node: &'a Node,
    pub path: String,
}

impl NodeDe<'_> {
    fn type_error(&self, expected: &str) -> DeError {
        DeError::new(format!(
            "expected {expected}, found {}",
            self.node.describe()
        ))
        .at(self.node, &self.path)
    }

    fn is_null(&self) -> bool {
        matches!(&self.node.value, Value::Scalar(s) if s.resolve() == Resolved::Null)
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_str(s),
            },
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                path: &self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
        };
        result.map_err(|e| e.at(self.node, &self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            let (node, path) = (self.node, self.path.clone());
            visitor.visit_some(self).map_err(|e| e.at(node, &path))
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) if items.len() == len => self.deserialize_any(visitor),
            _ => Err(self.type_error(&format!("a list of {len} items"))),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            // `section:` with nothing under it reads as an empty section, not a type error.
            _ if self.is_null() => visitor
                .visit_map(MapDe {
                    entries: [].iter(),
                    value: None,
                    path: &self.path,
                })
                .map_err(|e| e.at(self.node, &self.path)),
            _ => Err(self.type_error("a mapping of `key: value` lines")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar(s) if matches!(s.resolve(), Resolved::Str(_)) => visitor
                .visit_enum(UnitVariant { name: &s.text })
                .map_err(|e| e.at(self.node, &self.path)),
            _ => Err(self.type_error("a name")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (node, path) = (self.node, self.path.clone());
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(node, &path))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple_struct identifier
    }
}

struct SeqDe<'a, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'p str,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => seed
                .deserialize(NodeDe {
                    node,
                    path: join(self.path, &i.to_string()),
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, Entry>,
    value: Option<&'a Entry>,
    path: &'p str,
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let key: de::value::StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| e.at_loc(&entry.key_loc, &join(self.path, &entry.key), None))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self
            .value
            .take()
            .ok_or_else(|| DeError::new("a value was read before its key".into()))?;
        let path = join(self.path, &entry.key);
        seed.deserialize(NodeDe {
            node: &entry.value,
            path: path.clone(),
        })
        .map_err(|e| e.at_section_key(&entry.key_loc, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Enums in recipes are plain names (`loss_type: dapo`).
struct UnitVariant<'a> {
    name: &'a str,
}

impl<'de> de::EnumAccess<'de> for UnitVariant<'_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let name: de::value::StrDeserializer<'_, DeError> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(DeError::new(format!(
            "`{}` needs settings, not a plain name",
            self.name
        )))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::new(format!(
            "`{}` needs settings, not a plain name",
            self.name
        )))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::new(format!(
            "`{}` needs settings, not a plain name",
            self.name
        )))
    }
}
