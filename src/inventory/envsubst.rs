//! `${VAR}` substitution on talconfig.yaml text, done the way talhelper does
//! it: YAML comments are stripped first (so `${X}` in a comment is harmless),
//! then `$NAME`, `${NAME}`, `${NAME:-default}` (and `-`, `:=`, `=`) are
//! replaced, `$$` becomes a literal `$`, and any variable that is unset or
//! empty without a default is an error naming it and its line (talhelper runs
//! envsubst in its restricted no-unset/no-empty mode).

use std::path::Path;

use super::error::InputError;

/// Removes YAML comments, leaving every line in place (so line numbers in
/// later errors still match the operator's file). Quoted scalars and block
/// scalar bodies (`|`, `>`) are left untouched.
pub(crate) fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut block_parent: Option<usize> = None;

    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_parent {
            if line.trim().is_empty() || indent > parent {
                out.push_str(line);
                continue;
            }
            block_parent = None;
        }

        let mut kept_end = line.len();
        let mut last_significant: Option<char> = None;
        let mut prev: Option<char> = None;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match quote {
                Some('"') => {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        quote = None;
                    }
                }
                Some(_) => {
                    if c == '\'' {
                        if chars.peek().map(|(_, c)| *c) == Some('\'') {
                            chars.next();
                        } else {
                            quote = None;
                        }
                    }
                }
                None => {
                    let after_space = prev.is_none_or(char::is_whitespace);
                    if c == '#' && after_space {
                        kept_end = i;
                        break;
                    }
                    let at_scalar_start = (after_space || matches!(prev, Some('[' | '{' | ',')))
                        && last_significant.is_none_or(|s| ":-[{,?".contains(s));
                    if (c == '"' || c == '\'') && at_scalar_start {
                        quote = Some(c);
                    }
                }
            }
            if !c.is_whitespace() {
                last_significant = Some(c);
            }
            prev = Some(c);
        }
        let kept = if kept_end == line.len() {
            line
        } else {
            line[..kept_end].trim_end_matches([' ', '\t'])
        };
        out.push_str(kept);
        if quote.is_none() && starts_block_scalar(kept) {
            block_parent = Some(indent);
        }
    }
    out
}

/// Whether a (comment-free) line ends with a block scalar indicator such
/// as `key: |`, `- >-` or `key: |2+`.
fn starts_block_scalar(line: &str) -> bool {
    let t = line.trim_end();
    let token = t.rsplit_once([' ', '\t']).map(|(_, tok)| tok).unwrap_or(t);
    let before = t[..t.len() - token.len()].trim_end();
    let mut chars = token.chars();
    let is_indicator = matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| c.is_ascii_digit() || c == '+' || c == '-');
    is_indicator && (before.is_empty() || before.ends_with(':') || before.ends_with('-'))
}

