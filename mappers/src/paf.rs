//! A reader for legacy PAF policy files into the same tree YAML gives, so
//! mapper policies in either syntax merge and validate the same way.
//!
//! Supported: the `#<?cfg paf policy ?>` header and `#` comments, `name:
//! value value ...` (quoted or bare values; `true`/`false`, integers and
//! reals are typed), `name: { ... }` blocks closing with `}`, and repeated
//! names, which form arrays. Errors name the file and line.

use serde_norway::{Mapping, Value};

use crate::MapperError;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Open,
    Close,
    Value(Value),
    Newline,
}

fn lex(text: &str, source: &str) -> Result<Vec<(Tok, usize)>, MapperError> {
    let err = |line: usize, m: &str| MapperError::Policy(format!("{source}:{line}: {m}"));
    let mut out = Vec::new();
    for (n, raw_line) in text.lines().enumerate() {
        let line = n + 1;
        let b = raw_line.as_bytes();
        let mut i = 0;
        let mut expect_name = true;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c == b'#' {
                break;
            }
            if c == b'{' {
                out.push((Tok::Open, line));
                expect_name = true;
                i += 1;
                continue;
            }
            if c == b'}' {
                out.push((Tok::Close, line));
                expect_name = true;
                i += 1;
                continue;
            }
            if c == b'"' || c == b'\'' {
                let mut s = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < b.len() {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        s.push(b[j + 1] as char);
                        j += 2;
                        continue;
                    }
                    if b[j] == c {
                        closed = true;
                        break;
                    }
                    let ch = raw_line[j..].chars().next().unwrap_or(' ');
                    s.push(ch);
                    j += ch.len_utf8();
                }
                if !closed {
                    return Err(err(line, "unterminated quoted string"));
                }
                out.push((Tok::Value(Value::String(s)), line));
                expect_name = false;
                i = j + 1;
                continue;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !b"{}#\"'".contains(&b[i]) {
                if expect_name && b[i] == b':' {
                    break;
                }
                i += 1;
            }
            let word = &raw_line[start..i];
            if expect_name && i < b.len() && b[i] == b':' {
                let valid = !word.is_empty()
                    && word
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
                if !valid {
                    return Err(err(line, &format!("bad policy name {word:?}")));
                }
                out.push((Tok::Name(word.to_string()), line));
                expect_name = false;
                i += 1;
                continue;
            }
            if word.is_empty() {
                return Err(err(line, &format!("unexpected character {:?}", c as char)));
            }
            if expect_name {
                return Err(err(line, &format!("expected \"name:\", found {word:?}")));
            }
            if word.starts_with('@') || word.starts_with('<') {
                return Err(err(
                    line,
                    &format!("file inclusion {word:?} is not supported"),
                ));
            }
            out.push((Tok::Value(bare(word)), line));
        }
        out.push((Tok::Newline, line));
    }
    Ok(out)
}

fn bare(word: &str) -> Value {
    match word {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = word.parse::<i64>() {
        return Value::Number(i.into());
    }
    if word.bytes().any(|c| c.is_ascii_digit()) {
        if let Ok(f) = word.parse::<f64>() {
            return Value::Number(f.into());
        }
    }
    Value::String(word.to_string())
}

/// Adds `value` under `name`; a repeated name turns the entry into an array.
fn insert(map: &mut Mapping, name: String, value: Value) {
    let key = Value::String(name);
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(existing) => {
            let mut values = match std::mem::replace(existing, Value::Null) {
                Value::Sequence(s) => s,
                other => vec![other],
            };
            match value {
                Value::Sequence(s) => values.extend(s),
                v => values.push(v),
            }
            *existing = Value::Sequence(values);
        }
    }
}

