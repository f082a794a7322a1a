//! [`Policy`]: configuration loaded from YAML or legacy PAF files.
//!
//! A policy is a tree of named values (bool, int, double, string, sub-policy),
//! each name holding one or more values, exactly like a [`PropertySet`]
//! restricted to those types; it converts to and from one without loss.
//!
//! Policies load from YAML ([`Policy::from_yaml_str`]) and from LSST's PAF
//! ([`Policy::from_paf_str`], grammar in [`paf`]); [`Policy::load`] picks the
//! reader from the file extension and resolves includes. Both readers type
//! values the same way (bool, `i32` integers, `f64` doubles, strings,
//! sub-policies), so a PAF file and its YAML translation load equal.
//! [`Policy::to_paf_string`] and [`Policy::to_yaml_string`] write them back.
//! Dictionaries ([`dictionary`]) describe and validate policies.

pub mod dictionary;
pub mod error;
mod load;
pub mod paf;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use dictionary::{Definition, Dictionary, Problem, ProblemCode, ValidationError, ValueKind};
pub use error::PolicyError;
pub use load::{Format, MAX_FILE_BYTES, MAX_INCLUDE_DEPTH, MAX_NESTING};

use crate::error::PropertyError;
use crate::property_set::{PropertySet, PropertyValue, Values};
use load::Loader;

/// Configuration: a tree of named values with dotted access.
///
/// ```
/// use daf_base::Policy;
/// let mut p = Policy::new();
/// p.set("butler.mapperName", "lsst.obs.test.TestMapper").unwrap();
/// assert!(p.exists("butler"));
/// assert_eq!(p.get_policy("butler").unwrap().get::<String>("mapperName").unwrap(),
///            "lsst.obs.test.TestMapper");
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Policy {
    ps: PropertySet,
}

impl Policy {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps a property set (no validation of value types).
    pub fn from_property_set(ps: PropertySet) -> Self {
        Policy { ps }
    }

    /// The underlying property set.
    pub fn as_property_set(&self) -> &PropertySet {
        &self.ps
    }

    /// The underlying property set, mutably.
    pub fn as_property_set_mut(&mut self) -> &mut PropertySet {
        &mut self.ps
    }

    /// Converts into a property set.
    pub fn into_property_set(self) -> PropertySet {
        self.ps
    }

    /// Does `name` exist?
    pub fn exists(&self, name: &str) -> bool {
        self.ps.exists(name)
    }

    /// The last value of `name`.
    pub fn get<T: PropertyValue>(&self, name: &str) -> Result<T, PropertyError> {
        self.ps.get(name)
    }

    /// All values of `name`.
    pub fn get_array<T: PropertyValue>(&self, name: &str) -> Result<Vec<T>, PropertyError> {
        self.ps.get_array(name)
    }

    /// The sub-policy under `name` (its last value).
    pub fn get_policy(&self, name: &str) -> Result<Policy, PropertyError> {
        Ok(Policy {
            ps: self.ps.get_property_set(name)?.clone(),
        })
    }

    /// Every sub-policy under `name` (for repeated names such as `appStage`).
    pub fn get_policy_array(&self, name: &str) -> Result<Vec<Policy>, PropertyError> {
        Ok(self
            .ps
            .get_slice::<PropertySet>(name)?
            .iter()
            .cloned()
            .map(Policy::from_property_set)
            .collect())
    }

    /// Replaces `name` with `value`.
    pub fn set(&mut self, name: &str, value: impl Into<Values>) -> Result<(), PropertyError> {
        self.ps.set(name, value)
    }

    /// Appends `value` to `name`.
    pub fn add(&mut self, name: &str, value: impl Into<Values>) -> Result<(), PropertyError> {
        self.ps.add(name, value)
    }

    /// Top-level names in order.
    pub fn names(&self) -> Vec<String> {
        self.ps.names()
    }

    /// Leaf names, dotted, in order.
    pub fn param_names(&self) -> Vec<String> {
        self.ps.param_names()
    }

