//! InputStage and OutputStage: retrieve clipboard items through persistence
//! before the stages that need them, persist them after.
//!
//! Stage policy (the keys of LSST's `IOStage` dictionaries; unknown names are
//! a [`HarnessError::Policy`] error, as dictionary validation was):
//!
//! ```text
//! inputKeys:  { inputDatasets: inputDatasets, jobIdentity: jobIdentity }
//! outputKeys: { outputDatasets: outputDatasets }            # output only
//! parameters: {
//!   runMode: preprocess | postprocess                       # serial variants only
//!   persistence: { ...Persistence policy... }
//!   additionalData: "visitId=tcsEvent.visitId" "ccd=jobIdentity.ccd"
//!   butler: { mapperName: ..., mapperPolicy: { root: ... } } # butler method
//!   inputItems | outputItems: { <clipboard key>: { ...item... } }
//! }
//! ```
//!
//! Input items, without a butler: `type` (the persistable name; `pythonType`
//! is accepted and ignored) plus either `storagePolicy` (one or several
//! `{storage, location}`, the *traditional* method) or `datasetType`,
//! `storage` and `location` (the *enhanced* method: one retrieval per dataset
//! of that type in the `inputDatasets` list, its ids overlaid on the
//! additional data; one match gives an object, otherwise a list, possibly
//! empty). File locations are waited for (0.5 s, ×1.2 back-off) up to the
//! item's `timeout` (default 60 s); then `"Timed out waiting for file <path>"`,
//! or the item is skipped when `required: false`. A `FitsStorage` location
//! `BASE` is also there when `BASE_img.fits` is (DC3-era afw's three-file
//! masked image, `BASE_img.fits`, `BASE_msk.fits`, `BASE_var.fits`, which
//! the masked-image formatters read; see `daf_formatters::fits`).
//!
//! Output items: `required` (default false: an absent item is skipped;
//! true: `"Missing output item: <item>"`), `datasetId { datasetType, set {...},
//! fromJobIdentity | fromClipboard: [keys] }` (ids from `set`, then from the
//! job identity, which wins; all are added to the additional data and the
//! dataset is appended to the `outputDatasets` list), and `storagePolicy`.
//! `StorageLocation.<storage>` is set in the item's additional data.
//!
//! The butler method (`parameters.butler { mapperName, mapperPolicy { root } }`,
//! the root filled from the location map) gets its butler from
//! [`crate::Services::butler_factory`]; without one, setup fails with a
//! [`HarnessError::Butler`] error. With a butler, additionalData and
//! persistence are ignored and:
//!
//! * each input item needs `datasetType` and `datasetId` with either
//!   `fromInputDatasets: true` (every dataset of that type in the
//!   `inputDatasets` list; none is `"No input datasets of type <T> for item
//!   <item>"`, one gives an object, several a list; `set` is not applied) or
//!   `fromJobIdentity: [keys]` (ids from the job identity, then `set`
//!   overrides them; one object); neither is `"datasetId missing both
//!   fromInputDatasets and fromJobIdentity"`. Each dataset is waited for
//!   (polling `dataset_exists`, 0.5 s ×1.2) up to `timeout` (default 60 s):
//!   when `required` (the default) the error is `"Timed out waiting for
//!   dataset <T> with keys <ids>"`; otherwise the read is still attempted.
//! * each output item with a `datasetId` is `put` through the butler (ids
//!   from `set`, then the job identity, which wins), listed in
//!   `outputDatasets`, and its provenance — the visit's `inputDatasets` that
//!   do not disagree with its data id on a key both have (a CCD's output
//!   lists that CCD's inputs) — is recorded with the butler. Items without `datasetId` use `storagePolicy`.

use std::sync::Arc;
use std::time::Duration;

use daf_base::{DataId, DataIdValue, Policy, PropertySet, PropertyType};
use daf_formatters::{Persistable, Persistence};
use daf_storages::{LogicalLocation, Storage};

