//! Location templates as the IO and symlink stages write them:
//! `%FMT(key)`, e.g. `%(output)/PS-%(field).boost` or `raw-e%03d(snap).fits`.
//!
//! A key is looked up first in the global location map, then in the
//! additional data. Integers are formatted printf-style with `FMT` (`%d`,
//! `%03d`, `%5d`, `%x` ...; plain when `FMT` is empty); strings are inserted
//! as they are. In a Python-style `%(x)s` the trailing `s` stays literal, as
//! in LSST. The engine is `daf_storages::location::LocationTemplate`; this
//! module maps its errors to the IO stages' documented ones.

use daf_base::PropertySet;
use daf_storages::location::{LocationError, LocationTemplate};

use crate::error::HarnessError;
use crate::Result;

/// Fills `template` from `map` (first) and `additional` (second), checking
/// with [`daf_base::path_safety`] that input cannot lead the path out of
/// its root: a value taken from the additional data (an event, the
/// clipboard, a job identity) must be a safe relative piece (no `..`
/// component, not absolute, no NUL or newline), any value may not hold NUL
/// or a newline, and the filled path, normalised, must lie under the part
/// of the template filled before the first additional-data value (the root
/// the configuration chose). Location-map values are configuration and may
/// be absolute.
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
/// ad.set("field", "../../../../x").unwrap();
/// assert!(fill("%(output)/%(field)/e.fits", &map, &ad).unwrap_err().to_string().contains("'..'"));
/// ```
pub fn fill(template: &str, map: &PropertySet, additional: &PropertySet) -> Result<String> {
    let filled = fill_unchecked(template, map, additional)?;
    check_filled(template, &filled, map, additional)?;
    Ok(filled)
}

/// The keys a location template substitutes, with the byte offset of each
/// `%`.
fn template_keys(template: &str) -> Vec<(usize, &str)> {
    let b = template.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b"-+ #.".contains(&b[j])) {
                j += 1;
            }
            if j < b.len() && b[j] == b'(' {
                if let Some(close) = template[j + 1..].find(')') {
                    out.push((i, &template[j + 1..j + 1 + close]));
                    i = j + 1 + close + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

fn unsafe_err(e: daf_base::path_safety::UnsafePath) -> HarnessError {
    HarnessError::UnsafePath(e)
}

/// The checks of [`fill`] on a filled template.
fn check_filled(
    template: &str,
    filled: &str,
    map: &PropertySet,
    additional: &PropertySet,
) -> Result<()> {
    use daf_base::path_safety::{check_relative, check_under};
    let mut first_input = None;
    for (at, key) in template_keys(template) {
        let from_map = map.exists(key);
        let set = if from_map { map } else { additional };
        let Ok(v) = set.get::<String>(key) else {
            continue; // numbers cannot hold a path separator
        };
        if from_map {
            if v.contains(['\0', '\n', '\r']) {
                check_relative(&format!("location-map value {key:?}"), &v).map_err(unsafe_err)?;
            }
        } else {
            check_relative(&format!("value of {key:?}"), &v).map_err(unsafe_err)?;
            first_input.get_or_insert(at);
        }
    }
    if filled.contains(['\0', '\n', '\r']) {
        check_relative("location", filled).map_err(unsafe_err)?;
    }
    let Some(at) = first_input else {
        return Ok(());
    };
    // the root: what the configuration filled before the first input value
    let prefix = fill_unchecked(&template[..at], map, additional)?;
    let root = match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    };
    check_under(
        std::path::Path::new(root),
        "location",
        std::path::Path::new(filled),
    )
    .map_err(unsafe_err)
}

fn fill_unchecked(template: &str, map: &PropertySet, additional: &PropertySet) -> Result<String> {
    match LocationTemplate::parse(template).fill(Some(additional), Some(map)) {
        Ok(loc) => Ok(loc.loc_str().to_string()),
        Err(LocationError::UnknownSubstitution { key }) => {
            Err(HarnessError::UnknownSubstitution { key })
        }
        Err(e) => Err(HarnessError::BadTemplate {
            template: template.into(),
            message: e.to_string(),
        }),
    }
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
        assert_eq!(f("100% done"), "100% done");
        assert!(matches!(
            fill("%(x)", &map, &ad),
            Err(HarnessError::BadTemplate { .. })
        ));
    }

    #[test]
    fn input_values_cannot_escape_the_root() {
        let mut map = PropertySet::new();
        map.set("output", "/out").unwrap();
        map.set("rel", "a/b").unwrap();
        let bad = |v: &str, t: &str| {
            let mut ad = PropertySet::new();
            ad.set("filter", v).unwrap();
            ad.set("visit", 3i64).unwrap();
            fill(t, &map, &ad)
        };
        for v in ["../../../../x", "/tmp", "a/../../b", "x\ny", "x\0y"] {
            let e = bad(v, "%(output)/links/%(filter)/v%(visit).fits").unwrap_err();
            assert!(matches!(e, HarnessError::UnsafePath(_)), "{v:?}: {e}");
        }
        // `.` + `.` glued by the template into `..`
        let e = bad(".", "%(output)/links/.%(filter)/v.fits").unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        assert_eq!(
            bad("g/deep", "%(output)/links/%(filter)/v%(visit).fits").unwrap(),
            "/out/links/g/deep/v3.fits"
        );
        assert_eq!(bad("g", "%(rel)/%(filter)").unwrap(), "a/b/g");
        // the location map is configuration: absolute is fine
        assert_eq!(bad("g", "%(output)/x").unwrap(), "/out/x");
    }
}
