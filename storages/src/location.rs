//! [`LogicalLocation`]: a storage location, possibly filled from a template.
//!
//! A location template such as `raw/v%d(visit)/c%03d(ccd).fits` holds
//! substitutions `%<spec>(<key>)`. They are found exactly as LSST's
//! `daf_persistence` found them with the regular expression
//! `(%.*?)\((\w+?)\)`, searched left to right:
//!
//! * the spec starts at the leftmost `%` and extends (non-greedily, over any
//!   characters) up to the first `(` that is followed by one or more word
//!   characters (`[A-Za-z0-9_]`) and a `)`; those word characters are the key.
//!   Keys have no dots, so nested names such as `a.b` cannot be substituted;
//! * there is no escaping: `%%` is not special, and a stray `%` earlier in the
//!   text is swallowed into the next spec (`50% %(x)` has the spec `% %`);
//! * text between and after substitutions is copied verbatim; a template with
//!   no substitution is the location itself.
//!
//! Each key is looked up first in the **location map**, then in the
//! **additional data** (both [`PropertySet`]s passed by the caller; LSST kept
//! the map in a process global, daf passes it as a value). A key in neither is
//! the error `Unknown substitution: KEY`. An array property uses its last
//! value. Then:
//!
//! * an **integer** value is formatted by the spec with the C-printf engine
//!   [`daf_base::printf`] (`%04d` → `0042`; the spec `%` alone means plain
//!   decimal). LSST accepted only C `int`; daf accepts every PropertySet
//!   integer width (`i8` … `u64`). A float conversion (`%.1f`) formats the
//!   integer as a float, and `%s` prints it in decimal;
//! * a **string** value is inserted as it is, the spec ignored (`%10s(k)`
//!   inserts the raw string);
//! * any **other type** (bool, floats, DateTime, nested sets) is an error, as
//!   is a spec the printf engine rejects when the value is an integer.
//!
//! ```
//! use daf_base::PropertySet;
//! use daf_storages::LogicalLocation;
//!
//! let mut data = PropertySet::new();
//! data.set("visit", 85470982_i64).unwrap();
//! data.set("ccd", 7).unwrap();
//! data.set("filter", "r").unwrap();
//! let loc = LogicalLocation::new("raw/v%d(visit)-f%(filter)/c%03d(ccd).fits", Some(&data), None)
//!     .unwrap();
//! assert_eq!(loc.loc_str(), "raw/v85470982-fr/c007.fits");
//! ```
//!
//! To fill one template many times, parse it once into a [`LocationTemplate`].

use std::fmt;
use std::path::Path;

use daf_base::printf::{FormatSpec, PrintfArg, PrintfError};
use daf_base::{PropertySet, Values};
use thiserror::Error;

use crate::StorageError;

/// Why a location template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The key is neither in the location map nor in the additional data.
    #[error("Unknown substitution: {key}")]
    UnknownSubstitution {
        /// The key.
        key: String,
    },
    /// The key's value is neither an integer nor a string.
    #[error("Substitution {key}: cannot substitute a value of type {actual} (only integers and strings)")]
    UnsupportedType {
        /// The key.
        key: String,
        /// The value's type name.
        actual: &'static str,
    },
    /// The key holds an empty value array.
    #[error("Substitution {key}: the property holds no values")]
    Empty {
        /// The key.
        key: String,
    },
    /// The spec could not format the key's integer value.
    #[error("Substitution {key}: {source}")]
    Format {
        /// The key.
        key: String,
        /// The printf engine's error (names the spec).
        #[source]
        source: PrintfError,
    },
}

/// How one substitution formats an integer.
#[derive(Debug, Clone, PartialEq)]
enum IntFormat {
    /// The spec `%` alone: plain decimal.
    Plain,
    /// A printf spec.
    Spec(FormatSpec),
    /// A spec the printf engine rejected; an error only if the value is an
    /// integer (strings ignore the spec).
    Invalid(PrintfError),
}

