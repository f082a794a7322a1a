//! `daf.Butler` and `daf.ButlerDataRef`: the Gen2 butler API from Python.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use daf_base::{DataId, PropertySet as RsPropertySet};
use daf_butler::ingest::{DataIdSource, IngestOptions, Transfer};
use daf_butler::{
    Butler as RsButler, GetOptions, Origin, PutOptions, RepositoryArgs, ResolvedDataset,
};
use daf_mappers::KeyType;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::base::{data_id, data_id_dict, id_value_py};
use crate::errors::{butler_err, guard};
use crate::objects::{persistable_from_py, to_py};

/// The data butler: finds datasets by type and data id in chained
/// repositories and reads and writes them (`lsst.daf.persistence.Butler`).
///
/// `Butler(root)` opens one repository for reading and writing;
/// `Butler(inputs=[...], outputs=[...])` chains read-only inputs and
/// writable outputs (created if missing). `mapper_policies` maps a
/// repository's mapper name (its `_mapper` file, e.g.
/// `"lsst.obs.test.testMapper.TestMapper"`) to the mapper policy file;
/// `policy` is the mapper policy for any camera mapper without its own, as
/// the CLI's `--policy`: `Butler("obs_test/input", policy="testMapper.yaml")`
/// opens a legacy Gen2 repository (`_mapper`, `registry.sqlite3`) as it is.
///
/// Data ids are given Gen2 style, as keywords or a dict (or both; keywords
/// win): `butler.get("raw", visit=1, ccd=0)` or
/// `butler.get("raw", {"visit": 1, "ccd": 0})`. The GIL is released while
/// reading and writing, so threads run in parallel.
#[pyclass(module = "daf", frozen)]
pub struct Butler {
    pub inner: Arc<RwLock<RsButler>>,
}

fn origin(s: &str) -> PyResult<Origin> {
    match s.to_ascii_uppercase().as_str() {
        "PARENT" => Ok(Origin::Parent),
        "LOCAL" => Ok(Origin::Local),
        _ => Err(PyValueError::new_err(format!(
            "origin {s:?}: expected \"PARENT\" or \"LOCAL\""
        ))),
    }
}

/// The read parameters of a cut-out (none without `bbox`).
fn read_params(bbox: Option<(i32, i32, i32, i32)>, origin: &str) -> PyResult<RsPropertySet> {
    Ok(match bbox {
        Some((x, y, w, h)) => {
            GetOptions::default()
                .bbox(x, y, w, h, self::origin(origin)?)
                .params
        }
        None => RsPropertySet::new(),
    })
}

/// A read object as Python; with `wcs`, the WCS cards of an exposure.
fn finish_get(
    py: Python<'_>,
    obj: Box<dyn daf_formatters::Persistable>,
    wcs: bool,
    dataset_type: &str,
) -> PyResult<Py<PyAny>> {
    let obj = to_py(py, obj)?;
    if wcs {
        let e = obj
            .bind(py)
            .cast::<crate::objects::Exposure>()
            .map_err(|_| {
                crate::errors::BadDataId::new_err(format!(
                    "{dataset_type}: only exposures have a wcs component"
                ))
            })?;
        return Ok(e.borrow().wcs(py)?.into_any().unbind());
    }
    Ok(obj)
}

/// How a read object is handed to Python: as itself, or (Gen2's derived
/// types) as the value the Gen2 butler returned.
enum Shape {
    Object,
    /// `<type>_filename`: the list of full paths.
    Filenames,
    /// A mapper's bypass answer (`ccdExposureId`): the one value it holds.
    Bypass(String),
}

fn derived_shape(b: &RsButler, dataset_type: &str) -> Shape {
    let Ok(resolved) = b.resolve_alias(dataset_type) else {
        return Shape::Object;
    };
    if let daf_butler::Derived::Filename(_) = b.derived_type(&resolved) {
        return Shape::Filenames;
    }
    if (0..b.repositories().len()).any(|i| b.mapper(i).has_bypass(&resolved)) {
        return Shape::Bypass(resolved.into_owned());
    }
    Shape::Object
}

