//! Path templates in Python `%` style: `raw/v%(visit)d_f%(filter)s.fits`.
//!
//! A [`PathTemplate`] is parsed once (at policy load) into literal pieces and
//! fields, so filling it is a single pass with no parsing. Key types come from
//! the conversions (`d i o u x X` → integer, `e E f F g G` → float,
//! `s r c` → string). Values that would escape or break a path (`/`, `..`,
//! NUL) are refused; [`KeyRewrites`] turn values such as the patch `8,6` into
//! `8x6` first. An absolute template is an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fmtspec::FormatSpec;
use daf_base::{DataId, DataIdValue};

use crate::{KeyType, MapperError};

/// One field `%(key)<flags><width>.<precision><conversion>`.
#[derive(Debug, Clone)]
pub struct Field {
    /// The data-id key.
    pub key: String,
    /// The conversion character (`d`, `s`, `f` ...).
    pub conversion: char,
    /// The spec on the printf engine (flags, width, precision, conversion).
    spec: FormatSpec,
}

/// A piece of a parsed template.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Literal text.
    Literal(String),
    /// A field to fill.
    Field(Field),
}

/// Per-key value rewrites applied before a string value enters a path, e.g.
/// `patch: {",": "x"}` turns `8,6` into `8x6`. Policy key: `keyRewrites`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRewrites(pub BTreeMap<String, Vec<(String, String)>>);

impl KeyRewrites {
    /// Applies the rewrites of `key` to `value`.
    pub fn apply<'a>(&self, key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
        match self.0.get(key) {
            None => std::borrow::Cow::Borrowed(value),
            Some(rules) => {
                let mut s = value.to_string();
                for (from, to) in rules {
                    if !from.is_empty() {
                        s = s.replace(from.as_str(), to);
                    }
                }
                std::borrow::Cow::Owned(s)
            }
        }
    }
}

/// A pre-parsed path template.
///
/// ```
/// use daf_mappers::template::{PathTemplate, KeyRewrites};
/// use daf_base::data_id;
/// let t = PathTemplate::parse("raw/raw_v%(visit)d_f%(filter)s.fits.gz").unwrap();
/// let p = t.format(&data_id!{visit: 1, filter: "g"}, &KeyRewrites::default()).unwrap();
/// assert_eq!(p, "raw/raw_v1_fg.fits.gz");
/// ```
#[derive(Debug, Clone)]
pub struct PathTemplate {
    text: String,
    pieces: Vec<Piece>,
    keys: Vec<(String, KeyType)>,
    hdu_key: Option<String>,
    file_pieces: Vec<Piece>,
}

fn key_type(conv: char) -> Option<KeyType> {
    match conv {
        'd' | 'i' | 'o' | 'u' | 'x' | 'X' => Some(KeyType::Int),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => Some(KeyType::Float),
        's' | 'r' | 'c' => Some(KeyType::Str),
        _ => None,
    }
}

