//! The harness's butler method on `daf-butler`'s [`Butler`], and provenance.
//!
//! [`butler_factory`] gives the IO stages a butler over the repository named
//! by `parameters.butler.mapperPolicy.root` (filled from the location map).
//! Each dataset an OutputStage puts through it gets a provenance record —
//! the visit's input datasets — in the repository's registry (table
//! `provenance` in the registry's SQLite file); [`provenance`] reads them
//! back (`daf provenance REPO TYPE DATAID`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf_base::DataId;
use daf_butler::{Butler, GetOptions, PutOptions};
use daf_formatters::{Persistable, Persistence};
use daf_harness::{ButlerFactory, ButlerSpec, DataButler, Dataset, HarnessError};

/// A [`Butler`] as the IO stages see it.
pub struct ButlerAdapter {
    butler: Butler,
    registry: Option<PathBuf>,
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
        // Provenance goes into the SQLite registry file; a repository whose
        // registry is in PostgreSQL records none.
        let registry = butler
            .registry(0)
            .and_then(|r| r.local_file().map(Path::to_path_buf));
        Ok(ButlerAdapter { butler, registry })
    }

    /// The butler.
    pub fn butler(&self) -> &Butler {
        &self.butler
    }
}

impl DataButler for ButlerAdapter {
    fn get(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> daf_harness::Result<Arc<dyn Persistable>> {
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
    ) -> daf_harness::Result<()> {
        self.butler
            .put_with(obj, dataset_type, data_id, &PutOptions::clobber())
            .map(|_| ())
            .map_err(|e| berr(dataset_type, e))
    }

    fn dataset_exists(&self, dataset_type: &str, data_id: &DataId) -> daf_harness::Result<bool> {
        self.butler
            .dataset_exists(dataset_type, data_id)
            .map_err(|e| berr(dataset_type, e))
    }

    fn record_provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[Dataset],
    ) -> daf_harness::Result<()> {
        let Some(reg) = &self.registry else {
            return Ok(());
        };
        record(reg, dataset_type, data_id, inputs).map_err(|e| berr(dataset_type, e))
    }
}

fn open_db(registry: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(registry)?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS provenance (
            dataset_type TEXT NOT NULL,
            data_id TEXT NOT NULL,
            input_type TEXT NOT NULL,
            input_id TEXT NOT NULL,
            PRIMARY KEY (dataset_type, data_id, input_type, input_id))",
    )?;
    Ok(c)
}

fn id_json(id: &DataId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// Records that (`dataset_type`, `data_id`) was made from `inputs` (replacing
/// an earlier record of the same dataset), in one transaction.
pub fn record(
    registry: &Path,
    dataset_type: &str,
    data_id: &DataId,
    inputs: &[Dataset],
) -> rusqlite::Result<()> {
    let mut c = open_db(registry)?;
    let tx = c.transaction()?;
    let id = id_json(data_id);
    tx.execute(
        "DELETE FROM provenance WHERE dataset_type = ?1 AND data_id = ?2",
        (dataset_type, &id),
    )?;
    for i in inputs {
        tx.execute(
            "INSERT OR IGNORE INTO provenance VALUES (?1, ?2, ?3, ?4)",
            (dataset_type, &id, &i.dataset_type, id_json(&i.ids)),
        )?;
    }
    tx.commit()
}

/// The input datasets recorded for (`dataset_type`, `data_id`) in the
/// repository at `repo`, sorted.
pub fn provenance(
    repo: &Path,
    dataset_type: &str,
    data_id: &DataId,
) -> Result<Vec<Dataset>, HarnessError> {
    let adapter = ButlerAdapter::open(repo, None)?;
    let Some(reg) = adapter.registry.clone() else {
        return Err(berr(
            dataset_type,
            format!("repository {} has no registry", repo.display()),
        ));
    };
    let q = || -> rusqlite::Result<Vec<(String, String)>> {
        let c = open_db(&reg)?;
        let mut st = c.prepare(
            "SELECT input_type, input_id FROM provenance WHERE dataset_type = ?1 AND data_id = ?2 \
             ORDER BY input_type, input_id",
        )?;
        let rows = st.query_map((dataset_type, id_json(data_id)), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect()
    };
    let rows = q().map_err(|e| berr(dataset_type, e))?;
    rows.into_iter()
        .map(|(t, id)| {
            let ids: DataId = serde_json::from_str(&id).map_err(|e| berr(dataset_type, e))?;
            Ok(Dataset::new(t, ids))
        })
        .collect()
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