/// The value `name` of the PropertySet a derived type is read as: a list
/// (`scalar = false`) or its one value (`scalar = true`).
fn derived_value(
    py: Python<'_>,
    obj: Box<dyn daf_formatters::Persistable>,
    name: &str,
    scalar: bool,
) -> PyResult<Py<PyAny>> {
    let obj = to_py(py, obj)?;
    let Ok(ps) = obj.bind(py).cast::<crate::base::PropertySet>() else {
        return Ok(obj);
    };
    let ps = ps.borrow();
    let Some(v) = ps.inner.values(name) else {
        return Ok(obj);
    };
    if scalar && v.len() == 1 {
        return Ok(crate::base::values_to_py(py, v, false)?.unbind());
    }
    let l = PyList::empty(py);
    for i in 0..v.len() {
        l.append(crate::base::value_at(py, v, i, false)?)?;
    }
    Ok(l.into_any().unbind())
}

fn key_type(k: &KeyType) -> &'static str {
    match k {
        KeyType::Int => "int",
        KeyType::Float => "float",
        KeyType::Str => "str",
    }
}

impl Butler {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RsButler> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Butler {
    #[new]
    #[pyo3(signature = (root = None, *, inputs = None, outputs = None, mapper_policies = None, policy = None, run = None))]
    fn new(
        py: Python<'_>,
        root: Option<PathBuf>,
        inputs: Option<Vec<PathBuf>>,
        outputs: Option<Vec<PathBuf>>,
        mapper_policies: Option<BTreeMap<String, PathBuf>>,
        policy: Option<PathBuf>,
        run: Option<String>,
    ) -> PyResult<Self> {
        let mut b = RsButler::builder().mapper_factory(daf_butler::camera_mapper_factory(
            mapper_policies.unwrap_or_default(),
            policy.clone(),
        ));
        // As the CLI's `--policy`: legacy Gen2 repositories (`_mapper`,
        // `registry.sqlite3`) open as they are, with this mapper policy.
        if let Some(p) = policy {
            b = b.policy(std::path::absolute(&p).unwrap_or(p));
        }
        if let Some(r) = root {
            b = b.output(RepositoryArgs::new(r));
        }
        for i in inputs.unwrap_or_default() {
            b = b.input(RepositoryArgs::new(i));
        }
        for o in outputs.unwrap_or_default() {
            b = b.output(RepositoryArgs::new(o));
        }
        if let Some(r) = run {
            b = b.run(r);
        }
        let butler = guard(py, || b.build().map_err(butler_err))?;
        Ok(Butler {
            inner: Arc::new(RwLock::new(butler)),
        })
    }

    /// Creates a repository at `root` whose `SimpleMapper` knows `datasets`
    /// (`{type: (template, persistable, storage)}`, e.g.
    /// `{"calexp": ("calexp/v%(visit)d.fits", "ExposureF", "FitsStorage")}`),
    /// or, with `mapper` and `policy`, a camera-mapper repository; `parents`
    /// are repositories it chains to. Returns `root`.
    #[staticmethod]
    #[pyo3(signature = (root, datasets = None, *, mapper = None, policy = None, parents = None))]
    fn create_repository(
        root: PathBuf,
        datasets: Option<BTreeMap<String, (String, String, String)>>,
        mapper: Option<String>,
        policy: Option<String>,
        parents: Option<Vec<PathBuf>>,
    ) -> PyResult<PathBuf> {
        let mut args = BTreeMap::new();
        let name = match (mapper, datasets) {
            (Some(m), _) => {
                if let Some(p) = policy {
                    args.insert("policy".to_string(), serde_json::Value::from(p));
                }
                Some(m)
            }
            (None, d) => {
                let defs = d.unwrap_or_default();
                let sm = daf_butler::simple_mapper::SimpleMapper::new(defs.iter().map(
                    |(k, (t, p, s))| {
                        (
                            k.as_str(),
                            daf_butler::simple_mapper::SimpleDataset::new(t, p, s),
                        )
                    },
                ))
                .map_err(crate::errors::mapper_err)?;
                args = sm.to_args();
                Some("SimpleMapper".to_string())
            }
        };
        daf_butler::Repository::create(&root, name.as_deref(), args, &parents.unwrap_or_default())
            .map_err(butler_err)?;
        Ok(root)
    }

