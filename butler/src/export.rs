//! Export and import: a YAML listing of datasets and their files, to move
//! data between repositories.
//!
//! ```yaml
//! description: daf butler export
//! version: 1
//! root: /data/repo
//! datasets:
//! - dataset_type: calexp
//!   data_id: {filter: g, visit: 1}
//!   run: ''
//!   path: calexp/v1_fg.fits
//!   size: 123
//!   checksum: 1f0c…
//!   time_ns: 1795253047363407670
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::butler::Butler;
use crate::error::ButlerError;
use crate::file_registry::{checksum_file, now_ns, DatasetRecord};
use crate::ingest::{IngestSummary, Transfer};

/// The export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Always `daf butler export`.
    pub description: String,
    /// Format version (1).
    pub version: u32,
    /// The exported repository's root; relative paths are relative to it.
    pub root: PathBuf,
    /// The exported repository's datastore when its files are objects
    /// (`s3://bucket/prefix`): relative paths are then keys in it. Absent
    /// for files under `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore: Option<String>,
    /// The datasets.
    pub datasets: Vec<DatasetRecord>,
    /// The mapper of the exported repository (what defines its dataset
    /// types), so an import into a new repository can read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapper: Option<String>,
    /// Its mapper arguments: a `SimpleMapper`'s dataset definitions, a
    /// camera mapper's `policy` (an absolute path).
    #[serde(
        default,
        rename = "mapperArgs",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub mapper_args: BTreeMap<String, serde_json::Value>,
}

/// Description written in every export.
pub const DESCRIPTION: &str = "daf butler export";

impl Export {
    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("an export always serializes")
    }
    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Export, String> {
        let e: Export = serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("line {}: {}", l.line(), daf_base::yaml_error_text(&e)),
            None => daf_base::yaml_error_text(&e),
        })?;
        if e.description != DESCRIPTION || e.version != 1 {
            return Err(format!(
                "not a daf export (description {:?}, version {})",
                e.description, e.version
            ));
        }
        Ok(e)
    }
}

/// Lists the registered datasets of repository `repo` (an index into the
/// butler's repositories) accepted by `filter`.
pub fn export(
    butler: &Butler,
    repo: usize,
    filter: &dyn Fn(&DatasetRecord) -> bool,
) -> Result<Export, ButlerError> {
    let r = &butler.repositories()[repo];
    let root = r.root.clone();
    let mut mapper_args = crate::repository::absolute_policy(&r.cfg.mapper_args, &root);
    let camera = r.cfg.mapper.as_deref().is_some_and(|m| m != "SimpleMapper");
    if camera && !mapper_args.contains_key("policy") {
        if let Some(p) = butler.policy() {
            mapper_args.insert("policy".into(), p.to_string_lossy().into_owned().into());
        }
    }
    let datasets = match butler.registry(repo) {
        Some(reg) => reg.all()?.into_iter().filter(|r| filter(r)).collect(),
        None => Vec::new(),
    };
    Ok(Export {
        description: DESCRIPTION.into(),
        version: 1,
        root,
        datastore: butler.remote_datastore(repo).map(|d| d.url()),
        datasets,
        mapper: r.cfg.mapper.clone(),
        mapper_args,
    })
}

/// Creates the repository an import of `export` goes to when `root` holds
/// none yet, with the exported repository's mapper and its arguments, so
/// the imported datasets can be read. Returns whether it was created.
pub fn create_for_import(root: &Path, export: &Export) -> Result<bool, ButlerError> {
    if crate::Repository::exists(root) {
        return Ok(false);
    }
    crate::Repository::create(
        root,
        export.mapper.as_deref(),
        export.mapper_args.clone(),
        &[],
    )?;
    Ok(true)
}

