//! # daf-base
//!
//! The ground every other daf crate stands on: [`PropertySet`] (the typed,
//! hierarchical property container used for additional data, data ids, FITS
//! headers and clipboard items), [`Policy`] (configuration from YAML and legacy
//! PAF files), [`DataId`], [`DateTime`], the printf-style formatting engine in
//! [`printf`], and the shared error types in [`error`].
//!
//! It depends on no other daf crate. Start reading at [`PropertySet`], then
//! [`Policy`].
//!
//! ```
//! use daf_base::PropertySet;
//! let mut ps = PropertySet::new();
//! ps.set("a.b.c", 1).unwrap();
//! ps.add("a.b.c", 2).unwrap();
//! assert_eq!(ps.get::<i32>("a.b.c").unwrap(), 2);
//! assert_eq!(ps.get_array::<i32>("a.b.c").unwrap(), vec![1, 2]);
//! assert_eq!(ps.param_names(), vec!["a.b.c".to_string()]);
//! ```

pub mod camera;
pub mod data_id;
pub mod datetime;
pub mod error;
pub mod path_safety;
pub mod policy;
pub mod printf;
pub mod property_set;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use camera::{Camera, Detector, DetectorType};
pub use data_id::{DataId, DataIdValue};
pub use datetime::{DateTime, Timescale};
pub use error::{BoxError, PropertyError};
pub use path_safety::UnsafePath;
pub use policy::Policy;
pub use printf::{sprintf, FormatSpec, PrintfArg, PrintfError};
pub use property_set::{NativeType, PropertySet, PropertyType, PropertyValue, Values};

/// The message of a YAML parser error without the parser's own position
/// suffixes (" at line L column C", " at position N"), which name lines of
/// whatever text was parsed — often not a file the user has (a generated
/// tree, a fragment). Callers that parsed a user's file name it and the
/// line themselves ([`yaml_error_in`]).
///
/// ```
/// let e = serde_norway::from_str::<std::collections::BTreeMap<String, u32>>("a: [1\n").unwrap_err();
/// assert!(e.to_string().contains(" at line "));
/// let t = daf_base::yaml_error_text(&e);
/// assert!(!t.contains(" at line ") && !t.is_empty(), "{t}");
/// ```
pub fn yaml_error_text(e: &serde_norway::Error) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find(" at ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 4..];
        let skip = position_len(after);
        if skip == 0 {
            out.push_str(" at ");
        }
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

/// `yaml_error_text` prefixed with where in `source` (a file the user
/// has) the parser stopped: `SOURCE: line L: message`.
///
/// ```
/// let e = serde_norway::from_str::<std::collections::BTreeMap<String, u32>>("a: 1\nb: x\n").unwrap_err();
/// assert_eq!(daf_base::yaml_error_in(&e, "cfg.yaml"), "cfg.yaml: line 2: b: invalid type: string \"x\", expected u32");
/// ```
pub fn yaml_error_in(e: &serde_norway::Error, source: &str) -> String {
    match e.location() {
        Some(l) => format!("{source}: line {}: {}", l.line(), yaml_error_text(e)),
        None => format!("{source}: {}", yaml_error_text(e)),
    }
}

/// The length of a `line L column C` or `position N` at the start of `s`
/// (0 if there is none).
fn position_len(s: &str) -> usize {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    if let Some(r) = s.strip_prefix("line ") {
        let a = digits(r);
        if a > 0 {
            if let Some(r2) = r[a..].strip_prefix(" column ") {
                let b = digits(r2);
                if b > 0 {
                    return 5 + a + 8 + b;
                }
            }
        }
    } else if let Some(r) = s.strip_prefix("position ") {
        let a = digits(r);
        if a > 0 {
            return 9 + a;
        }
    }
    0
}