    /// Loads a policy file: `.paf` as PAF, `.yaml`/`.yml`/`.json` as YAML
    /// (another extension needs a `#<?cfg paf policy ?>` header). Includes
    /// (`@file` in PAF, `!include file` in YAML) are resolved against this
    /// file's folder, at any depth, and include cycles are an error.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("stage.paf");
    /// std::fs::write(&path, "parameters: {\n  runMode: preprocess\n}\n").unwrap();
    /// let p = daf_base::Policy::load(&path).unwrap();
    /// assert_eq!(p.get::<String>("parameters.runMode").unwrap(), "preprocess");
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        Loader::load_top(path.as_ref()).map(Policy::from_property_set)
    }

    /// Parses PAF text. `source_name` names it in error messages; `@file`
    /// includes resolve against the current directory (as LSST did for
    /// policies without a repository).
    ///
    /// ```
    /// use daf_base::Policy;
    /// let p = Policy::from_paf_str("a.b: 1 2 3\nname: \"x\"  # note\n", "inline").unwrap();
    /// assert_eq!(p.get_array::<i32>("a.b").unwrap(), vec![1, 2, 3]);
    /// let e = Policy::from_paf_str("a: 1\n} \n", "inline").unwrap_err();
    /// assert_eq!(e.to_string(), "inline:2: extra '}' with no open block: \"}\"");
    /// ```
    pub fn from_paf_str(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        Self::from_str_in(
            text.as_bytes(),
            source_name,
            Format::Paf,
            PathBuf::from("."),
        )
    }

    /// Parses YAML text (see [`yaml`] for the mapping). `source_name` names
    /// it in error messages; `!include` resolves against the current directory.
    ///
    /// ```
    /// use daf_base::Policy;
    /// let p = Policy::from_yaml_str("a:\n  b: [1, 2, 3]\nname: x\n", "inline").unwrap();
    /// assert_eq!(p, Policy::from_paf_str("a.b: 1 2 3\nname: x\n", "inline").unwrap());
    /// ```
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        Self::from_str_in(
            text.as_bytes(),
            source_name,
            Format::Yaml,
            PathBuf::from("."),
        )
    }

    /// Parses raw bytes in `format` (UTF-8 is checked, with the line of the
    /// first bad byte in the error). Includes resolve against `include_root`.
    pub fn from_bytes(
        bytes: &[u8],
        source_name: &str,
        format: Format,
        include_root: impl Into<PathBuf>,
    ) -> Result<Policy, PolicyError> {
        Self::from_str_in(bytes, source_name, format, include_root.into())
    }

    fn from_str_in(
        bytes: &[u8],
        source: &str,
        format: Format,
        root: PathBuf,
    ) -> Result<Policy, PolicyError> {
        Loader::new(root)
            .parse_bytes(bytes, source, format)
            .map(Policy::from_property_set)
    }

    /// Writes the policy as PAF that [`Policy::from_paf_str`] reads back equal.
    /// Fails (naming the value) for what PAF cannot spell: integers beyond
    /// 32 bits, non-finite doubles, strings with line breaks or with both
    /// quote characters, date-times, names with characters other than `\w`.
    /// Integer types other than `i32` are written as integers and so read
    /// back as `i32`; `f32` reads back as `f64`.
    pub fn to_paf_string(&self) -> Result<String, PolicyError> {
        paf::dump(&self.ps)
    }

    /// Writes the policy as YAML that [`Policy::from_yaml_str`] reads back
    /// equal, for policies typed as the readers type them (`i32`, or `i64`
    /// beyond the `i32` range; `f64`; bool; string; sub-policies).
    pub fn to_yaml_string(&self) -> Result<String, PolicyError> {
        yaml::dump(&self.ps)
    }
}

impl From<PropertySet> for Policy {
    fn from(ps: PropertySet) -> Self {
        Policy::from_property_set(ps)
    }
}

impl From<Policy> for PropertySet {
    fn from(p: Policy) -> Self {
        p.ps
    }
}
