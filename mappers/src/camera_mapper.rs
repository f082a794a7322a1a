//! [`CameraMapper`]: the policy-driven [`Mapper`] of a Gen2 repository.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf_base::{DataId, DataIdValue, PropertySet};

use crate::policy::{DatasetKind, DatasetPolicy, MapperPolicy};
use crate::registry::{open_registry, Lookup, PosixRegistry, Registry, Row, ValidRange};
use crate::{ButlerLocation, KeyType, Mapper, MapperError};

/// A standardize hook: adjusts additional data after a read.
pub type StdHook = Arc<dyn Fn(&DataId, &mut PropertySet) + Send + Sync>;
/// A bypass hook: answers a dataset without reading storage.
pub type BypassHook = Arc<dyn Fn(&ButlerLocation) -> Option<PropertySet> + Send + Sync>;

/// Options for [`CameraMapper::open`].
#[derive(Default)]
pub struct CameraMapperOptions {
    /// Use this registry instead of finding one under the root.
    pub registry: Option<Box<dyn Registry>>,
    /// Use this calibration registry instead of finding one.
    pub calib_registry: Option<Box<dyn Registry>>,
    /// Calibration root (default: the policy's `calibRoot`, else the root).
    pub calib_root: Option<PathBuf>,
}

/// A mapper driven by a [`MapperPolicy`] over a repository root.
///
/// Registry discovery (as Gen2): the policy's `registryPath` (relative to the
/// root), else `registry.pgsql`, else `registry.sqlite3` under the root,
/// else a [`PosixRegistry`] on the root. The calibration registry is opened
/// only when `needCalibRegistry` is true: `calibRegistryPath`, else
/// `calibRegistry.sqlite3` under the calibration root, else the root.
pub struct CameraMapper {
    policy: Arc<MapperPolicy>,
    root: PathBuf,
    calib_root: PathBuf,
    registry: Option<Box<dyn Registry>>,
    calib_registry: Option<Box<dyn Registry>>,
    /// Columns of every table any dataset names (empty when absent).
    columns: HashMap<String, Vec<String>>,
    calib_columns: HashMap<String, Vec<String>>,
    std_hooks: HashMap<String, StdHook>,
    bypass_hooks: HashMap<String, BypassHook>,
}

impl std::fmt::Debug for CameraMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraMapper")
            .field("policy", &self.policy.source)
            .field("root", &self.root)
            .field("registry", &self.registry.as_ref().map(|r| r.describe()))
            .finish()
    }
}

fn find_registry(
    root: &Path,
    explicit: Option<&str>,
    names: &[&str],
) -> Result<Option<Box<dyn Registry>>, MapperError> {
    if let Some(p) = explicit {
        let p = root.join(p);
        return open_registry(&p).map(Some);
    }
    for n in names {
        let p = root.join(n);
        if p.is_file() {
            return open_registry(&p).map(Some);
        }
    }
    Ok(None)
}

impl CameraMapper {
    /// Opens a mapper for `root` with `policy`. Checks at load time that every
    /// template key of a dataset with registry tables is a column of those
    /// tables (or of its `reference` tables), or a `givenKeys` key.
    pub fn open(
        policy: MapperPolicy,
        root: impl Into<PathBuf>,
        options: CameraMapperOptions,
    ) -> Result<Self, MapperError> {
        let root = root.into();
        let registry = match options.registry {
            Some(r) => Some(r),
            None => match find_registry(
                &root,
                policy.registry_path.as_deref(),
                &["registry.pgsql", "registry.sqlite3"],
            )? {
                Some(r) => Some(r),
                None if root.is_dir() => Some(Box::new(
                    PosixRegistry::new(&root).with_rewrites(policy.key_rewrites.clone()),
                ) as Box<dyn Registry>),
                None => None,
            },
        };
        let calib_root = options
            .calib_root
            .or_else(|| policy.calib_root.as_ref().map(|c| root.join(c)))
            .unwrap_or_else(|| root.clone());
        let calib_registry = match options.calib_registry {
            Some(r) => Some(r),
            None if policy.need_calib_registry => {
                let found = match find_registry(&root, policy.calib_registry_path.as_deref(), &[])?
                {
                    Some(r) => Some(r),
                    None => find_registry(&calib_root, None, &["calibRegistry.sqlite3"])?
                        .or(find_registry(&root, None, &["calibRegistry.sqlite3"])?),
                };
                Some(found.ok_or_else(|| {
                    MapperError::Registry {
                        registry: calib_root
                            .join("calibRegistry.sqlite3")
                            .display()
                            .to_string(),
                        message: "needCalibRegistry is true but no calibration registry was found"
                            .into(),
                        source: None,
                    }
                })?)
            }
            None => None,
        };
        let mut m = CameraMapper {
            policy: Arc::new(policy),
            root,
            calib_root,
            registry,
            calib_registry,
            columns: HashMap::new(),
            calib_columns: HashMap::new(),
            std_hooks: HashMap::new(),
            bypass_hooks: HashMap::new(),
        };
        tracing::info!(
            policy = %m.policy.source,
            root = %m.root.display(),
            registry = %m.registry.as_ref().map(|r| r.describe()).unwrap_or_else(|| "none".into()),
            calib_registry = %m.calib_registry.as_ref().map(|r| r.describe()).unwrap_or_else(|| "none".into()),
            camera = m.policy.camera_description.as_ref().map(|c| c.name.as_str()).unwrap_or("-"),
            "camera mapper opened"
        );
        m.load_columns();
        m.check_template_keys()?;
        Ok(m)
    }