    /// Reads one dataset: `get("calexp", visit=1, ccd=2)`, a component
    /// (`"calexp.wcs"` is the metadata's WCS cards; `.metadata`, `.image`,
    /// `.mask`, `.variance` read one HDU), or a cut-out
    /// (`bbox=(x0, y0, width, height)`, `origin="PARENT"` or `"LOCAL"`).
    /// Gen2's derived types answer as Gen2's butler did: `"raw_md"` the
    /// header (a `PropertySet`), `"raw_filename"` the list of full paths,
    /// `"raw_sub"` a cut-out (with `bbox=`), and a mapper's computed types
    /// (`"ccdExposureId"`, `"ccdExposureId_bits"`) their value (an `int`).
    /// Raises `NoResults` if no dataset matches.
    #[pyo3(signature = (dataset_type, data_id = None, *, bbox = None, origin = "PARENT", run = None, **keys))]
    #[allow(clippy::too_many_arguments)]
    fn get(
        &self,
        py: Python<'_>,
        dataset_type: &str,
        data_id: Option<&Bound<'_, PyAny>>,
        bbox: Option<(i32, i32, i32, i32)>,
        origin: &str,
        run: Option<String>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let id = crate::base::data_id(data_id, keys)?;
        let mut opts = GetOptions {
            params: read_params(bbox, origin)?,
            ..GetOptions::default()
        };
        if let Some(r) = run {
            opts = opts.run(r);
        }
        // The WCS cards live in the image HDU's header (as afw writes them):
        // `X.wcs` reads the exposure and keeps the WCS cards of its metadata.
        let (ty, wcs) = match dataset_type.strip_suffix(".wcs") {
            Some(base) => (base.to_string(), true),
            None => (dataset_type.to_string(), false),
        };
        let inner = self.inner.clone();
        let (obj, shape) = guard(py, move || {
            let b = inner.read().unwrap_or_else(|p| p.into_inner());
            let obj = b.get_dyn(&ty, &id, &opts).map_err(butler_err)?;
            Ok((obj, derived_shape(&b, &ty)))
        })?;
        match shape {
            Shape::Object => finish_get(py, obj, wcs, dataset_type),
            Shape::Filenames => derived_value(py, obj, "filename", false),
            Shape::Bypass(name) => derived_value(py, obj, &name, true),
        }
    }

