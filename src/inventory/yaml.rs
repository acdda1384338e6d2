//! Small YAML helpers shared by the talconfig and machine-config readers:
//! UTF-8 checking, (multi-)document parsing with merge keys applied, error
//! locations, and lenient access to scalar fields.

use std::path::Path;

use yaml_serde::Value;

use super::error::InputError;

/// Checks that `bytes` is UTF-8 text, naming the first bad byte otherwise.
pub(crate) fn to_utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, InputError> {
    // A UTF-8 byte order mark (editors on Windows write one) is not part of
    // the text: YAML parsers would read it as content before the document.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        InputError::NotUtf8 {
            path: path.to_path_buf(),
            offset,
            line,
        }
    })
}

/// Converts a parser error into an [`InputError::Yaml`] with line and column.
pub(crate) fn yaml_error(path: &Path, err: &yaml_serde::Error) -> InputError {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = err.to_string();
    // The parser repeats the position inside its message; we print it once.
    let suffix = format!(" at line {line} column {column}");
    message = message.replace(&suffix, "");
    InputError::Yaml {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn merge(path: &Path, value: &mut Value) -> Result<(), InputError> {
    value.apply_merge().map_err(|e| InputError::InvalidField {
        path: path.to_path_buf(),
        field: "<<".into(),
        reason: format!("bad merge key: {e}"),
    })
}

/// Parses a YAML stream into its documents, 1-based index first. Null
/// (empty) documents are skipped, as Talos skips them. `<<` merge keys are
/// applied.
pub(crate) fn parse_documents(path: &Path, text: &str) -> Result<Vec<(usize, Value)>, InputError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        // Stop at the first error: the underlying parser cannot resume.
        let mut value = Value::deserialize(de).map_err(|e| yaml_error(path, &e))?;
        if value.is_null() {
            continue;
        }
        merge(path, &mut value)?;
        docs.push((i + 1, value));
    }
    Ok(docs)
}

/// Parses text that must hold exactly one YAML document, merge keys applied.
pub(crate) fn parse_single(path: &Path, text: &str) -> Result<Value, InputError> {
    let mut value: Value = yaml_serde::from_str(text).map_err(|e| yaml_error(path, &e))?;
    merge(path, &mut value)?;
    Ok(value)
}

/// Follows a path of mapping keys.
pub(crate) fn get<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, k| v.get(*k))
}

/// Reads a scalar as text the way Go's YAML decoder fills a string field:
/// strings as-is, numbers and booleans in their YAML spelling. `Null` (an
/// absent value) is `Ok(None)`; sequences and mappings are `Err(kind)`.
pub(crate) fn scalar_string(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Sequence(_) => Err("a list"),
        Value::Mapping(_) => Err("a mapping"),
        Value::Tagged(t) => scalar_string(&t.value),
    }
}

/// Reads an optional string field at `keys`, naming the dotted field on
/// error. Empty strings count as absent.
pub(crate) fn opt_string(
    path: &Path,
    root: &Value,
    keys: &[&str],
) -> Result<Option<String>, InputError> {
    match get(root, keys) {
        None => Ok(None),
        Some(v) => match scalar_string(v) {
            Ok(s) => Ok(s.filter(|s| !s.is_empty())),
            Err(kind) => Err(InputError::InvalidField {
                path: path.to_path_buf(),
                field: keys.join("."),
                reason: format!("expected a string, found {kind}"),
            }),
        },
    }
}

/// A short word for the type of a value, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("f.yaml")
    }

    #[test]
    fn documents_skip_nulls_and_keep_stream_positions() {
        let docs = parse_documents(p(), "a: 1\n---\n---\nb: 2\n").unwrap();
        let idx: Vec<usize> = docs.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, vec![1, 3]);
        assert_eq!(docs[1].1["b"], Value::from(2));
    }

    #[test]
    fn merge_keys_are_applied_in_every_document() {
        let text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n---\nother: &o {k: v}\nm:\n  <<: [*o]\n";
        let docs = parse_documents(p(), text).unwrap();
        assert_eq!(docs[0].1["derived"]["x"], Value::from(1));
        assert_eq!(docs[0].1["derived"]["y"], Value::from(3));
        assert_eq!(docs[1].1["m"]["k"], Value::from("v"));
    }

    #[test]
    fn syntax_error_has_line_and_column_of_the_problem() {
        let err = parse_documents(p(), "a: 1\n---\nb: [1, 2\nc: 3\n").unwrap_err();
        match err {
            InputError::Yaml { line, column, .. } => {
                assert!(line >= 3, "line {line}");
                assert!(column >= 1);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let text = to_utf8(p(), b"\xef\xbb\xbfclusterName: c\nnodes: []\n").unwrap();
        assert!(text.starts_with("clusterName"));
        let v = parse_single(p(), text).unwrap();
        assert_eq!(v["clusterName"].as_str(), Some("c"));
    }

    #[test]
    fn non_utf8_reports_offset_and_line() {
        let bytes = b"a: 1\nb: \xff\n";
        match to_utf8(p(), bytes).unwrap_err() {
            InputError::NotUtf8 { offset, line, .. } => {
                assert_eq!(offset, 8);
                assert_eq!(line, 2);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn scalar_string_spells_numbers_and_bools() {
        let v: Value = yaml_serde::from_str("{a: 12, b: true, c: x, d: null, e: [1]}").unwrap();
        assert_eq!(scalar_string(&v["a"]).unwrap().as_deref(), Some("12"));
        assert_eq!(scalar_string(&v["b"]).unwrap().as_deref(), Some("true"));
        assert_eq!(scalar_string(&v["c"]).unwrap().as_deref(), Some("x"));
        assert_eq!(scalar_string(&v["d"]).unwrap(), None);
        assert!(scalar_string(&v["e"]).is_err());
        let err = opt_string(p(), &v, &["e"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml: field `e`: expected a string, found a list"
        );
    }
}
