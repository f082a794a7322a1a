//! Python stages for the harness: a `Clipboard` Python objects can use, the
//! adapters that run a Python `SerialProcessing` / `ParallelProcessing`
//! subclass as a harness stage, and `run`, which runs a pipeline policy on
//! thread slices with Rust and Python stages side by side.
//!
//! A stage class named by a dotted path (`mypkg.stages.MyStageParallel`)
//! that the built-in registry does not know is imported from Python. An
//! exception in a Python stage becomes the harness's stage failure
//! (`failureType` = the exception class, `failureMessage` = its message and
//! the Python traceback), so LSST's failure semantics hold.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use daf_base::DataId;
use daf_butler::{Butler as RsButler, GetOptions, PutOptions};
use daf_harness::launch::{EventSource, RunRequest, TransportChoice};
use daf_harness::{
    ButlerFactory, ButlerSpec, Clipboard as RsClipboard, DataButler, Dataset,
    HarnessError as RsHarnessError, Item, ParallelStage, PipelineConfig, SerialStage, StageContext,
    StageRegistry,
};
use pyo3::exceptions::{PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::base::{data_id, data_id_dict, property_set_from_py, PropertySet};
use crate::errors::{catch, harness_err, policy_err};
use crate::objects::{arc_to_py, from_py, PyItem};

/// The named items one stage hands to the next (`lsst.pex.harness.Clipboard`).
///
/// Values are Python objects or daf objects: `clipboard.put(key, value,
/// shared=False)`, `clipboard.get(key, default=None)`, `clipboard[key]`,
/// `key in clipboard`, `clipboard.keys()`. Property sets come back as
/// `PropertySet`, job identities as dicts, dataset lists as lists of dicts
/// (`{"type", "ids", "path", "valid"}`).
#[pyclass(module = "daf.harness")]
pub struct Clipboard {
    inner: Option<RsClipboard>,
}

impl Clipboard {
    fn cb(&self) -> PyResult<&RsClipboard> {
        self.inner.as_ref().ok_or_else(|| {
            PyRuntimeError::new_err(
                "this clipboard went on to the next stage; use the one the stage is given",
            )
        })
    }
    fn cb_mut(&mut self) -> PyResult<&mut RsClipboard> {
        self.inner.as_mut().ok_or_else(|| {
            PyRuntimeError::new_err(
                "this clipboard went on to the next stage; use the one the stage is given",
            )
        })
    }
}

fn item_to_py(py: Python<'_>, item: &Item) -> PyResult<Py<PyAny>> {
    Ok(match item {
        Item::PropertySet(p) => Py::new(py, PropertySet { inner: p.clone() })?.into_any(),
        Item::Object(o) => arc_to_py(py, o)?,
        Item::Objects(v) => {
            let l = PyList::empty(py);
            for o in v {
                l.append(arc_to_py(py, o)?)?;
            }
            l.into_any().unbind()
        }
        Item::Datasets(ds) => {
            let l = PyList::empty(py);
            for d in ds {
                let x = PyDict::new(py);
                x.set_item("type", &d.dataset_type)?;
                x.set_item("ids", data_id_dict(py, &d.ids)?)?;
                x.set_item("path", &d.path)?;
                x.set_item("valid", d.valid)?;
                l.append(x)?;
            }
            l.into_any().unbind()
        }
        Item::JobIdentity(id) => data_id_dict(py, id)?.into_any().unbind(),
        Item::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Item::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Item::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Item::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
    })
}

fn item_from_py(v: &Bound<'_, PyAny>) -> PyResult<Item> {
    if v.is_instance_of::<PyBool>() {
        return Ok(Item::Bool(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Item::Int(i));
        }
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Item::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Item::Str(v.extract()?));
    }
    if let Ok(p) = v.cast::<PropertySet>() {
        return Ok(Item::PropertySet(p.borrow().inner.clone()));
    }
    if let Some(obj) = from_py(v)? {
        return Ok(Item::Object(Arc::from(obj)));
    }
    Ok(Item::Object(Arc::new(PyItem(v.clone().unbind()))))
}

