//! [`Clipboard`], its [`Item`]s, the [`Queue`] that links stages, and
//! [`Dataset`] (a dataset specifier in input and output lists).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use daf_base::{DataId, DataIdValue, PropertySet};
use daf_formatters::Persistable;
use serde::{Deserialize, Serialize};

use crate::error::HarnessError;
use crate::Result;

/// A dataset specifier: a dataset type and the ids that name one dataset
/// (the JobOffice's `Dataset`). Equality is type plus identical ids.
///
/// ```
/// use daf_harness::Dataset;
/// use daf_base::data_id;
/// let ds = Dataset::new("raw", data_id! { visit: 1, ccd: 2 });
/// assert_eq!(ds.to_string(), "raw-ccd2-visit1");
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dataset {
    /// The dataset type (`raw`, `bias`, `postISR` ...).
    #[serde(rename = "type")]
    pub dataset_type: String,
    /// The ids naming the dataset.
    #[serde(default)]
    pub ids: DataId,
    /// A path, if the producer knew one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether the dataset is valid.
    #[serde(default = "yes")]
    pub valid: bool,
}

fn yes() -> bool {
    true
}

impl Dataset {
    /// A valid dataset of `dataset_type` with `ids` and no path.
    pub fn new(dataset_type: impl Into<String>, ids: DataId) -> Self {
        Dataset {
            dataset_type: dataset_type.into(),
            ids,
            path: None,
            valid: true,
        }
    }
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        self.dataset_type == other.dataset_type && self.ids == other.ids
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            return f.write_str(p);
        }
        f.write_str(&self.dataset_type)?;
        for (k, v) in self.ids.iter() {
            match v {
                DataIdValue::Str(s) => write!(f, "-{k}{s}")?,
                other => write!(f, "-{k}{other}")?,
            }
        }
        Ok(())
    }
}

/// One value on a clipboard.
#[derive(Debug, Clone)]
pub enum Item {
    /// A property set (event payloads, metadata, shared items).
    PropertySet(PropertySet),
    /// A persistable object (an image, a catalog ...), shared cheaply.
    Object(Arc<dyn Persistable>),
    /// Several persistable objects (an input item that matched several datasets).
    Objects(Vec<Arc<dyn Persistable>>),
    /// A list of dataset specifiers (`inputDatasets`, `outputDatasets`).
    Datasets(Vec<Dataset>),
    /// A job identity: the dict of ids naming the unit of work.
    JobIdentity(DataId),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Item {
    /// The kind of item, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Item::PropertySet(_) => "PropertySet",
            Item::Object(_) => "object",
            Item::Objects(_) => "object list",
            Item::Datasets(_) => "dataset list",
            Item::JobIdentity(_) => "job identity",
            Item::Str(_) => "string",
            Item::Int(_) => "integer",
            Item::Float(_) => "float",
            Item::Bool(_) => "boolean",
        }
    }

    /// A persistable object wrapped as an item.
    pub fn object<T: Persistable>(obj: T) -> Item {
        Item::Object(Arc::new(obj))
    }
}

impl From<PropertySet> for Item {
    fn from(v: PropertySet) -> Item {
        Item::PropertySet(v)
    }
}
impl From<Vec<Dataset>> for Item {
    fn from(v: Vec<Dataset>) -> Item {
        Item::Datasets(v)
    }
}
impl From<DataId> for Item {
    fn from(v: DataId) -> Item {
        Item::JobIdentity(v)
    }
}
impl From<&str> for Item {
    fn from(v: &str) -> Item {
        Item::Str(v.to_string())
    }
}
impl From<String> for Item {
    fn from(v: String) -> Item {
        Item::Str(v)
    }
}
impl From<i64> for Item {
    fn from(v: i64) -> Item {
        Item::Int(v)
    }
}
impl From<i32> for Item {
    fn from(v: i32) -> Item {
        Item::Int(i64::from(v))
    }
}
impl From<f64> for Item {
    fn from(v: f64) -> Item {
        Item::Float(v)
    }
}
impl From<bool> for Item {
    fn from(v: bool) -> Item {
        Item::Bool(v)
    }
}
impl From<Arc<dyn Persistable>> for Item {
    fn from(v: Arc<dyn Persistable>) -> Item {
        Item::Object(v)
    }
}

/// The named items one stage hands to the next, each with a shared flag.
///
/// Shared items (`put_shared`) are sent to neighbouring slices before a stage
/// whose `appStage` says `shareData: true` (see [`crate::Topology`]).
///
/// ```
/// use daf_harness::{Clipboard, Item};
/// let mut cb = Clipboard::new();
/// cb.put("visit", 42i64);
/// assert!(cb.contains("visit"));
/// assert!(matches!(cb.get("visit"), Some(Item::Int(42))));
/// assert!(cb.get("nope").is_none());
/// assert!(cb.get_item("nope").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clipboard {
    items: BTreeMap<String, (Item, bool)>,
}

