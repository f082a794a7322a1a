//! [`Policy`]: configuration loaded from YAML or legacy PAF files.
//!
//! A policy is a tree of named values (bool, int, double, string, sub-policy),
//! each name holding one or more values, exactly like a [`PropertySet`]
//! restricted to those types; it converts to and from one without loss.

use crate::error::PropertyError;
use crate::property_set::{PropertySet, PropertyValue, Values};

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
