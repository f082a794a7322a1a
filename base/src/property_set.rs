//! [`PropertySet`]: a typed, hierarchical, ordered property container.
//!
//! Every name holds an ordered array of values of one type. Dotted names
//! (`"a.b.c"`) address nested sets; setting one creates the intermediate sets.
//! Names keep their insertion order.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use self::entries::Entries;

use crate::datetime::DateTime;
use crate::error::PropertyError;

/// The type of the values a property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PropertyType {
    /// `bool`
    Bool,
    /// `i8` (C `char`)
    I8,
    /// `u8`
    U8,
    /// `i16`
    I16,
    /// `u16`
    U16,
    /// `i32`
    I32,
    /// `u32`
    U32,
    /// `i64`
    I64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `String`
    String,
    /// [`DateTime`]
    DateTime,
    /// A nested [`PropertySet`]
    PropertySet,
}

impl PropertyType {
    /// A short, stable name for messages and text formats (`"i32"`, `"String"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PropertyType::Bool => "bool",
            PropertyType::I8 => "i8",
            PropertyType::U8 => "u8",
            PropertyType::I16 => "i16",
            PropertyType::U16 => "u16",
            PropertyType::I32 => "i32",
            PropertyType::U32 => "u32",
            PropertyType::I64 => "i64",
            PropertyType::U64 => "u64",
            PropertyType::F32 => "f32",
            PropertyType::F64 => "f64",
            PropertyType::String => "String",
            PropertyType::DateTime => "DateTime",
            PropertyType::PropertySet => "PropertySet",
        }
    }

    /// Inverse of [`PropertyType::name`].
    pub fn from_name(name: &str) -> Option<PropertyType> {
        Some(match name {
            "bool" => PropertyType::Bool,
            "i8" => PropertyType::I8,
            "u8" => PropertyType::U8,
            "i16" => PropertyType::I16,
            "u16" => PropertyType::U16,
            "i32" => PropertyType::I32,
            "u32" => PropertyType::U32,
            "i64" => PropertyType::I64,
            "u64" => PropertyType::U64,
            "f32" => PropertyType::F32,
            "f64" => PropertyType::F64,
            "String" => PropertyType::String,
            "DateTime" => PropertyType::DateTime,
            "PropertySet" => PropertyType::PropertySet,
            _ => return None,
        })
    }
}

impl fmt::Display for PropertyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values held under one name: a non-empty array of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Values {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    String(Vec<String>),
    DateTime(Vec<DateTime>),
    PropertySet(Vec<PropertySet>),
}

macro_rules! for_each_variant {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            Values::Bool($x) => $body,
            Values::I8($x) => $body,
            Values::U8($x) => $body,
            Values::I16($x) => $body,
            Values::U16($x) => $body,
            Values::I32($x) => $body,
            Values::U32($x) => $body,
            Values::I64($x) => $body,
            Values::U64($x) => $body,
            Values::F32($x) => $body,
            Values::F64($x) => $body,
            Values::String($x) => $body,
            Values::DateTime($x) => $body,
            Values::PropertySet($x) => $body,
        }
    };
}

