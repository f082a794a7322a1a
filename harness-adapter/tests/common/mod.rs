//! Services for the IO stage tests: the JSON file storage and PropertySet
//! formatter of [`daf_butler::testing`] (no real storage needed), policies
//! from JSON and an in-memory butler.
#![allow(dead_code)]

use daf_base::{Policy, PropertySet};
use daf_formatters::{FormatterRegistry, Persistable};
use daf_harness::Services;
use daf_storages::StorageRegistry;

pub use daf_butler::testing::{JsonPropertySetFormatter, JsonStorage};

pub fn services(location_map: PropertySet) -> Services {
    let mut storages = StorageRegistry::new();
    storages
        .register("JsonStorage", || Box::new(JsonStorage::default()))
        .unwrap();
    let mut formatters = FormatterRegistry::new();
    formatters
        .register::<PropertySet>("PropertySet", |_: Option<&Policy>| {
            Box::new(JsonPropertySetFormatter)
        })
        .unwrap();
    Services {
        storages,
        formatters,
        location_map,
        butler_factory: None,
        on_lost: None,
        shutdown: Default::default(),
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