#[pymethods]
impl Clipboard {
    /// `Clipboard(items=None)`: empty, or with the items of a dict.
    #[new]
    #[pyo3(signature = (items = None))]
    fn new(items: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut cb = Clipboard {
            inner: Some(RsClipboard::new()),
        };
        if let Some(d) = items {
            for (k, v) in d.iter() {
                cb.put(&k.extract::<String>()?, &v, false)?;
            }
        }
        Ok(cb)
    }
    /// Puts `value` under `key`; `shared=True` sends it to neighbouring
    /// slices before a stage with `shareData`.
    #[pyo3(signature = (key, value, shared = false))]
    fn put(&mut self, key: &str, value: &Bound<'_, PyAny>, shared: bool) -> PyResult<()> {
        let item = item_from_py(value)?;
        let cb = self.cb_mut()?;
        if shared {
            cb.put_shared(key, item);
        } else {
            cb.put(key, item);
        }
        Ok(())
    }
    /// Puts a job identity (a data-id dict) under `key`, as events do.
    fn put_job_identity(&mut self, key: &str, data_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = crate::base::data_id(Some(data_id), None)?;
        self.cb_mut()?.put(key, Item::JobIdentity(id));
        Ok(())
    }
    /// Puts a list of dataset specifiers (`[{"type": "raw", "ids": {...}}]`) under `key`.
    fn put_datasets(&mut self, key: &str, datasets: Vec<Bound<'_, PyDict>>) -> PyResult<()> {
        let mut v = Vec::new();
        for d in datasets {
            let t: String = d
                .get_item("type")?
                .ok_or_else(|| PyKeyError::new_err("type"))?
                .extract()?;
            let ids = data_id(d.get_item("ids")?.as_ref(), None)?;
            let mut ds = Dataset::new(t, ids);
            ds.path = d.get_item("path")?.map(|p| p.extract()).transpose()?;
            v.push(ds);
        }
        self.cb_mut()?.put(key, Item::Datasets(v));
        Ok(())
    }
    /// The item under `key`, or `default`.
    #[pyo3(signature = (key, default = None))]
    fn get(&self, py: Python<'_>, key: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match self.cb()?.get(key) {
            Some(i) => item_to_py(py, i),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }
    /// Removes and returns the item under `key` (None if absent).
    fn remove(&mut self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        match self.cb_mut()?.remove(key) {
            Some(i) => item_to_py(py, &i),
            None => Ok(py.None()),
        }
    }
    /// The keys, sorted.
    fn keys(&self) -> PyResult<Vec<String>> {
        Ok(self.cb()?.keys())
    }
    /// The keys of shared items.
    fn shared_keys(&self) -> PyResult<Vec<String>> {
        Ok(self.cb()?.shared_keys())
    }
    fn __getitem__(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        self.cb()?
            .get(key)
            .map(|i| item_to_py(py, i))
            .unwrap_or_else(|| Err(PyKeyError::new_err(key.to_string())))
    }
    fn __setitem__(&mut self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put(key, value, false)
    }
    fn __contains__(&self, key: &str) -> PyResult<bool> {
        Ok(self.cb()?.contains(key))
    }
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.cb()?.len())
    }
    fn __repr__(&self) -> String {
        match &self.inner {
            Some(cb) => format!("<daf.harness.Clipboard {:?}>", cb.keys()),
            None => "<daf.harness.Clipboard (passed on)>".into(),
        }
    }
}

/// A Python exception as the harness's stage failure, with its traceback.
fn stage_failure(py: Python<'_>, e: PyErr) -> RsHarnessError {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let tb = py
        .import("traceback")
        .and_then(|t| {
            t.call_method1(
                "format_exception",
                (e.get_type(py), e.value(py), e.traceback(py)),
            )
        })
        .and_then(|l| l.extract::<Vec<String>>())
        .map(|l| l.concat())
        .unwrap_or_default();
    RsHarnessError::Stage {
        kind,
        message: format!("{}\n{}", e.value(py), tb.trim_end()),
    }
}

/// Calls `obj.method(clipboard)` on a Python clipboard that holds `cb` for
/// the call, then takes the clipboard back.
fn call_stage(obj: &Py<PyAny>, method: &str, cb: &mut RsClipboard) -> daf_harness::Result<()> {
    Python::attach(|py| {
        let o = obj.bind(py);
        if !o.hasattr(method).unwrap_or(false) {
            return Ok(());
        }
        let pcb = Py::new(
            py,
            Clipboard {
                inner: Some(std::mem::take(cb)),
            },
        )
        .map_err(|e| stage_failure(py, e))?;
        let r = o.call_method1(method, (pcb.clone_ref(py),));
        *cb = pcb.borrow_mut(py).inner.take().unwrap_or_default();
        r.map(|_| ()).map_err(|e| stage_failure(py, e))
    })
}

struct PySerial(Py<PyAny>);
struct PyParallel(Py<PyAny>);

