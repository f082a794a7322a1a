//! `PropertySet`, `DateTime`, `Policy` and data ids, to and from Python.

use daf_base::{
    DataId, DataIdValue, DateTime as RsDateTime, Policy as RsPolicy, PropertySet as RsPropertySet,
    Timescale, Values,
};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{policy_err, property_err};

// ------------------------------------------------------------------ data ids

/// A data id from an optional dict plus keyword arguments (keywords win).
pub fn data_id(d: Option<&Bound<'_, PyAny>>, kw: Option<&Bound<'_, PyDict>>) -> PyResult<DataId> {
    let mut id = DataId::new();
    let mut add = |k: Bound<'_, PyAny>, v: Bound<'_, PyAny>| -> PyResult<()> {
        let k: String = k.extract()?;
        id.insert(k.clone(), id_value(&k, &v)?);
        Ok(())
    };
    if let Some(d) = d {
        if !d.is_none() {
            let d = d.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err("a data id is a dict such as {\"visit\": 1, \"ccd\": 2}")
            })?;
            for (k, v) in d.iter() {
                add(k, v)?;
            }
        }
    }
    if let Some(kw) = kw {
        for (k, v) in kw.iter() {
            add(k, v)?;
        }
    }
    Ok(id)
}

fn id_value(k: &str, v: &Bound<'_, PyAny>) -> PyResult<DataIdValue> {
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "data id key {k}: a bool is not a data-id value"
        )));
    }
    if let Ok(i) = v.extract::<i64>() {
        if v.is_instance_of::<PyInt>() || v.hasattr("__index__")? {
            return Ok(DataIdValue::Int(i));
        }
    }
    if v.is_instance_of::<PyString>() {
        return Ok(DataIdValue::Str(v.extract()?));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(DataIdValue::Float(f));
    }
    Err(PyTypeError::new_err(format!(
        "data id key {k}: expected int, float or str, got {}",
        v.get_type().name()?
    )))
}

/// One data-id value as a Python object.
pub fn id_value_py<'py>(py: Python<'py>, v: &DataIdValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        DataIdValue::Int(i) => i.into_pyobject(py)?.into_any(),
        DataIdValue::Float(f) => f.into_pyobject(py)?.into_any(),
        DataIdValue::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// A data id as a dict.
pub fn data_id_dict<'py>(py: Python<'py>, id: &DataId) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in id.iter() {
        d.set_item(k, id_value_py(py, v)?)?;
    }
    Ok(d)
}

// ------------------------------------------------------------------ DateTime

/// An instant with nanosecond resolution (TAI inside), as in `lsst.daf.base`.
///
/// Build it from nanoseconds, an ISO-8601 string, an MJD, or a
/// `datetime.datetime` (naive ones are taken as UTC); `to_datetime()` gives a
/// timezone-aware UTC `datetime` (microseconds), `isoformat()` an ISO string
/// astropy's `Time(..., scale="utc")` reads.
#[pyclass(module = "daf", frozen, eq, ord, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub inner: RsDateTime,
}

fn scale(s: &str) -> PyResult<Timescale> {
    match s.to_ascii_uppercase().as_str() {
        "TAI" => Ok(Timescale::Tai),
        "UTC" => Ok(Timescale::Utc),
        _ => Err(PyValueError::new_err(format!(
            "time scale {s:?}: expected \"TAI\" or \"UTC\""
        ))),
    }
}