fn parse_block(
    toks: &[(Tok, usize)],
    pos: &mut usize,
    source: &str,
    top: bool,
    open_line: usize,
) -> Result<Mapping, MapperError> {
    let err = |line: usize, m: String| MapperError::Policy(format!("{source}:{line}: {m}"));
    let mut map = Mapping::new();
    while *pos < toks.len() {
        let (tok, line) = (&toks[*pos].0, toks[*pos].1);
        match tok {
            Tok::Newline => *pos += 1,
            Tok::Close => {
                if top {
                    return Err(err(line, "unbalanced \"}\"".into()));
                }
                *pos += 1;
                return Ok(map);
            }
            Tok::Name(name) => {
                *pos += 1;
                let mut values = Vec::new();
                let mut block = None;
                while *pos < toks.len() {
                    match &toks[*pos].0 {
                        Tok::Value(v) => {
                            values.push(v.clone());
                            *pos += 1;
                        }
                        Tok::Open if values.is_empty() && block.is_none() => {
                            *pos += 1;
                            block = Some(parse_block(toks, pos, source, false, line)?);
                        }
                        Tok::Newline | Tok::Close => break,
                        Tok::Name(n) if block.is_some() => {
                            return Err(err(
                                toks[*pos].1,
                                format!("unexpected name {n:?} after a block"),
                            ))
                        }
                        Tok::Name(n) => {
                            return Err(err(
                                toks[*pos].1,
                                format!("name {n:?} where a value of {name:?} was expected"),
                            ))
                        }
                        Tok::Open => {
                            return Err(err(toks[*pos].1, "unexpected \"{\"".into()));
                        }
                    }
                }
                let value = match (block, values.len()) {
                    (Some(b), _) => Value::Mapping(b),
                    (None, 0) => return Err(err(line, format!("{name:?} has no value"))),
                    (None, 1) => values.pop().unwrap_or(Value::Null),
                    (None, _) => Value::Sequence(values),
                };
                insert(&mut map, name.clone(), value);
            }
            Tok::Open => return Err(err(line, "\"{\" without a name".into())),
            Tok::Value(v) => return Err(err(line, format!("value {v:?} without a name"))),
        }
    }
    if !top {
        return Err(err(
            open_line,
            "block opened here is never closed with \"}\"".into(),
        ));
    }
    Ok(map)
}

/// Parses PAF text into a YAML-like tree. `source` names the file in errors.
///
/// ```
/// let v = daf_mappers::paf::parse_paf("a: {\n  b: \"x\"\n  b: y\n  n: 3\n}\n", "t.paf").unwrap();
/// assert_eq!(v["a"]["b"][1].as_str(), Some("y"));
/// assert_eq!(v["a"]["n"].as_i64(), Some(3));
/// ```
pub fn parse_paf(text: &str, source: &str) -> Result<Value, MapperError> {
    let toks = lex(text, source)?;
    let mut pos = 0;
    Ok(Value::Mapping(parse_block(
        &toks, &mut pos, source, true, 0,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_paf("a: 1\nb: {\n c: 2\n", "x.paf")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf:2"), "{e}");
        let e = parse_paf("a: 1\n}\n", "x.paf").unwrap_err().to_string();
        assert!(e.contains("x.paf:2"), "{e}");
        let e = parse_paf("a: \"open\n", "x.paf").unwrap_err().to_string();
        assert!(e.contains("x.paf:1") && e.contains("unterminated"), "{e}");
        let e = parse_paf("a: 1\n\njunk\n", "x.paf")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf:3"), "{e}");
        let e = parse_paf("a:\n", "x.paf").unwrap_err().to_string();
        assert!(e.contains("x.paf:1") && e.contains("no value"), "{e}");
    }

    #[test]
    fn values_and_arrays() {
        let v = parse_paf(
            "#<?cfg paf policy ?>\n# c\nx: 1.5 2 \"s t\" true # tail\ne: {\n}\nr: a\nr: b\n",
            "t",
        )
        .unwrap();
        assert_eq!(v["x"][0].as_f64(), Some(1.5));
        assert_eq!(v["x"][1].as_i64(), Some(2));
        assert_eq!(v["x"][2].as_str(), Some("s t"));
        assert_eq!(v["x"][3].as_bool(), Some(true));
        assert!(v["e"].as_mapping().is_some_and(|m| m.is_empty()));
        assert_eq!(v["r"][0].as_str(), Some("a"));
        assert_eq!(v["r"][1].as_str(), Some("b"));
    }
}