impl PathTemplate {
    /// Parses `text`. Errors: an absolute template, an unclosed `%(`, a
    /// missing or unknown conversion, a positional `%d` without a key.
    pub fn parse(text: &str) -> Result<Self, MapperError> {
        let err = |m: String| MapperError::Template {
            template: text.to_string(),
            data_id: DataId::new(),
            message: m,
        };
        if text.starts_with('/') {
            return Err(err(
                "absolute template (must be relative to the root)".into()
            ));
        }
        let b = text.as_bytes();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut keys: Vec<(String, KeyType)> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                let start = i;
                while i < b.len() && b[i] != b'%' {
                    i += 1;
                }
                lit.push_str(&text[start..i]);
                continue;
            }
            if b.get(i + 1) == Some(&b'%') {
                lit.push('%');
                i += 2;
                continue;
            }
            if b.get(i + 1) != Some(&b'(') {
                return Err(err(format!(
                    "conversion without a key at byte {i} (use %(key)d)"
                )));
            }
            let close = text[i + 2..]
                .find(')')
                .map(|p| p + i + 2)
                .ok_or_else(|| err(format!("unclosed %( at byte {i}")))?;
            let key = &text[i + 2..close];
            if key.is_empty() {
                return Err(err(format!("empty key at byte {i}")));
            }
            let mut j = close + 1;
            while j < b.len() && b"-+ #0".contains(&b[j]) {
                j += 1;
            }
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let conv = *b
                .get(j)
                .ok_or_else(|| err(format!("missing conversion for key {key:?}")))?
                as char;
            let kt = key_type(conv)
                .ok_or_else(|| err(format!("unknown conversion %{conv} for key {key:?}")))?;
            let spec_text = format!("%{}", &text[close + 1..=j]);
            let spec = FormatSpec::parse(&spec_text)
                .map_err(|e| err(format!("bad spec {spec_text:?} for key {key:?}: {e}")))?;
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            match keys.iter().find(|(k, _)| k == key) {
                Some((_, t)) if *t != kt => {
                    return Err(err(format!("key {key:?} used with two conversion types")))
                }
                Some(_) => {}
                None => keys.push((key.to_string(), kt)),
            }
            pieces.push(Piece::Field(Field {
                key: key.to_string(),
                conversion: conv,
                spec,
            }));
            i = j + 1;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        // A trailing `[%(hdu)d]` names the HDU within the file.
        let hdu_key = match pieces.as_slice() {
            [.., Piece::Literal(a), Piece::Field(f), Piece::Literal(z)]
                if a.ends_with('[') && z == "]" && key_type(f.conversion) == Some(KeyType::Int) =>
            {
                Some(f.key.clone())
            }
            _ => None,
        };
        // The literal part must not lead out of the root: every field stands
        // for one safe path component, so check the text with each field
        // replaced by a plain name.
        let shape: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.as_str(),
                Piece::Field(_) => "x",
            })
            .collect();
        daf_base::path_safety::check_relative("template", &shape)
            .map_err(|e| err(format!("{}; templates are relative to the root", e.reason)))?;
        let mut file_pieces = pieces.clone();
        if hdu_key.is_some() {
            file_pieces.truncate(file_pieces.len() - 2);
            if let Some(Piece::Literal(l)) = file_pieces.last_mut() {
                l.pop();
                if l.is_empty() {
                    file_pieces.pop();
                }
            }
        }
        Ok(PathTemplate {
            text: text.to_string(),
            pieces,
            keys,
            hdu_key,
            file_pieces,
        })
    }

    /// The template text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed pieces.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The keys in order of first appearance, with their types.
    pub fn keys(&self) -> &[(String, KeyType)] {
        &self.keys
    }

    /// The key of a trailing `[%(hdu)d]`, if the template has one.
    pub fn hdu_key(&self) -> Option<&str> {
        self.hdu_key.as_deref()
    }

    /// The template without a trailing `[...]` HDU part.
    pub fn file_pieces(&self) -> &[Piece] {
        &self.file_pieces
    }

    fn err(&self, data_id: &DataId, m: String) -> MapperError {
        MapperError::Template {
            template: self.text.clone(),
            data_id: data_id.clone(),
            message: m,
        }
    }

    /// Fills the template from `data_id`.
    pub fn format(&self, data_id: &DataId, rewrites: &KeyRewrites) -> Result<String, MapperError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        self.format_pieces(&self.pieces, data_id, rewrites, &mut out)?;
        Ok(out)
    }

    /// Fills `pieces` (of this template) into `out`.
    pub(crate) fn format_pieces(
        &self,
        pieces: &[Piece],
        data_id: &DataId,
        rewrites: &KeyRewrites,
        out: &mut String,
    ) -> Result<(), MapperError> {
        for p in pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Field(f) => {
                    let v = data_id
                        .get(&f.key)
                        .ok_or_else(|| self.err(data_id, format!("missing key {:?}", f.key)))?;
                    self.format_field(f, v, data_id, rewrites, out)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn format_field(
        &self,
        f: &Field,
        v: &DataIdValue,
        data_id: &DataId,
        rewrites: &KeyRewrites,
        out: &mut String,
    ) -> Result<(), MapperError> {
        let start = out.len();
        let r = match (key_type(f.conversion), v) {
            (Some(KeyType::Int), DataIdValue::Int(i)) => f.spec.format_i64(*i, out),
            (Some(KeyType::Int), DataIdValue::Str(s)) => match s.trim().parse::<i64>() {
                Ok(i) => f.spec.format_i64(i, out),
                Err(_) => {
                    return Err(self.err(
                        data_id,
                        format!("key {:?} needs an integer, got {s:?}", f.key),
                    ))
                }
            },
            (Some(KeyType::Int), DataIdValue::Float(x)) if x.fract() == 0.0 && x.is_finite() => {
                f.spec.format_i64(*x as i64, out)
            }
            (Some(KeyType::Float), v) if v.as_f64().is_some() => {
                f.spec.format_f64(v.as_f64().unwrap_or_default(), out)
            }
            (Some(KeyType::Str), v) => {
                let s = match v {
                    DataIdValue::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    other => std::borrow::Cow::Owned(match other {
                        DataIdValue::Int(i) => i.to_string(),
                        DataIdValue::Float(x) => {
                            let mut t = String::new();
                            let _ = write!(t, "{x}");
                            t
                        }
                        DataIdValue::Str(_) => unreachable!(),
                    }),
                };
                let s = rewrites.apply(&f.key, &s);
                f.spec.format_str(&s, out)
            }
            _ => {
                return Err(self.err(
                    data_id,
                    format!(
                        "key {:?} has a {} value for %{}",
                        f.key,
                        v.type_name(),
                        f.conversion
                    ),
                ))
            }
        };
        r.map_err(|e| self.err(data_id, e.to_string()))?;
        let piece = &out[start..];
        if piece.contains('/')
            || piece.contains('\0')
            || piece.contains("..")
            || piece.contains('\n')
            || piece.contains('\r')
            || piece.is_empty()
        {
            let bad = piece.to_string();
            out.truncate(start);
            return Err(self.err(
                data_id,
                format!(
                    "value {bad:?} of key {:?} would break the path (empty, '/', '..', NUL or newline); \
                     add a keyRewrites rule in the policy",
                    f.key
                ),
            ));
        }
        Ok(())
    }

    /// Parses a path produced by this template back into a data id (the HDU
    /// part, if any, is not expected in `path`). `None` if it does not match.
    pub fn parse_path(&self, path: &str) -> Option<DataId> {
        let mut id = DataId::new();
        if match_pieces(self.file_pieces(), path, &mut id) {
            Some(id)
        } else {
            None
        }
    }

    /// A glob pattern for the files of this template: fields whose key is in
    /// `known` are filled in, the others become `*`.
    pub fn glob_pattern(&self, known: &DataId, rewrites: &KeyRewrites) -> String {
        let mut out = String::new();
        for p in self.file_pieces() {
            match p {
                Piece::Literal(s) => {
                    for c in s.chars() {
                        if matches!(c, '*' | '?' | '[' | ']') {
                            out.push('[');
                            out.push(c);
                            out.push(']');
                        } else {
                            out.push(c);
                        }
                    }
                }
                Piece::Field(f) => {
                    let mut tmp = String::new();
                    let filled = known.get(&f.key).is_some_and(|v| {
                        self.format_field(f, v, known, rewrites, &mut tmp).is_ok()
                    });
                    if filled && !tmp.contains(['*', '?', '[', ']']) {
                        out.push_str(&tmp);
                    } else {
                        out.push('*');
                    }
                }
            }
        }
        out
    }
}

/// Matches `s` against pieces with backtracking; fields take the characters
/// their type allows.
fn match_pieces(pieces: &[Piece], s: &str, id: &mut DataId) -> bool {
    match pieces.split_first() {
        None => s.is_empty(),
        Some((Piece::Literal(l), rest)) => {
            s.starts_with(l.as_str()) && match_pieces(rest, &s[l.len()..], id)
        }
        Some((Piece::Field(f), rest)) => {
            let kt = key_type(f.conversion).unwrap_or(KeyType::Str);
            let allowed = |c: char| match kt {
                KeyType::Int => {
                    if matches!(f.conversion, 'x' | 'X') {
                        c.is_ascii_hexdigit() || c == '-' || c == '+' || c == ' '
                    } else {
                        c.is_ascii_digit() || c == '-' || c == '+' || c == ' '
                    }
                }
                KeyType::Float => c.is_ascii_digit() || "+-.eE ".contains(c),
                KeyType::Str => c != '/',
            };
            let max = s.find(|c: char| !allowed(c)).unwrap_or(s.len());
            // Longest match first, then shorter ones.
            let mut ends: Vec<usize> = s[..max]
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .collect();
            ends.reverse();
            for end in ends {
                let text = &s[..end];
                let value = match kt {
                    KeyType::Int => {
                        let t = text.trim();
                        let parsed = match f.conversion {
                            'x' | 'X' => i64::from_str_radix(t, 16).ok(),
                            'o' => i64::from_str_radix(t, 8).ok(),
                            _ => t.parse::<i64>().ok(),
                        };
                        match parsed {
                            Some(v) => DataIdValue::Int(v),
                            None => continue,
                        }
                    }
                    KeyType::Float => match text.trim().parse::<f64>() {
                        Ok(v) => DataIdValue::Float(v),
                        Err(_) => continue,
                    },
                    KeyType::Str => DataIdValue::Str(text.trim_end().to_string()),
                };
                if let Some(prev) = id.get(&f.key) {
                    if *prev != value {
                        continue;
                    }
                    if match_pieces(rest, &s[end..], id) {
                        return true;
                    }
                    continue;
                }
                id.insert(f.key.clone(), value);
                if match_pieces(rest, &s[end..], id) {
                    return true;
                }
                id.remove(&f.key);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daf_base::data_id;

    #[test]
    fn formats_with_widths_and_types() {
        let t = PathTemplate::parse("a/%(visit)07d/%(ccd)02d_%(filter)s_%(x).2f.fits").unwrap();
        assert_eq!(
            t.keys(),
            &[
                ("visit".to_string(), KeyType::Int),
                ("ccd".to_string(), KeyType::Int),
                ("filter".to_string(), KeyType::Str),
                ("x".to_string(), KeyType::Float)
            ]
        );
        let p = t
            .format(
                &data_id! {visit: 42, ccd: 3, filter: "r", x: 1.5},
                &KeyRewrites::default(),
            )
            .unwrap();
        assert_eq!(p, "a/0000042/03_r_1.50.fits");
        assert_eq!(
            t.parse_path("a/0000042/03_r_1.50.fits").unwrap(),
            data_id! {visit: 42, ccd: 3, filter: "r", x: 1.5}
        );
    }

    #[test]
    fn refuses_bad_values_and_absolute() {
        assert!(PathTemplate::parse("/abs/%(v)d").is_err());
        assert!(PathTemplate::parse("a/%(v)").is_err());
        assert!(PathTemplate::parse("a/%(v").is_err());
        assert!(PathTemplate::parse("a/%d").is_err());
        // `..` in the literal part (issue 20)
        for bad in [
            "../../x/v%(visit)d.b",
            "a/../../x/v%(visit)d.b",
            "a/%(visit)d/../../../x",
            "a\nb/%(visit)d",
        ] {
            let e = PathTemplate::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not allowed"), "{bad:?}: {e}");
        }
        assert!(PathTemplate::parse("a..b/v%(visit)d..fits").is_ok());
        let t = PathTemplate::parse("d/%(patch)s.fits").unwrap();
        let none = KeyRewrites::default();
        for bad in ["a/b", "..", "x\0y", "", "a\nb"] {
            assert!(t.format(&data_id! {patch: bad}, &none).is_err(), "{bad:?}");
        }
        let mut rw = KeyRewrites::default();
        rw.0.insert("patch".into(), vec![(",".into(), "x".into())]);
        assert_eq!(
            t.format(&data_id! {patch: "8,6"}, &rw).unwrap(),
            "d/8x6.fits"
        );
    }

    #[test]
    fn hdu_suffix_and_glob() {
        let t = PathTemplate::parse("raw/v%(visit)d_[x]/c%(ccd)02d.fits[%(hdu)d]").unwrap();
        assert_eq!(t.hdu_key(), Some("hdu"));
        assert_eq!(
            t.glob_pattern(&data_id! {visit: 5}, &KeyRewrites::default()),
            "raw/v5_[[]x[]]/c*.fits"
        );
        assert_eq!(
            t.parse_path("raw/v5_[x]/c07.fits").unwrap(),
            data_id! {visit: 5, ccd: 7}
        );
        assert!(t.parse_path("raw/v5_[x]/cab.fits").is_none());
    }
}
