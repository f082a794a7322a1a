//! [`DataButler`]: what the IO stages' butler method needs of a data butler,
//! and [`ButlerFactory`], how a stage gets one from its `parameters.butler`
//! policy. The `daf` crate plugs `daf-butler`'s Butler in through these;
//! tests plug in small in-memory butlers.

use std::sync::Arc;

use daf_base::{DataId, Policy};
use daf_formatters::Persistable;

use crate::clipboard::Dataset;
use crate::Result;

/// The butler operations the IO stages use.
pub trait DataButler: Send + Sync {
    /// Reads one dataset.
    fn get(&self, dataset_type: &str, data_id: &DataId) -> Result<Arc<dyn Persistable>>;
    /// Writes one dataset.
    fn put(&self, obj: &dyn Persistable, dataset_type: &str, data_id: &DataId) -> Result<()>;
    /// Does the dataset exist (yet)?
    fn dataset_exists(&self, dataset_type: &str, data_id: &DataId) -> Result<bool>;
    /// Records that `(dataset_type, data_id)` was made from `inputs`
    /// (provenance). The default records nothing.
    fn record_provenance(
        &self,
        _dataset_type: &str,
        _data_id: &DataId,
        _inputs: &[Dataset],
    ) -> Result<()> {
        Ok(())
    }
}

/// What a stage's `parameters.butler` policy asks for.
#[derive(Debug, Clone)]
pub struct ButlerSpec {
    /// `mapperName` (an LSST class path or a daf mapper name), if given.
    pub mapper_name: Option<String>,
    /// `mapperPolicy.root`, filled from the location map (`%(input)` ...).
    pub root: Option<String>,
    /// The whole `butler` policy.
    pub policy: Policy,
}

/// Makes a butler for a [`ButlerSpec`]. Called once per stage instance (so
/// once per slice), at setup.
pub type ButlerFactory = Arc<dyn Fn(&ButlerSpec) -> Result<Arc<dyn DataButler>> + Send + Sync>;
