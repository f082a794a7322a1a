//! Location templates as the IO and symlink stages write them:
//! `%FMT(key)`, e.g. `%(output)/PS-%(field).boost` or `raw-e%03d(snap).fits`.
//!
//! A key is looked up first in the global location map, then in the
//! additional data. Integers are formatted printf-style with `FMT` (`%d`,
//! `%03d`, `%5d`, `%x` ...; plain when `FMT` is empty); other values are
//! inserted as text and `FMT` is ignored. In a Python-style `%(x)s` the
//! trailing `s` stays literal, as in LSST.

use daf_base::PropertySet;

use crate::error::HarnessError;
use crate::Result;

/// Fills `template` from `map` (first) and `additional` (second).
///
/// ```
/// use daf_base::PropertySet;
/// use daf_harness::location::fill;
/// let mut map = PropertySet::new();
/// map.set("output", "/out").unwrap();
/// let mut ad = PropertySet::new();
/// ad.set("snap", 7i64).unwrap();
/// ad.set("field", "D4").unwrap();
/// assert_eq!(fill("%(output)/%(field)/e%03d(snap).fits", &map, &ad).unwrap(), "/out/D4/e007.fits");
/// assert!(fill("%(nope)", &map, &ad).unwrap_err().to_string().contains("Unknown substitution: nope"));
/// ```
pub fn fill(template: &str, map: &PropertySet, additional: &PropertySet) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        match parse_ref(after) {
            Some((fmt, key, len)) => {
                out.push_str(&substitute(template, fmt, key, map, additional)?);
                rest = &after[len..];
            }
            None => {
                out.push('%');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// At a `%`: returns (format, key, consumed length) for `%FMT(key)`.
fn parse_ref(s: &str) -> Option<(&str, &str, usize)> {
    let open = s.find('(')?;
    let fmt = &s[..open];
    if fmt[1..].contains('%') {
        return None;
    }
    let close = s[open..].find(')')? + open;
    let key = &s[open + 1..close];
    if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some((fmt, key, close + 1))
}

fn substitute(
    template: &str,
    fmt: &str,
    key: &str,
    map: &PropertySet,
    additional: &PropertySet,
) -> Result<String> {
    let vals = map
        .values(key)
        .or_else(|| additional.values(key))
        .ok_or_else(|| HarnessError::UnknownSubstitution { key: key.into() })?;
    let last = vals.len().saturating_sub(1);
    if let Some(i) = vals.as_i64_at(last) {
        return format_int(template, fmt, i);
    }
    vals.text_at(last)
        .ok_or_else(|| HarnessError::UnknownSubstitution { key: key.into() })
}

/// printf-style integer formatting of `%[-0][width][d|i|u|x|X|o]`.
fn format_int(template: &str, fmt: &str, v: i64) -> Result<String> {
    let spec = &fmt[1..];
    if spec.is_empty() {
        return Ok(v.to_string());
    }
    let bad = || HarnessError::BadTemplate {
        template: template.into(),
        message: format!("unsupported integer format %{spec}"),
    };
    let mut chars = spec.chars().peekable();
    let (mut left, mut zero) = (false, false);
    while let Some(&c) = chars.peek() {
        match c {
            '-' => left = true,
            '0' => zero = true,
            _ => break,
        }
        chars.next();
    }
    let mut width = 0usize;
    while let Some(&c) = chars.peek() {
        match c.to_digit(10) {
            Some(d) if width < 1000 => width = width * 10 + d as usize,
            Some(_) => return Err(bad()),
            None => break,
        }
        chars.next();
    }
    let conv = chars.next().ok_or_else(bad)?;
    if chars.next().is_some() {
        return Err(bad());
    }
    let body = match conv {
        'd' | 'i' | 'u' => v.to_string(),
        'x' => format!("{v:x}"),
        'X' => format!("{v:X}"),
        'o' => format!("{v:o}"),
        _ => return Err(bad()),
    };
    Ok(if body.len() >= width {
        body
    } else if left {
        format!("{body:<width$}")
    } else if zero {
        match body.strip_prefix('-') {
            Some(d) => format!("-{d:0>w$}", w = width - 1),
            None => format!("{body:0>width$}"),
        }
    } else {
        format!("{body:>width$}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_precedence() {
        let mut map = PropertySet::new();
        map.set("input", "tests").unwrap();
        let mut ad = PropertySet::new();
        ad.set("input", "ignored").unwrap();
        ad.set("visit", 85751839i64).unwrap();
        ad.set("snap", 0i32).unwrap();
        ad.set("neg", -5i64).unwrap();
        ad.set("x", 1.5f64).unwrap();
        let f = |t: &str| fill(t, &map, &ad).unwrap();
        assert_eq!(
            f("%(input)/imsim_%(visit)_E%03d(snap).fits"),
            "tests/imsim_85751839_E000.fits"
        );
        assert_eq!(f("%(visit)s"), "85751839s");
        assert_eq!(f("%5d(snap)|%-3d(snap)|%04d(neg)"), "    0|0  |-005");
        assert_eq!(f("%x(visit)"), "51c781f");
        assert_eq!(f("%(x)"), "1.5");
        assert_eq!(f("100% done"), "100% done");
        assert!(matches!(
            fill("%q(snap)", &map, &ad),
            Err(HarnessError::BadTemplate { .. })
        ));
    }
}