impl IntFormat {
    fn parse(spec: &str) -> IntFormat {
        if spec == "%" {
            IntFormat::Plain
        } else {
            match FormatSpec::parse(spec) {
                Ok(s) => IntFormat::Spec(s),
                Err(e) => IntFormat::Invalid(e),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Literal text: a byte range of the template.
    Text(usize, usize),
    /// A substitution: the key's byte range and the integer format.
    Subst {
        key: (usize, usize),
        format: IntFormat,
    },
}

/// A parsed location template, filled with [`LocationTemplate::fill`] as
/// many times as needed without parsing again.
///
/// ```
/// use daf_base::PropertySet;
/// use daf_storages::location::LocationTemplate;
///
/// let t = LocationTemplate::parse("calexp/%(filter)/%05d(visit).fits");
/// assert_eq!(t.keys().collect::<Vec<_>>(), ["filter", "visit"]);
/// let mut data = PropertySet::new();
/// data.set("filter", "g").unwrap();
/// for visit in [1, 22] {
///     data.set("visit", visit).unwrap();
///     println!("{}", t.fill(Some(&data), None).unwrap());
/// }
/// data.set("visit", 22).unwrap();
/// assert_eq!(t.fill(Some(&data), None).unwrap().loc_str(), "calexp/g/00022.fits");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LocationTemplate {
    template: String,
    segments: Vec<Segment>,
    /// Sum of the literal text lengths (a capacity hint).
    text_len: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Finds the next match of `(%.*?)\((\w+?)\)` at or after `from`:
/// `(spec_start, paren, key_end)` where the spec is `[spec_start, paren)` and
/// the key is `[paren + 1, key_end)`, followed by `)` at `key_end`.
fn find_subst(b: &[u8], from: usize) -> Option<(usize, usize, usize)> {
    // The leftmost '%' is the only candidate start: any '(' usable by a later
    // '%' is usable by it too, so if it has no match, nothing later does.
    let start = from + b.get(from..)?.iter().position(|&c| c == b'%')?;
    let mut j = start + 1;
    while j < b.len() {
        if b[j] == b'(' {
            let mut k = j + 1;
            while k < b.len() && is_word(b[k]) {
                k += 1;
            }
            if k > j + 1 && b.get(k) == Some(&b')') {
                return Some((start, j, k));
            }
            // No '(' inside [j+1, k), so continue at k.
            j = k.max(j + 1);
        } else {
            j += 1;
        }
    }
    None
}

impl LocationTemplate {
    /// Parses a template. Parsing never fails: a spec the printf engine
    /// rejects is reported when it is used for an integer.
    pub fn parse(template: &str) -> LocationTemplate {
        let b = template.as_bytes();
        let mut segments = Vec::new();
        let mut text_len = 0;
        let mut pos = 0;
        while let Some((start, paren, key_end)) = find_subst(b, pos) {
            if start > pos {
                segments.push(Segment::Text(pos, start));
                text_len += start - pos;
            }
            // All boundaries are at ASCII bytes, so slicing is safe.
            let format = IntFormat::parse(&template[start..paren]);
            segments.push(Segment::Subst {
                key: (paren + 1, key_end),
                format,
            });
            pos = key_end + 1;
        }
        if pos < b.len() {
            segments.push(Segment::Text(pos, b.len()));
            text_len += b.len() - pos;
        }
        LocationTemplate {
            template: template.to_string(),
            segments,
            text_len,
        }
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// The keys substituted, in order of appearance (repeats included).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Subst { key, .. } => Some(&self.template[key.0..key.1]),
            Segment::Text(..) => None,
        })
    }

    /// True when the template has no substitution.
    pub fn is_literal(&self) -> bool {
        self.keys().next().is_none()
    }

    /// Fills the template: each key from `location_map` first, then from
    /// `additional_data`.
    pub fn fill(
        &self,
        additional_data: Option<&PropertySet>,
        location_map: Option<&PropertySet>,
    ) -> Result<LogicalLocation, LocationError> {
        let mut out = String::with_capacity(self.text_len + 16 * self.segments.len());
        self.fill_into(&mut out, additional_data, location_map)?;
        Ok(LogicalLocation { loc: out })
    }

    /// Like [`LocationTemplate::fill`], appending the location to `out`.
    /// On error `out` may hold part of the location.
    pub fn fill_into(
        &self,
        out: &mut String,
        additional_data: Option<&PropertySet>,
        location_map: Option<&PropertySet>,
    ) -> Result<(), LocationError> {
        for seg in &self.segments {
            match seg {
                Segment::Text(a, b) => out.push_str(&self.template[*a..*b]),
                Segment::Subst { key, format } => {
                    let key = &self.template[key.0..key.1];
                    let values = lookup(key, additional_data, location_map)?;
                    substitute(out, key, values, "", Some(format))?;
                }
            }
        }
        Ok(())
    }
}

/// The last value of an integer property, as a printf argument.
fn last_int(values: &Values) -> Option<Option<PrintfArg<'static>>> {
    fn last<T: Copy>(v: &[T], f: impl Fn(T) -> PrintfArg<'static>) -> Option<PrintfArg<'static>> {
        v.last().map(|&x| f(x))
    }
    Some(match values {
        Values::I8(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::U8(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::I16(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::U16(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::I32(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::U32(v) => last(v, |x| PrintfArg::Int(x.into())),
        Values::I64(v) => last(v, PrintfArg::Int),
        Values::U64(v) => last(v, |x| match i64::try_from(x) {
            Ok(i) => PrintfArg::Int(i),
            Err(_) => PrintfArg::UInt(x),
        }),
        _ => return None,
    })
}

/// The key's values: from the location map first, then the additional data.
fn lookup<'a>(
    key: &str,
    additional_data: Option<&'a PropertySet>,
    location_map: Option<&'a PropertySet>,
) -> Result<&'a Values, LocationError> {
    location_map
        .and_then(|m| m.values(key))
        .or_else(|| additional_data.and_then(|d| d.values(key)))
        .ok_or_else(|| LocationError::UnknownSubstitution { key: key.into() })
}

/// Appends the substitution of `values` to `out`. The integer format is
/// `format` when pre-parsed, else parsed from `spec_text` (only if needed).
fn substitute(
    out: &mut String,
    key: &str,
    values: &Values,
    spec_text: &str,
    format: Option<&IntFormat>,
) -> Result<(), LocationError> {
    let empty = || LocationError::Empty { key: key.into() };
    if let Values::String(v) = values {
        out.push_str(v.last().ok_or_else(empty)?);
        return Ok(());
    }
    let Some(arg) = last_int(values) else {
        return Err(LocationError::UnsupportedType {
            key: key.into(),
            actual: values.property_type().name(),
        });
    };
    let arg = arg.ok_or_else(empty)?;
    let parsed;
    let format = match format {
        Some(f) => f,
        None => {
            parsed = IntFormat::parse(spec_text);
            &parsed
        }
    };
    let spec = match format {
        IntFormat::Plain => FormatSpec::plain(daf_base::printf::Conversion::D),
        IntFormat::Spec(s) => *s,
        IntFormat::Invalid(e) => {
            return Err(LocationError::Format {
                key: key.into(),
                source: e.clone(),
            })
        }
    };
    spec.format_into(out, arg)
        .map_err(|source| LocationError::Format {
            key: key.into(),
            source,
        })
}

impl fmt::Display for LocationTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

/// A resolved location string: a file path (optionally with an `[N]` HDU
/// suffix) or a database URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogicalLocation {
    loc: String,
}

impl LogicalLocation {
    /// Fills `template` (see the [module docs](self)): each `%<spec>(key)`
    /// takes the key's value from `location_map` first, then from
    /// `additional_data`.
    ///
    /// ```
    /// use daf_base::PropertySet;
    /// use daf_storages::LogicalLocation;
    ///
    /// let mut map = PropertySet::new();
    /// map.set("x", 3).unwrap();
    /// let loc = LogicalLocation::new("yy%04d(x)yy", None, Some(&map)).unwrap();
    /// assert_eq!(loc.loc_str(), "yy0003yy");
    /// let err = LogicalLocation::new("%(nope)", None, Some(&map)).unwrap_err();
    /// assert_eq!(err.to_string(), "Unknown substitution: nope");
    /// ```
    pub fn new(
        template: &str,
        additional_data: Option<&PropertySet>,
        location_map: Option<&PropertySet>,
    ) -> Result<LogicalLocation, StorageError> {
        // One pass, without building a LocationTemplate.
        let b = template.as_bytes();
        let mut out = String::with_capacity(template.len() + 32);
        let mut pos = 0;
        while let Some((start, paren, key_end)) = find_subst(b, pos) {
            out.push_str(&template[pos..start]);
            let key = &template[paren + 1..key_end];
            let values = lookup(key, additional_data, location_map)?;
            substitute(&mut out, key, values, &template[start..paren], None)?;
            pos = key_end + 1;
        }
        out.push_str(&template[pos..]);
        Ok(LogicalLocation { loc: out })
    }

    /// A location taken literally, with no substitution.
    pub fn literal(loc: impl Into<String>) -> Self {
        LogicalLocation { loc: loc.into() }
    }

    /// The resolved location string.
    pub fn loc_str(&self) -> &str {
        &self.loc
    }

    /// The location as a path.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.loc)
    }
}

impl fmt::Display for LogicalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.loc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(pairs: &[(&str, Values)]) -> PropertySet {
        let mut p = PropertySet::new();
        for (k, v) in pairs {
            p.set(k, v.clone()).unwrap();
        }
        p
    }

    fn fill(t: &str, data: Option<&PropertySet>, map: Option<&PropertySet>) -> String {
        LogicalLocation::new(t, data, map)
            .unwrap()
            .loc_str()
            .to_string()
    }

    /// The cases of LSST's `test_LogicalLocation.py`.
    #[test]
    fn lsst_cases() {
        let map = ps(&[("foo", "bar".into()), ("x", 3.into())]);
        assert_eq!(fill("%(foo)xx", None, Some(&map)), "barxx");
        assert_eq!(fill("%(x)foo", None, Some(&map)), "3foo");
        assert_eq!(fill("yy%04d(x)yy", None, Some(&map)), "yy0003yy");
        let data = ps(&[("foo", "baz".into()), ("y", 2009.into())]);
        assert_eq!(fill("%(foo)%(x)%(y)", Some(&data), Some(&map)), "bar32009");
        let empty = PropertySet::new();
        assert_eq!(fill("%(foo)%3d(y)", Some(&data), Some(&empty)), "baz2009");
        assert_eq!(fill("%(foo)%3d(y)", Some(&data), None), "baz2009");
    }

    #[test]
    fn matcher_follows_the_regex() {
        let data = ps(&[("x", 5.into()), ("c", 7.into()), ("s", "str".into())]);
        // No match: verbatim.
        assert_eq!(
            fill("plain/path.fits", Some(&data), None),
            "plain/path.fits"
        );
        assert_eq!(fill("100%", Some(&data), None), "100%");
        assert_eq!(fill("a(x)b", Some(&data), None), "a(x)b");
        // Strings ignore the spec, even an odd one.
        assert_eq!(fill("%10s(s)|", Some(&data), None), "str|");
        assert_eq!(fill("50% %(s)", Some(&data), None), "50str");
        // A stray '%' swallowed into the spec of an integer: error.
        let e = LogicalLocation::new("50% %(x)", Some(&data), None).unwrap_err();
        assert!(e.to_string().contains("Substitution x"), "{e}");
        // `%(a.b)/%(c)`: spec `%(a.b)/%`, key c.
        let e = LogicalLocation::new("%(a.b)/%(c)", Some(&data), None).unwrap_err();
        assert!(matches!(
            e,
            StorageError::Template(LocationError::Format { ref key, .. }) if key == "c"
        ));
        // Empty key parentheses are not a key: `%()` continues to `(x)`.
        assert_eq!(fill("%(s)-%()(s)", Some(&data), None), "str-str");
        // Keys are word characters only; `(x y)` is not a key.
        assert_eq!(fill("%(x y)%(s)", Some(&data), None), "str");
        assert!(LogicalLocation::new("%(x y)%(x)", Some(&data), None).is_err());
        // A later ')' only; text after the last match is kept.
        assert_eq!(fill("%x(x))", Some(&data), None), "5)");
        // `%%` is no escape: it is a (bad) spec for an integer.
        assert!(LogicalLocation::new("%%(x)", Some(&data), None).is_err());
        assert_eq!(fill("%%(s)", Some(&data), None), "str");
        // Repeated keys and specs.
        assert_eq!(
            fill("%x(x)%#o(c)%-3d(x)|%+d(c)", Some(&data), None),
            "5075  |+7"
        );
    }

    #[test]
    fn integer_widths_and_arrays() {
        let mut data = PropertySet::new();
        data.set("a", 200u8).unwrap();
        data.set("b", -5i8).unwrap();
        data.set("c", u64::MAX).unwrap();
        data.set("d", vec![1i64, 2, 3]).unwrap();
        data.set("e", vec!["x".to_string(), "y".to_string()])
            .unwrap();
        data.set("f", 70000u32).unwrap();
        data.set("g", -300i16).unwrap();
        data.set("h", 65535u16).unwrap();
        assert_eq!(
            fill(
                "%(a)/%03d(b)/%(c)/%x(c)/%(d)/%(e)/%(f)/%(g)/%(h)",
                Some(&data),
                None
            ),
            "200/-05/18446744073709551615/ffffffffffffffff/3/y/70000/-300/65535"
        );
        // Integers with %s and float conversions.
        assert_eq!(fill("%5s(a)|%.1f(a)", Some(&data), None), "  200|200.0");
    }

    #[test]
    fn other_types_are_errors() {
        let mut data = PropertySet::new();
        data.set("f", 1.5f64).unwrap();
        data.set("g", 1.5f32).unwrap();
        data.set("b", true).unwrap();
        data.set("n.x", 1).unwrap();
        data.set(
            "t",
            daf_base::DateTime::from_nsecs(0, daf_base::Timescale::Tai),
        )
        .unwrap();
        for (key, ty) in [
            ("f", "f64"),
            ("g", "f32"),
            ("b", "bool"),
            ("n", "PropertySet"),
            ("t", "DateTime"),
        ] {
            let e = LogicalLocation::new(&format!("%({key})"), Some(&data), None).unwrap_err();
            match e {
                StorageError::Template(LocationError::UnsupportedType { key: k, actual }) => {
                    assert_eq!(k, key);
                    assert_eq!(actual, ty);
                }
                other => panic!("{key}: {other}"),
            }
        }
        // Nested names are not substitutable: `%(n.x)` does not match at all.
        assert_eq!(fill("%(n.x)", Some(&data), None), "%(n.x)");
    }

    #[test]
    fn unknown_substitution() {
        let e = LogicalLocation::new("a/%(visit)", None, None).unwrap_err();
        assert_eq!(e.to_string(), "Unknown substitution: visit");
        assert!(matches!(
            e,
            StorageError::Template(LocationError::UnknownSubstitution { ref key }) if key == "visit"
        ));
    }

    #[test]
    fn map_wins_over_data() {
        let map = ps(&[("k", "map".into())]);
        let data = ps(&[("k", 1.into())]);
        assert_eq!(fill("%(k)", Some(&data), Some(&map)), "map");
        assert_eq!(fill("%(k)", Some(&data), None), "1");
    }

    #[test]
    fn template_reuse_and_keys() {
        let t = LocationTemplate::parse("%(a)/%02d(b)/%(a)");
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a", "b", "a"]);
        assert!(!t.is_literal());
        assert!(LocationTemplate::parse("x/y").is_literal());
        assert_eq!(t.to_string(), "%(a)/%02d(b)/%(a)");
        let mut data = ps(&[("a", "A".into())]);
        for b in 0..3 {
            data.set("b", b).unwrap();
            assert_eq!(
                t.fill(Some(&data), None).unwrap().loc_str(),
                format!("A/0{b}/A")
            );
        }
    }

    #[test]
    fn utf8_text_is_kept() {
        let data = ps(&[("k", "ü".into())]);
        assert_eq!(fill("é/%(k)/ß%", Some(&data), None), "é/ü/ß%");
    }
}
