//! The legacy PAF ("Policy Authoring Format") reader and writer.
//!
//! The grammar follows LSST `pex_policy`'s parser in strict mode:
//!
//! * Lines are read one at a time. A line whose first non-blank character is
//!   `#` is a comment (this covers the optional `#<?cfg paf policy ?>`
//!   header); after a value, `#` starts a comment.
//! * A parameter is `name: value` where the name is `\w[\w.]*`; dotted names
//!   are hierarchical (`a.b: 1` is `a: { b: 1 }`).
//! * `name: {` opens a sub-policy; content may follow the brace on the same
//!   line, and `}` may close it at the start of a line or after a value
//!   (`x: 1 }`). A `}` with no open block is an error. End of file closes
//!   any open blocks (as LSST does).
//! * Repeating a name appends (scalars and blocks alike); several
//!   space-separated values on one line form an array, all of one type.
//! * Values are typed by the first rule that matches: `{` sub-policy;
//!   double (`[+-]?(\d+\.\d*|\d*\.\d+)([eE][+-]?\d{1,3})?` or
//!   `\d+[eE][+-]?\d{1,3}`); int (`[+-]?\d+`, stored as `i32`; beyond 32
//!   bits is [`PolicyError::Unsupported`]); bool (`true`, `True`, `false`,
//!   `False`); a quoted string (`"…"` or `'…'`, several make an array; an
//!   unterminated quote continues onto the following lines, joined by single
//!   spaces, each line trimmed; end of file inside one is an error); else a
//!   bare string (everything up to `#` or `}`, trimmed, one value).
//! * A bare value `@path` includes another policy file as a sub-policy,
//!   resolved against the top-level file's folder; `@urn:eupspkg:PKG:[REPOS:]PATH`
//!   and `@@PKG:[REPOS:]PATH` resolve through `$PKG_DIR`.
//!
//! A name with an empty value (`name:` or `name: # note`) adds nothing, as in
//! LSST. Where LSST silently dropped a `}` given as a whole value (`name: }`),
//! we add nothing and let the brace close the block.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::error::PolicyError;
use super::load::{Loader, MAX_NESTING};
use crate::property_set::{PropertySet, Values};

/// Parses PAF text into a property set.
pub(crate) fn parse(
    text: &str,
    source: &str,
    loader: &mut Loader,
) -> Result<PropertySet, PolicyError> {
    let mut p = Parser {
        source,
        lines: text.lines().collect(),
        next: 0,
        pushed: Vec::new(),
        depth: 0,
        loader,
    };
    let mut ps = PropertySet::new();
    p.parse_block(&mut ps)?;
    Ok(ps)
}

