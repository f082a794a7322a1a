//! A tiny JSON file storage and a PropertySet formatter for it, so the IO
//! stages can be tested without depending on the real storages.
#![allow(dead_code)]

use std::any::Any;
use std::io::Write;
use std::path::PathBuf;

use daf_base::{Policy, PropertySet};
use daf_formatters::formatter::{expect_object, unsupported};
use daf_formatters::{Formatter, FormatterRegistry, Persistable};
use daf_harness::Services;
use daf_storages::atomic::AtomicFile;
use daf_storages::{LogicalLocation, Storage, StorageError, StorageRegistry};

#[derive(Default)]
pub struct JsonStorage {
    write: Option<AtomicFile>,
    read: Option<PathBuf>,
}

impl Storage for JsonStorage {
    fn storage_name(&self) -> &str {
        "JsonStorage"
    }
    fn set_persist_location(&mut self, l: &LogicalLocation) -> Result<(), StorageError> {
        self.write = Some(AtomicFile::create(l.loc_str())?);
        Ok(())
    }
    fn set_retrieve_location(&mut self, l: &LogicalLocation) -> Result<(), StorageError> {
        if !l.as_path().exists() {
            return Err(StorageError::NotFound {
                what: l.loc_str().into(),
            });
        }
        self.read = Some(l.as_path().to_path_buf());
        Ok(())
    }
    fn start_transaction(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn prepare_commit(&mut self) -> Result<(), StorageError> {
        if let Some(w) = self.write.as_mut() {
            w.prepare()?;
        }
        Ok(())
    }
    fn end_transaction(&mut self) -> Result<(), StorageError> {
        if let Some(w) = self.write.take() {
            w.commit()?;
        }
        Ok(())
    }
    fn abort_transaction(&mut self) -> Result<(), StorageError> {
        if let Some(w) = self.write.take() {
            w.abort();
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

pub struct PsJson;

impl Formatter for PsJson {
    fn persistable_name(&self) -> &str {
        "PropertySet"
    }
    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        _ad: &PropertySet,
    ) -> daf_formatters::Result<()> {
        let ps = expect_object::<PropertySet>(self, obj)?;
        let Some(s) = storage.as_any_mut().downcast_mut::<JsonStorage>() else {
            return Err(unsupported(self, storage));
        };
        let w = s.write.as_mut().expect("persist location set");
        let text = serde_json::to_string(ps).unwrap();
        w.writer()
            .write_all(text.as_bytes())
            .map_err(|e| StorageError::io("json", e))?;
        Ok(())
    }
    fn read(
        &self,
        storage: &mut dyn Storage,
        _ad: &PropertySet,
    ) -> daf_formatters::Result<Box<dyn Persistable>> {
        let Some(s) = storage.as_any_mut().downcast_mut::<JsonStorage>() else {
            return Err(unsupported(self, storage));
        };
        let p = s.read.clone().expect("retrieve location set");
        let text = std::fs::read_to_string(&p).map_err(|e| StorageError::io(&p, e))?;
        let ps: PropertySet = serde_json::from_str(&text)
            .map_err(|e| StorageError::io(&p, std::io::Error::other(e)))?;
        Ok(Box::new(ps))
    }
}

pub fn services(location_map: PropertySet) -> Services {
    let mut storages = StorageRegistry::new();
    storages
        .register("JsonStorage", || Box::new(JsonStorage::default()))
        .unwrap();
    let mut formatters = FormatterRegistry::new();
    formatters
        .register::<PropertySet>("PropertySet", |_: Option<&Policy>| Box::new(PsJson))
        .unwrap();
    Services {
        storages,
        formatters,
        location_map,
        butler_factory: None,
    }
}

/// A policy from JSON (arrays of objects become repeated sub-policies).
pub fn policy(v: serde_json::Value) -> Policy {
    Policy::from_property_set(daf_harness::events::json_to_property_set(&v).unwrap())
}

/// An in-memory butler: datasets keyed by (type, data id), with a log of
/// provenance records and a count of existence checks.
#[derive(Default)]
pub struct MemButler {
    pub data: std::sync::Mutex<std::collections::BTreeMap<(String, String), PropertySet>>,
    pub provenance: std::sync::Mutex<Vec<(String, String, Vec<daf_harness::Dataset>)>>,
    pub root: std::sync::Mutex<Option<String>>,
}

impl MemButler {
    pub fn insert(&self, t: &str, id: &daf_base::DataId, ps: PropertySet) {
        self.data
            .lock()
            .unwrap()
            .insert((t.into(), id.to_string()), ps);
    }
}

impl daf_harness::DataButler for MemButler {
    fn get(
        &self,
        t: &str,
        id: &daf_base::DataId,
    ) -> daf_harness::Result<std::sync::Arc<dyn Persistable>> {
        match self
            .data
            .lock()
            .unwrap()
            .get(&(t.to_string(), id.to_string()))
        {
            Some(ps) => Ok(std::sync::Arc::new(ps.clone())),
            None => Err(daf_harness::HarnessError::stage(
                "NotFound",
                format!("no {t} {id}"),
            )),
        }
    }
    fn put(
        &self,
        obj: &dyn Persistable,
        t: &str,
        id: &daf_base::DataId,
    ) -> daf_harness::Result<()> {
        let ps = obj
            .downcast_ref::<PropertySet>()
            .expect("a PropertySet")
            .clone();
        self.insert(t, id, ps);
        Ok(())
    }
    fn dataset_exists(&self, t: &str, id: &daf_base::DataId) -> daf_harness::Result<bool> {
        Ok(self
            .data
            .lock()
            .unwrap()
            .contains_key(&(t.to_string(), id.to_string())))
    }
    fn record_provenance(
        &self,
        t: &str,
        id: &daf_base::DataId,
        inputs: &[daf_harness::Dataset],
    ) -> daf_harness::Result<()> {
        self.provenance
            .lock()
            .unwrap()
            .push((t.into(), id.to_string(), inputs.to_vec()));
        Ok(())
    }
}

/// Services whose butler factory hands out `butler` (and records the root).
pub fn services_with_butler(
    location_map: PropertySet,
    butler: std::sync::Arc<MemButler>,
) -> Services {
    let mut s = services(location_map);
    s.butler_factory = Some(std::sync::Arc::new(
        move |spec: &daf_harness::ButlerSpec| {
            *butler.root.lock().unwrap() = spec.root.clone();
            Ok(butler.clone() as std::sync::Arc<dyn daf_harness::DataButler>)
        },
    ));
    s
}