impl Values {
    /// The element type.
    pub fn property_type(&self) -> PropertyType {
        match self {
            Values::Bool(_) => PropertyType::Bool,
            Values::I8(_) => PropertyType::I8,
            Values::U8(_) => PropertyType::U8,
            Values::I16(_) => PropertyType::I16,
            Values::U16(_) => PropertyType::U16,
            Values::I32(_) => PropertyType::I32,
            Values::U32(_) => PropertyType::U32,
            Values::I64(_) => PropertyType::I64,
            Values::U64(_) => PropertyType::U64,
            Values::F32(_) => PropertyType::F32,
            Values::F64(_) => PropertyType::F64,
            Values::String(_) => PropertyType::String,
            Values::DateTime(_) => PropertyType::DateTime,
            Values::PropertySet(_) => PropertyType::PropertySet,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        for_each_variant!(self, v => v.len())
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `other` if it has the same type; otherwise returns it unchanged.
    fn append(&mut self, other: Values) -> Result<(), Values> {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.extend(b),
            (Values::I8(a), Values::I8(b)) => a.extend(b),
            (Values::U8(a), Values::U8(b)) => a.extend(b),
            (Values::I16(a), Values::I16(b)) => a.extend(b),
            (Values::U16(a), Values::U16(b)) => a.extend(b),
            (Values::I32(a), Values::I32(b)) => a.extend(b),
            (Values::U32(a), Values::U32(b)) => a.extend(b),
            (Values::I64(a), Values::I64(b)) => a.extend(b),
            (Values::U64(a), Values::U64(b)) => a.extend(b),
            (Values::F32(a), Values::F32(b)) => a.extend(b),
            (Values::F64(a), Values::F64(b)) => a.extend(b),
            (Values::String(a), Values::String(b)) => a.extend(b),
            (Values::DateTime(a), Values::DateTime(b)) => a.extend(b),
            (Values::PropertySet(a), Values::PropertySet(b)) => a.extend(b),
            (_, b) => return Err(b),
        }
        Ok(())
    }

    /// The value at `index` rendered as text (strings unquoted), for messages,
    /// paths and display. `None` if out of range or a nested set.
    pub fn text_at(&self, index: usize) -> Option<String> {
        Some(match self {
            Values::Bool(v) => v.get(index)?.to_string(),
            Values::I8(v) => v.get(index)?.to_string(),
            Values::U8(v) => v.get(index)?.to_string(),
            Values::I16(v) => v.get(index)?.to_string(),
            Values::U16(v) => v.get(index)?.to_string(),
            Values::I32(v) => v.get(index)?.to_string(),
            Values::U32(v) => v.get(index)?.to_string(),
            Values::I64(v) => v.get(index)?.to_string(),
            Values::U64(v) => v.get(index)?.to_string(),
            Values::F32(v) => fmt_f32(*v.get(index)?),
            Values::F64(v) => fmt_float(*v.get(index)?),
            Values::String(v) => v.get(index)?.clone(),
            Values::DateTime(v) => v.get(index)?.to_string(),
            Values::PropertySet(_) => return None,
        })
    }

    /// The value at `index` as `i64` if it is an integer type that fits.
    pub fn as_i64_at(&self, index: usize) -> Option<i64> {
        match self {
            Values::I8(v) => v.get(index).map(|&x| i64::from(x)),
            Values::U8(v) => v.get(index).map(|&x| i64::from(x)),
            Values::I16(v) => v.get(index).map(|&x| i64::from(x)),
            Values::U16(v) => v.get(index).map(|&x| i64::from(x)),
            Values::I32(v) => v.get(index).map(|&x| i64::from(x)),
            Values::U32(v) => v.get(index).map(|&x| i64::from(x)),
            Values::I64(v) => v.get(index).copied(),
            Values::U64(v) => v.get(index).and_then(|&x| i64::try_from(x).ok()),
            _ => None,
        }
    }

    /// The value at `index` as `f64` if it is numeric (integers widened).
    pub fn as_f64_at(&self, index: usize) -> Option<f64> {
        match self {
            Values::F32(v) => v.get(index).map(|&x| f64::from(x)),
            Values::F64(v) => v.get(index).copied(),
            Values::U64(v) => v.get(index).map(|&x| x as f64),
            Values::I64(v) => v.get(index).map(|&x| x as f64),
            _ => self.as_i64_at(index).map(|x| x as f64),
        }
    }
}

fn fmt_float(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Like [`fmt_float`] with `f32`'s own shortest text (`0.1`, not the
/// widened `0.10000000149011612`).
fn fmt_f32(x: f32) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// A Rust type that can be stored in a [`PropertySet`].
pub trait PropertyValue: Clone + Sized + 'static {
    /// The matching [`PropertyType`].
    const TYPE: PropertyType;
    /// Wraps values into [`Values`].
    fn into_values(v: Vec<Self>) -> Values;
    /// Borrows the values if `values` holds this type.
    fn slice(values: &Values) -> Option<&[Self]>;
}

macro_rules! impl_value {
    ($t:ty, $variant:ident) => {
        impl PropertyValue for $t {
            const TYPE: PropertyType = PropertyType::$variant;
            fn into_values(v: Vec<Self>) -> Values {
                Values::$variant(v)
            }
            fn slice(values: &Values) -> Option<&[Self]> {
                match values {
                    Values::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
        impl From<$t> for Values {
            fn from(v: $t) -> Values {
                Values::$variant(vec![v])
            }
        }
        impl From<Vec<$t>> for Values {
            fn from(v: Vec<$t>) -> Values {
                Values::$variant(v)
            }
        }
        impl From<&[$t]> for Values {
            fn from(v: &[$t]) -> Values {
                Values::$variant(v.to_vec())
            }
        }
    };
}

impl_value!(bool, Bool);
impl_value!(i8, I8);
impl_value!(u8, U8);
impl_value!(i16, I16);
impl_value!(u16, U16);
impl_value!(i32, I32);
impl_value!(u32, U32);
impl_value!(i64, I64);
impl_value!(u64, U64);
impl_value!(f32, F32);
impl_value!(f64, F64);
impl_value!(String, String);
impl_value!(DateTime, DateTime);
impl_value!(PropertySet, PropertySet);

impl From<&str> for Values {
    fn from(v: &str) -> Values {
        Values::String(vec![v.to_string()])
    }
}

impl From<Vec<&str>> for Values {
    fn from(v: Vec<&str>) -> Values {
        Values::String(v.into_iter().map(str::to_string).collect())
    }
}

impl From<&String> for Values {
    fn from(v: &String) -> Values {
        Values::String(vec![v.clone()])
    }
}

/// A typed, hierarchical property container.
///
/// ```
/// use daf_base::{PropertySet, PropertyError};
/// let mut ps = PropertySet::new();
/// ps.set("visit", 85471048i64).unwrap();
/// ps.set("filter", "r").unwrap();
/// ps.set("a.b", 2.5).unwrap();
/// assert!(ps.exists("a"));
/// assert_eq!(ps.get::<String>("filter").unwrap(), "r");
/// assert!(matches!(ps.get::<i32>("visit"), Err(PropertyError::TypeMismatch { .. })));
/// assert!(matches!(ps.get::<i32>("nope"), Err(PropertyError::NotFound { .. })));
/// ```
///
/// Equality compares names and values regardless of insertion order (and
/// ignores [`NativeType`] annotations).
/// Serde writes the set as a map from each top-level name to its typed values
/// (`{"visit": {"I64": [1]}}`); reading rejects names that are empty or
/// contain a dot, which no `set` could have produced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "IndexMap<String, Values>")]
pub struct PropertySet {
    entries: Entries,
    /// C++ types of leaves held directly here, where one Rust type stands
    /// for two (see [`NativeType`]); `None` (no allocation) when there are none.
    native: Option<Box<Vec<(String, NativeType)>>>,
}

impl PartialEq for PropertySet {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// The C++ type a value had in the program that wrote it, where one Rust
/// value type stands for two C++ types: C `char` and `signed char` are both
/// [`Values::I8`]; `long` and `long long` both [`Values::I64`]; `unsigned
/// long` and `unsigned long long` both [`Values::U64`].
///
/// LSST's C++ `PropertySet` keeps them apart (`get<long>` fails on a
/// `long long`), and its Boost archives give each a type code of its own.
/// A [`PropertySet`] read from such an archive remembers the C++ type of
/// each of these leaves ([`PropertySet::native_type`]), so that writing it
/// back gives every leaf its original code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeType {
    /// C `char` (LSST type code `c`), an [`Values::I8`].
    Char,
    /// C `signed char` (`y`), an [`Values::I8`].
    SignedChar,
    /// C `long` (`l`), an [`Values::I64`].
    Long,
    /// C `unsigned long` (`L`), a [`Values::U64`].
    UnsignedLong,
    /// C `long long` (`x`), an [`Values::I64`].
    LongLong,
    /// C `unsigned long long` (`X`), a [`Values::U64`].
    UnsignedLongLong,
}

impl NativeType {
    /// The value type this C++ type is held as.
    pub fn property_type(self) -> PropertyType {
        match self {
            NativeType::Char | NativeType::SignedChar => PropertyType::I8,
            NativeType::Long | NativeType::LongLong => PropertyType::I64,
            NativeType::UnsignedLong | NativeType::UnsignedLongLong => PropertyType::U64,
        }
    }

    /// The C++ spelling (`"long"`, `"signed char"` ...).
    pub fn cpp_name(self) -> &'static str {
        match self {
            NativeType::Char => "char",
            NativeType::SignedChar => "signed char",
            NativeType::Long => "long",
            NativeType::UnsignedLong => "unsigned long",
            NativeType::LongLong => "long long",
            NativeType::UnsignedLongLong => "unsigned long long",
        }
    }

    /// Inverse of [`NativeType::cpp_name`].
    pub fn from_cpp_name(name: &str) -> Option<NativeType> {
        [
            NativeType::Char,
            NativeType::SignedChar,
            NativeType::Long,
            NativeType::UnsignedLong,
            NativeType::LongLong,
            NativeType::UnsignedLongLong,
        ]
        .into_iter()
        .find(|t| t.cpp_name() == name)
    }
}

impl TryFrom<IndexMap<String, Values>> for PropertySet {
    type Error = PropertyError;
    fn try_from(map: IndexMap<String, Values>) -> Result<Self, Self::Error> {
        let mut entries = Entries::default();
        for (name, values) in map {
            if name.is_empty() || name.contains('.') {
                return Err(PropertyError::InvalidName {
                    name,
                    reason: "a stored name must be non-empty and contain no dot",
                });
            }
            entries.insert(name, values);
        }
        Ok(PropertySet {
            entries,
            native: None,
        })
    }
}

impl Serialize for PropertySet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter())
    }
}