    /// Finds a dataset now and reads it later: returns a
    /// `DeferredDatasetHandle` whose `get(component=None, bbox=None)` reads
    /// it (Gen3's `butler.getDeferred`). The location is resolved here
    /// (`NoResults` now if there is no such dataset); `bbox` given here
    /// applies to every read of the handle. A read of a dataset removed or
    /// replaced since raises `DatasetVanished`.
    #[pyo3(signature = (dataset_type, data_id = None, *, bbox = None, origin = "PARENT", run = None, **keys))]
    #[allow(clippy::too_many_arguments)]
    fn get_deferred(
        &self,
        py: Python<'_>,
        dataset_type: &str,
        data_id: Option<&Bound<'_, PyAny>>,
        bbox: Option<(i32, i32, i32, i32)>,
        origin: &str,
        run: Option<String>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<DeferredDatasetHandle> {
        let id = crate::base::data_id(data_id, keys)?;
        let params = read_params(bbox, origin)?;
        let (ty, wcs) = match dataset_type.strip_suffix(".wcs") {
            Some(base) => (base.to_string(), true),
            None => (dataset_type.to_string(), false),
        };
        let inner = self.inner.clone();
        let resolved = guard(py, move || {
            let b = inner.read().unwrap_or_else(|p| p.into_inner());
            b.resolve(&ty, &id, run.as_deref()).map_err(butler_err)
        })?;
        Ok(DeferredDatasetHandle {
            butler: self.inner.clone(),
            resolved,
            params,
            wcs,
        })
    }

    /// Writes `obj` (a PropertySet or dict, Image, Mask, MaskedImage,
    /// Exposure, DecoratedImage or SourceCatalog) as `dataset_type` for the
    /// data id to every output; returns the files written. Raises
    /// `DatasetExists` unless `clobber=True` (or `backup=True`, keeping the
    /// old file as `path~N`).
    #[pyo3(signature = (obj, dataset_type, data_id = None, *, clobber = false, backup = false, run = None, **keys))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        dataset_type: &str,
        data_id: Option<&Bound<'_, PyAny>>,
        clobber: bool,
        backup: bool,
        run: Option<String>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<PathBuf>> {
        let id = crate::base::data_id(data_id, keys)?;
        let p = persistable_from_py(obj)?;
        let opts = PutOptions {
            clobber,
            backup,
            run,
        };
        let inner = self.inner.clone();
        let ty = dataset_type.to_string();
        guard(py, move || {
            let b = inner.read().unwrap_or_else(|p| p.into_inner());
            b.put_with(p.as_ref(), &ty, &id, &opts).map_err(butler_err)
        })
    }

    /// Does the dataset exist in any repository?
    #[pyo3(signature = (dataset_type, data_id = None, **keys))]
    fn dataset_exists(
        &self,
        py: Python<'_>,
        dataset_type: &str,
        data_id: Option<&Bound<'_, PyAny>>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<bool> {
        let id = crate::base::data_id(data_id, keys)?;
        let b = self.read();
        let ty = dataset_type.to_string();
        let b = &*b;
        py.detach(|| crate::errors::catch(|| b.dataset_exists(&ty, &id).map_err(butler_err)))
    }

    /// The distinct values of `format` (a key or a list of keys) for
    /// datasets matching the data id: a list of values for one key, of
    /// tuples for several (Gen2's `queryMetadata`).
    #[pyo3(signature = (dataset_type, format, data_id = None, **keys))]
    fn query_metadata<'py>(
        &self,
        py: Python<'py>,
        dataset_type: &str,
        format: &Bound<'py, PyAny>,
        data_id: Option<&Bound<'py, PyAny>>,
        keys: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id = crate::base::data_id(data_id, keys)?;
        let (names, single): (Vec<String>, bool) = match format.extract::<String>() {
            Ok(s) => (vec![s], true),
            Err(_) => (format.extract()?, false),
        };
        let b = self.read();
        let b = &*b;
        let rows = py.detach(|| {
            crate::errors::catch(|| {
                let n: Vec<&str> = names.iter().map(String::as_str).collect();
                b.query_metadata(dataset_type, &n, &id).map_err(butler_err)
            })
        })?;
        let out = PyList::empty(py);
        for r in rows {
            if single {
                out.append(id_value_py(py, &r[0])?)?;
            } else {
                let items: Vec<Bound<'py, PyAny>> = r
                    .iter()
                    .map(|v| id_value_py(py, v))
                    .collect::<PyResult<_>>()?;
                out.append(PyTuple::new(py, items)?)?;
            }
        }
        Ok(out)
    }

    /// The data-id keys of a dataset type and their types (`"int"`,
    /// `"float"`, `"str"`), minus those of `level`.
    #[pyo3(signature = (dataset_type, level = None))]
    fn get_keys(
        &self,
        dataset_type: &str,
        level: Option<&str>,
    ) -> PyResult<BTreeMap<String, &'static str>> {
        let k = self
            .read()
            .get_keys(dataset_type, level)
            .map_err(butler_err)?;
        Ok(k.iter().map(|(k, t)| (k.clone(), key_type(t))).collect())
    }