use crate::additional_data;
use crate::butler::{ButlerSpec, DataButler};
use crate::clipboard::{Clipboard, Dataset, Item};
use crate::error::HarnessError;
use crate::location::fill;
use crate::stage::{ParallelStage, SerialStage, StageContext};
use crate::Result;

/// Default wait for an input file or dataset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn perr(key: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Policy(format!("{key}: {e}"))
}

fn opt_str(p: &Policy, key: &str) -> Result<Option<String>> {
    if !p.exists(key) {
        return Ok(None);
    }
    p.get::<String>(key).map(Some).map_err(|e| perr(key, e))
}

fn opt_bool(p: &Policy, key: &str, default: bool) -> Result<bool> {
    if !p.exists(key) {
        return Ok(default);
    }
    p.get::<bool>(key).map_err(|e| perr(key, e))
}

fn opt_timeout(p: &Policy, key: &str) -> Result<Duration> {
    if !p.exists(key) {
        return Ok(DEFAULT_TIMEOUT);
    }
    let t = p
        .as_property_set()
        .get_as_f64(key)
        .map_err(|e| perr(key, e))?;
    if !(0.0..1e7).contains(&t) {
        return Err(perr(
            key,
            format!("timeout must be between 0 and 1e7 s, not {t}"),
        ));
    }
    Ok(Duration::from_secs_f64(t))
}

/// `{storage, location}` pairs of a `storagePolicy` (single or repeated).
fn storage_pairs(item: &Policy, key: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for sp in item.get_policy_array(key).map_err(|e| perr(key, e))? {
        let s = sp
            .get::<String>("storage")
            .map_err(|e| perr(&format!("{key}.storage"), e))?;
        let l = sp
            .get::<String>("location")
            .map_err(|e| perr(&format!("{key}.location"), e))?;
        out.push((s, l));
    }
    if out.is_empty() {
        return Err(perr(key, "no storage given"));
    }
    Ok(out)
}

/// The clipboard-key names and parameters shared by both IO stages.
#[derive(Debug, Clone)]
struct Common {
    input_datasets_key: String,
    job_identity_key: String,
    output_datasets_key: String,
    run_mode: Option<String>,
    additional: Vec<String>,
    persistence: Persistence,
    butler: Option<Arc<dyn DataButler>>,
}

impl std::fmt::Debug for dyn DataButler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataButler")
    }
}

