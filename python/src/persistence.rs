//! `daf.Persistence`, `daf.LogicalLocation`, storages by name and the
//! `daf.boost` archive functions.

use std::path::PathBuf;

use daf_base::Policy as RsPolicy;
use daf_formatters::{FormatterRegistry, Persistence as RsPersistence};
use daf_storages::atomic::AtomicFile;
use daf_storages::boost::property_set::{load_property_set, save_property_set, PropertySetLayout};
use daf_storages::boost::{library_version_for, ArchiveKind, IArchive, OArchive, DEFAULT_VERSION};
use daf_storages::{LogicalLocation as RsLocation, StorageRegistry};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::base::{property_set_from_py, PropertySet};
use crate::errors::{formatter_err, guard, storage_err, StorageError};
use crate::objects::{persistable_from_py, to_py};

/// A location string filled from a template (`lsst.daf.persistence.LogicalLocation`):
/// `%(key)` and printf-style `%03d(key)` take values from `additional_data`
/// first, then from `location_map`.
///
/// >>> daf.LogicalLocation("out/v%04d(visit).fits", {"visit": 3}).location
/// 'out/v0003.fits'
#[pyclass(module = "daf", frozen)]
pub struct LogicalLocation {
    /// The filled location.
    #[pyo3(get)]
    location: String,
}

#[pymethods]
impl LogicalLocation {
    #[new]
    #[pyo3(signature = (template, additional_data = None, location_map = None))]
    fn new(
        template: &str,
        additional_data: Option<&Bound<'_, PyAny>>,
        location_map: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let ad = additional_data.map(property_set_from_py).transpose()?;
        let lm = location_map.map(property_set_from_py).transpose()?;
        let l = RsLocation::new(template, ad.as_ref(), lm.as_ref()).map_err(storage_err)?;
        Ok(LogicalLocation {
            location: l.loc_str().to_string(),
        })
    }
    fn __str__(&self) -> String {
        self.location.clone()
    }
    fn __repr__(&self) -> String {
        format!("LogicalLocation({:?})", self.location)
    }
}

/// Writes and reads objects through named storages with the registered
/// formatters (`lsst.daf.persistence.Persistence`), all or nothing.
///
/// >>> p = daf.Persistence()
/// >>> p.persist(daf.PropertySet({"a": 1}), "BoostStorage", "/tmp/a.boost")
/// >>> p.retrieve("PropertySet", "BoostStorage", "/tmp/a.boost")["a"]
/// 1
#[pyclass(module = "daf", frozen)]
pub struct Persistence {
    inner: RsPersistence,
}

fn location(loc: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(l) = loc.cast::<LogicalLocation>() {
        return Ok(l.get().location.clone());
    }
    Ok(loc.extract::<PathBuf>()?.to_string_lossy().into_owned())
}

#[pymethods]
impl Persistence {
    /// `Persistence(policy=None)`: the built-in formatters and storages,
    /// configured by an optional persistence policy (dict, Policy or path).
    #[new]
    #[pyo3(signature = (policy = None))]
    fn new(policy: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let policy = match policy {
            None => RsPolicy::new(),
            Some(p) => match p.extract::<PathBuf>() {
                Ok(path) if !p.is_instance_of::<pyo3::types::PyDict>() => {
                    RsPolicy::load(&path).map_err(crate::errors::policy_err)?
                }
                _ => RsPolicy::from_property_set(property_set_from_py(p)?),
            },
        };
        Ok(Persistence {
            inner: RsPersistence::new(
                policy,
                FormatterRegistry::with_defaults(),
                StorageRegistry::with_defaults(),
            ),
        })
    }
    /// The storage names (`BoostStorage`, `XmlStorage`, `FitsStorage`, `DbStorage`, ...).
    fn storages(&self) -> Vec<String> {
        self.inner.storages().names()
    }
    /// Writes `obj` to `location` (a path or LogicalLocation) through `storage`.
    #[pyo3(signature = (obj, storage, location, additional_data = None))]
    fn persist(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        storage: &str,
        location: &Bound<'_, PyAny>,
        additional_data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let o = persistable_from_py(obj)?;
        let loc = self::location(location)?;
        let ad = additional_data
            .map(property_set_from_py)
            .transpose()?
            .unwrap_or_default();
        guard(py, || {
            let mut s = vec![self
                .inner
                .persist_storage(storage, &RsLocation::literal(loc))
                .map_err(formatter_err)?];
            self.inner
                .persist(o.as_ref(), &mut s, &ad)
                .map_err(formatter_err)
        })
    }
    /// Reads a `persistable` (`"PropertySet"`, `"ExposureF"`, ...) from
    /// `location` through `storage`.
    #[pyo3(signature = (persistable, storage, location, additional_data = None))]
    fn retrieve(
        &self,
        py: Python<'_>,
        persistable: &str,
        storage: &str,
        location: &Bound<'_, PyAny>,
        additional_data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let loc = self::location(location)?;
        let ad = additional_data
            .map(property_set_from_py)
            .transpose()?
            .unwrap_or_default();
        let obj = guard(py, || {
            let mut s = vec![self
                .inner
                .retrieve_storage(storage, &RsLocation::literal(loc))
                .map_err(formatter_err)?];
            self.inner
                .retrieve(persistable, &mut s, &ad)
                .map_err(formatter_err)
        })?;
        to_py(py, obj)
    }
}