/// Brings the datasets of `export` into the first output of `butler`, at the
/// same relative paths (absolute paths stay in place), checking each file's
/// checksum against the listing. Already present datasets with the same
/// checksum are skipped; failures are reported and the others go on.
///
/// Either side may be an object store. From an exported datastore
/// (`datastore:` in the listing) each object is downloaded to a local
/// temporary file and checksummed before it goes anywhere (only `copy` is
/// possible: the source objects stay). Into a repository on an object store
/// each file is uploaded create-only (`copy`, or `move`, which then deletes
/// the local source); an identical unregistered object already at the key
/// is adopted. Rows are recorded after every file is in place.
pub fn import(
    butler: &Butler,
    export: &Export,
    transfer: Transfer,
    progress: &(dyn Fn() + Sync),
) -> Result<IngestSummary, ButlerError> {
    let out = crate::ingest::first_output(butler)?;
    let root = butler.repositories()[out].root.clone();
    let remote = butler.remote_datastore(out).cloned();
    if let Some(ds) = &remote {
        crate::ingest::check_remote_transfer(ds.url(), transfer)
            .map_err(|m| ButlerError::repo(&root, m))?;
    }
    let source = match &export.datastore {
        Some(url) => {
            if transfer != Transfer::Copy {
                return Err(ButlerError::repo(
                    &root,
                    format!(
                        "the export's files are objects in {url}: only --transfer copy can \
                         import them"
                    ),
                ));
            }
            Some(daf_storages::datastore::open_datastore(url)?)
        }
        None => None,
    };
    // downloads land beside the repository (so a local import renames
    // them into place), or in the system's temporary folder for an upload
    let scratch_dir = match &remote {
        None => root.clone(),
        Some(_) => std::env::temp_dir(),
    };
    let scratch = match &source {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix(".daf-import")
                .tempdir_in(&scratch_dir)
                .map_err(|e| ButlerError::io(&scratch_dir, e))?,
        ),
        None => None,
    };
    let mut summary = IngestSummary::default();
    let mut recs = Vec::new();
    for (n, rec) in export.datasets.iter().enumerate() {
        let p = Path::new(&rec.path);
        let (src, shown) = match &source {
            Some(ds) if !p.is_absolute() => {
                let tmp = scratch
                    .as_ref()
                    .expect("scratch")
                    .path()
                    .join(format!("{n}"));
                (tmp, PathBuf::from(format!("{}/{}", ds.url(), rec.path)))
            }
            _ if p.is_absolute() => (p.to_path_buf(), p.to_path_buf()),
            _ => (export.root.join(p), export.root.join(p)),
        };
        let r = (|| -> Result<Option<DatasetRecord>, String> {
            if let Some(have) = butler
                .registry(out)
                .expect("outputs have a registry")
                .find(&rec.dataset_type, &rec.data_id, Some(&rec.run))
                .map_err(|e| e.to_string())?
            {
                if have.checksum == rec.checksum {
                    return Ok(None);
                }
                return Err(format!(
                    "{} {} (run {:?}) already exists with different content",
                    rec.dataset_type, rec.data_id, rec.run
                ));
            }
            let downloaded = match &source {
                Some(ds) if !p.is_absolute() => {
                    ds.get_to_file(&rec.path, &src).map_err(|e| e.to_string())?;
                    true
                }
                _ => false,
            };
            let (sum, size) =
                checksum_file(&src).map_err(|e| format!("{}: {e}", shown.display()))?;
            if sum != rec.checksum || size != rec.size {
                return Err(format!(
                    "{} does not match the export (size {size} vs {}, checksum differs: {})",
                    shown.display(),
                    rec.size,
                    sum != rec.checksum
                ));
            }
            // a downloaded file is ours to move into place
            let mode = if downloaded { Transfer::Move } else { transfer };
            if let Some(ds) = &remote {
                if p.is_absolute() {
                    return Err(format!(
                        "{} is an absolute path (ingested with direct); it cannot go into {}",
                        p.display(),
                        ds.url()
                    ));
                }
                let new = DatasetRecord {
                    id: 0,
                    time_ns: now_ns(),
                    source: Some(shown.to_string_lossy().into_owned()),
                    ..rec.clone()
                };
                crate::ingest::upload(&**ds, &src, mode, &new)?;
                return Ok(Some(new));
            }
            let (dst, path) = if p.is_absolute() || transfer == Transfer::Direct {
                if downloaded {
                    return Err(format!(
                        "{}: --transfer direct cannot record an object of {} as a local path",
                        rec.path,
                        export.datastore.as_deref().unwrap_or("")
                    ));
                }
                (src.clone(), src.to_string_lossy().into_owned())
            } else {
                (root.join(p), rec.path.clone())
            };
            crate::ingest::transfer_file(&src, &dst, mode).map_err(|e| e.to_string())?;
            Ok(Some(DatasetRecord {
                id: 0,
                path,
                time_ns: now_ns(),
                source: Some(shown.to_string_lossy().into_owned()),
                ..rec.clone()
            }))
        })();
        if source.is_some() {
            let _ = std::fs::remove_file(&src);
        }
        progress();
        match r {
            Ok(Some(r)) => {
                recs.push(r);
                summary.ingested.push(shown);
            }
            Ok(None) => summary.skipped.push(shown),
            Err(m) => summary.failed.push((shown, m)),
        }
    }
    butler
        .registry(out)
        .expect("outputs have a registry")
        .insert_many(&recs)?;
    Ok(summary)
}
