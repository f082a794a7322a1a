//! FITS header cards: parsing, formatting, and conversion to and from
//! [`PropertySet`].
//!
//! Supported: logical, integer, float and string values (quotes doubled, long
//! strings split over `CONTINUE` cards with the `&` convention), `COMMENT` and
//! `HISTORY`, and `HIERARCH` for names that are not standard 8-character
//! keywords. Structural keywords (`SIMPLE`, `BITPIX`, `NAXISn`, `EXTEND`,
//! `PCOUNT`, `GCOUNT`, `XTENSION`, `BZERO`, `BSCALE`, ...) belong to the
//! storage and are never copied into metadata.

use daf_base::{PropertySet, Timescale, Values};

/// Bytes per card.
pub const CARD_LEN: usize = 80;
/// Bytes per FITS block.
pub const BLOCK_LEN: usize = 2880;

/// A card value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `T` / `F`.
    Logical(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A string (quotes unescaped, trailing blanks removed).
    Str(String),
    /// A keyword with no value (`KEY     =` followed by blanks).
    Undefined,
}

impl Value {
    /// The value as text for display (`T`, `42`, `'abc'`).
    pub fn display(&self) -> String {
        match self {
            Value::Logical(b) => if *b { "T" } else { "F" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Str(s) => format!("'{}'", s.replace('\'', "''")),
            Value::Undefined => String::new(),
        }
    }
    /// The value as `f64` when numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    /// The value as `i64` when an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// One logical header card (a `CONTINUE` sequence is one card).
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The keyword (`HIERARCH` stripped), or `COMMENT`, `HISTORY`, `""`.
    pub key: String,
    /// The value; `None` for commentary cards.
    pub value: Option<Value>,
    /// The comment (for commentary cards: the text).
    pub comment: String,
}

impl Card {
    /// A value card.
    pub fn new(key: impl Into<String>, value: Value) -> Self {
        Card {
            key: key.into(),
            value: Some(value),
            comment: String::new(),
        }
    }
    /// A value card with a comment.
    pub fn with_comment(key: impl Into<String>, value: Value, comment: impl Into<String>) -> Self {
        Card {
            key: key.into(),
            value: Some(value),
            comment: comment.into(),
        }
    }
    /// A commentary card (`COMMENT`, `HISTORY` or blank key).
    pub fn commentary(key: impl Into<String>, text: impl Into<String>) -> Self {
        Card {
            key: key.into(),
            value: None,
            comment: text.into(),
        }
    }
}

/// Keywords that describe the data layout; they are managed by the storage.
pub fn is_structural(key: &str) -> bool {
    const FIXED: [&str; 15] = [
        "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "XTENSION", "BZERO", "BSCALE",
        "END", "TFIELDS", "THEAP", "GROUPS", "BLANK", "LONGSTRN",
    ];
    if FIXED.contains(&key) {
        return true;
    }
    let numbered = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    [
        "NAXIS", "TTYPE", "TFORM", "TUNIT", "TDOC", "TNULL", "TSCAL", "TZERO", "TDIM", "TDISP",
        "TBCOL", "TCCLS",
    ]
    .iter()
    .any(|p| numbered(p))
}

/// Keywords of a World Coordinate System (FITS WCS papers I–III, SIP), with
/// or without an alternate-description letter: they belong in the header of
/// the image they describe.
pub fn is_wcs_key(key: &str) -> bool {
    let k = key
        .strip_suffix(|c: char| c.is_ascii_uppercase())
        .filter(|k| k.ends_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(key);
    const PLAIN: [&str; 10] = [
        "WCSAXES", "RADESYS", "RADECSYS", "EQUINOX", "EPOCH", "LONPOLE", "LATPOLE", "WCSNAME",
        "A_ORDER", "B_ORDER",
    ];
    if PLAIN.contains(&k) || PLAIN.contains(&key) || key == "AP_ORDER" || key == "BP_ORDER" {
        return true;
    }
    let numbered = |p: &str| {
        k.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
    };
    [
        "CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CD", "PC", "PV", "PS",
    ]
    .iter()
    .any(|p| numbered(p))
        || ["A_", "B_", "AP_", "BP_"].iter().any(|p| numbered(p))
}

/// The axis indices a WCS keyword refers to (`CRPIX2` → 2, `CD1_2A` → 2)
/// and its alternate-description letter (`' '` for the primary one).
fn wcs_axis(key: &str) -> Option<(usize, char)> {
    if !is_wcs_key(key) {
        return None;
    }
    let (base, alt) = match key.chars().last() {
        Some(c) if c.is_ascii_uppercase() => (&key[..key.len() - 1], c),
        _ => (key, ' '),
    };
    let digits = base.trim_start_matches(|c: char| c.is_ascii_uppercase());
    if digits.is_empty() || base.starts_with("A_") || base.starts_with("B_") {
        return None;
    }
    let mut parts = digits.split('_').map(|d| d.parse::<usize>().ok());
    let first = parts.next()??;
    // PVi_m / PSi_m: only i is an axis.
    let second = if base.starts_with("PV") || base.starts_with("PS") {
        None
    } else {
        parts.next().flatten()
    };
    Some((first.max(second.unwrap_or(0)), alt))
}

/// `WCSAXES` (or `WCSAXESa`) cards for a header of `naxis` axes whose WCS
/// keywords name more axes than it has (a catalog's WCS in a data-less
/// primary): without them fitsverify warns that the index is out of range
/// (FITS 4.0 sec. 8.2). A description that already has one is left alone.
pub fn wcsaxes_cards(naxis: usize, cards: &[Card]) -> Vec<Card> {
    let mut need: std::collections::BTreeMap<char, usize> = Default::default();
    for c in cards {
        if let Some((n, alt)) = wcs_axis(&c.key) {
            let e = need.entry(alt).or_default();
            *e = (*e).max(n);
        }
    }
    need.into_iter()
        .filter(|&(alt, n)| {
            let key = format!("WCSAXES{}", alt.to_string().trim());
            n > naxis && !cards.iter().any(|c| c.key == key)
        })
        .map(|(alt, n)| {
            Card::new(
                format!("WCSAXES{}", alt.to_string().trim()),
                Value::Int(n as i64),
            )
        })
        .collect()
}

/// Parses the cards of one header (up to and excluding `END`). Text that is
/// not a well-formed value is kept as a string so no card is lost.
pub fn parse_cards(raw: &[u8]) -> Vec<Card> {
    let mut cards: Vec<Card> = Vec::new();
    // Index of the card that ended in '&' and awaits CONTINUE cards.
    let mut open_long: Option<usize> = None;
    for chunk in raw.chunks(CARD_LEN) {
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (32..127).contains(&b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect();
        let key8 = text.get(..8.min(text.len())).unwrap_or("").trim_end();
        if key8 == "END" {
            break;
        }
        if key8 == "CONTINUE" {
            if let Some(i) = open_long {
                let (v, comment) = parse_value(text.get(8..).unwrap_or(""));
                if let Some(Value::Str(s)) = v {
                    if let Some(Value::Str(prev)) = cards[i].value.as_mut() {
                        prev.pop(); // the '&'
                        let more = s.ends_with('&');
                        prev.push_str(&s);
                        if !comment.is_empty() {
                            if !cards[i].comment.is_empty() {
                                cards[i].comment.push(' ');
                            }
                            cards[i].comment.push_str(&comment);
                        }
                        if !more {
                            open_long = None;
                        }
                        continue;
                    }
                }
            }
            open_long = None;
            cards.push(Card::commentary(
                "CONTINUE",
                text.get(8..).unwrap_or("").trim_end(),
            ));
            continue;
        }
        open_long = None;
        let card = if key8 == "HIERARCH" {
            let rest = text.get(8..).unwrap_or("");
            match rest.find('=') {
                Some(eq) => {
                    let key = rest[..eq].trim().to_string();
                    let (v, comment) = parse_value(&rest[eq + 1..]);
                    Card {
                        key,
                        value: Some(v.unwrap_or(Value::Undefined)),
                        comment,
                    }
                }
                None => Card::commentary("HIERARCH", rest.trim_end()),
            }
        } else if text.get(8..10) == Some("= ") || (text.len() >= 9 && text.get(8..9) == Some("="))
        {
            let (v, comment) = parse_value(text.get(9..).unwrap_or(""));
            Card {
                key: key8.trim().to_string(),
                value: Some(v.unwrap_or(Value::Undefined)),
                comment,
            }
        } else {
            Card::commentary(key8.trim(), text.get(8..).unwrap_or("").trim_end())
        };
        if let Some(Value::Str(s)) = &card.value {
            if s.ends_with('&') {
                open_long = Some(cards.len());
            }
        }
        cards.push(card);
    }
    cards
}

/// Parses the value field (after `=`) into a value and a comment.
fn parse_value(field: &str) -> (Option<Value>, String) {
    let t = field.trim_start();
    if let Some(rest) = t.strip_prefix('\'') {
        let mut s = String::new();
        let mut chars = rest.char_indices().peekable();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if matches!(chars.peek(), Some((_, '\''))) {
                    s.push('\'');
                    chars.next();
                } else {
                    end = i + 1;
                    break;
                }
            } else {
                s.push(c);
            }
        }
        let after = &rest[end.min(rest.len())..];
        let comment = after
            .find('/')
            .map(|p| after[p + 1..].trim().to_string())
            .unwrap_or_default();
        // Trailing blanks are not significant, but a value of blanks only
        // is a blank, not the empty string (FITS 4.0 sec. 4.2.1.1).
        let s = match s.trim_end() {
            "" if !s.is_empty() => " ".to_string(),
            t => t.to_string(),
        };
        return (Some(Value::Str(s)), comment);
    }
    let (v, comment) = match t.find('/') {
        Some(p) => (t[..p].trim(), t[p + 1..].trim().to_string()),
        None => (t.trim(), String::new()),
    };
    let value = if v.is_empty() {
        Value::Undefined
    } else if v == "T" {
        Value::Logical(true)
    } else if v == "F" {
        Value::Logical(false)
    } else if let Ok(i) = v.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = v.replace(['D', 'd'], "E").parse::<f64>() {
        Value::Float(f)
    } else {
        Value::Str(v.to_string())
    };
    (Some(value), comment)
}

/// Formats a float in FITS style: always a decimal point or an exponent
/// with an upper-case `E`, shortest form that reads back exactly.
pub fn format_float(v: f64) -> String {
    let mut s = format!("{v:?}").replace('e', "E");
    if s.contains("inf") || s.contains("NaN") {
        return s;
    }
    if let Some(p) = s.find('E') {
        if !s[..p].contains('.') {
            s.insert_str(p, ".0");
        }
    } else if !s.contains('.') {
        s.push_str(".0");
    }
    if s.len() > 20 {
        // Shortest exact exponent form; longer than 20 columns is still
        // valid free format.
        s = format!("{v:E}");
        if let Some(p) = s.find('E') {
            if !s[..p].contains('.') {
                s.insert_str(p, ".0");
            }
        }
    }
    s
}

/// True for a standard keyword (1–8 of `A-Z 0-9 - _`).
fn is_standard_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 8
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Checks that `text` (the `what` of keyword `key`) holds only the printable
/// ASCII a FITS header allows (FITS 4.0 sec. 4.1.2.3 and 4.2.1.1): nothing is
/// replaced silently.
fn check_text(key: &str, what: &str, text: &str) -> Result<(), String> {
    match text.char_indices().find(|(_, c)| !(' '..='~').contains(c)) {
        None => Ok(()),
        Some((i, c)) => Err(format!(
            "keyword {key:?}: {what} holds {c:?} (U+{:04X}) at byte {i}; FITS headers allow only printable ASCII",
            c as u32
        )),
    }
}

/// How LSST afw writes a non-finite real header value: the string `NAN`,
/// `+INF` or `-INF` (the FITS standard has no text for them).
pub fn non_finite_text(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NAN")
    } else if v == f64::INFINITY {
        Some("+INF")
    } else if v == f64::NEG_INFINITY {
        Some("-INF")
    } else {
        None
    }
}