#[pymethods]
impl DateTime {
    /// `DateTime(nsecs, scale="TAI")`: nanoseconds since 1970-01-01 in `scale`.
    #[new]
    #[pyo3(signature = (nsecs, scale = "TAI"))]
    fn new(nsecs: i64, scale: &str) -> PyResult<Self> {
        Ok(DateTime {
            inner: RsDateTime::from_nsecs(nsecs, self::scale(scale)?),
        })
    }
    /// Parses an ISO-8601 string (`2017-01-01T00:00:00Z`).
    #[staticmethod]
    #[pyo3(signature = (text, scale = "UTC"))]
    fn from_iso(text: &str, scale: &str) -> PyResult<Self> {
        RsDateTime::parse_iso(text, self::scale(scale)?)
            .map(|inner| DateTime { inner })
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
    /// From a `datetime.datetime` (naive = UTC) or anything with `to_datetime()`
    /// (astropy `Time`).
    #[staticmethod]
    fn from_datetime(dt: &Bound<'_, PyAny>) -> PyResult<Self> {
        datetime_from_py(dt)
    }
    /// Nanoseconds since the epoch in `scale`.
    #[pyo3(signature = (scale = "TAI"))]
    fn nsecs(&self, scale: &str) -> PyResult<i64> {
        Ok(self.inner.nsecs(self::scale(scale)?))
    }
    /// Modified Julian Date in `scale`.
    #[pyo3(signature = (scale = "TAI"))]
    fn mjd(&self, scale: &str) -> PyResult<f64> {
        Ok(self.inner.mjd(self::scale(scale)?))
    }
    /// ISO-8601 text in `scale` (nanoseconds, `Z` suffix for UTC).
    #[pyo3(signature = (scale = "UTC"))]
    fn isoformat(&self, scale: &str) -> PyResult<String> {
        Ok(self.inner.to_iso(self::scale(scale)?))
    }
    /// A timezone-aware UTC `datetime.datetime` (microsecond precision).
    fn to_datetime<'py>(self_: PyRef<'_, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime_to_py(py, &self_.inner)
    }
    fn __repr__(&self) -> String {
        format!("DateTime.from_iso({:?})", self.inner.to_iso(Timescale::Utc))
    }
}

/// A DateTime as a timezone-aware UTC `datetime.datetime`.
pub fn datetime_to_py<'py>(py: Python<'py>, t: &RsDateTime) -> PyResult<Bound<'py, PyAny>> {
    let ns = t.nsecs(Timescale::Utc);
    let secs = ns.div_euclid(1_000_000_000);
    let us = ns.rem_euclid(1_000_000_000) / 1000;
    let dtm = py.import("datetime")?;
    let utc = dtm.getattr("timezone")?.getattr("utc")?;
    let epoch = dtm
        .getattr("datetime")?
        .call1((1970, 1, 1, 0, 0, 0, 0, &utc))?;
    let delta = dtm.getattr("timedelta")?.call1((0, secs, us))?;
    epoch.call_method1("__add__", (delta,))
}

/// A DateTime from a `datetime`, an object with `to_datetime()`, or a `DateTime`.
pub fn datetime_from_py(v: &Bound<'_, PyAny>) -> PyResult<DateTime> {
    if let Ok(d) = v.extract::<DateTime>() {
        return Ok(d);
    }
    let py = v.py();
    let dtm = py.import("datetime")?;
    let mut v = v.clone();
    if !v.is_instance(&dtm.getattr("datetime")?)? {
        if v.hasattr("to_datetime")? {
            // astropy Time: its UTC datetime
            let t = if v.hasattr("utc")? {
                v.getattr("utc")?
            } else {
                v.clone()
            };
            v = t.call_method0("to_datetime")?;
        } else {
            return Err(PyTypeError::new_err(
                "expected a datetime.datetime, an astropy Time or a daf.DateTime",
            ));
        }
    }
    let utc = dtm.getattr("timezone")?.getattr("utc")?;
    let aware = if v.getattr("tzinfo")?.is_none() {
        let kw = PyDict::new(py);
        kw.set_item("tzinfo", &utc)?;
        v.call_method("replace", (), Some(&kw))?
    } else {
        v
    };
    let epoch = dtm
        .getattr("datetime")?
        .call1((1970, 1, 1, 0, 0, 0, 0, &utc))?;
    let delta = aware.call_method1("__sub__", (epoch,))?;
    let days: i64 = delta.getattr("days")?.extract()?;
    let secs: i64 = delta.getattr("seconds")?.extract()?;
    let us: i64 = delta.getattr("microseconds")?.extract()?;
    let ns = (days * 86_400 + secs) * 1_000_000_000 + us * 1000;
    Ok(DateTime {
        inner: RsDateTime::from_nsecs(ns, Timescale::Utc),
    })
}

