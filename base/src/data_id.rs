//! [`DataId`]: the key → value map that names a dataset (`{visit: 1, ccd: 2}`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::property_set::{PropertySet, Values};

/// One data-id value: an integer, a float or a string.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataIdValue {
    /// An integer key such as `visit`.
    Int(i64),
    /// A float key such as `expTime`.
    Float(f64),
    /// A string key such as `filter` or `taiObs`.
    Str(String),
}

impl DataIdValue {
    /// The value as `i64` if it is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            DataIdValue::Int(v) => Some(*v),
            _ => None,
        }
    }
    /// The value as `f64` if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            DataIdValue::Int(v) => Some(*v as f64),
            DataIdValue::Float(v) => Some(*v),
            DataIdValue::Str(_) => None,
        }
    }
    /// The value as `&str` if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            DataIdValue::Str(s) => Some(s),
            _ => None,
        }
    }
    /// A short type name: `int`, `float` or `str`.
    pub fn type_name(&self) -> &'static str {
        match self {
            DataIdValue::Int(_) => "int",
            DataIdValue::Float(_) => "float",
            DataIdValue::Str(_) => "str",
        }
    }
}

/// Integers as digits, strings quoted, floats so that they read back as the
/// same float: always with a `.` or an exponent (`15.0`, `0.1`, `1e-7`,
/// `1e16`), never as an integer would be written.
///
/// ```
/// use daf_base::DataIdValue;
/// assert_eq!(DataIdValue::Float(15.0).to_string(), "15.0");
/// assert_eq!(DataIdValue::Int(15).to_string(), "15");
/// assert_eq!(DataIdValue::Str("g".into()).to_string(), "\"g\"");
/// ```
impl fmt::Display for DataIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataIdValue::Int(v) => write!(f, "{v}"),
            // Debug is the shortest text that parses back to the same f64,
            // with `.0` on whole numbers (`inf`, `NaN` for the non-finite).
            DataIdValue::Float(v) => write!(f, "{v:?}"),
            DataIdValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for DataIdValue {
            fn from(v: $t) -> Self { DataIdValue::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, u8, i16, u16, i32, u32, i64);

impl From<f64> for DataIdValue {
    fn from(v: f64) -> Self {
        DataIdValue::Float(v)
    }
}
impl From<f32> for DataIdValue {
    fn from(v: f32) -> Self {
        DataIdValue::Float(f64::from(v))
    }
}
impl From<&str> for DataIdValue {
    fn from(v: &str) -> Self {
        DataIdValue::Str(v.to_string())
    }
}
impl From<String> for DataIdValue {
    fn from(v: String) -> Self {
        DataIdValue::Str(v)
    }
}

/// A data id: keys in sorted order, each with one value.
///
/// ```
/// use daf_base::{data_id, DataId};
/// let id = data_id! { visit: 1, filter: "g" };
/// assert_eq!(id.get("visit").and_then(|v| v.as_i64()), Some(1));
/// assert_eq!(id.to_string(), "{filter: \"g\", visit: 1}");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataId(BTreeMap<String, DataIdValue>);

impl DataId {
    /// An empty data id.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `key` to `value`, returning `self` for chaining.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<DataIdValue>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<DataIdValue>) {
        self.0.insert(key.into(), value.into());
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&DataIdValue> {
        self.0.get(key)
    }
    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<DataIdValue> {
        self.0.remove(key)
    }
    /// Does `key` exist?
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    /// Keys in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DataIdValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True with no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Adds every entry of `other`, replacing existing keys.
    pub fn extend(&mut self, other: &DataId) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }
    /// Copies the entries into a [`PropertySet`] (ints as `i64`, floats as
    /// `f64`, strings as `String`), as the butler does for additional data.
    pub fn to_property_set(&self) -> PropertySet {
        let mut ps = PropertySet::new();
        self.add_to_property_set(&mut ps);
        ps
    }
    /// Sets every entry into `ps`, replacing existing names.
    pub fn add_to_property_set(&self, ps: &mut PropertySet) {
        for (k, v) in &self.0 {
            let vals: Values = match v {
                DataIdValue::Int(i) => (*i).into(),
                DataIdValue::Float(f) => (*f).into(),
                DataIdValue::Str(s) => s.as_str().into(),
            };
            // Data-id keys are plain identifiers; a key that is not a valid
            // property name is skipped rather than failing the whole copy.
            let _ = ps.set(k, vals);
        }
    }
}

impl FromIterator<(String, DataIdValue)> for DataId {
    fn from_iter<I: IntoIterator<Item = (String, DataIdValue)>>(iter: I) -> Self {
        DataId(iter.into_iter().collect())
    }
}

impl fmt::Display for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}: {v}")?;
        }
        f.write_str("}")
    }
}

/// Builds a [`DataId`]: `data_id!{visit: 1, filter: "g"}`.
#[macro_export]
macro_rules! data_id {
    () => { $crate::DataId::new() };
    ($($key:ident : $value:expr),+ $(,)?) => {{
        let mut id = $crate::DataId::new();
        $( id.insert(stringify!($key), $value); )+
        id
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_display_as_floats_and_round_trip() {
        for x in [
            15.0,
            -15.0,
            0.0,
            -0.0,
            0.1,
            1.5e-7,
            1e16,
            123456789012345680.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            51195.2240820278,
        ] {
            let s = DataIdValue::Float(x).to_string();
            assert!(s.parse::<i64>().is_err(), "{x} shows as an integer: {s}");
            assert_eq!(s.parse::<f64>(), Ok(x), "{s}");
            assert_eq!(
                s.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{s} (sign)"
            );
        }
        assert_eq!(DataIdValue::Float(15.0).to_string(), "15.0");
        assert_eq!(DataIdValue::Float(1e16).to_string(), "1e16");
        assert_eq!(DataIdValue::Float(2.5).to_string(), "2.5");
        assert_eq!(
            data_id! {expTime: 15.0, visit: 15}.to_string(),
            "{expTime: 15.0, visit: 15}"
        );
    }
}
