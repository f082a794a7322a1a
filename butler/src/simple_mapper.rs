//! [`SimpleMapper`]: a mapper defined by a short list of dataset types, each
//! with a `%(key)d`-style path template, a persistable name and a storage.
//!
//! It has no registry of its own: a partial data id is completed by the
//! butler from its file registry. It is the mapper of repositories made by
//! `daf create` without a camera policy, and of tests.

use std::collections::BTreeMap;

use daf_base::{DataId, DataIdValue};
use daf_mappers::{ButlerLocation, KeyRewrites, KeyType, Mapper, MapperError, PathTemplate};
use serde::{Deserialize, Serialize};

/// One dataset type of a [`SimpleMapper`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleDataset {
    /// Path template relative to the root, e.g. `calexp/v%(visit)04d_f%(filter)s.fits`.
    pub template: String,
    /// Formatter-registry persistable name.
    pub persistable: String,
    /// Storage name.
    pub storage: String,
    /// Python-style type name, informative only.
    #[serde(default)]
    pub python: String,
}

impl SimpleDataset {
    /// A dataset definition.
    pub fn new(template: &str, persistable: &str, storage: &str) -> Self {
        SimpleDataset {
            template: template.into(),
            persistable: persistable.into(),
            storage: storage.into(),
            python: String::new(),
        }
    }
}

/// A dataset's definition, its parsed template and the template's key types.
type Entry = (SimpleDataset, PathTemplate, BTreeMap<String, KeyType>);

/// A mapper over a fixed list of dataset types.
///
/// ```
/// use daf_butler::simple_mapper::{SimpleMapper, SimpleDataset};
/// use daf_mappers::Mapper;
/// let m = SimpleMapper::new([("calexp", SimpleDataset::new(
///     "calexp/v%(visit)04d_f%(filter)s.json", "PropertySet", "JsonStorage"))]).unwrap();
/// let loc = m.map("calexp", &daf_base::data_id!{visit: 7, filter: "g"}, true).unwrap();
/// assert_eq!(loc.locations, vec!["calexp/v0007_fg.json".to_string()]);
/// ```
#[derive(Debug, Clone)]
pub struct SimpleMapper {
    /// Each dataset with its parsed template and the template's key types.
    datasets: BTreeMap<String, Entry>,
    root: std::path::PathBuf,
}

impl SimpleMapper {
    /// A mapper over `datasets`; a template that does not parse is an error.
    pub fn new<'a>(
        datasets: impl IntoIterator<Item = (&'a str, SimpleDataset)>,
    ) -> Result<Self, MapperError> {
        let mut map = BTreeMap::new();
        for (name, d) in datasets {
            let template = PathTemplate::parse(&d.template)?;
            let keys = template.keys().iter().cloned().collect();
            map.insert(name.to_string(), (d, template, keys));
        }
        Ok(SimpleMapper {
            datasets: map,
            root: std::path::PathBuf::new(),
        })
    }

    /// Reads the definitions from repository mapper arguments:
    /// `{datasets: {name: {template, persistable, storage}}}`.
    pub fn from_args(args: &BTreeMap<String, serde_json::Value>) -> Result<Self, MapperError> {
        let defs: BTreeMap<String, SimpleDataset> = match args.get("datasets") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| MapperError::Policy(format!("mapperArgs.datasets: {e}")))?,
            None => BTreeMap::new(),
        };
        SimpleMapper::new(defs.iter().map(|(k, v)| (k.as_str(), v.clone())))
    }

    /// The same mapper with locations relative to `root`.
    pub fn with_root(mut self, root: impl Into<std::path::PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The definitions, as mapper arguments for [`SimpleMapper::from_args`].
    pub fn to_args(&self) -> BTreeMap<String, serde_json::Value> {
        let defs: BTreeMap<&String, &SimpleDataset> =
            self.datasets.iter().map(|(k, (d, _, _))| (k, d)).collect();
        let mut m = BTreeMap::new();
        m.insert(
            "datasets".to_string(),
            serde_json::to_value(defs).expect("serializable"),
        );
        m
    }

    fn entry(&self, dataset_type: &str) -> Result<&Entry, MapperError> {
        self.datasets
            .get(dataset_type)
            .ok_or_else(|| MapperError::UnknownDatasetType {
                dataset_type: dataset_type.into(),
            })
    }
}