// ------------------------------------------------------------------ values

fn is_datetime(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    if v.extract::<DateTime>().is_ok() {
        return Ok(true);
    }
    let dtm = v.py().import("datetime")?;
    v.is_instance(&dtm.getattr("datetime")?)
}

/// Python value(s) → `Values`, by an explicit LSST type name or by the
/// Python type: bool, int (int32 when it fits, else int64), float (double),
/// str, datetime/DateTime, dict/PropertySet (nested), or a list of one kind.
pub fn values_from_py(v: &Bound<'_, PyAny>, type_name: Option<&str>) -> PyResult<Values> {
    let items: Vec<Bound<'_, PyAny>> =
        if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            v.try_iter()?.collect::<PyResult<_>>()?
        } else {
            vec![v.clone()]
        };
    if items.is_empty() {
        return Err(PyValueError::new_err(
            "an empty list has no PropertySet type",
        ));
    }
    let first = &items[0];
    let kind: String = match type_name {
        Some(t) => t.to_string(),
        None => {
            if first.is_instance_of::<PyBool>() {
                "bool".into()
            } else if first.is_instance_of::<PyInt>()
                || (first.hasattr("__index__")? && !first.is_instance_of::<PyFloat>())
            {
                let all32 = items.iter().all(|x| x.extract::<i32>().is_ok());
                if all32 {
                    "int".into()
                } else if items.iter().all(|x| x.extract::<i64>().is_ok()) {
                    "long long".into()
                } else {
                    "unsigned long long".into()
                }
            } else if first.is_instance_of::<PyFloat>()
                || first.hasattr("__float__")? && !first.is_instance_of::<PyString>()
            {
                "double".into()
            } else if first.is_instance_of::<PyString>() {
                "string".into()
            } else if is_datetime(first)? {
                "DateTime".into()
            } else if first.is_instance_of::<PyDict>()
                || first.extract::<PyRef<PropertySet>>().is_ok()
            {
                "PropertySet".into()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "a PropertySet cannot hold a {}",
                    first.get_type().name()?
                )));
            }
        }
    };
    macro_rules! ext {
        ($t:ty, $var:ident) => {
            Values::$var(
                items
                    .iter()
                    .map(|x| x.extract::<$t>())
                    .collect::<PyResult<Vec<$t>>>()?,
            )
        };
    }
    Ok(match kind.as_str() {
        "bool" => ext!(bool, Bool),
        "int8" | "i8" | "signed char" => ext!(i8, I8),
        "uint8" | "u8" | "unsigned char" => ext!(u8, U8),
        "int16" | "i16" | "short" => ext!(i16, I16),
        "uint16" | "u16" | "unsigned short" => ext!(u16, U16),
        "int" | "int32" | "i32" => ext!(i32, I32),
        "uint32" | "u32" | "unsigned int" => ext!(u32, U32),
        "long long" | "int64" | "i64" | "long" => ext!(i64, I64),
        "unsigned long long" | "uint64" | "u64" => ext!(u64, U64),
        "float" | "float32" | "f32" => ext!(f32, F32),
        "double" | "float64" | "f64" => ext!(f64, F64),
        "string" | "str" | "String" => ext!(String, String),
        "DateTime" => Values::DateTime(
            items
                .iter()
                .map(|x| datetime_from_py(x).map(|d| d.inner))
                .collect::<PyResult<_>>()?,
        ),
        "PropertySet" => Values::PropertySet(
            items
                .iter()
                .map(property_set_from_py)
                .collect::<PyResult<_>>()?,
        ),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown PropertySet type {other:?}"
            )))
        }
    })
}

