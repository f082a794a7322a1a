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
}
