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
///
/// As Gen2's butler did, data-id keys a dataset type does not use (neither
/// in its template nor in its registry table) are dropped before a `get`,
/// `put` or existence check: a stage may pass `{visit, ccd}` for a bias that
/// only knows `ccd`.
pub struct ButlerAdapter {
    butler: Butler,
}

/// A level name no policy defines: asking a mapper for the keys "minus this
/// level" gives every key of the dataset type.
const ALL_KEYS: &str = "daf.harness:all-keys";

/// Does `asked` (an LSST class path such as `lsst.obs.test.TestMapper`, or a
/// daf mapper name) name the repository's mapper `have`?
fn same_mapper(asked: &str, have: &str) -> bool {
    let last = |s: &str| s.rsplit('.').next().unwrap_or(s).to_string();
    asked == have || last(asked) == last(have)
}

/// A [`HarnessError::Butler`] keeping `e` (a `ButlerError`, or a message)
/// as its source.
fn berr(item: &str, e: impl Into<daf_base::BoxError>) -> HarnessError {
    let e = e.into();
    HarnessError::Butler {
        item: item.into(),
        message: e.to_string(),
        source: Some(e),
    }
}

impl ButlerAdapter {
    /// Opens the repository at `root` for reading and writing.
    pub fn open(root: &Path, persistence: Option<Persistence>) -> Result<Self, HarnessError> {
        let mut b = Butler::builder().output(root);
        // a policy its cfg names serves its legacy parents too (as in the CLI)
        if let Some(policy) = daf_butler::Repository::lent_policy(root) {
            tracing::debug!(policy = %policy.display(), "the repository's mapper policy serves its chain");
            b = b.policy(policy);
        }
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

    /// `data_id` without the keys `dataset_type` does not use (logged).
    fn trim(&self, dataset_type: &str, data_id: &DataId) -> DataId {
        let Ok(keys) = self.butler.get_keys(dataset_type, Some(ALL_KEYS)) else {
            return data_id.clone();
        };
        let mut out = DataId::new();
        let mut dropped = Vec::new();
        for (k, v) in data_id.iter() {
            if keys.contains_key(k) {
                out.insert(k, v.clone());
            } else {
                dropped.push(k.to_string());
            }
        }
        if !dropped.is_empty() {
            tracing::debug!("{dataset_type}: data-id keys {dropped:?} are not used; ignored");
        }
        out
    }
}

impl DataButler for ButlerAdapter {
    fn get(&self, dataset_type: &str, data_id: &DataId) -> crate::Result<Arc<dyn Persistable>> {
        let data_id = &self.trim(dataset_type, data_id);
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
        let data_id = &self.trim(dataset_type, data_id);
        self.butler
            .put_with(obj, dataset_type, data_id, &PutOptions::clobber())
            .map(|_| ())
            .map_err(|e| berr(dataset_type, e))
    }

    fn dataset_exists(&self, dataset_type: &str, data_id: &DataId) -> crate::Result<bool> {
        let data_id = &self.trim(dataset_type, data_id);
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
        let data_id = &self.trim(dataset_type, data_id);
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
/// butler's default). The repository names its own mapper (its cfg file or
/// legacy `_mapper`); `mapperName`, when given, must name the same mapper —
/// as an LSST class path (`lsst.obs.test.TestMapper`) or a daf name, compared
/// by the last dotted component — or setup fails saying which mapper the
/// repository has.
pub fn butler_factory(persistence: Option<Persistence>) -> ButlerFactory {
    Arc::new(move |spec: &ButlerSpec| {
        let root = spec.root.as_ref().ok_or_else(|| {
            berr(
                "butler",
                "parameters.butler.mapperPolicy.root is required (the repository)",
            )
        })?;
        let a = ButlerAdapter::open(Path::new(root), persistence.clone())?;
        if let Some(asked) = spec.mapper_name.as_deref() {
            let have = a
                .butler
                .repositories()
                .first()
                .and_then(|r| r.cfg.mapper.clone())
                .unwrap_or_else(|| "SimpleMapper".into());
            if !same_mapper(asked, &have) {
                return Err(berr(
                    "butler",
                    format!(
                        "parameters.butler.mapperName is {asked:?}, but the repository {root} \
                         uses mapper {have:?} (daf takes the mapper from the repository; \
                         name that one or leave mapperName out)"
                    ),
                ));
            }
        }
        Ok(Arc::new(a) as Arc<dyn DataButler>)
    })
}