/// One value at `i` as a Python object (nested sets as `PropertySet`, or as
/// dicts when `dicts`).
pub fn value_at<'py>(
    py: Python<'py>,
    v: &Values,
    i: usize,
    dicts: bool,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Values::Bool(x) => PyBool::new(py, x[i]).to_owned().into_any(),
        Values::I8(x) => x[i].into_pyobject(py)?.into_any(),
        Values::U8(x) => x[i].into_pyobject(py)?.into_any(),
        Values::I16(x) => x[i].into_pyobject(py)?.into_any(),
        Values::U16(x) => x[i].into_pyobject(py)?.into_any(),
        Values::I32(x) => x[i].into_pyobject(py)?.into_any(),
        Values::U32(x) => x[i].into_pyobject(py)?.into_any(),
        Values::I64(x) => x[i].into_pyobject(py)?.into_any(),
        Values::U64(x) => x[i].into_pyobject(py)?.into_any(),
        Values::F32(x) => (x[i] as f64).into_pyobject(py)?.into_any(),
        Values::F64(x) => x[i].into_pyobject(py)?.into_any(),
        Values::String(x) => x[i].as_str().into_pyobject(py)?.into_any(),
        Values::DateTime(x) => datetime_to_py(py, &x[i])?,
        Values::PropertySet(x) => {
            if dicts {
                property_set_to_dict(py, &x[i])?.into_any()
            } else {
                Bound::new(
                    py,
                    PropertySet {
                        inner: x[i].clone(),
                    },
                )?
                .into_any()
            }
        }
    })
}

/// All values: a scalar for one value, a list for several.
pub fn values_to_py<'py>(py: Python<'py>, v: &Values, dicts: bool) -> PyResult<Bound<'py, PyAny>> {
    if v.len() == 1 {
        value_at(py, v, 0, dicts)
    } else {
        let l = PyList::empty(py);
        for i in 0..v.len() {
            l.append(value_at(py, v, i, dicts)?)?;
        }
        Ok(l.into_any())
    }
}

/// A PropertySet as a nested dict (arrays as lists, DateTime as datetime).
pub fn property_set_to_dict<'py>(
    py: Python<'py>,
    ps: &RsPropertySet,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in ps.iter() {
        d.set_item(k, values_to_py(py, v, true)?)?;
    }
    Ok(d)
}

/// A PropertySet from a `PropertySet`, a mapping (nested dicts become nested
/// sets) or `None` (empty).
pub fn property_set_from_py(v: &Bound<'_, PyAny>) -> PyResult<RsPropertySet> {
    if v.is_none() {
        return Ok(RsPropertySet::new());
    }
    if let Ok(p) = v.extract::<PyRef<PropertySet>>() {
        return Ok(p.inner.clone());
    }
    if let Ok(p) = v.extract::<PyRef<Policy>>() {
        return Ok(p.inner.as_property_set().clone());
    }
    let d = v.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a dict or a PropertySet, got {}",
            v.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let mut ps = RsPropertySet::new();
    for (k, val) in d.iter() {
        let k: String = k.extract()?;
        let values = values_from_py(&val, None)
            .map_err(|e| PyTypeError::new_err(format!("{k}: {}", e.value(v.py()))))?;
        ps.set_owned(k.clone(), values).map_err(property_err)?;
    }
    Ok(ps)
}

// ------------------------------------------------------------------ PropertySet

/// A set of named, typed values (`lsst.daf.base.PropertySet`): dotted names
/// reach into nested sets; each name holds one value or an array of one
/// type (bool, the integer types, float, double, string, DateTime,
/// PropertySet).
///
/// It behaves as a mutable mapping: `ps["exptime"] = 15.0`,
/// `ps["exptime"]`, `"exptime" in ps`, `len(ps)`, iteration over the
/// top-level names, and converts to and from `dict` (`PropertySet(d)`,
/// `ps.to_dict()`), with `DateTime` ↔ `datetime.datetime`.
#[pyclass(module = "daf", from_py_object)]
#[derive(Clone)]
pub struct PropertySet {
    pub inner: RsPropertySet,
}

