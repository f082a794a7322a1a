//! The [`Mapper`] trait and [`ButlerLocation`]: what the butler asks of a mapper.

use std::collections::BTreeMap;
use std::path::PathBuf;

use daf_base::{DataId, DataIdValue, PropertySet};

/// The type of a data-id key, derived from the conversion in a path template
/// (`d i o u x X` → integer, `e E f F g G` → float, `s r c` → string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    /// An integer key.
    Int,
    /// A floating-point key.
    Float,
    /// A string key.
    Str,
}

/// Where and how one dataset is stored: the answer of [`Mapper::map`].
#[derive(Debug, Clone, PartialEq)]
pub struct ButlerLocation {
    /// The dataset type asked for (after alias resolution).
    pub dataset_type: String,
    /// The policy's `python` entry, kept as a type name.
    pub python_type: String,
    /// The formatter-registry persistable name (`ExposureF`, `PropertySet` ...).
    pub persistable: String,
    /// The storage name (`FitsStorage`, `BoostStorage` ...).
    pub storage: String,
    /// Locations relative to `root` (a path may carry an `[N]` HDU suffix).
    pub locations: Vec<String>,
    /// The repository root the locations are relative to.
    pub root: PathBuf,
    /// The data id actually used (the caller's, completed from the registry).
    pub data_id: DataId,
    /// Additional data for the formatter: every data-id item is copied in.
    pub additional_data: PropertySet,
    /// Settings for the storage that writes this dataset type (a dataset
    /// entry's `storageOptions` in a mapper policy, e.g. FITS `compression:
    /// RICE_1`), applied on top of the persistence policy's; empty for none.
    pub storage_options: PropertySet,
}

impl ButlerLocation {
    /// The locations joined to the root.
    pub fn locations_with_root(&self) -> Vec<PathBuf> {
        self.locations.iter().map(|l| self.root.join(l)).collect()
    }
}

/// Errors from mappers and registries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapperError {
    /// The dataset type is not defined by the mapper policy.
    #[error("unknown dataset type {dataset_type:?}")]
    UnknownDatasetType {
        /// The type asked for.
        dataset_type: String,
    },
    /// A partial data id did not complete to exactly one registry row.
    #[error("No unique lookup for {keys:?} with {data_id}: found {found}")]
    NoUniqueLookup {
        /// The keys that were looked up.
        keys: Vec<String>,
        /// The partial data id.
        data_id: DataId,
        /// How many rows matched.
        found: usize,
    },
    /// A data-id key is unknown to the dataset type, or has the wrong type.
    #[error("bad data id {data_id} for {dataset_type}: {message}")]
    BadDataId {
        /// The dataset type.
        dataset_type: String,
        /// The data id.
        data_id: DataId,
        /// What is wrong.
        message: String,
    },
    /// A template could not be filled.
    #[error("failed to format template {template:?} with {data_id}: {message}")]
    Template {
        /// The template.
        template: String,
        /// The data id.
        data_id: DataId,
        /// What went wrong.
        message: String,
    },
    /// A policy problem (file, line or key path in the message).
    #[error("mapper policy: {0}")]
    Policy(String),
    /// A registry problem.
    #[error("registry {registry}: {message}")]
    Registry {
        /// Which registry (path or URL, never with a password).
        registry: String,
        /// What went wrong.
        message: String,
        /// The driver's error (`rusqlite::Error`, `sqlx::Error`, I/O ...),
        /// when the failure came from one.
        #[source]
        source: Option<daf_base::BoxError>,
    },
}

impl MapperError {
    /// A [`MapperError::Registry`] without an underlying error.
    pub fn registry(registry: impl Into<String>, message: impl Into<String>) -> Self {
        MapperError::Registry {
            registry: registry.into(),
            message: message.into(),
            source: None,
        }
    }
    /// A [`MapperError::Registry`] keeping `source` (its text is in the
    /// message too, after `message: `).
    pub fn registry_source(
        registry: impl Into<String>,
        message: impl std::fmt::Display,
        source: impl Into<daf_base::BoxError>,
    ) -> Self {
        let source = source.into();
        MapperError::Registry {
            registry: registry.into(),
            message: format!("{message}: {source}"),
            source: Some(source),
        }
    }
}

/// Resolves (dataset type, data id) to storage locations.
///
/// Hooks that LSST spelled `std_<type>` / `bypass_<type>` are trait methods
/// with default implementations.
pub trait Mapper: Send + Sync {
    /// Every dataset type this mapper defines, sorted.
    fn dataset_types(&self) -> Vec<String>;

    /// Whether this mapper defines `dataset_type` (a lookup, without
    /// listing them all; the default searches [`Mapper::dataset_types`]).
    fn has_dataset_type(&self, dataset_type: &str) -> bool {
        self.dataset_types().iter().any(|t| t == dataset_type)
    }

    /// Where `dataset_type` for `data_id` is (or will be, with `write`) stored.
    /// On read the path, `.gz` and `.fz` variants are tried.
    fn map(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        write: bool,
    ) -> Result<ButlerLocation, MapperError>;

    /// Distinct tuples of `keys` for datasets matching `data_id`, in a stable order.
    fn query_metadata(
        &self,
        dataset_type: &str,
        keys: &[String],
        data_id: &DataId,
    ) -> Result<Vec<Vec<DataIdValue>>, MapperError>;

    /// The data-id keys of `dataset_type` and their types, minus the keys of
    /// `level` (`None` = the mapper's default level, `Some("")` likewise).
    fn get_keys(
        &self,
        dataset_type: &str,
        level: Option<&str>,
    ) -> Result<BTreeMap<String, KeyType>, MapperError>;

    /// The default sub-level of `level`, if the policy names one.
    fn default_sub_level(&self, _level: &str) -> Option<String> {
        None
    }

    /// The default level.
    fn default_level(&self) -> Option<String> {
        None
    }

    /// Standardizes an object after it was read (LSST `std_<type>`). Default: no change.
    fn standardize(
        &self,
        _dataset_type: &str,
        _data_id: &DataId,
        _additional_data: &mut PropertySet,
    ) {
    }

    /// The whole definition of `dataset_type` as the mapper holds it (for a
    /// policy-driven mapper the merged policy entry: `template`, `python`,
    /// `persistable`, `storage`, `storageOptions`, `tables` ...), for
    /// listing. Default: none.
    fn definition(&self, _dataset_type: &str) -> Option<serde_json::Value> {
        None
    }

    /// The detector of `dataset_type` for `data_id`, when the mapper knows
    /// it (e.g. from its camera description). Default: none.
    fn detector(&self, _dataset_type: &str, _data_id: &DataId) -> Option<daf_base::Detector> {
        None
    }

    /// Whether `dataset_type` is answered by [`Mapper::bypass`] instead of a
    /// storage read (LSST `bypass_<type>`). Default: no.
    fn has_bypass(&self, _dataset_type: &str) -> bool {
        false
    }

    /// The bypass answer, as a property set. Default: none.
    fn bypass(&self, _dataset_type: &str, _location: &ButlerLocation) -> Option<PropertySet> {
        None
    }
}