struct Parser<'t, 'l> {
    source: &'t str,
    lines: Vec<&'t str>,
    /// Index of the next unread line.
    next: usize,
    /// Fragments pushed back for re-reading, with their line numbers (LIFO).
    pushed: Vec<(Cow<'t, str>, usize)>,
    depth: usize,
    loader: &'l mut Loader,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `name: value` → (name, value with leading blanks removed).
fn split_param(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let first = t.chars().next()?;
    if !is_word(first) {
        return None;
    }
    let end = t
        .find(|c: char| !(is_word(c) || c == '.'))
        .unwrap_or(t.len());
    let name = &t[..end];
    let rest = t[end..].trim_start().strip_prefix(':')?;
    Some((name, rest.trim_start()))
}

fn count_digits(b: &[u8], i: usize) -> usize {
    b[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Length of an exponent `[eE][+-]?\d{1,3}` at `i`, or 0.
fn exponent_len(b: &[u8], i: usize) -> usize {
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let d = count_digits(b, j).min(3);
        if d > 0 {
            return j + d - i;
        }
    }
    0
}

/// Length of a PAF double at the start of `s`, or `None`.
fn match_double(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_digits = count_digits(b, i);
    i += int_digits;
    if i < b.len() && b[i] == b'.' {
        let frac = count_digits(b, i + 1);
        if int_digits == 0 && frac == 0 {
            return None;
        }
        i += 1 + frac;
        Some(i + exponent_len(b, i))
    } else {
        if int_digits == 0 {
            return None;
        }
        let e = exponent_len(b, i);
        (e > 0).then_some(i + e)
    }
}

/// Length of a PAF int at the start of `s`, or `None`.
fn match_int(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let sign = usize::from(!b.is_empty() && (b[0] == b'+' || b[0] == b'-'));
    let d = count_digits(b, sign);
    (d > 0).then_some(sign + d)
}

/// `true`/`True`/`false`/`False` at the start of `s`.
fn match_bool(s: &str) -> Option<(bool, usize)> {
    for (word, v) in [
        ("true", true),
        ("True", true),
        ("false", false),
        ("False", false),
    ] {
        if s.starts_with(word) {
            return Some((v, word.len()));
        }
    }
    None
}

/// What follows a value on its line.
enum After<'a> {
    /// Nothing (or a comment): the value list ends.
    End,
    /// A `}`: push it back and end.
    Close(&'a str),
    /// More text.
    More(&'a str),
}

fn after(rest: &str) -> After<'_> {
    let r = rest.trim_start();
    if r.is_empty() || r.starts_with('#') {
        After::End
    } else if r.starts_with('}') {
        After::Close(r)
    } else {
        After::More(r)
    }
}

impl<'t> Parser<'t, '_> {
    fn next_line(&mut self) -> Option<(Cow<'t, str>, usize)> {
        if let Some(x) = self.pushed.pop() {
            return Some(x);
        }
        let line = self.lines.get(self.next)?;
        self.next += 1;
        Some((Cow::Borrowed(line), self.next))
    }

    fn push_back(&mut self, text: &str, line: usize) {
        self.pushed.push((Cow::Owned(text.to_string()), line));
    }

    fn line_text(&self, line: usize) -> String {
        self.lines
            .get(line.wrapping_sub(1))
            .map_or(String::new(), |l| l.trim().to_string())
    }

    fn syntax(&self, line: usize, message: impl Into<String>) -> PolicyError {
        PolicyError::Syntax {
            file: self.source.to_string(),
            line,
            text: self.line_text(line),
            message: message.into(),
        }
    }

    fn add(
        &self,
        ps: &mut PropertySet,
        name: &str,
        values: Values,
        line: usize,
    ) -> Result<(), PolicyError> {
        ps.add(name, values)
            .map_err(|e| self.syntax(line, e.to_string()))
    }

    /// Reads parameters into `ps` until a `}` closes the block or the input ends.
    fn parse_block(&mut self, ps: &mut PropertySet) -> Result<(), PolicyError> {
        while let Some((line, no)) = self.next_line() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if let Some(rest) = t.strip_prefix('}') {
                if self.depth == 0 {
                    return Err(self.syntax(no, "extra '}' with no open block"));
                }
                self.depth -= 1;
                let rest = rest.trim_start();
                if !rest.is_empty() {
                    let rest = rest.to_string();
                    self.push_back(&rest, no);
                }
                return Ok(());
            }
            match split_param(t) {
                Some((name, value)) => {
                    let (name, value) = (name.to_string(), value.to_string());
                    self.add_value(ps, &name, &value, no)?;
                }
                None => return Err(self.syntax(no, "bad parameter name format")),
            }
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        ps: &mut PropertySet,
        name: &str,
        value: &str,
        no: usize,
    ) -> Result<(), PolicyError> {
        if value.is_empty() || value.starts_with('#') {
            return Ok(());
        }
        if let Some(rest) = value.strip_prefix('{') {
            if self.depth >= MAX_NESTING {
                return Err(self.syntax(
                    no,
                    format!("sub-policies nested deeper than {MAX_NESTING} levels"),
                ));
            }
            self.depth += 1;
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                self.push_back(rest, no);
            }
            let mut sub = PropertySet::new();
            self.parse_block(&mut sub)?;
            return self.add(ps, name, Values::PropertySet(vec![sub]), no);
        }
        if match_double(value).is_some() {
            return self.numbers(ps, name, value, no, true);
        }
        if match_int(value).is_some() {
            return self.numbers(ps, name, value, no, false);
        }
        if match_bool(value).is_some() {
            let mut out = Vec::new();
            let mut rest = value;
            while let Some((v, n)) = match_bool(rest) {
                out.push(v);
                match after(&rest[n..]) {
                    After::End => return self.add(ps, name, Values::Bool(out), no),
                    After::Close(r) => {
                        let r = r.to_string();
                        self.push_back(&r, no);
                        return self.add(ps, name, Values::Bool(out), no);
                    }
                    After::More(r) => rest = r,
                }
            }
            return Err(self.syntax(no, format!("expecting boolean value, found {rest:?}")));
        }
        if value.starts_with('"') || value.starts_with('\'') {
            return self.quoted(ps, name, value, no);
        }
        self.bare(ps, name, value, no)
    }

    fn numbers(
        &mut self,
        ps: &mut PropertySet,
        name: &str,
        value: &str,
        no: usize,
        double: bool,
    ) -> Result<(), PolicyError> {
        let mut doubles = Vec::new();
        let mut ints = Vec::new();
        let mut rest = value;
        loop {
            let n = if double {
                match_double(rest)
            } else {
                match_int(rest)
            };
            let Some(n) = n else {
                let kind = if double { "double" } else { "integer" };
                return Err(self.syntax(no, format!("expecting {kind} value, found {rest:?}")));
            };
            let element = &rest[..n];
            if double {
                let v: f64 = element
                    .parse()
                    .map_err(|_| self.syntax(no, format!("bad double {element:?}")))?;
                doubles.push(v);
            } else {
                let v = element
                    .parse::<i64>()
                    .ok()
                    .and_then(|v| i32::try_from(v).ok());
                match v {
                    Some(v) => ints.push(v),
                    None => {
                        return Err(PolicyError::Unsupported {
                            file: self.source.to_string(),
                            line: no,
                            text: self.line_text(no),
                            message: format!("integer {element} does not fit in 32 bits"),
                        })
                    }
                }
            }
            match after(&rest[n..]) {
                After::End => break,
                After::Close(r) => {
                    let r = r.to_string();
                    self.push_back(&r, no);
                    break;
                }
                After::More(r) => rest = r,
            }
        }
        let values = if double {
            Values::F64(doubles)
        } else {
            Values::I32(ints)
        };
        self.add(ps, name, values, no)
    }

    fn quoted(
        &mut self,
        ps: &mut PropertySet,
        name: &str,
        value: &str,
        no: usize,
    ) -> Result<(), PolicyError> {
        let mut out: Vec<String> = Vec::new();
        let mut rest: String = value.to_string();
        let mut cur = no;
        loop {
            let q = rest.chars().next().expect("non-empty, starts with a quote");
            let body = &rest[1..];
            let remainder: String;
            if let Some(end) = body.find(q) {
                out.push(body[..end].to_string());
                remainder = body[end + 1..].to_string();
            } else {
                // Unterminated: continue on the following lines.
                let mut element = body.trim_end().to_string();
                let start = cur;
                let mut closed = None;
                while let Some((line, n)) = self.next_line() {
                    cur = n;
                    element.push(' ');
                    let l = line.trim_start();
                    if let Some(end) = l.find(q) {
                        element.push_str(&l[..end]);
                        closed = Some(l[end + 1..].to_string());
                        break;
                    }
                    element.push_str(l.trim_end());
                }
                match closed {
                    Some(r) => {
                        out.push(element);
                        remainder = r;
                    }
                    None => return Err(self.syntax(start, "end of file inside a quoted string")),
                }
            }
            match after(&remainder) {
                After::End => break,
                After::Close(r) => {
                    let r = r.to_string();
                    self.push_back(&r, cur);
                    break;
                }
                After::More(r) if r.starts_with('"') || r.starts_with('\'') => {
                    rest = r.to_string();
                }
                After::More(r) => {
                    return Err(
                        self.syntax(cur, format!("expecting quoted string value, found {r:?}"))
                    )
                }
            }
        }
        self.add(ps, name, Values::String(out), cur)
    }

    fn bare(
        &mut self,
        ps: &mut PropertySet,
        name: &str,
        value: &str,
        no: usize,
    ) -> Result<(), PolicyError> {
        let end = value.find(['#', '}']).unwrap_or(value.len());
        let trimmed = value[..end].trim();
        if end < value.len() && value.as_bytes()[end] == b'}' {
            self.push_back(&value[end..], no);
        }
        if trimmed.is_empty() {
            // `name: }`: no value; the brace closes the block.
            return Ok(());
        }
        if let Some(target) = trimmed.strip_prefix('@') {
            let sub = self.loader.include(target, self.source, no)?;
            return self.add(ps, name, Values::PropertySet(vec![sub]), no);
        }
        self.add(ps, name, Values::String(vec![trimmed.to_string()]), no)
    }
}

/// Is `name` a legal PAF name (`\w[\w]*` components joined by dots)?
pub(crate) fn is_paf_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(is_word))
}