impl Clipboard {
    /// An empty clipboard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `value` under `key` (not shared), replacing any previous item.
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Item>) {
        self.items.insert(key.into(), (value.into(), false));
    }

    /// Puts `value` under `key` and marks it shared.
    pub fn put_shared(&mut self, key: impl Into<String>, value: impl Into<Item>) {
        self.items.insert(key.into(), (value.into(), true));
    }

    /// The item under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.items.get(key).map(|(v, _)| v)
    }

    /// The item under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        self.items.get_mut(key).map(|(v, _)| v)
    }

    /// The item under `key`, or [`HarnessError::ExpectedDataNotFound`].
    pub fn get_item(&self, key: &str) -> Result<&Item> {
        self.get(key)
            .ok_or_else(|| HarnessError::ExpectedDataNotFound { key: key.into() })
    }

    /// The property set under `key`.
    pub fn get_property_set(&self, key: &str) -> Result<&PropertySet> {
        match self.get_item(key)? {
            Item::PropertySet(ps) => Ok(ps),
            other => Err(wrong(key, "PropertySet", other)),
        }
    }

    /// The dataset list under `key`.
    pub fn get_datasets(&self, key: &str) -> Result<&[Dataset]> {
        match self.get_item(key)? {
            Item::Datasets(d) => Ok(d),
            other => Err(wrong(key, "dataset list", other)),
        }
    }

    /// The job identity under `key`.
    pub fn get_job_identity(&self, key: &str) -> Result<&DataId> {
        match self.get_item(key)? {
            Item::JobIdentity(d) => Ok(d),
            other => Err(wrong(key, "job identity", other)),
        }
    }

    /// The persistable object under `key`, downcast to `T`.
    pub fn get_object<T: Persistable>(&self, key: &str) -> Result<&T> {
        match self.get_item(key)? {
            Item::Object(o) => o
                .as_any()
                .downcast_ref::<T>()
                .ok_or(HarnessError::WrongItemType {
                    key: key.into(),
                    expected: std::any::type_name::<T>(),
                    actual: "object of another type",
                }),
            other => Err(wrong(key, "object", other)),
        }
    }

    /// Is there an item under `key`?
    pub fn contains(&self, key: &str) -> bool {
        self.items.contains_key(key)
    }

    /// Removes and returns the item under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Item> {
        self.items.remove(key).map(|(v, _)| v)
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.items.keys().cloned().collect()
    }

    /// The keys of shared items, sorted.
    pub fn shared_keys(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|(_, (_, s))| *s)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Is the item under `key` shared?
    pub fn is_shared(&self, key: &str) -> bool {
        self.items.get(key).is_some_and(|(_, s)| *s)
    }

    /// Sets the shared flag of an existing item; false if there is none.
    pub fn set_shared(&mut self, key: &str, shared: bool) -> bool {
        match self.items.get_mut(key) {
            Some((_, s)) => {
                *s = shared;
                true
            }
            None => false,
        }
    }

    /// Entries in key order: (key, item, shared).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Item, bool)> {
        self.items.iter().map(|(k, (v, s))| (k.as_str(), v, *s))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True with no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every item (LSST `close`).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

fn wrong(key: &str, expected: &'static str, actual: &Item) -> HarnessError {
    HarnessError::WrongItemType {
        key: key.into(),
        expected,
        actual: actual.kind(),
    }
}

/// A FIFO of clipboards between two stages.
///
/// ```
/// use daf_harness::{Clipboard, Queue};
/// let mut q = Queue::new();
/// q.add_dataset(Clipboard::new());
/// assert_eq!(q.size(), 1);
/// assert!(q.element().is_some());
/// assert!(q.get_next_dataset().is_some());
/// assert!(q.get_next_dataset().is_none());
/// ```
#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<Clipboard>,
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a clipboard.
    pub fn add_dataset(&mut self, cb: Clipboard) {
        self.items.push_back(cb);
    }
    /// Pops the head, if any.
    pub fn get_next_dataset(&mut self) -> Option<Clipboard> {
        self.items.pop_front()
    }
    /// Peeks at the head, if any.
    pub fn element(&self) -> Option<&Clipboard> {
        self.items.front()
    }
    /// Peeks at the head mutably, if any.
    pub fn element_mut(&mut self) -> Option<&mut Clipboard> {
        self.items.front_mut()
    }
    /// Number of clipboards waiting.
    pub fn size(&self) -> usize {
        self.items.len()
    }
}