    /// Loads a policy file (see [`MapperPolicy::load`]) and opens the mapper.
    pub fn from_policy_file(policy: &Path, root: impl Into<PathBuf>) -> Result<Self, MapperError> {
        Self::open(
            MapperPolicy::load(policy, None)?,
            root,
            CameraMapperOptions::default(),
        )
    }

    fn load_columns(&mut self) {
        let mut main_tables: Vec<&str> = Vec::new();
        let mut calib_tables: Vec<&str> = Vec::new();
        for d in self.policy.datasets.values() {
            for t in &d.reference {
                main_tables.push(t);
            }
            for t in &d.tables {
                if d.kind == DatasetKind::Calibration && self.calib_registry.is_some() {
                    calib_tables.push(t);
                } else {
                    main_tables.push(t);
                }
            }
            if d.kind == DatasetKind::Calibration && d.tables.is_empty() {
                calib_tables.push(&d.name);
            }
        }
        if let Some(r) = self.registry.as_ref().filter(|r| r.has_tables()) {
            for t in main_tables {
                if !self.columns.contains_key(t) {
                    self.columns
                        .insert(t.to_string(), r.columns(t).unwrap_or_default());
                }
            }
        }
        if let Some(r) = self.calib_registry.as_ref().filter(|r| r.has_tables()) {
            for t in calib_tables {
                if !self.calib_columns.contains_key(t) {
                    self.calib_columns
                        .insert(t.to_string(), r.columns(t).unwrap_or_default());
                }
            }
        }
    }