/// Writes `ps` as PAF text that parses back to an equal property set.
pub(crate) fn dump(ps: &PropertySet) -> Result<String, PolicyError> {
    let mut out = String::from("#<?cfg paf policy ?>\n");
    dump_into(ps, "", 0, &mut out)?;
    Ok(out)
}

fn unrep(name: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Unrepresentable {
        name: name.to_string(),
        format: "PAF",
        reason: reason.into(),
    }
}

fn fmt_double(name: &str, x: f64) -> Result<String, PolicyError> {
    if !x.is_finite() {
        return Err(unrep(name, format!("{x} has no PAF spelling")));
    }
    // `{:?}` is the shortest text that reads back to the same value and
    // always has a `.` or an exponent; PAF exponents have at most 3 digits,
    // which every finite f64 satisfies.
    let s = format!("{x:?}");
    debug_assert!(match_double(&s) == Some(s.len()));
    Ok(s)
}

fn fmt_string(name: &str, s: &str) -> Result<String, PolicyError> {
    if s.contains(['\n', '\r']) {
        return Err(unrep(name, "a string with a line break"));
    }
    if !s.contains('"') {
        Ok(format!("\"{s}\""))
    } else if !s.contains('\'') {
        Ok(format!("'{s}'"))
    } else {
        Err(unrep(name, "a string holding both quote characters"))
    }
}