/// Splits commentary text into pieces of at most 72 characters, at a blank
/// where there is one (as astropy does), so every piece fits one card.
fn split_commentary(text: &str) -> Vec<&str> {
    const ROOM: usize = CARD_LEN - 8;
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > ROOM {
        let cut = rest[..ROOM]
            .rfind(' ')
            .filter(|&p| p > 0)
            .map_or(ROOM, |p| p + 1);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

fn pad_card(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let n = b.len().min(CARD_LEN);
    out.extend_from_slice(&b[..n]);
    out.extend(std::iter::repeat_n(b' ', CARD_LEN - n));
}

/// Formats one card as one or more 80-byte records appended to `out`.
/// Errors when a keyword cannot fit on a card.
pub fn format_card(card: &Card, out: &mut Vec<u8>) -> Result<(), String> {
    let key = card.key.clone();
    check_text(&key, "the keyword", &key)?;
    let Some(value) = &card.value else {
        // Commentary: split long text over several cards, at blanks.
        let text = &card.comment;
        check_text(&key, "the text", text)?;
        let k = key.clone();
        if k.len() > 8 {
            return Err(format!("commentary keyword {k:?} longer than 8 characters"));
        }
        for c in split_commentary(text) {
            pad_card(&format!("{k:<8}{c}"), out);
        }
        return Ok(());
    };
    let prefix = if is_standard_key(&key) {
        format!("{key:<8}= ")
    } else {
        if key.contains('=') {
            return Err(format!("keyword {key:?} contains '='"));
        }
        format!("HIERARCH {key} = ")
    };
    if prefix.len() > 60 {
        return Err(format!("keyword {key:?} is too long for a FITS card"));
    }
    check_text(&key, "the comment", &card.comment)?;
    let comment = card.comment.clone();
    let add_comment = |line: &mut String| {
        if !comment.is_empty() && line.len() + 3 < CARD_LEN {
            line.push_str(" / ");
            line.push_str(&comment);
        }
    };
    match value {
        Value::Str(s) => {
            check_text(&key, "the value", s)?;
            if s.ends_with(' ') && s != " " {
                return Err(format!(
                    "keyword {key:?}: the value {s:?} ends in blanks, which FITS does not keep (FITS 4.0 sec. 4.2.1.1: trailing blanks are not significant); trim it"
                ));
            }
            let escaped = s.replace('\'', "''");
            let first_room = CARD_LEN - prefix.len() - 2; // quotes
            if escaped.len() <= first_room {
                // The null string is '' (a padded one would read as a blank).
                let mut line = if escaped.is_empty() {
                    format!("{prefix}''")
                } else {
                    format!("{prefix}'{escaped:<8}'")
                };
                add_comment(&mut line);
                pad_card(&line, out);
                return Ok(());
            }
            // Long string: pieces ending in '&' continued on CONTINUE cards.
            let mut pieces = Vec::new();
            let mut rest = escaped.as_str();
            let mut room = first_room - 1;
            while !rest.is_empty() {
                let mut cut = rest.len().min(room);
                // Never split a doubled quote.
                let quotes = rest[..cut]
                    .bytes()
                    .rev()
                    .take_while(|&b| b == b'\'')
                    .count();
                if cut < rest.len() && quotes % 2 == 1 {
                    cut -= 1;
                }
                pieces.push(&rest[..cut]);
                rest = &rest[cut..];
                room = CARD_LEN - 10 - 2 - 1;
            }
            let n = pieces.len();
            for (i, p) in pieces.into_iter().enumerate() {
                let amp = if i + 1 < n { "&" } else { "" };
                let mut line = if i == 0 {
                    format!("{prefix}'{p}{amp}'")
                } else {
                    format!("CONTINUE  '{p}{amp}'")
                };
                if i + 1 == n {
                    add_comment(&mut line);
                }
                pad_card(&line, out);
            }
            Ok(())
        }
        Value::Float(f) if !f.is_finite() => {
            // As LSST afw writes them: a string the reader turns back into
            // the real value (see `cards_to_property_set`).
            let text = non_finite_text(*f).expect("not finite");
            let c = Card::with_comment(card.key.clone(), Value::Str(text.into()), comment.clone());
            format_card(&c, out)
        }
        other => {
            let v = match other {
                Value::Undefined => String::new(),
                v => v.display(),
            };
            let mut line = if prefix.starts_with("HIERARCH") || v.is_empty() {
                format!("{prefix}{v}")
            } else {
                format!("{prefix}{v:>20}")
            };
            if line.len() > CARD_LEN {
                return Err(format!("card {key:?} is longer than 80 characters"));
            }
            add_comment(&mut line);
            pad_card(&line, out);
            Ok(())
        }
    }
}

/// Formats cards followed by `END`, padded with blanks to whole blocks.
/// When a long string needed `CONTINUE` cards, a `LONGSTRN = 'OGIP 1.0'`
/// card declares the convention (as cfitsio does).
pub fn format_header(cards: &[Card]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(BLOCK_LEN);
    let mut continued = false;
    for c in cards {
        let before = out.len();
        format_card(c, &mut out)?;
        continued |= c.value.is_some() && out.len() - before > CARD_LEN;
    }
    if continued {
        format_card(
            &Card::with_comment(
                "LONGSTRN",
                Value::Str("OGIP 1.0".into()),
                "The OGIP long string convention may be used",
            ),
            &mut out,
        )?;
    }
    pad_card("END", &mut out);
    let rem = out.len() % BLOCK_LEN;
    if rem != 0 {
        out.extend(std::iter::repeat_n(b' ', BLOCK_LEN - rem));
    }
    Ok(out)
}

/// The non-structural cards of a header as a [`PropertySet`]: repeated
/// keywords become arrays, `COMMENT`/`HISTORY` string arrays, integers `i32`
/// when they fit (else `i64`), reals `f64`. Undefined values and blank
/// commentary are skipped, and so is any keyword for which `skip` is true.
pub fn cards_to_property_set(cards: &[Card], skip: impl Fn(&str) -> bool) -> PropertySet {
    let mut ps = PropertySet::new();
    for c in cards {
        if is_structural(&c.key) || skip(&c.key) {
            continue;
        }
        let v: Values = match &c.value {
            None if c.key == "COMMENT" || c.key == "HISTORY" => c.comment.trim_end().into(),
            None => continue,
            Some(Value::Logical(b)) => (*b).into(),
            Some(Value::Int(i)) => match i32::try_from(*i) {
                Ok(i) => i.into(),
                Err(_) => (*i).into(),
            },
            Some(Value::Float(f)) => (*f).into(),
            // afw's text for non-finite reals
            Some(Value::Str(s)) if matches!(s.as_str(), "NAN" | "+INF" | "-INF") => {
                match s.as_str() {
                    "NAN" => f64::NAN.into(),
                    "+INF" => f64::INFINITY.into(),
                    _ => f64::NEG_INFINITY.into(),
                }
            }
            Some(Value::Str(s)) => s.as_str().into(),
            Some(Value::Undefined) => continue,
        };
        let added = ps.add(&c.key, v.clone());
        if added.is_err() {
            // Type changed between repeats, or an odd name: keep the last value.
            let _ = ps.set(&c.key, v);
        }
    }
    ps
}

/// The cards for every leaf of `ps` (dotted names; arrays become repeated
/// cards). Structural keywords in `ps` are skipped.
pub fn property_set_to_cards(ps: &PropertySet) -> Vec<Card> {
    let mut cards = Vec::new();
    for name in ps.param_names() {
        if is_structural(&name) {
            continue;
        }
        let Some(values) = ps.values(&name) else {
            continue;
        };
        let commentary = name == "COMMENT" || name == "HISTORY";
        for i in 0..values.len() {
            let v = match values {
                Values::Bool(v) => Value::Logical(v[i]),
                Values::I8(v) => Value::Int(v[i] as i64),
                Values::U8(v) => Value::Int(v[i] as i64),
                Values::I16(v) => Value::Int(v[i] as i64),
                Values::U16(v) => Value::Int(v[i] as i64),
                Values::I32(v) => Value::Int(v[i] as i64),
                Values::U32(v) => Value::Int(v[i] as i64),
                Values::I64(v) => Value::Int(v[i]),
                Values::U64(v) => match i64::try_from(v[i]) {
                    Ok(x) => Value::Int(x),
                    Err(_) => Value::Float(v[i] as f64),
                },
                // Shortest f32 text, so 0.1f32 is written as 0.1.
                Values::F32(v) => Value::Float(v[i].to_string().parse().unwrap_or(v[i] as f64)),
                Values::F64(v) => Value::Float(v[i]),
                Values::String(v) => Value::Str(v[i].clone()),
                Values::DateTime(v) => Value::Str(v[i].to_iso(Timescale::Utc)),
                Values::PropertySet(_) => continue,
            };
            if commentary {
                let text = match v {
                    Value::Str(s) => s,
                    other => other.display(),
                };
                cards.push(Card::commentary(name.clone(), text));
            } else {
                cards.push(Card::new(name.clone(), v));
            }
        }
    }
    cards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(card: &Card) -> Vec<u8> {
        let mut out = Vec::new();
        format_card(card, &mut out).unwrap();
        out
    }

    #[test]
    fn fixed_format_values() {
        let b = one(&Card::with_comment(
            "EXPTIME",
            Value::Float(15.0),
            "seconds",
        ));
        let s = std::str::from_utf8(&b).unwrap();
        assert_eq!(&s[..30], "EXPTIME =                 15.0");
        assert!(s.contains(" / seconds"));
        let b = one(&Card::new("FILTER", Value::Str("g".into())));
        assert_eq!(&b[..20], b"FILTER  = 'g       '");
    }

    #[test]
    fn quotes_continue_hierarch_round_trip() {
        let long = "x'y ".repeat(60);
        let cards = vec![
            Card::new("OBJECT", Value::Str("it's".into())),
            Card::new("LONGSTR", Value::Str(long.trim_end().into())),
            Card::new("very.long.name.here", Value::Int(-3)),
            Card::new("FLAG", Value::Logical(false)),
            Card::new("BIG", Value::Float(-1.2345678901234567e-100)),
            Card::commentary("COMMENT", "hello"),
            Card::commentary("HISTORY", "y".repeat(100)),
        ];
        let bytes = format_header(&cards).unwrap();
        assert_eq!(bytes.len() % BLOCK_LEN, 0);
        let back = parse_cards(&bytes);
        assert_eq!(back[0].value, Some(Value::Str("it's".into())));
        assert_eq!(back[1].value, Some(Value::Str(long.trim_end().into())));
        assert_eq!(back[2].key, "very.long.name.here");
        assert_eq!(back[2].value, Some(Value::Int(-3)));
        assert_eq!(back[3].value, Some(Value::Logical(false)));
        assert_eq!(back[4].value, Some(Value::Float(-1.2345678901234567e-100)));
        assert_eq!(back[5].comment, "hello");
        let ps = cards_to_property_set(&back, |_| false);
        assert_eq!(ps.get::<i32>("very.long.name.here").unwrap(), -3);
        assert_eq!(
            ps.get_array::<String>("HISTORY").unwrap().concat(),
            "y".repeat(100)
        );
    }

    #[test]
    fn property_set_round_trip_skips_structural() {
        let mut ps = PropertySet::new();
        ps.set("NAXIS", 2).unwrap();
        ps.set("GAIN", 1.7741f32).unwrap();
        ps.set("BIGINT", 1i64 << 40).unwrap();
        ps.set("NAMES", vec!["a".to_string(), "b".to_string()])
            .unwrap();
        let cards = property_set_to_cards(&ps);
        assert_eq!(cards.len(), 4);
        let back = cards_to_property_set(&parse_cards(&format_header(&cards).unwrap()), |_| false);
        assert!(!back.exists("NAXIS"));
        assert_eq!(back.get::<f64>("GAIN").unwrap(), 1.7741);
        assert_eq!(back.get::<i64>("BIGINT").unwrap(), 1 << 40);
        assert_eq!(back.get_array::<String>("NAMES").unwrap(), vec!["a", "b"]);
    }
}

#[cfg(test)]
mod hygiene_tests {
    use super::*;

    #[test]
    fn non_ascii_and_control_characters_are_refused_naming_the_key() {
        for (card, what) in [
            (Card::new("OBJECT", Value::Str("caf\u{e9}".into())), "value"),
            (Card::new("OBSERVER", Value::Str("a\tb".into())), "value"),
            (Card::commentary("COMMENT", "line\nbreak"), "text"),
            (
                Card::with_comment("EXPTIME", Value::Float(1.0), "\u{b5}s"),
                "comment",
            ),
            (Card::new("na\u{ef}ve.key", Value::Int(1)), "keyword"),
        ] {
            let e = format_header(std::slice::from_ref(&card)).unwrap_err();
            assert!(e.contains(&format!("{:?}", card.key)), "{e}");
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn non_finite_reals_are_written_as_afw_does_and_read_back() {
        let mut ps = PropertySet::new();
        ps.set("A", f64::NAN).unwrap();
        ps.set("B", f64::INFINITY).unwrap();
        ps.set("C", f64::NEG_INFINITY).unwrap();
        let bytes = format_header(&property_set_to_cards(&ps)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("A       = 'NAN     '"), "{text}");
        assert!(text.contains("B       = '+INF    '"));
        assert!(text.contains("C       = '-INF    '"));
        let back = cards_to_property_set(&parse_cards(&bytes), |_| false);
        assert!(back.get::<f64>("A").unwrap().is_nan());
        assert_eq!(back.get::<f64>("B").unwrap(), f64::INFINITY);
        assert_eq!(back.get::<f64>("C").unwrap(), f64::NEG_INFINITY);
    }

    #[test]
    fn blanks_in_strings_follow_the_standard() {
        // Leading blanks and a lone blank are kept; trailing blanks, which
        // FITS drops, are refused rather than lost silently.
        let cards = vec![
            Card::new("LEAD", Value::Str("  x".into())),
            Card::new("BLANK1", Value::Str(" ".into())),
            Card::new("EMPTY", Value::Str(String::new())),
        ];
        let back = parse_cards(&format_header(&cards).unwrap());
        assert_eq!(back[0].value, Some(Value::Str("  x".into())));
        assert_eq!(back[1].value, Some(Value::Str(" ".into())));
        assert_eq!(back[2].value, Some(Value::Str(String::new())));
        let e = format_header(&[Card::new("TAIL", Value::Str("abc  ".into()))]).unwrap_err();
        assert!(
            e.contains("\"TAIL\"") && e.contains("trailing blanks"),
            "{e}"
        );
    }

    #[test]
    fn long_commentary_is_split_at_blanks_into_whole_cards() {
        let words = "lorem ipsum dolor sit amet ".repeat(8);
        let words = words.trim_end();
        let bytes = format_header(&[Card::commentary("HISTORY", words)]).unwrap();
        let back = parse_cards(&bytes);
        let pieces: Vec<&str> = back
            .iter()
            .filter(|c| c.key == "HISTORY")
            .map(|c| c.comment.as_str())
            .collect();
        assert_eq!(pieces.len(), 4, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.len() <= 72));
        // no word is cut in two
        assert_eq!(
            pieces.join(" ").split(' ').count(),
            words.split(' ').count()
        );
        assert_eq!(pieces.join(" "), words);
    }
}

#[cfg(test)]
mod wcs_tests {
    use super::is_wcs_key;
    #[test]
    fn wcs_keys() {
        for k in [
            "CTYPE1", "CRVAL2A", "CD1_2", "PC2_1", "PV1_3", "RADESYS", "A_ORDER", "A_0_2",
            "BP_1_1", "EQUINOX",
        ] {
            assert!(is_wcs_key(k), "{k}");
        }
        for k in [
            "FILTER", "CD", "CRVAL", "EXPTIME", "AIRMASS", "OBSID", "A_X",
        ] {
            assert!(!is_wcs_key(k), "{k}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any printable string (quotes, slashes, long) and any finite
        /// number survive PropertySet -> cards -> bytes -> cards -> PropertySet.
        #[test]
        fn values_round_trip(
            s in "[ -~]{0,200}",
            i in any::<i64>(),
            f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
            b in any::<bool>(),
            key in "[A-Z][A-Z0-9_-]{0,7}|[a-z][a-z0-9 ]{8,30}[a-z]",
        ) {
            let s = s.trim_end().to_string();
            let mut ps = PropertySet::new();
            ps.set("STR", s.as_str()).unwrap();
            ps.set("INT", i).unwrap();
            ps.set("FLT", f).unwrap();
            ps.set("LOG", b).unwrap();
            ps.set(&format!("X{key}"), 7).unwrap();
            let bytes = format_header(&property_set_to_cards(&ps)).unwrap();
            prop_assert_eq!(bytes.len() % BLOCK_LEN, 0);
            let back = cards_to_property_set(&parse_cards(&bytes), |_| false);
            prop_assert_eq!(back.get::<String>("STR").unwrap(), s);
            prop_assert_eq!(back.get_as_i64("INT").unwrap(), i);
            prop_assert_eq!(back.get::<f64>("FLT").unwrap(), f);
            prop_assert_eq!(back.get::<bool>("LOG").unwrap(), b);
            prop_assert_eq!(back.get_as_i64(&format!("X{key}")).unwrap(), 7);
        }

        /// Arbitrary bytes never make the card parser panic.
        #[test]
        fn parse_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse_cards(&raw);
        }
    }
}