#[pymethods]
impl PropertySet {
    /// `PropertySet(mapping=None)`: empty, or from a dict (nested dicts
    /// become nested sets) or another PropertySet.
    #[new]
    #[pyo3(signature = (mapping = None))]
    fn new(mapping: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(PropertySet {
            inner: match mapping {
                Some(m) => property_set_from_py(m)?,
                None => RsPropertySet::new(),
            },
        })
    }
    /// Builds a set from a dict.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::new(Some(d))
    }
    /// The set as a nested dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        property_set_to_dict(py, &self.inner)
    }
    /// The value of `name` (the last one of an array), or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.values(name) {
            Some(v) if !v.is_empty() => value_at(py, v, v.len() - 1, false),
            _ => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }
    /// Every value of `name` as a list.
    fn get_array<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
        let v = self
            .inner
            .values_or_err(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))?;
        let l = PyList::empty(py);
        for i in 0..v.len() {
            l.append(value_at(py, v, i, false)?)?;
        }
        Ok(l)
    }
    /// Sets `name` to a value or a list of values, replacing what it held.
    /// `type` forces a type (`"int32"`, `"int64"`, `"float32"`, `"float64"`,
    /// `"str"`, `"DateTime"` ..., or LSST's C++ names `"int"`, `"long long"`,
    /// `"float"`, `"double"`, `"string"`).
    #[pyo3(signature = (name, value, r#type = None))]
    fn set(&mut self, name: &str, value: &Bound<'_, PyAny>, r#type: Option<&str>) -> PyResult<()> {
        let v = values_from_py(value, r#type)?;
        self.inner
            .set_owned(name.to_string(), v)
            .map_err(property_err)
    }
    /// Appends value(s) to `name` (same type as what it holds).
    #[pyo3(signature = (name, value, r#type = None))]
    fn add(&mut self, name: &str, value: &Bound<'_, PyAny>, r#type: Option<&str>) -> PyResult<()> {
        let ty = match (r#type, self.inner.values(name)) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(v)) => Some(v.property_type().name().to_string()),
            _ => None,
        };
        let v = values_from_py(value, ty.as_deref())?;
        self.inner.add(name, v).map_err(property_err)
    }
    /// The type of `name`: `"bool"`, `"int8"` ... `"uint64"`, `"float32"`,
    /// `"float64"`, `"str"`, `"DateTime"` or `"PropertySet"`.
    fn type_of(&self, name: &str) -> PyResult<&'static str> {
        let t = self
            .inner
            .type_of(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))?;
        Ok(match t.name() {
            "i8" => "int8",
            "u8" => "uint8",
            "i16" => "int16",
            "u16" => "uint16",
            "i32" => "int32",
            "u32" => "uint32",
            "i64" => "int64",
            "u64" => "uint64",
            "f32" => "float32",
            "f64" => "float64",
            "String" => "str",
            other => other,
        })
    }
    /// Does `name` hold several values?
    fn is_array(&self, name: &str) -> bool {
        self.inner.is_array(name)
    }
    /// Names, top level only (default) or every dotted name.
    #[pyo3(signature = (top_level_only = true))]
    fn names(&self, top_level_only: bool) -> Vec<String> {
        if top_level_only {
            self.inner.iter().map(|(k, _)| k.to_string()).collect()
        } else {
            self.inner.names()
        }
    }
    /// The top-level names.
    fn keys(&self) -> Vec<String> {
        self.names(true)
    }
    /// `(name, value)` pairs at the top level.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        self.inner
            .iter()
            .map(|(k, v)| Ok((k.to_string(), values_to_py(py, v, false)?)))
            .collect()
    }
    /// Removes `name`; true if it existed.
    fn remove(&mut self, name: &str) -> bool {
        self.inner.remove(name).is_some()
    }
    /// A deep copy.
    fn copy(&self) -> Self {
        self.clone()
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let v = self
            .inner
            .values(name)
            .ok_or_else(|| PyKeyError::new_err(name.to_string()))?;
        values_to_py(py, v, false)
    }
    fn __setitem__(&mut self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set(name, value, None)
    }
    fn __delitem__(&mut self, name: &str) -> PyResult<()> {
        if self.remove(name) {
            Ok(())
        } else {
            Err(PyKeyError::new_err(name.to_string()))
        }
    }
    fn __contains__(&self, name: &str) -> bool {
        self.inner.exists(name)
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.names(true))?
            .try_iter()
            .map(|i| i.into_any())
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match property_set_from_py(other) {
            Ok(o) => o == self.inner,
            Err(_) => false,
        }
    }
    fn __repr__(&self) -> String {
        format!("PropertySet({})", self.inner.to_string().trim_end())
    }
}