fn dump_into(
    ps: &PropertySet,
    prefix: &str,
    indent: usize,
    out: &mut String,
) -> Result<(), PolicyError> {
    let pad = "    ".repeat(indent);
    for (key, values) in ps.iter() {
        let full = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        if !key.chars().all(is_word) || key.is_empty() {
            return Err(unrep(&full, "not a PAF name (\\w characters only)"));
        }
        if values.is_empty() {
            continue;
        }
        let items: Vec<String> = match values {
            Values::PropertySet(sets) => {
                for s in sets {
                    let _ = writeln!(out, "{pad}{key}: {{");
                    dump_into(s, &full, indent + 1, out)?;
                    let _ = writeln!(out, "{pad}}}");
                }
                continue;
            }
            Values::Bool(v) => v.iter().map(|b| b.to_string()).collect(),
            Values::F64(v) => v
                .iter()
                .map(|&x| fmt_double(&full, x))
                .collect::<Result<_, _>>()?,
            Values::F32(v) => v
                .iter()
                .map(|&x| fmt_double(&full, f64::from(x)))
                .collect::<Result<_, _>>()?,
            Values::String(v) => v
                .iter()
                .map(|s| fmt_string(&full, s))
                .collect::<Result<_, _>>()?,
            Values::DateTime(_) => {
                return Err(unrep(&full, "PAF has no date-time type"));
            }
            other => {
                let mut items = Vec::with_capacity(other.len());
                for i in 0..other.len() {
                    let v = other.as_i64_at(i);
                    match v.and_then(|v| i32::try_from(v).ok()) {
                        Some(v) => items.push(v.to_string()),
                        None => {
                            return Err(unrep(
                                &full,
                                format!(
                                    "{} does not fit the 32-bit PAF integer",
                                    other.text_at(i).unwrap_or_default()
                                ),
                            ))
                        }
                    }
                }
                items
            }
        };
        let _ = writeln!(out, "{pad}{key}: {}", items.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_and_int_matchers_follow_the_grammar() {
        for (s, n) in [
            ("1.5", Some(3)),
            (".5", Some(2)),
            ("1.", Some(2)),
            ("-1.5e10x", Some(7)),
            ("1e5", Some(3)),
            ("1e1234", Some(5)),
            ("1", None),
            (".", None),
            ("e5", None),
            ("1.5e", Some(3)),
        ] {
            assert_eq!(match_double(s), n, "{s}");
        }
        assert_eq!(match_int("+12ab"), Some(3));
        assert_eq!(match_int("-"), None);
        assert_eq!(match_bool("Trueish"), Some((true, 4)));
        assert_eq!(match_bool("TRUE"), None);
    }

    #[test]
    fn split_param_names() {
        assert_eq!(split_param("  a.b : 1"), Some(("a.b", "1")));
        assert_eq!(split_param("a:"), Some(("a", "")));
        assert_eq!(split_param("-a: 1"), None);
        assert_eq!(split_param("a b: 1"), None);
    }
}