impl SerialStage for PySerial {
    fn preprocess(&mut self, _ctx: &StageContext, cb: &mut RsClipboard) -> daf_harness::Result<()> {
        call_stage(&self.0, "preprocess", cb)
    }
    fn postprocess(
        &mut self,
        _ctx: &StageContext,
        cb: &mut RsClipboard,
    ) -> daf_harness::Result<()> {
        call_stage(&self.0, "postprocess", cb)
    }
}

impl ParallelStage for PyParallel {
    fn process(&mut self, _ctx: &StageContext, cb: &mut RsClipboard) -> daf_harness::Result<()> {
        call_stage(&self.0, "process", cb)
    }
}

/// Builds a Python stage object through `daf.harness._make_stage`.
fn make_py_stage(path: &str, ctx: &StageContext) -> daf_harness::Result<Py<PyAny>> {
    Python::attach(|py| {
        let r = (|| -> PyResult<Py<PyAny>> {
            let h = py.import("daf.harness")?;
            let policy = match &ctx.policy {
                Some(p) => Py::new(py, crate::base::Policy { inner: p.clone() })?.into_any(),
                None => py.None(),
            };
            let kw = PyDict::new(py);
            kw.set_item("name", &ctx.name)?;
            kw.set_item("stage_id", ctx.stage_id)?;
            kw.set_item("rank", ctx.rank)?;
            kw.set_item("run_id", &ctx.run_id)?;
            kw.set_item("universe_size", ctx.universe_size)?;
            kw.set_item(
                "location_map",
                PropertySet {
                    inner: ctx.services.location_map.clone(),
                },
            )?;
            Ok(h.call_method("_make_stage", (path, policy), Some(&kw))?
                .unbind())
        })();
        r.map_err(|e| stage_failure(py, e))
    })
}

/// Is `name` a dotted Python class path (not a built-in stage)?
fn is_python_class(name: &str, reg: &StageRegistry) -> bool {
    name.contains('.') && !reg.has_serial(name) && !reg.has_parallel(name)
}

/// The built-in stages plus a Python factory for every class of `cfg` that
/// is a dotted path the built-ins do not know.
pub fn registry_for(cfg: &PipelineConfig) -> StageRegistry {
    let mut reg = StageRegistry::with_defaults();
    let stages = cfg.stages.iter().chain(cfg.failure_stage.iter());
    let mut serial = Vec::new();
    let mut parallel = Vec::new();
    for s in stages {
        if let Some(c) = &s.serial_class {
            if is_python_class(c, &reg) {
                serial.push(c.clone());
            }
        }
        if let Some(c) = &s.parallel_class {
            if is_python_class(c, &reg) {
                parallel.push(c.clone());
            }
        }
    }
    for c in serial {
        let path = c.clone();
        reg.register_serial(&c, move |ctx| {
            Ok(Box::new(PySerial(make_py_stage(&path, ctx)?)) as Box<dyn SerialStage>)
        });
    }
    for c in parallel {
        let path = c.clone();
        reg.register_parallel(&c, move |ctx| {
            Ok(Box::new(PyParallel(make_py_stage(&path, ctx)?)) as Box<dyn ParallelStage>)
        });
    }
    reg
}

/// Loads a pipeline policy file for `run_id` (includes relative to its folder).
pub fn load_pipeline(path: &Path, run_id: &str) -> PyResult<PipelineConfig> {
    daf_harness::launch::load_pipeline(path, run_id).map_err(|e| match e {
        RsHarnessError::Policy(m) => policy_err(m),
        e => harness_err(e),
    })
}

/// The IO stages' butler for a Python run: `butler` (a `daf.Butler`) for
/// stages whose `parameters.butler` names no `mapperPolicy.root`, else the
/// repository at the root, opened as `daf run` opens it.
fn butler_factory(butler: Option<Arc<RwLock<RsButler>>>) -> ButlerFactory {
    let by_root = daf_harness::repo_butler::butler_factory(None);
    Arc::new(move |spec: &ButlerSpec| match (&spec.root, &butler) {
        (None, Some(b)) => Ok(Arc::new(SharedButler(b.clone())) as Arc<dyn DataButler>),
        _ => by_root(spec),
    })
}

/// A `daf.Butler` as the IO stages see it (the same butler object the
/// Python code holds).
struct SharedButler(Arc<RwLock<RsButler>>);

fn berr(item: &str, e: impl Into<daf_base::BoxError>) -> RsHarnessError {
    let e = e.into();
    RsHarnessError::Butler {
        item: item.into(),
        message: e.to_string(),
        source: Some(e),
    }
}