// ------------------------------------------------------------------ Policy

/// A policy (`lsst.pex.policy`) loaded from YAML or legacy PAF, read as a
/// mapping: `policy["dir.input"]`, `policy.get(name)`, `policy.to_dict()`.
#[pyclass(module = "daf", from_py_object)]
#[derive(Clone)]
pub struct Policy {
    pub inner: RsPolicy,
}

#[pymethods]
impl Policy {
    /// `Policy(mapping=None)`: empty or from a dict.
    #[new]
    #[pyo3(signature = (mapping = None))]
    fn new(mapping: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let ps = match mapping {
            Some(m) => property_set_from_py(m)?,
            None => RsPropertySet::new(),
        };
        Ok(Policy {
            inner: RsPolicy::from_property_set(ps),
        })
    }
    /// Loads a policy file (`.yaml`/`.yml` or `.paf`), following includes.
    /// Raises `PolicyError` with the file and line of a problem.
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        RsPolicy::load(&path)
            .map(|inner| Policy { inner })
            .map_err(|e| policy_err(format!("{}: {e}", path.display())))
    }
    /// Fills names missing from this policy with the defaults of a
    /// dictionary policy file (`definitions: {name: {type, default}}`) and
    /// validates against it (raises `PolicyError` listing every problem).
    fn merge_defaults(&mut self, dictionary: std::path::PathBuf) -> PyResult<()> {
        let d = daf_base::policy::Dictionary::load(&dictionary).map_err(policy_err)?;
        self.inner.merge_defaults(&d).map_err(policy_err)?;
        self.inner.validate(&d).map_err(policy_err)
    }
    /// The value at `name` (nested policies as `Policy`), or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.as_property_set().values(name) {
            Some(v) => self.wrap(py, v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }
    /// Top-level names.
    fn keys(&self) -> Vec<String> {
        self.inner
            .as_property_set()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect()
    }
    /// The policy as a nested dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        property_set_to_dict(py, self.inner.as_property_set())
    }
    /// The policy as a PropertySet.
    fn to_property_set(&self) -> PropertySet {
        PropertySet {
            inner: self.inner.as_property_set().clone(),
        }
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let v = self
            .inner
            .as_property_set()
            .values(name)
            .ok_or_else(|| PyKeyError::new_err(name.to_string()))?;
        self.wrap(py, v)
    }
    fn __contains__(&self, name: &str) -> bool {
        self.inner.exists(name)
    }
    fn __len__(&self) -> usize {
        self.inner.as_property_set().len()
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.keys())?
            .try_iter()
            .map(|i| i.into_any())
    }
    fn __repr__(&self) -> String {
        format!(
            "Policy({})",
            self.inner.as_property_set().to_string().trim_end()
        )
    }
}

impl Policy {
    fn wrap<'py>(&self, py: Python<'py>, v: &Values) -> PyResult<Bound<'py, PyAny>> {
        if let Values::PropertySet(sets) = v {
            let mk = |p: &RsPropertySet| {
                Bound::new(
                    py,
                    Policy {
                        inner: RsPolicy::from_property_set(p.clone()),
                    },
                )
                .map(|b| b.into_any())
            };
            if sets.len() == 1 {
                return mk(&sets[0]);
            }
            let l = PyList::empty(py);
            for s in sets {
                l.append(mk(s)?)?;
            }
            return Ok(l.into_any());
        }
        values_to_py(py, v, false)
    }
}
