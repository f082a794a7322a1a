//! The harness's butler method on `daf-butler`'s [`Butler`], and provenance.
//!
//! [`butler_factory`] gives the IO stages a butler over the repository named
//! by `parameters.butler.mapperPolicy.root` (filled from the location map).
//! Each dataset an OutputStage puts through it gets a provenance record —
//! the visit's input datasets — in the repository's file registry (SQLite or
//! PostgreSQL, [`daf_butler::file_registry::DatasetRegistry::record_provenance`]);
//! [`provenance`] reads them back (`daf provenance REPO TYPE DATAID`).

use std::path::Path;
use std::sync::Arc;

use crate::{ButlerFactory, ButlerSpec, DataButler, Dataset, HarnessError};
use daf_base::DataId;
use daf_butler::{Butler, FileRegistry, GetOptions, PutOptions};
use daf_formatters::{Persistable, Persistence};

/// A [`Butler`] as the IO stages see it.
pub struct ButlerAdapter {
    butler: Butler,
}

fn berr(item: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Butler {
        item: item.into(),
        message: e.to_string(),
    }
}

impl ButlerAdapter {
    /// Opens the repository at `root` for reading and writing.
    pub fn open(root: &Path, persistence: Option<Persistence>) -> Result<Self, HarnessError> {
        let mut b = Butler::builder().output(root);
        if let Some(p) = persistence {
            b = b.persistence(p);
        }
        let butler = b
            .build()
            .map_err(|e| berr(&root.display().to_string(), e))?;
        Ok(ButlerAdapter { butler })
    }

    /// The butler.
    pub fn butler(&self) -> &Butler {
        &self.butler
    }
}

impl DataButler for ButlerAdapter {
    fn get(&self, dataset_type: &str, data_id: &DataId) -> crate::Result<Arc<dyn Persistable>> {
        self.butler
            .get_dyn(dataset_type, data_id, &GetOptions::default())
            .map(Arc::from)
            .map_err(|e| berr(dataset_type, e))
    }

    fn put(
        &self,
        obj: &dyn Persistable,
        dataset_type: &str,
        data_id: &DataId,
    ) -> crate::Result<()> {
        self.butler
            .put_with(obj, dataset_type, data_id, &PutOptions::clobber())
            .map(|_| ())
            .map_err(|e| berr(dataset_type, e))
    }

    fn dataset_exists(&self, dataset_type: &str, data_id: &DataId) -> crate::Result<bool> {
        self.butler
            .dataset_exists(dataset_type, data_id)
            .map_err(|e| berr(dataset_type, e))
    }

    fn record_provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[Dataset],
    ) -> crate::Result<()> {
        let Some(mut reg) = self.butler.registry(0) else {
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

/// The input datasets recorded for (`dataset_type`, `data_id`) in the
/// repository at `repo`, sorted.
pub fn provenance(
    repo: &Path,
    dataset_type: &str,
    data_id: &DataId,
) -> Result<Vec<Dataset>, HarnessError> {
    let reg = FileRegistry::open(repo, false)
        .map_err(|e| berr(dataset_type, e))?
        .ok_or_else(|| {
            berr(
                dataset_type,
                format!("repository {} has no registry", repo.display()),
            )
        })?;
    Ok(reg
        .provenance(dataset_type, data_id)
        .map_err(|e| berr(dataset_type, e))?
        .into_iter()
        .map(|(t, ids)| Dataset::new(t, ids))
        .collect())
}

/// A butler factory for the IO stages: opens the repository at the spec's
/// root (`mapperPolicy.root`), with `persistence` if given (else the
/// butler's default).
pub fn butler_factory(persistence: Option<Persistence>) -> ButlerFactory {
    Arc::new(move |spec: &ButlerSpec| {
        let root = spec.root.as_ref().ok_or_else(|| {
            berr(
                "butler",
                "parameters.butler.mapperPolicy.root is required (the repository)",
            )
        })?;
        let a = ButlerAdapter::open(Path::new(root), persistence.clone())?;
        Ok(Arc::new(a) as Arc<dyn DataButler>)
    })
}