fn validate_name(name: &str) -> Result<(), PropertyError> {
    if name.is_empty() {
        return Err(PropertyError::InvalidName {
            name: name.into(),
            reason: "empty name",
        });
    }
    let b = name.as_bytes();
    if b[0] == b'.' || b[b.len() - 1] == b'.' || b.windows(2).any(|w| w == b"..") {
        return Err(PropertyError::InvalidName {
            name: name.into(),
            reason: "empty component in dotted name",
        });
    }
    Ok(())
}

impl PropertySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `n` top-level names (a decoder that knows
    /// how many items follow saves the reallocations of growing).
    ///
    /// ```
    /// use daf_base::PropertySet;
    /// let mut ps = PropertySet::with_capacity(2);
    /// ps.set("a", 1).unwrap();
    /// assert_eq!(ps.len(), 1);
    /// ```
    pub fn with_capacity(n: usize) -> Self {
        PropertySet {
            entries: Entries::with_capacity(n),
            native: None,
        }
    }

    /// True when the set holds no names.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of top-level names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Finds the set that directly holds the last component of `name`.
    fn parent<'n>(&self, name: &'n str) -> Option<(&PropertySet, &'n str)> {
        let mut cur = self;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                return Some((cur, part));
            }
            match cur.entries.get(part) {
                Some(Values::PropertySet(v)) => cur = v.last()?,
                _ => return None,
            }
        }
        None
    }

    /// The set that directly holds the last component of `name`, creating
    /// missing intermediate sets, and that last component. Allocates only for
    /// the intermediate sets it creates.
    fn parent_mut_create<'n>(
        &mut self,
        name: &'n str,
    ) -> Result<(&mut PropertySet, &'n str), PropertyError> {
        // Checked first, so that a bad name changes nothing.
        validate_name(name)?;
        let bytes = name.as_bytes();
        let Some(dot) = bytes.iter().rposition(|&c| c == b'.') else {
            return Ok((self, name));
        };
        let mut cur = self;
        let mut start = 0;
        loop {
            let end = start
                + bytes[start..=dot]
                    .iter()
                    .position(|&c| c == b'.')
                    .expect("a dot at or before `dot`");
            let part = &name[start..end];
            let idx = match cur.entries.position(part) {
                Some(i) => i,
                None => cur.entries.push_new(
                    part.to_string(),
                    Values::PropertySet(vec![PropertySet::new()]),
                ),
            };
            match cur.entries.value_mut(idx) {
                Values::PropertySet(v) => {
                    if v.is_empty() {
                        v.push(PropertySet::new());
                    }
                    cur = v.last_mut().expect("non-empty");
                }
                other => {
                    return Err(PropertyError::TypeMismatch {
                        name: name[..end].to_string(),
                        expected: "PropertySet",
                        actual: other.property_type().name(),
                    })
                }
            }
            if end == dot {
                break;
            }
            start = end + 1;
        }
        Ok((cur, &name[dot + 1..]))
    }

    /// The values held under `name`, if any.
    pub fn values(&self, name: &str) -> Option<&Values> {
        if !name.contains('.') {
            return self.entries_get(name);
        }
        let (parent, leaf) = self.parent(name)?;
        parent.entries_get(leaf)
    }

    fn entries_get(&self, key: &str) -> Option<&Values> {
        self.entries.get(key)
    }

    /// Like [`PropertySet::values`], but an error naming the key when absent.
    pub fn values_or_err(&self, name: &str) -> Result<&Values, PropertyError> {
        self.values(name)
            .ok_or_else(|| PropertyError::NotFound { name: name.into() })
    }

    /// Replaces whatever `name` held with `value` (a scalar, a `Vec` or a slice).
    pub fn set(&mut self, name: &str, value: impl Into<Values>) -> Result<(), PropertyError> {
        let value = value.into();
        let (parent, leaf) = self.parent_mut_create(name)?;
        match parent.entries.get_mut(leaf) {
            Some(slot) => *slot = value,
            None => {
                parent.entries.push_new(leaf.to_string(), value);
            }
        }
        Ok(())
    }

    /// Like [`PropertySet::set`], but takes the name by value and keeps its
    /// buffer as the stored leaf name: the cheapest way to fill a set from
    /// names a decoder has just allocated.
    ///
    /// ```
    /// use daf_base::PropertySet;
    /// let mut ps = PropertySet::new();
    /// ps.set_owned(String::from("a.b"), 2.5).unwrap();
    /// assert_eq!(ps.get::<f64>("a.b").unwrap(), 2.5);
    /// ```
    pub fn set_owned(
        &mut self,
        mut name: String,
        value: impl Into<Values>,
    ) -> Result<(), PropertyError> {
        let value = value.into();
        let (parent, leaf) = self.parent_mut_create(&name)?;
        let start = name.len() - leaf.len();
        if start > 0 {
            name.drain(..start);
        }
        parent.entries.insert(name, value);
        Ok(())
    }

    /// Appends `value` to `name`; creates it if absent. The type must match.
    pub fn add(&mut self, name: &str, value: impl Into<Values>) -> Result<(), PropertyError> {
        let value = value.into();
        let (parent, leaf) = self.parent_mut_create(name)?;
        match parent.entries.get_mut(leaf) {
            None => {
                parent.entries.push_new(leaf.to_string(), value);
                Ok(())
            }
            Some(existing) => {
                let expected = existing.property_type().name();
                existing
                    .append(value)
                    .map_err(|v| PropertyError::TypeMismatch {
                        name: name.into(),
                        expected,
                        actual: v.property_type().name(),
                    })
            }
        }
    }

    /// The last value of `name`.
    pub fn get<T: PropertyValue>(&self, name: &str) -> Result<T, PropertyError> {
        let s = self.get_slice::<T>(name)?;
        s.last()
            .cloned()
            .ok_or_else(|| PropertyError::Empty { name: name.into() })
    }

    /// The last value of `name`, or `default` if `name` does not exist.
    /// A type mismatch is still an error.
    pub fn get_or<T: PropertyValue>(&self, name: &str, default: T) -> Result<T, PropertyError> {
        if self.exists(name) {
            self.get(name)
        } else {
            Ok(default)
        }
    }

    /// All values of `name`, cloned.
    pub fn get_array<T: PropertyValue>(&self, name: &str) -> Result<Vec<T>, PropertyError> {
        Ok(self.get_slice::<T>(name)?.to_vec())
    }

    /// All values of `name`, borrowed.
    pub fn get_slice<T: PropertyValue>(&self, name: &str) -> Result<&[T], PropertyError> {
        let v = self.values_or_err(name)?;
        T::slice(v).ok_or_else(|| PropertyError::TypeMismatch {
            name: name.into(),
            expected: T::TYPE.name(),
            actual: v.property_type().name(),
        })
    }

    /// The last value of an integer property of any integer type, widened to `i64`.
    pub fn get_as_i64(&self, name: &str) -> Result<i64, PropertyError> {
        let v = self.values_or_err(name)?;
        if v.is_empty() {
            return Err(PropertyError::Empty { name: name.into() });
        }
        v.as_i64_at(v.len() - 1)
            .ok_or_else(|| PropertyError::TypeMismatch {
                name: name.into(),
                expected: "integer",
                actual: v.property_type().name(),
            })
    }

    /// The last value of a numeric property, as `f64`.
    pub fn get_as_f64(&self, name: &str) -> Result<f64, PropertyError> {
        let v = self.values_or_err(name)?;
        if v.is_empty() {
            return Err(PropertyError::Empty { name: name.into() });
        }
        v.as_f64_at(v.len() - 1)
            .ok_or_else(|| PropertyError::TypeMismatch {
                name: name.into(),
                expected: "number",
                actual: v.property_type().name(),
            })
    }

    /// The nested set under `name` (its last value).
    pub fn get_property_set(&self, name: &str) -> Result<&PropertySet, PropertyError> {
        self.get_slice::<PropertySet>(name)?
            .last()
            .ok_or_else(|| PropertyError::Empty { name: name.into() })
    }

    /// Does `name` exist?
    pub fn exists(&self, name: &str) -> bool {
        self.values(name).is_some()
    }

    /// Does `name` hold more than one value?
    pub fn is_array(&self, name: &str) -> bool {
        self.values(name).is_some_and(|v| v.len() > 1)
    }

    /// Does `name` hold nested sets?
    pub fn is_property_set(&self, name: &str) -> bool {
        matches!(self.values(name), Some(Values::PropertySet(_)))
    }

    /// Number of values under `name` (0 if absent).
    pub fn value_count(&self, name: &str) -> usize {
        self.values(name).map_or(0, Values::len)
    }

    /// The type of `name`.
    pub fn type_of(&self, name: &str) -> Result<PropertyType, PropertyError> {
        Ok(self.values_or_err(name)?.property_type())
    }

    /// Top-level names in insertion order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.to_string()).collect()
    }

    /// Iterates over the top-level entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Values)> {
        self.entries.iter()
    }

    /// All leaf (non-set) names, dotted, in insertion order (depth first).
    pub fn param_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_names("", &mut out, false);
        out
    }

    /// All nested-set names, dotted, in insertion order (depth first).
    pub fn property_set_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_names("", &mut out, true);
        out
    }

    fn collect_names(&self, prefix: &str, out: &mut Vec<String>, sets: bool) {
        for (k, v) in self.entries.iter() {
            let full = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Values::PropertySet(ps) => {
                    if sets {
                        out.push(full.clone());
                    }
                    if let Some(last) = ps.last() {
                        last.collect_names(&full, out, sets);
                    }
                }
                _ if !sets => out.push(full),
                _ => {}
            }
        }
    }

    /// Removes `name` (and everything below it); returns what it held.
    pub fn remove(&mut self, name: &str) -> Option<Values> {
        let parts: Vec<&str> = name.split('.').collect();
        let (last, path) = parts.split_last()?;
        let mut cur = self;
        for part in path {
            match cur.entries.get_mut(part) {
                Some(Values::PropertySet(v)) => cur = v.last_mut()?,
                _ => return None,
            }
        }
        if let Some(native) = cur.native.as_mut() {
            native.retain(|(k, _)| k != last);
        }
        cur.entries.remove(last)
    }

    /// The C++ type of leaf `name` when one was recorded (by
    /// [`PropertySet::set_native_type`], e.g. by a reader of LSST's Boost
    /// archives) and the leaf still holds values of that type.
    ///
    /// ```
    /// use daf_base::{NativeType, PropertySet};
    /// let mut ps = PropertySet::new();
    /// ps.set("a.visit", 5i64).unwrap();
    /// assert_eq!(ps.native_type("a.visit"), None);
    /// ps.set_native_type("a.visit", NativeType::Long).unwrap();
    /// assert_eq!(ps.native_type("a.visit"), Some(NativeType::Long));
    /// ps.set("a.visit", "five").unwrap(); // no longer an integer
    /// assert_eq!(ps.native_type("a.visit"), None);
    /// ```
    pub fn native_type(&self, name: &str) -> Option<NativeType> {
        let (parent, leaf) = self.parent(name)?;
        let t = parent
            .native
            .as_ref()?
            .iter()
            .find(|(k, _)| k == leaf)
            .map(|(_, t)| *t)?;
        let values = parent.entries_get(leaf)?;
        (values.property_type() == t.property_type()).then_some(t)
    }

    /// Records the C++ type of leaf `name`, which must hold values of the
    /// matching Rust type ([`NativeType::property_type`]).
    pub fn set_native_type(&mut self, name: &str, t: NativeType) -> Result<(), PropertyError> {
        let actual = self.values_or_err(name)?.property_type();
        if actual != t.property_type() {
            return Err(PropertyError::TypeMismatch {
                name: name.to_string(),
                expected: t.property_type().name(),
                actual: actual.name(),
            });
        }
        let (parent, leaf) = self.parent_mut_create(name)?;
        let native = parent.native.get_or_insert_with(Default::default);
        match native.iter_mut().find(|(k, _)| k == leaf) {
            Some(slot) => slot.1 = t,
            None => native.push((leaf.to_string(), t)),
        }
        Ok(())
    }

    /// Appends every leaf of `other` to this set (like LSST's `combine`): names
    /// absent here are created, present ones get the values appended (types must match).
    ///
    /// On error (a type mismatch) `self` is left unchanged.
    pub fn combine(&mut self, other: &PropertySet) -> Result<(), PropertyError> {
        if other.is_empty() {
            return Ok(());
        }
        let mut merged = self.clone();
        for name in other.param_names() {
            if let Some(v) = other.values(&name) {
                merged.add(&name, v.clone())?;
                if let Some(t) = other.native_type(&name) {
                    // Kept only where the merged values still have its type.
                    let _ = merged.set_native_type(&name, t);
                }
            }
        }
        *self = merged;
        Ok(())
    }

    /// Like [`PropertySet::combine`] but existing names are replaced, not appended.
    ///
    /// On error (a leaf here where `other` has a nested set) `self` is left
    /// unchanged.
    pub fn merge_replace(&mut self, other: &PropertySet) -> Result<(), PropertyError> {
        if other.is_empty() {
            return Ok(());
        }
        let mut merged = self.clone();
        for name in other.param_names() {
            if let Some(v) = other.values(&name) {
                merged.set(&name, v.clone())?;
                if let Some(t) = other.native_type(&name) {
                    // Kept only where the merged values still have its type.
                    let _ = merged.set_native_type(&name, t);
                }
            }
        }
        *self = merged;
        Ok(())
    }

    /// A deep copy (same as `clone`; named for readers of the LSST API).
    pub fn deep_copy(&self) -> PropertySet {
        self.clone()
    }

    fn fmt_indented(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = "  ".repeat(indent);
        for (k, v) in self.entries.iter() {
            match v {
                Values::PropertySet(sets) => {
                    for s in sets {
                        writeln!(f, "{pad}{k} = {{")?;
                        s.fmt_indented(f, indent + 1)?;
                        writeln!(f, "{pad}}}")?;
                    }
                }
                _ => {
                    let items: Vec<String> = (0..v.len())
                        .map(|i| {
                            let t = v.text_at(i).unwrap_or_default();
                            if matches!(v, Values::String(_)) {
                                format!("{t:?}")
                            } else {
                                t
                            }
                        })
                        .collect();
                    if items.len() == 1 {
                        writeln!(f, "{pad}{k} = {}", items[0])?;
                    } else {
                        writeln!(f, "{pad}{k} = [ {} ]", items.join(", "))?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for PropertySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indented(f, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_set_creates_parents() {
        let mut ps = PropertySet::new();
        ps.set("a.b.c", 1).unwrap();
        assert!(ps.exists("a"));
        assert!(ps.exists("a.b"));
        assert!(ps.is_property_set("a.b"));
        assert_eq!(ps.get::<i32>("a.b.c").unwrap(), 1);
        assert_eq!(
            ps.get_property_set("a").unwrap().get::<i32>("b.c").unwrap(),
            1
        );
    }

    proptest::proptest! {
        /// Small and large (hash-indexed) sets behave like an ordered map
        /// under any mix of set, replace and remove.
        #[test]
        fn entries_behave_like_an_ordered_map(
            ops in proptest::collection::vec((0u8..3, 0usize..40, 0i64..1000), 0..200)
        ) {
            let mut ps = PropertySet::new();
            let mut model: IndexMap<String, i64> = IndexMap::new();
            for (op, key, value) in ops {
                let name = format!("k{key}");
                if op == 2 {
                    let got = ps.remove(&name).map(|v| match v {
                        Values::I64(v) => v[0],
                        other => panic!("{other:?}"),
                    });
                    proptest::prop_assert_eq!(got, model.shift_remove(&name));
                } else {
                    ps.set(&name, value).unwrap();
                    model.insert(name, value);
                }
                proptest::prop_assert_eq!(ps.len(), model.len());
            }
            let names: Vec<String> = model.keys().cloned().collect();
            proptest::prop_assert_eq!(ps.names(), names);
            for (k, v) in &model {
                proptest::prop_assert_eq!(ps.get::<i64>(k).unwrap(), *v);
            }
            for k in 0..40 {
                let name = format!("k{k}");
                proptest::prop_assert_eq!(ps.exists(&name), model.contains_key(&name));
            }
            // Equality ignores order.
            let mut reversed = PropertySet::new();
            for (k, v) in model.iter().rev() {
                reversed.set(k, *v).unwrap();
            }
            proptest::prop_assert_eq!(&reversed, &ps);
        }
    }

    #[test]
    fn a_bad_name_changes_nothing() {
        let mut ps = PropertySet::new();
        for bad in ["x..y", ".x", "x.", "x.y..z", ""] {
            assert!(ps.set(bad, 1).is_err(), "{bad:?}");
            assert!(ps.is_empty(), "{bad:?} left {ps:?}");
        }
    }

    #[test]
    fn set_owned_matches_set() {
        let names = ["visit", "a.b.c", "a.b.d", "a.e", "visit", "a.b.c", "z"];
        let mut by_ref = PropertySet::new();
        let mut owned = PropertySet::new();
        for (i, n) in names.iter().enumerate() {
            by_ref.set(n, i as i64).unwrap();
            owned.set_owned(n.to_string(), i as i64).unwrap();
        }
        assert_eq!(by_ref, owned);
        assert_eq!(owned.param_names(), ["visit", "a.b.c", "a.b.d", "a.e", "z"]);
        assert_eq!(owned.get::<i64>("a.b.c").unwrap(), 5);
        assert_eq!(owned.get::<i64>("visit").unwrap(), 4);
        // A leaf in the way of a nested name is an error naming the leaf.
        for err in [
            owned.set_owned("a.e.f.g".to_string(), 1).unwrap_err(),
            owned.set("a.e.f.g", 1).unwrap_err(),
        ] {
            assert_eq!(
                err,
                PropertyError::TypeMismatch {
                    name: "a.e".into(),
                    expected: "PropertySet",
                    actual: "i64"
                }
            );
        }
        assert!(owned.set_owned("a..b".to_string(), 1).is_err());
        assert!(owned.set_owned(String::new(), 1).is_err());
        assert_eq!(by_ref, owned, "failed calls change nothing");
    }

    #[test]
    fn add_appends_and_checks_type() {
        let mut ps = PropertySet::new();
        ps.add("x", 1i64).unwrap();
        ps.add("x", vec![2i64, 3]).unwrap();
        assert_eq!(ps.get_array::<i64>("x").unwrap(), vec![1, 2, 3]);
        assert!(ps.is_array("x"));
        assert_eq!(ps.value_count("x"), 3);
        let err = ps.add("x", "s").unwrap_err();
        assert_eq!(
            err,
            PropertyError::TypeMismatch {
                name: "x".into(),
                expected: "i64",
                actual: "String"
            }
        );
        assert!(err.to_string().contains("expected i64, found String"));
    }

    #[test]
    fn set_replaces_any_type() {
        let mut ps = PropertySet::new();
        ps.set("x", 1).unwrap();
        ps.set("x", "one").unwrap();
        assert_eq!(ps.get::<String>("x").unwrap(), "one");
        assert_eq!(ps.type_of("x").unwrap(), PropertyType::String);
    }

    #[test]
    fn names_in_insertion_order() {
        let mut ps = PropertySet::new();
        ps.set("z", 1).unwrap();
        ps.set("a.y", 2).unwrap();
        ps.set("a.b", 3).unwrap();
        ps.set("m", 4.0).unwrap();
        assert_eq!(ps.names(), vec!["z", "a", "m"]);
        assert_eq!(ps.param_names(), vec!["z", "a.y", "a.b", "m"]);
        assert_eq!(ps.property_set_names(), vec!["a"]);
    }

    #[test]
    fn not_found_names_key() {
        let ps = PropertySet::new();
        let e = ps.get::<i32>("missing.key").unwrap_err();
        assert_eq!(e.to_string(), "property not found: missing.key");
    }

    #[test]
    fn remove_and_combine() {
        let mut a = PropertySet::new();
        a.set("x", 1).unwrap();
        a.set("s.t", "u").unwrap();
        let mut b = PropertySet::new();
        b.set("x", 2).unwrap();
        b.set("y", true).unwrap();
        a.combine(&b).unwrap();
        assert_eq!(a.get_array::<i32>("x").unwrap(), vec![1, 2]);
        assert!(a.get::<bool>("y").unwrap());
        assert!(a.remove("s.t").is_some());
        assert!(!a.exists("s.t"));
        assert!(a.exists("s"));
        assert!(a.remove("nope").is_none());
    }

    #[test]
    fn deep_copy_is_independent_and_equal() {
        let mut a = PropertySet::new();
        a.set("n.v", 1u16).unwrap();
        let mut b = a.deep_copy();
        assert_eq!(a, b);
        b.set("n.v", 2u16).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.get::<u16>("n.v").unwrap(), 1);
    }

    #[test]
    fn invalid_names() {
        let mut ps = PropertySet::new();
        assert!(matches!(
            ps.set("", 1),
            Err(PropertyError::InvalidName { .. })
        ));
        assert!(matches!(
            ps.set("a..b", 1),
            Err(PropertyError::InvalidName { .. })
        ));
        ps.set("leaf", 1).unwrap();
        assert!(matches!(
            ps.set("leaf.x", 1),
            Err(PropertyError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn display_and_serde() {
        let mut ps = PropertySet::new();
        ps.set("i", vec![1, 2]).unwrap();
        ps.set("s", "hi").unwrap();
        ps.set("n.f", 1.5f32).unwrap();
        let text = ps.to_string();
        assert_eq!(text, "i = [ 1, 2 ]\ns = \"hi\"\nn = {\n  f = 1.5\n}\n");
        let json = serde_json::to_string(&ps).unwrap();
        let back: PropertySet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ps);
    }

    #[test]
    fn numeric_views() {
        let mut ps = PropertySet::new();
        ps.set("u", 7u8).unwrap();
        ps.set("f", 2.5f32).unwrap();
        assert_eq!(ps.get_as_i64("u").unwrap(), 7);
        assert_eq!(ps.get_as_f64("u").unwrap(), 7.0);
        assert_eq!(ps.get_as_f64("f").unwrap(), 2.5);
        assert!(ps.get_as_i64("f").is_err());
    }
}

mod entries {
    //! The names and values of one set, in insertion order.

    use std::hash::BuildHasher;

    use hashbrown::HashTable;

    use super::Values;

    /// Above this many names a hash index is kept; below it a linear scan of
    /// short names beats hashing, and a set costs one allocation.
    const SMALL: usize = 16;

    /// A hash index over the names of a large set.
    #[derive(Clone, Default)]
    struct Index {
        table: HashTable<usize>,
        hasher: foldhash::fast::RandomState,
    }

    /// An insertion-ordered map from name to values: a plain vector for small
    /// sets, plus a hash index (foldhash, seeded per process) for large ones.
    #[derive(Clone, Default)]
    pub(super) struct Entries {
        items: Vec<(String, Values)>,
        index: Option<Box<Index>>,
    }

    impl std::fmt::Debug for Entries {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_map().entries(self.iter()).finish()
        }
    }

    /// Equal when the same names hold equal values, in any order.
    impl PartialEq for Entries {
        fn eq(&self, other: &Self) -> bool {
            self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
        }
    }

    /// String equality that rejects most unequal short names without a
    /// `memcmp` call (names in one set often differ only at the end).
    #[inline]
    fn same(a: &str, b: &str) -> bool {
        a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
    }

    impl Entries {
        pub(super) fn with_capacity(n: usize) -> Self {
            Entries {
                items: Vec::with_capacity(n),
                index: None,
            }
        }

        pub(super) fn len(&self) -> usize {
            self.items.len()
        }

        pub(super) fn is_empty(&self) -> bool {
            self.items.is_empty()
        }

        pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Values)> {
            self.items.iter().map(|(k, v)| (k.as_str(), v))
        }

        /// Where `key` is, if present.
        pub(super) fn position(&self, key: &str) -> Option<usize> {
            match &self.index {
                Some(ix) => ix
                    .table
                    .find(ix.hasher.hash_one(key), |&i| self.items[i].0 == key)
                    .copied(),
                None => self.items.iter().position(|(k, _)| same(k, key)),
            }
        }

        pub(super) fn get(&self, key: &str) -> Option<&Values> {
            self.position(key).map(|i| &self.items[i].1)
        }

        pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Values> {
            self.position(key).map(|i| &mut self.items[i].1)
        }

        pub(super) fn value_mut(&mut self, i: usize) -> &mut Values {
            &mut self.items[i].1
        }

        /// Sets `key` to `values` (keeping its place if present); returns
        /// its position.
        pub(super) fn insert(&mut self, key: String, values: Values) -> usize {
            if let Some(i) = self.position(&key) {
                self.items[i].1 = values;
                return i;
            }
            self.push_new(key, values)
        }

        /// Appends `key`, which the caller found absent; returns its position.
        pub(super) fn push_new(&mut self, key: String, values: Values) -> usize {
            debug_assert!(self.position(&key).is_none());
            let i = self.items.len();
            self.items.push((key, values));
            match &mut self.index {
                Some(ix) => {
                    let items = &self.items;
                    let hasher = &ix.hasher;
                    ix.table
                        .insert_unique(hasher.hash_one(items[i].0.as_str()), i, |&j| {
                            hasher.hash_one(items[j].0.as_str())
                        });
                }
                None if self.items.len() > SMALL => self.rebuild_index(),
                None => {}
            }
            i
        }

        /// Removes `key`, keeping the order of the rest.
        pub(super) fn remove(&mut self, key: &str) -> Option<Values> {
            let i = self.position(key)?;
            let (_, v) = self.items.remove(i);
            self.rebuild_index();
            Some(v)
        }

        fn rebuild_index(&mut self) {
            if self.items.len() <= SMALL {
                self.index = None;
                return;
            }
            let mut ix = self.index.take().unwrap_or_default();
            ix.table.clear();
            let items = &self.items;
            let hasher = &ix.hasher;
            let table = &mut ix.table;
            table.reserve(items.len(), |&j| hasher.hash_one(items[j].0.as_str()));
            for (i, (k, _)) in items.iter().enumerate() {
                table.insert_unique(hasher.hash_one(k.as_str()), i, |&j| {
                    hasher.hash_one(items[j].0.as_str())
                });
            }
            self.index = Some(ix);
        }
    }
}