    fn check_template_keys(&self) -> Result<(), MapperError> {
        let Some(reg) = self.registry.as_ref() else {
            return Ok(());
        };
        if !reg.has_tables() {
            return Ok(());
        }
        for d in self.policy.datasets.values() {
            let Some(t) = &d.template else { continue };
            let is_calib = d.kind == DatasetKind::Calibration;
            let mut provided: Vec<&str> = Vec::new();
            let mut any_tables = false;
            for table in d.reference.iter() {
                any_tables = true;
                provided.extend(
                    self.columns
                        .get(table)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
            for table in d.tables.iter() {
                any_tables = true;
                let cols = if is_calib && self.calib_registry.is_some() {
                    self.calib_columns.get(table)
                } else {
                    self.columns.get(table)
                };
                provided.extend(cols.into_iter().flatten().map(String::as_str));
            }
            if !any_tables {
                continue;
            }
            for (k, _) in t.keys() {
                if t.hdu_key() == Some(k.as_str()) {
                    continue;
                }
                if !provided.contains(&k.as_str()) && !self.policy.given_keys.contains(k) {
                    let tables: Vec<&String> = d.reference.iter().chain(d.tables.iter()).collect();
                    let missing: Vec<&&String> = tables
                        .iter()
                        .filter(|t| {
                            let cols = if is_calib
                                && self.calib_registry.is_some()
                                && !d.reference.contains(t)
                            {
                                self.calib_columns.get(t.as_str())
                            } else {
                                self.columns.get(t.as_str())
                            };
                            cols.is_none_or(|c| c.is_empty())
                        })
                        .collect();
                    if !missing.is_empty() {
                        return Err(MapperError::Registry {
                            registry: reg.describe(),
                            message: format!(
                                "{}: {}.{}: no such table: {}",
                                self.policy.source,
                                d.kind.section(),
                                d.name,
                                missing
                                    .iter()
                                    .map(|t| t.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            source: None,
                        });
                    }
                    return Err(MapperError::Policy(format!(
                        "{}: key {}.{}.template: key {k:?} of template {:?} is in none of the tables {tables:?} of {} (add it to givenKeys if callers always supply it)",
                        self.policy.source,
                        d.kind.section(),
                        d.name,
                        t.text(),
                        reg.describe()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The merged policy.
    pub fn policy(&self) -> &MapperPolicy {
        &self.policy
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The main registry, if any.
    pub fn registry(&self) -> Option<&dyn Registry> {
        self.registry.as_deref()
    }

    /// Registers a standardize hook for `dataset_type` (LSST `std_<type>`).
    pub fn set_standardize_hook(&mut self, dataset_type: &str, hook: StdHook) {
        self.std_hooks.insert(dataset_type.to_string(), hook);
    }

    /// Registers a bypass hook for `dataset_type` (LSST `bypass_<type>`).
    pub fn set_bypass_hook(&mut self, dataset_type: &str, hook: BypassHook) {
        self.bypass_hooks.insert(dataset_type.to_string(), hook);
    }

    /// The union of every template's keys.
    pub fn keys(&self) -> Vec<String> {
        self.policy.all_keys()
    }

    fn dataset(&self, dataset_type: &str) -> Result<&DatasetPolicy, MapperError> {
        self.policy
            .datasets
            .get(dataset_type)
            .ok_or_else(|| MapperError::UnknownDatasetType {
                dataset_type: dataset_type.to_string(),
            })
    }

    /// Converts data-id values to the template's key types (a string visit
    /// `"1"` becomes the integer 1).
    fn validate(&self, d: &DatasetPolicy, data_id: &DataId) -> Result<DataId, MapperError> {
        let mut out = data_id.clone();
        if let Some(t) = &d.template {
            for (k, kt) in t.keys() {
                let Some(v) = data_id.get(k) else { continue };
                let converted = match (kt, v) {
                    (KeyType::Int, DataIdValue::Str(s)) => {
                        s.trim().parse::<i64>().ok().map(DataIdValue::Int)
                    }
                    (KeyType::Float, DataIdValue::Str(s)) => {
                        s.trim().parse::<f64>().ok().map(DataIdValue::Float)
                    }
                    (KeyType::Float, DataIdValue::Int(i)) => Some(DataIdValue::Float(*i as f64)),
                    (KeyType::Int, DataIdValue::Float(f)) if f.fract() == 0.0 => {
                        Some(DataIdValue::Int(*f as i64))
                    }
                    (KeyType::Int, DataIdValue::Float(_)) => None,
                    _ => continue,
                };
                match converted {
                    Some(c) => out.insert(k.clone(), c),
                    None => {
                        return Err(MapperError::BadDataId {
                            dataset_type: d.name.clone(),
                            data_id: data_id.clone(),
                            message: format!("key {k:?} must be {kt:?}, got {v}"),
                        })
                    }
                }
            }
        }
        Ok(out)
    }

    fn restrict(&self, id: &DataId, columns: Option<&[&str]>, allowed: &[String]) -> DataId {
        id.iter()
            .filter(|(k, _)| allowed.is_empty() || allowed.iter().any(|a| a == k))
            .filter(|(k, _)| columns.is_none_or(|c| c.contains(k)))
            .filter(|(k, _)| {
                !self.policy.given_keys.iter().any(|g| g == k)
                    || columns.is_some_and(|c| c.contains(k))
            })
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn table_columns<'a>(
        &'a self,
        tables: &[String],
        calib: bool,
        reg: &dyn Registry,
    ) -> Option<Vec<&'a str>> {
        if !reg.has_tables() {
            return None;
        }
        let map = if calib {
            &self.calib_columns
        } else {
            &self.columns
        };
        let mut cols = Vec::new();
        for t in tables {
            cols.extend(map.get(t)?.iter().map(String::as_str));
        }
        Some(cols)
    }

    /// The registry rows of `properties` for `id` under dataset `d`
    /// (calibrations look up `reference` first, then apply validity).
    fn lookup_rows(
        &self,
        d: &DatasetPolicy,
        properties: &[String],
        id: &DataId,
    ) -> Result<Vec<Row>, MapperError> {
        let reg = self
            .registry
            .as_deref()
            .ok_or_else(|| MapperError::Registry {
                registry: self.root.display().to_string(),
                message: format!("no registry to look up {properties:?} for {}", d.name),
                source: None,
            })?;
        let template = d.template.as_ref().map(|t| t.text());
        if d.kind != DatasetKind::Calibration {
            if d.tables.is_empty() && reg.has_tables() {
                return Err(MapperError::BadDataId {
                    dataset_type: d.name.clone(),
                    data_id: id.clone(),
                    message: format!("keys {properties:?} are missing and the dataset has no registry tables to look them up in"),
                });
            }
            let cols = self.table_columns(&d.tables, false, reg);
            let where_id = self.restrict(id, cols.as_deref(), &d.columns);
            return reg.lookup_query(&Lookup {
                properties,
                tables: &d.tables,
                data_id: &where_id,
                valid_range: None,
                template,
            });
        }
        // Calibration.
        let mut new_id = id.clone();
        if !d.reference.is_empty() {
            let ref_cols = self.table_columns(&d.reference, false, reg);
            let candidates: &[String] = if d.columns.is_empty() {
                properties
            } else {
                &d.columns
            };
            let mut wanted: Vec<String> = candidates
                .iter()
                .filter(|c| !id.contains_key(c))
                .filter(|c| ref_cols.as_ref().is_none_or(|rc| rc.contains(&c.as_str())))
                .cloned()
                .collect();
            if d.valid_range
                && !new_id.contains_key(&d.obs_time_name)
                && !wanted.contains(&d.obs_time_name)
            {
                wanted.push(d.obs_time_name.clone());
            }
            if !wanted.is_empty() {
                let where_id = self.restrict(id, ref_cols.as_deref(), &d.ref_cols);
                let rows = reg.lookup_query(&Lookup {
                    properties: &wanted,
                    tables: &d.reference,
                    data_id: &where_id,
                    valid_range: None,
                    template,
                })?;
                if rows.len() != 1 {
                    return Err(MapperError::NoUniqueLookup {
                        keys: wanted,
                        data_id: id.clone(),
                        found: rows.len(),
                    });
                }
                for (k, v) in wanted.iter().zip(rows[0].iter()) {
                    new_id.insert(k.clone(), v.clone());
                }
            }
            if properties.iter().all(|p| new_id.contains_key(p)) {
                let row: Row = properties
                    .iter()
                    .filter_map(|p| new_id.get(p).cloned())
                    .collect();
                return Ok(vec![row]);
            }
        }
        let (creg, calib) = match self.calib_registry.as_deref() {
            Some(c) => (c, true),
            None => (reg, false),
        };
        let tables: Vec<String> = if d.tables.is_empty() {
            vec![d.name.clone()]
        } else {
            d.tables.clone()
        };
        let cols = self.table_columns(&tables, calib, creg);
        let mut where_id = self.restrict(&new_id, cols.as_deref(), &[]);
        let range =
            if d.valid_range {
                let obs = new_id.get(&d.obs_time_name).cloned().ok_or_else(|| {
                    MapperError::BadDataId {
                        dataset_type: d.name.clone(),
                        data_id: new_id.clone(),
                        message: format!(
                            "no observation time {:?} for the validity lookup",
                            d.obs_time_name
                        ),
                    }
                })?;
                where_id.remove(&d.obs_time_name);
                Some(ValidRange {
                    obs_time: obs,
                    start_column: d.valid_start_name.clone(),
                    end_column: d.valid_end_name.clone(),
                })
            } else {
                None
            };
        creg.lookup_query(&Lookup {
            properties,
            tables: &tables,
            data_id: &where_id,
            valid_range: range.as_ref(),
            template,
        })
    }

    /// Completes `id` with the template keys it lacks.
    fn complete(&self, d: &DatasetPolicy, id: &mut DataId) -> Result<(), MapperError> {
        let Some(t) = &d.template else { return Ok(()) };
        let missing: Vec<String> = t
            .keys()
            .iter()
            .filter(|(k, _)| !id.contains_key(k) && t.hdu_key() != Some(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = self.lookup_rows(d, &missing, id)?;
        if rows.len() != 1 {
            return Err(MapperError::NoUniqueLookup {
                keys: missing,
                data_id: id.clone(),
                found: rows.len(),
            });
        }
        for (k, v) in missing
            .into_iter()
            .zip(rows.into_iter().next().unwrap_or_default())
        {
            id.insert(k, v);
        }
        Ok(())
    }
}

/// Strips a trailing `[N]` HDU suffix for existence tests.
fn strip_hdu(path: &str) -> &str {
    if path.ends_with(']') {
        if let Some(i) = path.rfind('[') {
            return &path[..i];
        }
    }
    path
}

impl Mapper for CameraMapper {
    fn dataset_types(&self) -> Vec<String> {
        self.policy.datasets.keys().cloned().collect()
    }

    fn has_dataset_type(&self, dataset_type: &str) -> bool {
        self.policy.datasets.contains_key(dataset_type)
    }

    fn map(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        write: bool,
    ) -> Result<ButlerLocation, MapperError> {
        let d = self.dataset(dataset_type)?;
        if d.composite.is_some() {
            return Err(MapperError::Policy(format!(
                "{dataset_type} is a composite dataset: map its components"
            )));
        }
        let template = d.template.as_ref().ok_or_else(|| MapperError::Template {
            template: String::new(),
            data_id: data_id.clone(),
            message: format!("dataset type {dataset_type} has no template"),
        })?;
        let mut id = self.validate(d, data_id)?;
        self.complete(d, &mut id)?;
        let mut path = template.format(&id, &self.policy.key_rewrites)?;
        let root = if d.kind == DatasetKind::Calibration {
            &self.calib_root
        } else {
            &self.root
        };
        if !write {
            let plain = strip_hdu(&path);
            if !root.join(plain).exists() {
                let suffix = &path[plain.len()..];
                for ext in [".gz", ".fz"] {
                    let alt = format!("{plain}{ext}");
                    if root.join(&alt).exists() {
                        path = format!("{alt}{suffix}");
                        break;
                    }
                }
            }
        }
        let additional_data = id.to_property_set();
        let storage_options = match d.raw.get("storageOptions") {
            None | Some(serde_norway::Value::Null) => PropertySet::new(),
            Some(v @ serde_norway::Value::Mapping(_)) => {
                let bad = |e: String| {
                    MapperError::Policy(format!("datasets.{dataset_type}.storageOptions: {e}"))
                };
                let text = serde_norway::to_string(v).map_err(|e| bad(e.to_string()))?;
                daf_base::Policy::from_yaml_str(&text, "storageOptions")
                    .map_err(|e| bad(e.to_string()))?
                    .into_property_set()
            }
            Some(_) => {
                return Err(MapperError::Policy(format!(
                    "datasets.{dataset_type}.storageOptions: expected a mapping"
                )))
            }
        };
        Ok(ButlerLocation {
            storage_options,
            dataset_type: dataset_type.to_string(),
            python_type: d.python.clone(),
            persistable: d.persistable.clone(),
            storage: d.storage.clone(),
            locations: vec![path],
            root: root.clone(),
            data_id: id,
            additional_data,
        })
    }

    fn query_metadata(
        &self,
        dataset_type: &str,
        keys: &[String],
        data_id: &DataId,
    ) -> Result<Vec<Vec<DataIdValue>>, MapperError> {
        let d = self.dataset(dataset_type)?;
        let id = self.validate(d, data_id)?;
        self.lookup_rows(d, keys, &id)
    }

    fn get_keys(
        &self,
        dataset_type: &str,
        level: Option<&str>,
    ) -> Result<BTreeMap<String, KeyType>, MapperError> {
        let d = self.dataset(dataset_type)?;
        let mut keys = d.key_types();
        let level = match level {
            None | Some("") => self.policy.default_level.as_deref(),
            Some(l) => Some(l),
        };
        if let Some(remove) = level.and_then(|l| self.policy.levels.get(l)) {
            for k in remove {
                keys.remove(k);
            }
        }
        Ok(keys)
    }

    fn default_sub_level(&self, level: &str) -> Option<String> {
        self.policy.default_sub_levels.get(level).cloned()
    }

    fn default_level(&self) -> Option<String> {
        self.policy.default_level.clone()
    }

    fn standardize(&self, dataset_type: &str, data_id: &DataId, additional_data: &mut PropertySet) {
        if let Some(h) = self.std_hooks.get(dataset_type) {
            h(data_id, additional_data);
        }
    }

    fn definition(&self, dataset_type: &str) -> Option<serde_json::Value> {
        let d = self.dataset(dataset_type).ok()?;
        let mut v = match serde_json::to_value(&d.raw).ok()? {
            serde_json::Value::Object(o) => o,
            _ => serde_json::Map::new(),
        };
        // the typed fields as the mapper uses them (defaults applied)
        if let Some(t) = &d.template {
            v.insert("template".into(), t.text().into());
        }
        v.insert("persistable".into(), d.persistable.clone().into());
        v.insert("storage".into(), d.storage.clone().into());
        Some(serde_json::Value::Object(v))
    }

    /// From the policy's camera description: the detector the data id
    /// names, or the only one (see [`daf_base::Camera::detector_for`]).
    fn detector(&self, _dataset_type: &str, data_id: &DataId) -> Option<daf_base::Detector> {
        self.policy
            .camera_description
            .as_ref()?
            .detector_for(data_id)
            .cloned()
    }

    fn has_bypass(&self, dataset_type: &str) -> bool {
        self.bypass_hooks.contains_key(dataset_type)
    }

    fn bypass(&self, dataset_type: &str, location: &ButlerLocation) -> Option<PropertySet> {
        self.bypass_hooks
            .get(dataset_type)
            .and_then(|h| h(location))
    }
}