/// Converts `data_id` to the key types of `keys`: an unknown key or a value
/// that cannot be converted is [`MapperError::BadDataId`].
pub fn normalize_data_id(
    dataset_type: &str,
    data_id: &DataId,
    keys: &BTreeMap<String, KeyType>,
    allow_unknown: bool,
) -> Result<DataId, MapperError> {
    let bad = |m: String| MapperError::BadDataId {
        dataset_type: dataset_type.into(),
        data_id: data_id.clone(),
        message: m,
    };
    let mut out = DataId::new();
    for (k, v) in data_id.iter() {
        let Some(t) = keys.get(k) else {
            if allow_unknown {
                out.insert(k, v.clone());
                continue;
            }
            return Err(bad(format!(
                "unknown key {k:?}; known keys: {}",
                keys.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let conv = match (t, v) {
            (KeyType::Int, DataIdValue::Int(_)) => v.clone(),
            (KeyType::Int, DataIdValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                DataIdValue::Int(*f as i64)
            }
            (KeyType::Int, DataIdValue::Str(s)) => match s.trim().parse::<i64>() {
                Ok(i) => DataIdValue::Int(i),
                Err(_) => {
                    return Err(bad(format!("key {k:?} must be an integer, got {v}")));
                }
            },
            (KeyType::Float, DataIdValue::Str(s)) => match s.trim().parse::<f64>() {
                Ok(f) => DataIdValue::Float(f),
                Err(_) => return Err(bad(format!("key {k:?} must be a number, got {v}"))),
            },
            (KeyType::Float, _) => DataIdValue::Float(v.as_f64().expect("numeric")),
            (KeyType::Str, DataIdValue::Str(_)) => v.clone(),
            // As a template writes a number into a string field (`15`, not `15.0`).
            (KeyType::Str, DataIdValue::Float(x)) => DataIdValue::Str(x.to_string()),
            (KeyType::Str, _) => DataIdValue::Str(v.to_string()),
            (KeyType::Int, _) => return Err(bad(format!("key {k:?} must be an integer, got {v}"))),
        };
        out.insert(k, conv);
    }
    Ok(out)
}

impl Mapper for SimpleMapper {
    fn dataset_types(&self) -> Vec<String> {
        self.datasets.keys().cloned().collect()
    }

    fn has_dataset_type(&self, dataset_type: &str) -> bool {
        self.datasets.contains_key(dataset_type)
    }

    fn map(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        _write: bool,
    ) -> Result<ButlerLocation, MapperError> {
        let (def, template, keys) = self.entry(dataset_type)?;
        let id = normalize_data_id(dataset_type, data_id, keys, false)?;
        let missing: Vec<String> = keys
            .keys()
            .filter(|k| !id.contains_key(k))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(MapperError::NoUniqueLookup {
                keys: missing,
                data_id: id,
                found: 0,
            });
        }
        let path = template.format(&id, &KeyRewrites::default())?;
        Ok(ButlerLocation {
            dataset_type: dataset_type.into(),
            python_type: def.python.clone(),
            persistable: def.persistable.clone(),
            storage: def.storage.clone(),
            locations: vec![path],
            root: self.root.clone(),
            additional_data: id.to_property_set(),
            data_id: id,
            storage_options: Default::default(),
        })
    }

    fn query_metadata(
        &self,
        dataset_type: &str,
        _keys: &[String],
        _data_id: &DataId,
    ) -> Result<Vec<Vec<DataIdValue>>, MapperError> {
        self.entry(dataset_type)?;
        Ok(Vec::new())
    }

    fn get_keys(
        &self,
        dataset_type: &str,
        _level: Option<&str>,
    ) -> Result<BTreeMap<String, KeyType>, MapperError> {
        Ok(self.entry(dataset_type)?.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daf_base::data_id;

    #[test]
    fn templates_fill_and_types() {
        let m = SimpleMapper::new([
            (
                "raw",
                SimpleDataset::new("raw/raw_v%(visit)d_f%(filter)s.fits.gz", "X", "FitsStorage"),
            ),
            (
                "t",
                SimpleDataset::new("a/%(x)-4s|%(y)05.1f|%(z)x|%%", "X", "S"),
            ),
        ])
        .unwrap();
        let l = m
            .map("raw", &data_id! {visit: 1, filter: "g"}, false)
            .unwrap();
        assert_eq!(l.locations, vec!["raw/raw_v1_fg.fits.gz"]);
        assert_eq!(l.additional_data.get::<i64>("visit").unwrap(), 1);
        let l = m
            .map("t", &data_id! {x: "ab", y: 2.25, z: 255}, false)
            .unwrap();
        assert_eq!(l.locations, vec!["a/ab  |002.2|ff|%"]);
        let k = m.get_keys("raw", None).unwrap();
        assert_eq!(k["visit"], KeyType::Int);
        assert_eq!(k["filter"], KeyType::Str);
        // string visit converts; bad values and unknown keys are errors
        let l = m
            .map("raw", &data_id! {visit: "2", filter: "r"}, false)
            .unwrap();
        assert_eq!(l.data_id, data_id! {visit: 2, filter: "r"});
        let e = m
            .map("raw", &data_id! {visit: "two", filter: "r"}, false)
            .unwrap_err();
        assert!(e.to_string().contains("must be an integer"), "{e}");
        let e = m
            .map("raw", &data_id! {visit: 1, filter: "r", ccd: 3}, false)
            .unwrap_err();
        assert!(e.to_string().contains("unknown key \"ccd\""), "{e}");
        let e = m.map("raw", &data_id! {visit: 1}, false).unwrap_err();
        assert!(matches!(e, MapperError::NoUniqueLookup { .. }), "{e}");
        assert!(matches!(
            m.map("nope", &data_id! {}, false),
            Err(MapperError::UnknownDatasetType { .. })
        ));
        assert!(SimpleMapper::new([("b", SimpleDataset::new("%(x", "X", "S"))]).is_err());
        // args round trip
        let m2 = SimpleMapper::from_args(&m.to_args()).unwrap();
        assert_eq!(m2.dataset_types(), m.dataset_types());
    }
}