impl SharedButler {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RsButler> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl DataButler for SharedButler {
    fn get(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> daf_harness::Result<Arc<dyn daf_formatters::Persistable>> {
        self.read()
            .get_dyn(dataset_type, data_id, &GetOptions::default())
            .map(Arc::from)
            .map_err(|e| berr(dataset_type, e))
    }
    fn put(
        &self,
        obj: &dyn daf_formatters::Persistable,
        dataset_type: &str,
        data_id: &DataId,
    ) -> daf_harness::Result<()> {
        self.read()
            .put_with(obj, dataset_type, data_id, &PutOptions::clobber())
            .map(|_| ())
            .map_err(|e| berr(dataset_type, e))
    }
    fn dataset_exists(&self, dataset_type: &str, data_id: &DataId) -> daf_harness::Result<bool> {
        self.read()
            .dataset_exists(dataset_type, data_id)
            .map_err(|e| berr(dataset_type, e))
    }
    fn record_provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[Dataset],
    ) -> daf_harness::Result<()> {
        let b = self.read();
        let Some(i) = b.output_indices().first().copied() else {
            return Ok(());
        };
        let Some(mut reg) = b.registry(i) else {
            return Ok(());
        };
        let inputs: Vec<(String, DataId)> = inputs
            .iter()
            .map(|i| (i.dataset_type.clone(), i.ids.clone()))
            .collect();
        reg.record_provenance(dataset_type, data_id, &inputs)
            .map_err(|e| berr(dataset_type, e))
    }
}

/// Runs a pipeline (see `daf.harness.run`); returns the report as JSON text.
#[pyfunction]
#[pyo3(signature = (pipeline, events = None, events_file = None, slices = None, run_id = "run", locations = None, transport = "threads", butler = None))]
#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    py: Python<'_>,
    pipeline: PathBuf,
    events: Option<Vec<String>>,
    events_file: Option<PathBuf>,
    slices: Option<usize>,
    run_id: &str,
    locations: Option<Bound<'_, PyAny>>,
    transport: &str,
    butler: Option<PyRef<'_, crate::butler::Butler>>,
) -> PyResult<String> {
    let cfg = load_pipeline(&pipeline, run_id)?;
    let registry = registry_for(&cfg);
    // As `daf run`: the policy's location map, the built-in storages and
    // formatters, and a butler for the IO stages' butler method.
    let mut services = daf_harness::launch::default_services(&cfg, &[]).map_err(harness_err)?;
    services.butler_factory = Some(butler_factory(butler.map(|b| b.inner.clone())));
    if let Some(l) = locations {
        let extra = property_set_from_py(&l)?;
        services
            .location_map
            .merge_replace(&extra)
            .map_err(crate::errors::property_err)?;
    }
    let events = match (events, events_file) {
        (Some(lines), _) => EventSource::Events(
            daf_harness::read_events(Cursor::new(lines.join("\n")), "events")
                .collect::<daf_harness::Result<Vec<_>>>()
                .map_err(harness_err)?,
        ),
        (None, Some(f)) => EventSource::File(f),
        (None, None) => EventSource::Single,
    };
    let req = RunRequest {
        pipeline,
        events,
        slices,
        run_id: run_id.to_string(),
        locations: Vec::new(),
        transport: match transport {
            "threads" => TransportChoice::Threads,
            #[cfg(feature = "mpi")]
            "mpi" => TransportChoice::Mpi,
            other => {
                return Err(crate::errors::HarnessError::new_err(format!(
                    "transport {other:?}: this build of daf runs \"threads\"{}",
                    if cfg!(feature = "mpi") {
                        " and \"mpi\""
                    } else {
                        " (rebuild the package with the `mpi` feature for MPI)"
                    }
                )))
            }
        },
    };
    let report = py.detach(|| {
        catch(|| {
            daf_harness::launch::run_loaded(&cfg, &req, &registry, services).map_err(harness_err)
        })
    })?;
    Ok(match report {
        Some(r) => {
            let mut j = r.to_json();
            j["elapsed_s"] = serde_json::json!(r.elapsed.as_secs_f64());
            j.to_string()
        }
        // a slice rank under MPI: the master reports
        None => "null".to_string(),
    })
}

/// Adds the harness functions and classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Clipboard>()?;
    m.add_function(wrap_pyfunction!(run_pipeline, m)?)?;
    m.add("HAS_MPI", cfg!(feature = "mpi"))?;
    Ok(())
}