    /// One `ButlerDataRef` per dataset of `dataset_type` at `level`
    /// matching the partial data id.
    #[pyo3(signature = (dataset_type, level = None, data_id = None, **keys))]
    fn subset(
        slf: &Bound<'_, Self>,
        dataset_type: &str,
        level: Option<String>,
        data_id: Option<&Bound<'_, PyAny>>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<ButlerDataRef>> {
        let py = slf.py();
        let id = crate::base::data_id(data_id, keys)?;
        let me = slf.get();
        let b = me.read();
        let b = &*b;
        let ids: Vec<DataId> = py.detach(|| {
            crate::errors::catch(|| {
                b.subset(dataset_type, level.as_deref(), &id)
                    .map(|v| v.into_iter().map(|r| r.data_id).collect())
                    .map_err(butler_err)
            })
        })?;
        Ok(ids
            .into_iter()
            .map(|data_id| ButlerDataRef {
                butler: slf.clone().unbind(),
                dataset_type: dataset_type.to_string(),
                level: level.clone(),
                data_id,
            })
            .collect())
    }

    /// The one `ButlerDataRef` matching the data id at `level`; raises
    /// `AmbiguousDataId` when none or several match.
    #[pyo3(signature = (dataset_type, level = None, data_id = None, **keys))]
    fn data_ref(
        slf: &Bound<'_, Self>,
        dataset_type: &str,
        level: Option<String>,
        data_id: Option<&Bound<'_, PyAny>>,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ButlerDataRef> {
        let id = crate::base::data_id(data_id, keys)?;
        let me = slf.get();
        let r = me
            .read()
            .data_ref(dataset_type, level.as_deref(), &id)
            .map_err(butler_err)?
            .data_id;
        Ok(ButlerDataRef {
            butler: slf.clone().unbind(),
            dataset_type: dataset_type.to_string(),
            level,
            data_id: r,
        })
    }

    /// The path of a dataset (`write=True`: where a put would write it).
    #[pyo3(signature = (dataset_type, data_id = None, *, write = false, **keys))]
    fn get_uri(
        &self,
        dataset_type: &str,
        data_id: Option<&Bound<'_, PyAny>>,
        write: bool,
        keys: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PathBuf> {
        let id = crate::base::data_id(data_id, keys)?;
        self.read()
            .get_uri(dataset_type, &id, write)
            .map_err(butler_err)
    }

    /// Defines `@alias` for a dataset type.
    fn define_alias(&self, alias: &str, dataset_type: &str) -> PyResult<()> {
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .define_alias(alias, dataset_type)
            .map_err(butler_err)
    }

    /// The dataset types the repositories' mappers know.
    fn dataset_types(&self) -> Vec<String> {
        self.read().dataset_types()
    }

    /// Ingests files into the first output as `dataset_type`, in parallel.
    /// Data ids come from `data_ids` (path → dict) or from FITS header
    /// cards through `header_keys` (`{"visit": "OBSID:int"}`). `transfer`:
    /// copy, move, hardlink, symlink, relsymlink or direct. Returns
    /// `{"ingested": [...], "skipped": [...], "failed": [(path, why)]}`.
    #[pyo3(signature = (files, dataset_type, *, transfer = "copy", data_ids = None, header_keys = None, run = ""))]
    #[allow(clippy::too_many_arguments)]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        files: Vec<PathBuf>,
        dataset_type: &str,
        transfer: &str,
        data_ids: Option<BTreeMap<PathBuf, Bound<'py, PyAny>>>,
        header_keys: Option<BTreeMap<String, String>>,
        run: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let transfer: Transfer = transfer
            .parse()
            .map_err(|e: String| PyValueError::new_err(e))?;
        let ids = match (data_ids, header_keys) {
            (Some(t), _) => {
                let mut m = BTreeMap::new();
                for (p, d) in t {
                    m.insert(p, data_id(Some(&d), None)?);
                }
                DataIdSource::Table(m)
            }
            (None, Some(h)) => DataIdSource::Header(
                h.into_iter()
                    .map(|(k, r)| {
                        r.parse().map(|r| (k.clone(), r)).map_err(|e: String| {
                            PyValueError::new_err(format!("header key {k}: {e}"))
                        })
                    })
                    .collect::<PyResult<_>>()?,
            ),
            (None, None) => return Err(PyValueError::new_err(
                "ingest needs data_ids={path: {...}} or header_keys={key: \"CARD[:conversion]\"}",
            )),
        };
        let opts = IngestOptions {
            dataset_type: dataset_type.to_string(),
            transfer,
            ids,
            run: run.to_string(),
        };
        let b = self.read();
        let b = &*b;
        let s = py.detach(|| {
            crate::errors::catch(|| {
                daf_butler::ingest::ingest(b, &files, &opts, &|| {}).map_err(butler_err)
            })
        })?;
        let d = PyDict::new(py);
        d.set_item("ingested", s.ingested)?;
        d.set_item("skipped", s.skipped)?;
        d.set_item("failed", s.failed)?;
        Ok(d)
    }