const ROOT: &str = "propertySet";

fn kind(k: &str) -> PyResult<ArchiveKind> {
    match k {
        "binary" => Ok(ArchiveKind::Binary),
        "text" => Ok(ArchiveKind::Text),
        "xml" => Ok(ArchiveKind::Xml),
        _ => Err(PyValueError::new_err(format!(
            "archive kind {k:?}: expected \"binary\", \"text\" or \"xml\""
        ))),
    }
}

/// Reads a PropertySet from a C++ Boost.Serialization archive (binary, text
/// or XML, detected) as LSST's C++ wrote it. Returns `(PropertySet, info)`
/// with `info = {"kind": ..., "library_version": ...}` when `info=True`.
#[pyfunction]
#[pyo3(signature = (path, info = false))]
fn read(py: Python<'_>, path: PathBuf, info: bool) -> PyResult<Py<PyAny>> {
    let (ps, kind, version) = guard(py, || {
        let bytes = std::fs::read(&path)
            .map_err(|e| StorageError::new_err(format!("{}: {e}", path.display())))?;
        let try_read = |layout: PropertySetLayout| -> daf_storages::boost::Result<_> {
            let mut ar = IArchive::new(&bytes)?;
            let (k, v) = (ar.kind(), ar.library_version());
            let ps = load_property_set(&mut ar, ROOT, &layout)?;
            ar.finish()?;
            Ok((ps, k, v))
        };
        let lsst = PropertySetLayout::default();
        match try_read(lsst) {
            Ok(r) => Ok(r),
            Err(first) => {
                if ArchiveKind::detect(&bytes) == Some(ArchiveKind::Binary) {
                    if let Ok(r) = try_read(PropertySetLayout {
                        nitems_size_t: false,
                        ..lsst
                    }) {
                        return Ok(r);
                    }
                }
                Err(StorageError::new_err(format!(
                    "{}: not a readable PropertySet archive: {first}",
                    path.display()
                )))
            }
        }
    })?;
    let obj = Py::new(py, PropertySet { inner: ps })?.into_any();
    if info {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("kind", kind.name())?;
        d.set_item("library_version", version)?;
        return Ok(pyo3::types::PyTuple::new(py, [obj, d.into_any().unbind()])?
            .into_any()
            .unbind());
    }
    Ok(obj)
}

/// Writes a PropertySet (or dict) as a Boost archive C++ reads:
/// `kind` binary, text or xml; `boost_version` a release ("1.74", "1.81")
/// or a library version ("18", "19"; default 1.81). Atomic.
#[pyfunction]
#[pyo3(signature = (obj, path, kind = "binary", boost_version = None))]
fn write(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    path: PathBuf,
    kind: &str,
    boost_version: Option<&str>,
) -> PyResult<()> {
    let ps = property_set_from_py(obj)?;
    let k = self::kind(kind)?;
    let version = match boost_version {
        None => DEFAULT_VERSION,
        Some(v) => library_version_for(v)
            .filter(|v| daf_storages::boost::WRITE_VERSIONS.contains(v))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "boost_version {v:?}: daf writes Boost 1.74 (18) and 1.81 (19)"
                ))
            })?,
    };
    guard(py, || {
        let bytes = OArchive::to_bytes(k, version, |ar| {
            save_property_set(ar, ROOT, &ps, &PropertySetLayout::default())
        })
        .map_err(|e| StorageError::new_err(e.to_string()))?;
        let mut f = AtomicFile::create(&path).map_err(storage_err)?;
        std::io::Write::write_all(f.writer(), &bytes)
            .map_err(|e| StorageError::new_err(format!("{}: {e}", path.display())))?;
        f.commit().map(|_| ()).map_err(storage_err)
    })
}

/// The `daf.boost` submodule.
pub fn boost_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "boost")?;
    m.add_function(wrap_pyfunction!(read, &m)?)?;
    m.add_function(wrap_pyfunction!(write, &m)?)?;
    m.add("__doc__", "C++ Boost.Serialization archives of PropertySets: read(path), write(obj, path, kind=..., boost_version=...).")?;
    Ok(m)
}
