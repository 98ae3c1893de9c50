//! Helpers for dataset formats that read JSON Lines files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Error;

/// The `path` setting of a file-based dataset: one file for every split, or a file per
/// split, e.g. `{"train": "train.jsonl", "eval": "test.jsonl"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SplitPath {
    One(PathBuf),
    PerSplit(BTreeMap<String, PathBuf>),
}

impl SplitPath {
    /// The file to read for `split`.
    pub fn for_split(&self, split: &str) -> Result<&Path, Error> {
        match self {
            SplitPath::One(path) => Ok(path),
            SplitPath::PerSplit(paths) => paths.get(split).map(PathBuf::as_path).ok_or_else(|| {
                let known: Vec<&str> = paths.keys().map(String::as_str).collect();
                Error::new(format!(
                    "no file for split `{split}` in `path` (it has: {})",
                    known.join(", ")
                ))
            }),
        }
    }
}

/// One JSON object from a JSON Lines file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in the file.
    pub number: u64,
    pub fields: Map<String, Value>,
}

impl Row {
    /// Removes and returns a string column; missing or non-string is an error at this row.
    pub fn take_string(&mut self, column: &str) -> Result<String, Error> {
        match self.fields.remove(column) {
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(Error::at_row(
                self.number,
                format!(
                    "column `{column}` must be a string, got {}",
                    kind_of(&other)
                ),
            )),
            None => Err(Error::at_row(
                self.number,
                format!("missing column `{column}`"),
            )),
        }
    }

    /// Removes and returns any column; missing is an error at this row.
    pub fn take(&mut self, column: &str) -> Result<Value, Error> {
        self.fields
            .remove(column)
            .ok_or_else(|| Error::at_row(self.number, format!("missing column `{column}`")))
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a JSON Lines file one object per non-blank line, counting lines for errors.
#[derive(Debug)]
pub struct JsonLines {
    reader: BufReader<File>,
    line: u64,
    remaining: usize,
    buf: String,
}

impl JsonLines {
    /// Opens `path`, counting its rows up front so the size hint is exact.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open = || {
            File::open(path).map_err(|e| Error::new(format!("cannot open {}: {e}", path.display())))
        };
        let mut remaining = 0;
        for line in BufReader::new(open()?).split(b'\n') {
            let line =
                line.map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
            if !line.trim_ascii().is_empty() {
                remaining += 1;
            }
        }
        Ok(JsonLines {
            reader: BufReader::new(open()?),
            line: 0,
            remaining,
            buf: String::new(),
        })
    }

    /// The next object, `None` at the end of the file.
    pub fn next_row(&mut self) -> Option<Result<Row, Error>> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) if self.buf.trim().is_empty() => continue,
                Ok(_) => {
                    self.remaining = self.remaining.saturating_sub(1);
                    return Some(self.parse());
                }
                Err(e) => {
                    self.remaining = self.remaining.saturating_sub(1);
                    return Some(Err(Error::at_row(
                        self.line,
                        format!("cannot read line: {e}"),
                    )));
                }
            }
        }
    }

    fn parse(&self) -> Result<Row, Error> {
        match serde_json::from_str(&self.buf) {
            Ok(Value::Object(fields)) => Ok(Row {
                number: self.line,
                fields,
            }),
            Ok(other) => Err(Error::at_row(
                self.line,
                format!("expected a JSON object, got {}", kind_of(&other)),
            )),
            Err(e) => Err(Error::at_row(self.line, format!("invalid JSON: {e}"))),
        }
    }

    /// Exact number of rows left (malformed ones included).
    pub fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn rows_skip_blank_lines_and_keep_line_numbers() {
        let f = file("{\"a\": \"x\"}\n\n   \n{\"a\": \"y\"}\n[1]\n{oops\n");
        let mut rows = JsonLines::open(f.path()).unwrap();
        assert_eq!(rows.size_hint(), (4, Some(4)));
        let mut first = rows.next_row().unwrap().unwrap();
        assert_eq!(first.number, 1);
        assert_eq!(first.take_string("a").unwrap(), "x");
        assert_eq!(rows.next_row().unwrap().unwrap().number, 4);
        assert_eq!(rows.size_hint(), (2, Some(2)));
        let err = rows.next_row().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 5: expected a JSON object, got an array"
        );
        let err = rows.next_row().unwrap().unwrap_err();
        assert_eq!(err.row(), Some(6));
        assert!(
            err.message()
                .starts_with("invalid JSON: key must be a string"),
            "{err}"
        );
        assert!(rows.next_row().is_none());
        assert_eq!(rows.size_hint(), (0, Some(0)));
    }

    #[test]
    fn take_string_reports_missing_and_mistyped_columns() {
        let mut row = Row {
            number: 7,
            fields: serde_json::from_str(r#"{"n": 3}"#).unwrap(),
        };
        assert_eq!(
            row.take_string("q").unwrap_err().to_string(),
            "row 7: missing column `q`"
        );
        assert_eq!(
            row.take_string("n").unwrap_err().to_string(),
            "row 7: column `n` must be a string, got a number"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = JsonLines::open(Path::new("/no/such/file.jsonl")).unwrap_err();
        assert!(
            err.message()
                .starts_with("cannot open /no/such/file.jsonl: "),
            "{err}"
        );
    }

    #[test]
    fn split_path_picks_the_file_for_the_split() {
        let one: SplitPath = serde_json::from_str(r#""all.jsonl""#).unwrap();
        assert_eq!(one.for_split("eval").unwrap(), Path::new("all.jsonl"));
        let per: SplitPath =
            serde_json::from_str(r#"{"train": "t.jsonl", "test": "e.jsonl"}"#).unwrap();
        assert_eq!(per.for_split("test").unwrap(), Path::new("e.jsonl"));
        assert_eq!(
            per.for_split("eval").unwrap_err().to_string(),
            "no file for split `eval` in `path` (it has: test, train)"
        );
    }
}