/// How a `${NAME<op>default}` expression treats an unset or empty variable.
#[derive(Clone, Copy)]
enum Op {
    /// `${NAME}` / `$NAME`: must be set and non-empty.
    Plain,
    /// `${NAME:-d}` / `${NAME:=d}`: default when unset or empty.
    DefaultIfEmpty,
    /// `${NAME-d}` / `${NAME=d}`: default when unset; set-but-empty is an error.
    DefaultIfUnset,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Substitutes variables in `text` (already comment-stripped). `first_line`
/// is the line number of `text`'s first line in the file.
pub(crate) fn substitute(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InputError> {
    substitute_at(path, text, 1, lookup, 0)
}

fn substitute_at(
    path: &Path,
    text: &str,
    first_line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, InputError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut line = first_line;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'$' => {
                out.push_str(&text[copied..i]);
                let next = bytes.get(i + 1).copied();
                match next {
                    Some(b'$') => {
                        out.push('$');
                        i += 2;
                    }
                    Some(b'{') => {
                        let close = matching_brace(bytes, i + 2).ok_or_else(|| {
                            InputError::BadSubstitution {
                                path: path.to_path_buf(),
                                line,
                                reason: "`${` without a closing `}`".into(),
                            }
                        })?;
                        let inner = &text[i + 2..close];
                        out.push_str(&expand(path, inner, line, lookup, depth)?);
                        line += inner.matches('\n').count();
                        i = close + 1;
                    }
                    Some(c) if is_name_start(c) => {
                        let mut end = i + 1;
                        while end < bytes.len() && is_name_char(bytes[end]) {
                            end += 1;
                        }
                        let name = &text[i + 1..end];
                        out.push_str(&resolve(path, name, Op::Plain, None, line, lookup, depth)?);
                        i = end;
                    }
                    _ => {
                        out.push('$');
                        i += 1;
                    }
                }
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `start`, allowing
/// nested `${...}` inside defaults.
fn matching_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand(
    path: &Path,
    inner: &str,
    line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, InputError> {
    let bad = |reason: String| InputError::BadSubstitution {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let b = inner.as_bytes();
    if b.is_empty() || !is_name_start(b[0]) {
        return Err(bad(format!(
            "`${{{inner}}}` does not start with a variable name"
        )));
    }
    let mut end = 1;
    while end < b.len() && is_name_char(b[end]) {
        end += 1;
    }
    let name = &inner[..end];
    let rest = &inner[end..];
    let (op, default) = if rest.is_empty() {
        (Op::Plain, None)
    } else if let Some(d) = rest.strip_prefix(":-").or_else(|| rest.strip_prefix(":=")) {
        (Op::DefaultIfEmpty, Some(d))
    } else if let Some(d) = rest.strip_prefix('-').or_else(|| rest.strip_prefix('=')) {
        (Op::DefaultIfUnset, Some(d))
    } else {
        return Err(bad(format!(
            "`${{{inner}}}`: unsupported expression (talstrap supports ${{NAME}}, ${{NAME:-default}} and ${{NAME-default}})"
        )));
    };
    resolve(path, name, op, default, line, lookup, depth)
}

fn resolve(
    path: &Path,
    name: &str,
    op: Op,
    default: Option<&str>,
    line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, InputError> {
    let unset = || InputError::UnsetVariable {
        path: path.to_path_buf(),
        name: name.to_string(),
        line,
    };
    let value = lookup(name);
    let use_default = match (op, value.as_deref()) {
        (_, Some(v)) if !v.is_empty() => false,
        (Op::Plain, _) => return Err(unset()),
        (Op::DefaultIfEmpty, _) => true,
        (Op::DefaultIfUnset, None) => true,
        (Op::DefaultIfUnset, Some(_)) => return Err(unset()),
    };
    if !use_default {
        return Ok(value.unwrap_or_default());
    }
    let default = default.unwrap_or_default();
    if depth >= 8 {
        return Err(InputError::BadSubstitution {
            path: path.to_path_buf(),
            line,
            reason: "defaults nested more than 8 deep".into(),
        });
    }
    substitute_at(path, default, line, lookup, depth + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(text: &str, vars: &HashMap<String, String>) -> Result<String, InputError> {
        let lookup = |n: &str| vars.get(n).cloned();
        substitute(Path::new("talconfig.yaml"), &strip_comments(text), &lookup)
    }

    #[test]
    fn braces_bare_names_and_defaults() {
        let vars = env(&[
            ("VIP", "10.0.0.10"),
            ("talosVersion", "v1.13.0"),
            ("EMPTY", ""),
        ]);
        let out = run(
            "a: ${VIP}\nb: $talosVersion\nc: ${NOPE:-fallback}\nd: ${EMPTY:-x}\ne: ${NOPE-y}\nf: ${NOPE:-${VIP}}\n",
            &vars,
        )
        .unwrap();
        assert_eq!(
            out,
            "a: 10.0.0.10\nb: v1.13.0\nc: fallback\nd: x\ne: y\nf: 10.0.0.10\n"
        );
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        let out = run("$$patch: delete\nx: a$$b\ny: cost $5\n", &env(&[])).unwrap();
        assert_eq!(out, "$patch: delete\nx: a$b\ny: cost $5\n");
    }

    #[test]
    fn unset_and_empty_variables_are_errors_with_line() {
        let vars = env(&[("EMPTY", "")]);
        let err = run("a: 1\n\nb: ${MISSING}\n", &vars).unwrap_err();
        assert_eq!(
            err.to_string().split(';').next().unwrap_or_default(),
            "talconfig.yaml: variable ${MISSING} is not set (line 3)"
        );
        let err = run("x: $EMPTY\n", &vars).unwrap_err();
        assert!(
            err.to_string().contains("${EMPTY} is not set (line 1)"),
            "{err}"
        );
        let err = run("x: ${EMPTY-d}\n", &vars).unwrap_err();
        assert!(err.to_string().contains("${EMPTY}"), "{err}");
    }

    #[test]
    fn comments_are_stripped_before_substitution() {
        let text = "# set ${UNSET} here\nkey: v # uses $ALSO_UNSET\n  # ${X}\nurl: a#b\n";
        let out = run(text, &env(&[])).unwrap();
        assert_eq!(out, "\nkey: v\n\nurl: a#b\n");
    }

    #[test]
    fn hashes_inside_quotes_and_block_scalars_are_content() {
        let text =
            "a: \"x # ${V}\"\nb: 'it''s # $V'\nc: |\n  # ${V} stays\n  line\nd: e # gone ${NOPE}\n";
        let out = run(text, &env(&[("V", "1")])).unwrap();
        assert_eq!(
            out,
            "a: \"x # 1\"\nb: 'it''s # 1'\nc: |\n  # 1 stays\n  line\nd: e\n"
        );
    }

    #[test]
    fn apostrophe_in_plain_scalar_does_not_open_a_quote() {
        let text = "a: don't # ${NOPE}\nb: ok\n";
        assert_eq!(run(text, &env(&[])).unwrap(), "a: don't\nb: ok\n");
    }

    #[test]
    fn line_numbers_survive_multiline_quotes() {
        let text = "a: \"one\n  two # not a comment\"\nb: ${MISSING}\n";
        let err = run(text, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("(line 3)"), "{err}");
    }

    #[test]
    fn malformed_expressions_name_the_line() {
        let err = run("a: 1\nb: ${VIP\n", &env(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("talconfig.yaml: line 2: "),
            "{err}"
        );
        let err = run("b: ${VIP^^}\n", &env(&[("VIP", "x")])).unwrap_err();
        assert!(err.to_string().contains("unsupported"), "{err}");
        let err = run("b: ${}\n", &env(&[])).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