    /// Re-checks every file the first repository's registry recorded (size
    /// and BLAKE3 checksum); returns the problems as
    /// `[(path, dataset_type, data_id, problem)]` (empty when all is well).
    #[allow(clippy::type_complexity)]
    fn verify<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(PathBuf, String, Bound<'py, PyDict>, String)>> {
        let b = self.read();
        let b = &*b;
        let bad = py.detach(|| {
            crate::errors::catch(|| {
                let reg = b.registry(0).ok_or_else(|| {
                    crate::errors::RegistryError::new_err(
                        "the repository has no file registry (nothing was put or ingested)",
                    )
                })?;
                reg.verify().map_err(butler_err)
            })
        })?;
        bad.into_iter()
            .map(|m| {
                Ok((
                    m.full_path,
                    m.record.dataset_type,
                    data_id_dict(py, &m.record.data_id)?,
                    format!("{:?}", m.problem),
                ))
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<daf.Butler {:?}>",
            self.read()
                .repositories()
                .iter()
                .map(|r| r.root.display().to_string())
                .collect::<Vec<_>>()
        )
    }
}

/// A reference to one dataset (or a group of them at a level): a butler,
/// a dataset type and a data id (`lsst.daf.persistence.ButlerDataRef`).
#[pyclass(module = "daf")]
pub struct ButlerDataRef {
    butler: Py<Butler>,
    #[pyo3(get)]
    dataset_type: String,
    #[pyo3(get)]
    level: Option<String>,
    data_id: DataId,
}

#[pymethods]
impl ButlerDataRef {
    /// The data id as a dict.
    #[getter]
    fn data_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        data_id_dict(py, &self.data_id)
    }
    /// Reads the dataset (or another type for the same data id).
    #[pyo3(signature = (dataset_type = None, **kw))]
    fn get(
        &self,
        py: Python<'_>,
        dataset_type: Option<&str>,
        kw: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let d = data_id_dict(py, &self.data_id)?;
        let b = self.butler.get();
        let (bbox, origin) = match kw {
            Some(k) => (
                k.get_item("bbox")?.map(|v| v.extract()).transpose()?,
                k.get_item("origin")?
                    .map(|v| v.extract::<String>())
                    .transpose()?,
            ),
            None => (None, None),
        };
        b.get(
            py,
            dataset_type.unwrap_or(&self.dataset_type),
            Some(d.as_any()),
            bbox,
            origin.as_deref().unwrap_or("PARENT"),
            None,
            None,
        )
    }
    /// Writes `obj` for this data id.
    #[pyo3(signature = (obj, dataset_type = None, *, clobber = false))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        dataset_type: Option<&str>,
        clobber: bool,
    ) -> PyResult<Vec<PathBuf>> {
        let d = data_id_dict(py, &self.data_id)?;
        self.butler.get().put(
            py,
            obj,
            dataset_type.unwrap_or(&self.dataset_type),
            Some(d.as_any()),
            clobber,
            false,
            None,
            None,
        )
    }
    /// Does the dataset exist?
    #[pyo3(signature = (dataset_type = None))]
    fn dataset_exists(&self, py: Python<'_>, dataset_type: Option<&str>) -> PyResult<bool> {
        let d = data_id_dict(py, &self.data_id)?;
        self.butler.get().dataset_exists(
            py,
            dataset_type.unwrap_or(&self.dataset_type),
            Some(d.as_any()),
            None,
        )
    }
    /// The dataset's path.
    #[pyo3(signature = (dataset_type = None))]
    fn get_uri(&self, py: Python<'_>, dataset_type: Option<&str>) -> PyResult<PathBuf> {
        let d = data_id_dict(py, &self.data_id)?;
        self.butler.get().get_uri(
            dataset_type.unwrap_or(&self.dataset_type),
            Some(d.as_any()),
            false,
            None,
        )
    }
    fn __repr__(&self) -> String {
        format!("<daf.ButlerDataRef {} {}>", self.dataset_type, self.data_id)
    }
}