fn check_names(p: &Policy, allowed: &[&str], prefix: &str) -> Result<()> {
    for n in p.names() {
        if !allowed.contains(&n.as_str()) {
            return Err(HarnessError::Policy(format!(
                "unknown policy name {prefix}{n} (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

impl Common {
    fn from(ctx: &StageContext, output: bool) -> Result<(Common, Policy)> {
        let p = ctx.policy_or_empty();
        let items_key = if output { "outputItems" } else { "inputItems" };
        if output {
            check_names(&p, &["inputKeys", "outputKeys", "parameters"], "")?;
        } else {
            check_names(&p, &["inputKeys", "parameters"], "")?;
        }
        let sub = |k: &str| -> Result<Policy> {
            if p.exists(k) {
                p.get_policy(k).map_err(|e| perr(k, e))
            } else {
                Ok(Policy::new())
            }
        };
        let input_keys = sub("inputKeys")?;
        check_names(&input_keys, &["inputDatasets", "jobIdentity"], "inputKeys.")?;
        let output_keys = sub("outputKeys")?;
        check_names(&output_keys, &["outputDatasets"], "outputKeys.")?;
        let params = sub("parameters")?;
        check_names(
            &params,
            &[
                "runMode",
                "persistence",
                "additionalData",
                "butler",
                items_key,
            ],
            "parameters.",
        )?;
        let butler = if params.exists("butler") {
            let bp = params
                .get_policy("butler")
                .map_err(|e| perr("parameters.butler", e))?;
            let factory =
                ctx.services
                    .butler_factory
                    .as_ref()
                    .ok_or_else(|| HarnessError::Butler {
                        item: ctx.name.clone(),
                        message:
                            "parameters.butler is set, but no butler is available to this pipeline"
                                .into(),
                        source: None,
                    })?;
            let root = match opt_str(&bp, "mapperPolicy.root")? {
                Some(t) => Some(fill(&t, &ctx.services.location_map, &PropertySet::new())?),
                None => None,
            };
            let spec = ButlerSpec {
                mapper_name: opt_str(&bp, "mapperName")?,
                root,
                policy: bp,
            };
            Some(factory(&spec)?)
        } else {
            None
        };
        let persistence_policy = if params.exists("persistence") {
            params
                .get_policy("persistence")
                .map_err(|e| perr("parameters.persistence", e))?
        } else {
            Policy::new()
        };
        let common = Common {
            input_datasets_key: opt_str(&input_keys, "inputDatasets")?
                .unwrap_or_else(|| "inputDatasets".into()),
            job_identity_key: opt_str(&input_keys, "jobIdentity")?
                .unwrap_or_else(|| "jobIdentity".into()),
            output_datasets_key: opt_str(&output_keys, "outputDatasets")?
                .unwrap_or_else(|| "outputDatasets".into()),
            run_mode: opt_str(&params, "runMode")?,
            additional: additional_data::entries(&params, "additionalData")?,
            persistence: Persistence::new(
                persistence_policy,
                ctx.services.formatters.clone(),
                ctx.services.storages.clone(),
            ),
            butler,
        };
        let items = if params.exists(items_key) {
            params
                .get_policy(items_key)
                .map_err(|e| perr(items_key, e))?
        } else {
            Policy::new()
        };
        Ok((common, items))
    }
}

/// Is `loc` a file path (to wait for) rather than a database URL?
fn is_file_location(loc: &str) -> bool {
    !(loc.starts_with("mysql:") || loc.contains("://"))
}

/// Waits for `path` to exist: 0.5 s sleeps growing ×1.2 until their total
/// reaches `timeout`. For a `FitsStorage` location, `path_img.fits` (the
/// image of a DC3-era three-file masked image, see
/// [`daf_storages::fits::LegacySet`]) also counts.
fn wait_for_file(path: &str, storage: &str, timeout: Duration) -> bool {
    let p = std::path::Path::new(path);
    let legacy = (storage == "FitsStorage").then(|| daf_storages::fits::LegacySet::at(p).image);
    let mut slept = Duration::ZERO;
    let mut step = Duration::from_millis(500);
    loop {
        if p.exists() || legacy.as_ref().is_some_and(|l| l.is_file()) {
            return true;
        }
        if slept >= timeout {
            return false;
        }
        let s = step.min(timeout - slept);
        std::thread::sleep(s);
        slept += s;
        step = step.mul_f64(1.2);
    }
}

// ---------------------------------------------------------------- input

#[derive(Debug, Clone)]
enum InputSource {
    ButlerFromInputDatasets(String),
    ButlerFromJobIdentity {
        dataset_type: String,
        keys: Vec<String>,
        set: DataId,
    },
    Traditional(Vec<(String, String)>),
    Enhanced {
        dataset_type: String,
        storage: String,
        location: String,
    },
}

#[derive(Debug, Clone)]
struct InputItem {
    name: String,
    type_name: String,
    source: InputSource,
    required: bool,
    timeout: Duration,
}

#[derive(Debug, Clone)]
struct Input {
    common: Common,
    items: Vec<InputItem>,
}

impl Input {
    fn from(ctx: &StageContext) -> Result<Input> {
        let (common, items_policy) = Common::from(ctx, false)?;
        let mut items = Vec::new();
        for name in items_policy.names() {
            let key = format!("parameters.inputItems.{name}");
            let it = items_policy.get_policy(&name).map_err(|e| perr(&key, e))?;
            if common.butler.is_some() {
                let dataset_type = opt_str(&it, "datasetType")?
                    .ok_or_else(|| perr(&key, "the butler method needs datasetType"))?;
                let d = if it.exists("datasetId") {
                    it.get_policy("datasetId").map_err(|e| perr(&key, e))?
                } else {
                    Policy::new()
                };
                let source = if opt_bool(&d, "fromInputDatasets", false)? {
                    InputSource::ButlerFromInputDatasets(dataset_type)
                } else if d.exists("fromJobIdentity") {
                    InputSource::ButlerFromJobIdentity {
                        dataset_type,
                        keys: d
                            .get_array::<String>("fromJobIdentity")
                            .map_err(|e| perr(&key, e))?,
                        set: if d.exists("set") {
                            policy_to_data_id(
                                &d.get_policy("set")?,
                                &format!("{key}.datasetId.set"),
                            )?
                        } else {
                            DataId::new()
                        },
                    }
                } else {
                    return Err(HarnessError::DatasetIdSource { item: name });
                };
                items.push(InputItem {
                    name,
                    type_name: String::new(),
                    source,
                    required: opt_bool(&it, "required", true)?,
                    timeout: opt_timeout(&it, "timeout")?,
                });
                continue;
            }
            let type_name = opt_str(&it, "type")?
                .ok_or_else(|| perr(&key, "an input item needs type (the persistable name)"))?;
            let source = if let Some(dt) = opt_str(&it, "datasetType")? {
                InputSource::Enhanced {
                    dataset_type: dt,
                    storage: opt_str(&it, "storage")?
                        .ok_or_else(|| perr(&key, "datasetType needs storage and location"))?,
                    location: opt_str(&it, "location")?
                        .ok_or_else(|| perr(&key, "datasetType needs storage and location"))?,
                }
            } else if it.exists("storagePolicy") {
                InputSource::Traditional(storage_pairs(&it, "storagePolicy")?)
            } else {
                return Err(perr(
                    &key,
                    "needs storagePolicy, or datasetType with storage and location",
                ));
            };
            items.push(InputItem {
                name,
                type_name,
                source,
                required: opt_bool(&it, "required", true)?,
                timeout: opt_timeout(&it, "timeout")?,
            });
        }
        Ok(Input { common, items })
    }

    fn retrieve_one(
        &self,
        ctx: &StageContext,
        item: &InputItem,
        pairs: &[(String, String)],
        ad: &PropertySet,
    ) -> Result<Option<Arc<dyn Persistable>>> {
        let mut storages: Vec<Box<dyn Storage>> = Vec::new();
        for (storage, template) in pairs {
            let loc = fill(template, &ctx.services.location_map, ad)?;
            if is_file_location(&loc) && !wait_for_file(&loc, storage, item.timeout) {
                if item.required {
                    return Err(HarnessError::FileTimeout { path: loc });
                }
                tracing::warn!(item = %item.name, "input {loc} absent; item not required, skipped");
                return Ok(None);
            }
            storages.push(
                self.common
                    .persistence
                    .retrieve_storage(storage, &LogicalLocation::literal(loc))?,
            );
        }
        let obj = self
            .common
            .persistence
            .retrieve(&item.type_name, &mut storages, ad)?;
        Ok(Some(Arc::from(obj)))
    }

    fn run(&self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.items.is_empty() {
            tracing::warn!(stage = %ctx.name, "No inputItems found");
            return Ok(());
        }
        let base = additional_data::create(cb, &self.common.additional, ctx)?;
        for item in &self.items {
            let mut ad = base.clone();
            ad.set("itemName", item.name.as_str())?;
            match &item.source {
                InputSource::ButlerFromInputDatasets(dataset_type) => {
                    let butler = self.common.butler.as_ref().expect("butler method");
                    let list = cb.get_datasets(&self.common.input_datasets_key)?.to_vec();
                    let mut objs = Vec::new();
                    for ds in list.iter().filter(|d| &d.dataset_type == dataset_type) {
                        wait_for_dataset(butler.as_ref(), dataset_type, &ds.ids, item)?;
                        objs.push(butler.get(dataset_type, &ds.ids)?);
                    }
                    match objs.len() {
                        0 => {
                            return Err(HarnessError::NoInputDatasets {
                                dataset_type: dataset_type.clone(),
                                item: item.name.clone(),
                            })
                        }
                        1 => cb.put(item.name.clone(), to_item(objs.pop().expect("one"))),
                        _ => cb.put(item.name.clone(), Item::Objects(objs)),
                    }
                }
                InputSource::ButlerFromJobIdentity {
                    dataset_type,
                    keys,
                    set,
                } => {
                    let butler = self.common.butler.as_ref().expect("butler method");
                    let job = cb.get_job_identity(&self.common.job_identity_key)?;
                    let mut ids = DataId::new();
                    for k in keys {
                        let v = job
                            .get(k)
                            .ok_or_else(|| HarnessError::ExpectedDataNotFound {
                                key: format!("{}.{k}", self.common.job_identity_key),
                            })?;
                        ids.insert(k.clone(), v.clone());
                    }
                    ids.extend(set);
                    wait_for_dataset(butler.as_ref(), dataset_type, &ids, item)?;
                    let obj = butler.get(dataset_type, &ids)?;
                    cb.put(item.name.clone(), to_item(obj));
                }
                InputSource::Traditional(pairs) => {
                    if let Some(obj) = self.retrieve_one(ctx, item, pairs, &ad)? {
                        cb.put(item.name.clone(), to_item(obj));
                    }
                }
                InputSource::Enhanced {
                    dataset_type,
                    storage,
                    location,
                } => {
                    let list = cb.get_datasets(&self.common.input_datasets_key)?.to_vec();
                    let pairs = [(storage.clone(), location.clone())];
                    let mut objs = Vec::new();
                    for ds in list.iter().filter(|d| &d.dataset_type == dataset_type) {
                        let mut dad = ad.clone();
                        ds.ids.add_to_property_set(&mut dad);
                        if let Some(o) = self.retrieve_one(ctx, item, &pairs, &dad)? {
                            objs.push(o);
                        }
                    }
                    if objs.len() == 1 {
                        let o = objs.pop().expect("one object");
                        cb.put(item.name.clone(), to_item(o));
                    } else {
                        cb.put(item.name.clone(), Item::Objects(objs));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Polls `dataset_exists` (0.5 s sleeps ×1.2) until the sleep total reaches
/// the item's timeout; a required item then fails, others go on to `get`.
fn wait_for_dataset(
    butler: &dyn DataButler,
    dataset_type: &str,
    ids: &DataId,
    item: &InputItem,
) -> Result<()> {
    let mut slept = Duration::ZERO;
    let mut step = Duration::from_millis(500);
    loop {
        if butler.dataset_exists(dataset_type, ids)? {
            return Ok(());
        }
        if slept >= item.timeout {
            if item.required {
                return Err(HarnessError::DatasetTimeout {
                    dataset_type: dataset_type.into(),
                    ids: ids.to_string(),
                });
            }
            return Ok(());
        }
        let s = step.min(item.timeout - slept);
        std::thread::sleep(s);
        slept += s;
        step = step.mul_f64(1.2);
    }
}

/// A retrieved object as a clipboard item (a PropertySet stays a PropertySet,
/// so `key=item.sub` additional-data entries work on it).
fn to_item(obj: Arc<dyn Persistable>) -> Item {
    match obj.downcast_ref::<PropertySet>() {
        Some(ps) => Item::PropertySet(ps.clone()),
        None => Item::Object(obj),
    }
}

/// Defines the serial and parallel stage types around an IO step (`Input`
/// or `Output`): the serial one runs the step in the phase named by
/// `parameters.runMode`, the parallel one always in `process`.
macro_rules! io_stage_pair {
    ($step:ident, $serial:ident, $serial_doc:expr, $parallel:ident, $parallel_doc:expr) => {
        #[doc = $serial_doc]
        #[derive(Debug, Default)]
        pub struct $serial {
            inner: Option<$step>,
        }

        impl $serial {
            fn run_in(&self, phase: &str, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
                match &self.inner {
                    Some(s) if s.common.run_mode.as_deref() == Some(phase) => s.run(ctx, cb),
                    _ => Ok(()),
                }
            }
        }

        impl SerialStage for $serial {
            fn setup(&mut self, ctx: &StageContext) -> Result<()> {
                self.inner = Some($step::from(ctx)?);
                Ok(())
            }
            fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
                self.run_in("preprocess", ctx, cb)
            }
            fn postprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
                self.run_in("postprocess", ctx, cb)
            }
        }

        #[doc = $parallel_doc]
        #[derive(Debug, Default)]
        pub struct $parallel {
            inner: Option<$step>,
        }

        impl ParallelStage for $parallel {
            fn setup(&mut self, ctx: &StageContext) -> Result<()> {
                self.inner = Some($step::from(ctx)?);
                Ok(())
            }
            fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
                match &self.inner {
                    Some(s) => s.run(ctx, cb),
                    None => Ok(()),
                }
            }
        }
    };
}

io_stage_pair!(
    Input,
    InputStageSerial,
    "The serial InputStage: retrieves in the phase named by `parameters.runMode`.",
    InputStageParallel,
    "The parallel InputStage: always retrieves in `process`."
);

// ---------------------------------------------------------------- output

#[derive(Debug, Clone)]
struct DatasetIdSpec {
    dataset_type: String,
    set: DataId,
    from_job_identity: Vec<String>,
}

#[derive(Debug, Clone)]
struct OutputItem {
    name: String,
    required: bool,
    dataset_id: Option<DatasetIdSpec>,
    storages: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Output {
    common: Common,
    items: Vec<OutputItem>,
}

fn policy_to_data_id(p: &Policy, key: &str) -> Result<DataId> {
    let mut id = DataId::new();
    let ps = p.as_property_set();
    for n in ps.names() {
        let v = ps.values(&n).expect("listed name");
        let last = v.len().saturating_sub(1);
        let value = match v.property_type() {
            PropertyType::String => DataIdValue::Str(v.text_at(last).unwrap_or_default()),
            PropertyType::F32 | PropertyType::F64 => {
                DataIdValue::Float(v.as_f64_at(last).unwrap_or(f64::NAN))
            }
            _ => match v.as_i64_at(last) {
                Some(i) => DataIdValue::Int(i),
                None => {
                    return Err(perr(
                        &format!("{key}.{n}"),
                        "must be an integer, float or string",
                    ))
                }
            },
        };
        id.insert(n, value);
    }
    Ok(id)
}

impl Output {
    fn from(ctx: &StageContext) -> Result<Output> {
        let (common, items_policy) = Common::from(ctx, true)?;
        let mut items = Vec::new();
        for name in items_policy.names() {
            let key = format!("parameters.outputItems.{name}");
            let it = items_policy.get_policy(&name).map_err(|e| perr(&key, e))?;
            let dataset_id = if it.exists("datasetId") {
                let d = it.get_policy("datasetId").map_err(|e| perr(&key, e))?;
                let from = if d.exists("fromJobIdentity") {
                    d.get_array::<String>("fromJobIdentity")
                        .map_err(|e| perr(&key, e))?
                } else if d.exists("fromClipboard") {
                    d.get_array::<String>("fromClipboard")
                        .map_err(|e| perr(&key, e))?
                } else {
                    Vec::new()
                };
                Some(DatasetIdSpec {
                    dataset_type: opt_str(&d, "datasetType")?
                        .ok_or_else(|| perr(&key, "datasetId needs datasetType"))?,
                    set: if d.exists("set") {
                        policy_to_data_id(&d.get_policy("set")?, &format!("{key}.datasetId.set"))?
                    } else {
                        DataId::new()
                    },
                    from_job_identity: from,
                })
            } else {
                None
            };
            let by_butler = common.butler.is_some() && dataset_id.is_some();
            let storages = if it.exists("storagePolicy") {
                storage_pairs(&it, "storagePolicy")?
            } else if by_butler {
                Vec::new()
            } else {
                return Err(perr(
                    &key,
                    "needs storagePolicy (or a butler and a datasetId)",
                ));
            };
            items.push(OutputItem {
                name,
                required: opt_bool(&it, "required", false)?,
                dataset_id,
                storages,
            });
        }
        Ok(Output { common, items })
    }

    fn run(&self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.items.is_empty() {
            tracing::warn!(stage = %ctx.name, "No outputItems found");
            return Ok(());
        }
        let base = additional_data::create(cb, &self.common.additional, ctx)?;
        let mut written = 0usize;
        for item in &self.items {
            let Some(value) = cb.get(&item.name) else {
                if item.required {
                    return Err(HarnessError::MissingOutputItem {
                        item: item.name.clone(),
                    });
                }
                continue;
            };
            let value = value.clone();
            let mut ad = base.clone();
            ad.set("itemName", item.name.as_str())?;
            let mut butler_id = None;
            if let Some(spec) = &item.dataset_id {
                let mut ids = spec.set.clone();
                if !spec.from_job_identity.is_empty() {
                    let job = cb.get_job_identity(&self.common.job_identity_key)?;
                    for k in &spec.from_job_identity {
                        let v = job
                            .get(k)
                            .ok_or_else(|| HarnessError::ExpectedDataNotFound {
                                key: format!("{}.{k}", self.common.job_identity_key),
                            })?;
                        ids.insert(k.clone(), v.clone());
                    }
                }
                ids.add_to_property_set(&mut ad);
                if self.common.butler.is_some() {
                    butler_id = Some(ids.clone());
                }
                let ds = Dataset::new(spec.dataset_type.clone(), ids);
                let key = &self.common.output_datasets_key;
                match cb.get_mut(key) {
                    Some(Item::Datasets(list)) => list.push(ds),
                    Some(other) => {
                        return Err(HarnessError::WrongItemType {
                            key: key.clone(),
                            expected: "dataset list",
                            actual: other.kind(),
                        })
                    }
                    None => cb.put(key.clone(), vec![ds]),
                }
            }
            let obj: &dyn Persistable = match &value {
                Item::Object(o) => o.as_ref(),
                Item::PropertySet(ps) => ps,
                other => {
                    return Err(HarnessError::WrongItemType {
                        key: item.name.clone(),
                        expected: "persistable object or PropertySet",
                        actual: other.kind(),
                    })
                }
            };
            if let (Some(ids), Some(butler), Some(spec)) = (
                butler_id,
                self.common.butler.as_ref(),
                item.dataset_id.as_ref(),
            ) {
                butler.put(obj, &spec.dataset_type, &ids)?;
                // Its own inputs: those of the visit that do not disagree
                // with the output on a key both have (the raw and bias of
                // its CCD, not every CCD's).
                let inputs = match cb.get(&self.common.input_datasets_key) {
                    Some(Item::Datasets(d)) => d
                        .iter()
                        .filter(|i| i.ids.iter().all(|(k, v)| ids.get(k).is_none_or(|o| o == v)))
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                butler.record_provenance(&spec.dataset_type, &ids, &inputs)?;
                written += 1;
                continue;
            }
            let mut storages: Vec<Box<dyn Storage>> = Vec::new();
            for (storage, template) in &item.storages {
                let loc = fill(template, &ctx.services.location_map, &ad)?;
                ad.set(&format!("StorageLocation.{storage}"), loc.as_str())?;
                if is_file_location(&loc) {
                    if let Some(parent) = std::path::Path::new(&loc)
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                    {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| HarnessError::io("create folder", parent, e))?;
                    }
                }
                storages.push(
                    self.common
                        .persistence
                        .persist_storage(storage, &LogicalLocation::literal(loc))?,
                );
            }
            self.common.persistence.persist(obj, &mut storages, &ad)?;
            written += 1;
        }
        if written == 0 {
            tracing::warn!(stage = %ctx.name, "No items were output");
        }
        Ok(())
    }
}

io_stage_pair!(
    Output,
    OutputStageSerial,
    "The serial OutputStage: persists in the phase named by `parameters.runMode`.",
    OutputStageParallel,
    "The parallel OutputStage: always persists in `process`."
);