/// A dataset found now and read later (Gen3's `DeferredDatasetHandle`),
/// made by `Butler.get_deferred`. `get()` reads it; `get(component=...)`
/// reads one part (`"metadata"`, `"image"`, `"mask"`, `"variance"`, or
/// `"wcs"` for an exposure's WCS cards); `get(bbox=(x0, y0, w, h))` reads a
/// cut-out. Each read checks that the dataset is still the one found and
/// raises `DatasetVanished` if it was removed or replaced.
#[pyclass(module = "daf", frozen)]
pub struct DeferredDatasetHandle {
    butler: Arc<RwLock<RsButler>>,
    resolved: ResolvedDataset,
    params: RsPropertySet,
    wcs: bool,
}

#[pymethods]
impl DeferredDatasetHandle {
    /// Reads the dataset, a component of it, or a cut-out; `bbox` and
    /// `origin` as in `Butler.get` (a box given here replaces the one the
    /// handle was made with). The GIL is released while reading.
    #[pyo3(signature = (component = None, *, bbox = None, origin = "PARENT"))]
    fn get(
        &self,
        py: Python<'_>,
        component: Option<&str>,
        bbox: Option<(i32, i32, i32, i32)>,
        origin: &str,
    ) -> PyResult<Py<PyAny>> {
        let (component, wcs) = match component {
            Some(c) if c.eq_ignore_ascii_case("wcs") => (None, true),
            c => (c.map(str::to_string), self.wcs),
        };
        let mut params = self.params.clone();
        if bbox.is_some() {
            params
                .merge_replace(&read_params(bbox, origin)?)
                .map_err(crate::errors::property_err)?;
        }
        let inner = self.butler.clone();
        let r = self.resolved.clone();
        let obj = guard(py, move || {
            let b = inner.read().unwrap_or_else(|p| p.into_inner());
            b.get_resolved(&r, component.as_deref(), &params)
                .map_err(butler_err)
        })?;
        finish_get(py, obj, wcs, &self.resolved.dataset_type)
    }
    /// The dataset type the handle was made for.
    #[getter]
    fn dataset_type(&self) -> String {
        if self.wcs {
            format!("{}.wcs", self.resolved.dataset_type)
        } else {
            self.resolved.dataset_type.clone()
        }
    }
    /// The full data id of the dataset found, as a dict.
    #[getter]
    fn data_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        data_id_dict(py, self.resolved.data_id())
    }
    /// The dataset's file.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.resolved.path()
    }
    /// The run of the registry row found (`""` for none named), or None
    /// when the dataset was found by its templated path alone.
    #[getter]
    fn run(&self) -> Option<String> {
        self.resolved.found_run().map(str::to_string)
    }
    fn __repr__(&self) -> String {
        format!(
            "<daf.DeferredDatasetHandle {} {} {}>",
            self.dataset_type(),
            self.resolved.data_id(),
            self.resolved
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    }
}
