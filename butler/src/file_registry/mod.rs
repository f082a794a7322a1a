//! The file registry: a table of every file a repository holds, behind one
//! small trait ([`DatasetRegistry`]) with two backends that pass the same
//! `conformance` suite (with the `testing` feature).
//!
//! Every `put` and every ingest records the dataset type, the data id (as
//! canonical JSON: keys sorted, integers as integers), the run, the path
//! (relative to the repository root, or absolute for files ingested in
//! place), the size, a BLAKE3 checksum, the time and, for ingested files,
//! the source path. A file of any name is then found by its data id without
//! renaming or symlinking; datasets of the same type and data id written by
//! different runs are kept apart, and the reader picks a run (default: the
//! newest). [`DatasetRegistry::verify`] re-checks sizes and checksums.
//!
//! ## Backends, and how a repository chooses one
//! * [`SqliteFileRegistry`] — the default: `daf_registry.sqlite3` in the
//!   repository root, in WAL mode with a busy timeout so that many processes
//!   on one machine (or one shared file system with working locks) can put
//!   at once. Lookups are served from an in-memory copy while SQLite's
//!   `data_version` is unchanged.
//! * [`PgFileRegistry`] — PostgreSQL, for repositories shared by many nodes.
//!   Chosen by `registry:` in the repository's `repositoryCfg.yaml`
//!   (`daf create REPO --registry postgresql://host:5432/db`):
//!
//!   ```yaml
//!   registry: postgresql://butler@db.example.org:5432/survey
//!   registrySchema: daf_3f9c2a71be04
//!   ```
//!
//!   Each repository keeps its rows in a schema of its own (`registrySchema`,
//!   generated at creation unless given, or `?schema=NAME` on the URL), so
//!   many repositories can share one database. The URL never holds a
//!   password: it comes from `~/.daf/db-auth.yaml` ([`DbAuth`], first entry
//!   for the URL's host and port) or from libpq's `PGPASSWORD` / `~/.pgpass`;
//!   the user from the URL, else the auth entry, else `PGUSER`. Every `find`
//!   is one indexed `SELECT`, so a lookup sees what other nodes committed.
//!
//! [`FileRegistry`] is the boxed backend the [`Butler`](crate::Butler) keeps
//! per repository; it dereferences to `dyn DatasetRegistry`, so call sites
//! read `reg.find(...)` whatever the backend.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod postgres;
mod sqlite;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use daf_base::{DataId, DataIdValue};
use daf_storages::db::DbAuth;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ButlerError;
use crate::repository::{RepositoryCfg, CFG_FILE};

pub use postgres::{PgFileRegistry, PgLocation};
pub use sqlite::{SqliteFileRegistry, REGISTRY_FILE};

/// One registered file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// The dataset type.
    pub dataset_type: String,
    /// The data id.
    pub data_id: DataId,
    /// The run that wrote it (`""` when none was named).
    pub run: String,
    /// Path relative to the repository root, or absolute.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hex digest.
    pub checksum: String,
    /// When it was recorded (ns since the Unix epoch, UTC).
    pub time_ns: i64,
    /// The file it was ingested from, if ingested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What a pending put (an intent) will do to its data id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentMode {
    /// Create a new dataset (fails if one exists).
    New,
    /// Replace an existing dataset.
    Clobber,
    /// Replace, keeping the old file as `path~N`.
    Backup,
    /// Ingest a file that is copied or linked (the source stays).
    Ingest,
    /// Ingest a file that is moved (the source goes).
    IngestMove,
    /// Remove a dataset (`daf prune`, `daf remove-run`): its `files` are the
    /// files the removal deletes (none when the files stay). The row goes
    /// first ([`DatasetRegistry::discard`]), then the files, then the
    /// intent; recovery rolls a removal back while the row is there, and
    /// forward (deleting the files) once it is gone.
    Remove,
}

impl IntentMode {
    /// The name stored in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentMode::New => "new",
            IntentMode::Clobber => "clobber",
            IntentMode::Backup => "backup",
            IntentMode::Ingest => "ingest",
            IntentMode::IngestMove => "ingest-move",
            IntentMode::Remove => "remove",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<IntentMode> {
        Some(match s {
            "new" => IntentMode::New,
            "clobber" => IntentMode::Clobber,
            "backup" => IntentMode::Backup,
            "ingest" => IntentMode::Ingest,
            "ingest-move" => IntentMode::IngestMove,
            "remove" => IntentMode::Remove,
            _ => return None,
        })
    }
}

/// A pending put: written to the registry (claiming its dataset type, data
/// id and run, so that only one writer at a time works on them) before any
/// file is renamed into place, and removed in the same transaction that
/// records the finished row. One left behind by a crash is resolved by
/// [`crate::recovery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// Row id (ignored when claiming).
    pub id: i64,
    /// The dataset type.
    pub dataset_type: String,
    /// The data id.
    pub data_id: DataId,
    /// The run.
    pub run: String,
    /// What the put does.
    pub mode: IntentMode,
    /// The files: (final path, staging path), relative to the root (the
    /// staging path is empty when there is none). The first is the one
    /// recorded and checksummed.
    pub files: Vec<(String, String)>,
    /// BLAKE3 checksum of the new content of the first file.
    pub checksum: String,
    /// Its size.
    pub size: u64,
    /// The writing process ([`daf_storages::owner::token`]).
    pub owner: String,
    /// When the intent was made (ns since the Unix epoch).
    pub time_ns: i64,
}

impl Intent {
    pub(crate) fn files_json(&self) -> String {
        serde_json::to_string(&self.files).expect("pairs of strings serialize")
    }
    pub(crate) fn parse_files(text: &str) -> Vec<(String, String)> {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// The answer to one [`DatasetRegistry::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The intent is recorded with this id; `existing` is the dataset's row
    /// as it stands (read after the claim, so no writer can add one until
    /// the intent is resolved).
    Claimed {
        /// The intent's row id.
        intent: i64,
        /// The current row for the same dataset type, data id and run.
        existing: Option<DatasetRecord>,
    },
    /// Another intent holds the data id.
    Busy(Intent),
}

/// A problem found by [`DatasetRegistry::verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The record.
    pub record: DatasetRecord,
    /// The full path checked.
    pub full_path: PathBuf,
    /// What is wrong.
    pub problem: Problem,
}

/// What [`DatasetRegistry::verify`] found wrong with one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Problem {
    /// The file is gone.
    Missing,
    /// The size differs.
    Size {
        /// Recorded.
        expected: u64,
        /// Found.
        actual: u64,
    },
    /// The checksum differs (same size).
    Checksum {
        /// Recorded.
        expected: String,
        /// Found.
        actual: String,
    },
    /// The file could not be read.
    Unreadable {
        /// The error.
        message: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing"),
            Problem::Size { expected, actual } => {
                write!(f, "size changed: recorded {expected} bytes, found {actual}")
            }
            Problem::Checksum { expected, actual } => {
                write!(f, "checksum changed: recorded {expected}, found {actual}")
            }
            Problem::Unreadable { message } => write!(f, "unreadable: {message}"),
        }
    }
}

/// The canonical JSON text of a data id (sorted keys, compact).
pub fn canonical_data_id(id: &DataId) -> String {
    serde_json::to_string(id).expect("a DataId always serializes")
}

pub(crate) fn parse_data_id(text: &str) -> Option<DataId> {
    serde_json::from_str(text).ok()
}

/// A registry row whose `data_id` column does not parse: carried inside the
/// driver's row-decoding error, then turned into
/// [`ButlerError::CorruptRow`] naming the row.
#[derive(Debug, thiserror::Error)]
#[error(
    "{table} row {id} ({dataset_type}, run {run:?}): data_id {text:?} is not a data id: {reason}"
)]
pub(crate) struct CorruptDataId {
    pub table: &'static str,
    pub id: i64,
    pub dataset_type: String,
    pub run: String,
    pub text: String,
    pub reason: String,
}

impl CorruptDataId {
    /// The butler-level error for the registry `registry`.
    pub(crate) fn to_error(&self, registry: &str) -> ButlerError {
        ButlerError::CorruptRow {
            registry: registry.to_string(),
            row: format!(
                "{} id {} ({} run {:?})",
                self.table, self.id, self.dataset_type, self.run
            ),
            message: format!(
                "data_id {:?} is not a JSON object of scalars ({})",
                self.text, self.reason
            ),
        }
    }
}

/// The data id of a registry row, or why its text is not one.
pub(crate) fn data_id_of(
    table: &'static str,
    id: i64,
    dataset_type: &str,
    run: &str,
    text: &str,
) -> Result<DataId, CorruptDataId> {
    serde_json::from_str(text).map_err(|e| CorruptDataId {
        table,
        id,
        dataset_type: dataset_type.to_string(),
        run: run.to_string(),
        text: text.chars().take(200).collect(),
        reason: e.to_string(),
    })
}

/// BLAKE3 checksum and size of a file.
pub fn checksum_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    // A buffer the file's size (at most 64 KiB): zeroing 64 KiB for every
    // small dataset put cost more than hashing it.
    let hint = f.metadata().map_or(1 << 16, |m| m.len().saturating_add(1));
    let mut buf = vec![0u8; hint.clamp(1, 1 << 16) as usize];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((h.finalize().to_hex().to_string(), size))
}

/// Does `data_id` hold every item of `partial` (integers and floats compared
/// numerically)?
/// The values of `keys` in `data_id`; `None` if one is missing.
pub fn project(data_id: &DataId, keys: &[&str]) -> Option<Vec<DataIdValue>> {
    keys.iter().map(|k| data_id.get(k).cloned()).collect()
}

pub fn matches_partial(data_id: &DataId, partial: &DataId) -> bool {
    partial.iter().all(|(k, v)| match data_id.get(k) {
        Some(have) => value_eq(have, v),
        None => false,
    })
}

/// Equality of two data-id values, numeric across int and float.
pub fn value_eq(a: &DataIdValue, b: &DataIdValue) -> bool {
    match (a, b) {
        (DataIdValue::Str(x), DataIdValue::Str(y)) => x == y,
        (DataIdValue::Str(_), _) | (_, DataIdValue::Str(_)) => false,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The operations of a file registry. Reads take `&self`, writes `&mut self`
/// (the butler keeps each registry behind a mutex).
///
/// Every backend passes `conformance::run` (with the `testing` feature).
pub trait DatasetRegistry: Send + std::fmt::Debug {
    /// What and where the registry is, for messages (a file path, or a URL
    /// without password and the schema).
    fn describe(&self) -> String;

    /// The repository root that relative paths are relative to.
    fn root(&self) -> &Path;

    /// The local database file, for backends that keep one (SQLite).
    fn local_file(&self) -> Option<&Path> {
        None
    }

    /// Records `rec` (its `id` is ignored), replacing an existing row with
    /// the same dataset type, data id and run. Returns the row id.
    fn insert(&mut self, rec: &DatasetRecord) -> Result<i64, ButlerError> {
        let ids = self.insert_many(std::slice::from_ref(rec))?;
        ids.first()
            .copied()
            .ok_or_else(|| ButlerError::registry(self.describe(), "the insert returned no row id"))
    }

    /// Records many rows in one transaction (all or none); returns their row
    /// ids in order.
    fn insert_many(&mut self, recs: &[DatasetRecord]) -> Result<Vec<i64>, ButlerError>;

    /// Removes a row (no error if it is gone).
    fn remove(&mut self, id: i64) -> Result<(), ButlerError>;

    /// The file of `dataset_type` with exactly `data_id`, from `run` (or the
    /// newest run when `None`). Shared, so a backend that caches rows hands
    /// one out without copying it.
    fn find(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Option<std::sync::Arc<DatasetRecord>>, ButlerError>;

    /// Every row of `dataset_type` (all types when `None`) whose data id
    /// holds every item of `partial`, in insertion order; only `run` if
    /// given.
    fn find_matching(
        &self,
        dataset_type: Option<&str>,
        partial: &DataId,
        run: Option<&str>,
    ) -> Result<Vec<DatasetRecord>, ButlerError>;

    /// The values of `keys` in the data id of every row of `dataset_type`
    /// matching `partial` (rows lacking one of the keys are left out), in
    /// insertion order: [`find_matching`](Self::find_matching) without copying
    /// whole rows, for queries.
    fn project_matching(
        &self,
        dataset_type: &str,
        partial: &DataId,
        keys: &[&str],
    ) -> Result<Vec<Vec<DataIdValue>>, ButlerError> {
        Ok(self
            .find_matching(Some(dataset_type), partial, None)?
            .iter()
            .filter_map(|r| project(&r.data_id, keys))
            .collect())
    }

    /// Every row, in insertion order.
    fn all(&self) -> Result<Vec<DatasetRecord>, ButlerError> {
        self.find_matching(None, &DataId::new(), None)
    }

    /// Number of rows.
    fn count(&self) -> Result<usize, ButlerError>;

    /// The row ingested from `source` (an absolute path), if any.
    fn find_by_source(&self, source: &str) -> Result<Option<DatasetRecord>, ButlerError>;

    /// Distinct dataset types, sorted.
    fn dataset_types(&self) -> Result<Vec<String>, ButlerError>;

    /// Records that `dataset_type` with `data_id` was made from `inputs`
    /// (dataset type and data id of each), replacing an earlier record for
    /// the same dataset; all or nothing. The pipeline harness records each
    /// output this way.
    fn record_provenance(
        &mut self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[(String, DataId)],
    ) -> Result<(), ButlerError>;

    /// The inputs recorded for `dataset_type` with `data_id`, sorted by
    /// dataset type, then by data id text; empty when none were recorded.
    fn provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<Vec<(String, DataId)>, ButlerError>;

    /// Records `intents` (their `id` is ignored) in one transaction: each
    /// either claims its dataset type, data id and run, or finds the intent
    /// that holds them ([`Claim::Busy`]). Answers in order.
    fn claim(&mut self, intents: &[Intent]) -> Result<Vec<Claim>, ButlerError>;

    /// Records `recs` (as [`DatasetRegistry::insert_many`]) and removes the
    /// intents `done`, in one transaction; returns the row ids.
    fn settle(&mut self, recs: &[DatasetRecord], done: &[i64]) -> Result<Vec<i64>, ButlerError>;

    /// Removes the rows `rows` and the intents `done` in one transaction
    /// (all or none; no error for one that is gone): how a removal
    /// ([`IntentMode::Remove`]) drops its rows.
    fn discard(&mut self, rows: &[i64], done: &[i64]) -> Result<(), ButlerError>;

    /// Removes intents (no error for one that is gone).
    fn release(&mut self, ids: &[i64]) -> Result<(), ButlerError>;

    /// Makes `to` the owner of intent `id` if `from` still owns it (one
    /// atomic update); `false` if the intent is gone or owned by another.
    fn take_over(&mut self, id: i64, from: &str, to: &str) -> Result<bool, ButlerError>;

    /// Every pending intent, oldest first.
    fn intents(&self) -> Result<Vec<Intent>, ButlerError>;

    /// The full path of a record's file.
    fn full_path(&self, rec: &DatasetRecord) -> PathBuf {
        full_path(self.root(), &rec.path)
    }

    /// Re-checks the size and checksum of every registered file (in
    /// parallel) and returns every mismatch, in row order.
    fn verify(&self) -> Result<Vec<Mismatch>, ButlerError> {
        Ok(verify_records(self.root(), self.all()?))
    }
}

fn full_path(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// Checks the files of `recs` (in parallel); the mismatches in row order.
pub fn verify_records(root: &Path, recs: Vec<DatasetRecord>) -> Vec<Mismatch> {
    let mut out: Vec<Mismatch> = recs
        .into_par_iter()
        .filter_map(|rec| {
            let full = full_path(root, &rec.path);
            let problem = match std::fs::metadata(&full) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Problem::Missing),
                Err(e) => Some(Problem::Unreadable {
                    message: e.to_string(),
                }),
                Ok(m) if m.len() != rec.size => Some(Problem::Size {
                    expected: rec.size,
                    actual: m.len(),
                }),
                Ok(_) => match checksum_file(&full) {
                    Err(e) => Some(Problem::Unreadable {
                        message: e.to_string(),
                    }),
                    Ok((sum, _)) if sum != rec.checksum => Some(Problem::Checksum {
                        expected: rec.checksum.clone(),
                        actual: sum,
                    }),
                    Ok(_) => None,
                },
            };
            problem.map(|problem| Mismatch {
                record: rec,
                full_path: full,
                problem,
            })
        })
        .collect();
    out.sort_by_key(|m| m.record.id);
    out
}

/// [`verify_records`] for a repository whose files are in `remote` (an
/// object store; `None`: files under `root`): each record's object is
/// checked by size (HEAD) and BLAKE3 checksum (ranged GETs), in parallel.
/// An unreachable endpoint or a denied request is a
/// [`Problem::Unreadable`] of that record, never a panic.
pub fn verify_records_in(
    root: &Path,
    remote: Option<&dyn daf_storages::datastore::Datastore>,
    recs: Vec<DatasetRecord>,
) -> Vec<Mismatch> {
    let Some(ds) = remote else {
        return verify_records(root, recs);
    };
    let url = ds.url();
    let mut out: Vec<Mismatch> = recs
        .into_par_iter()
        .filter_map(|rec| {
            let problem = match ds.head(&rec.path) {
                Ok(None) => Some(Problem::Missing),
                Err(e) => Some(Problem::Unreadable {
                    message: e.to_string(),
                }),
                Ok(Some(m)) if m.size != rec.size => Some(Problem::Size {
                    expected: rec.size,
                    actual: m.size,
                }),
                Ok(Some(_)) => match ds.checksum(&rec.path) {
                    Err(e) => Some(Problem::Unreadable {
                        message: e.to_string(),
                    }),
                    Ok((sum, _)) if sum != rec.checksum => Some(Problem::Checksum {
                        expected: rec.checksum.clone(),
                        actual: sum,
                    }),
                    Ok(_) => None,
                },
            };
            problem.map(|problem| Mismatch {
                full_path: PathBuf::from(format!("{url}/{}", rec.path)),
                record: rec,
                problem,
            })
        })
        .collect();
    out.sort_by_key(|m| m.record.id);
    out
}

/// Where a repository's file registry lives, from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryLocation {
    /// `daf_registry.sqlite3` in the repository root (the default).
    Sqlite,
    /// A PostgreSQL database and schema.
    Postgres(PgLocation),
}

impl RegistryLocation {
    /// The location a configuration names (`registry`, `registrySchema`).
    pub fn from_cfg(cfg: &RepositoryCfg) -> Result<RegistryLocation, String> {
        match &cfg.registry {
            None => {
                if cfg.registry_schema.is_some() {
                    return Err("registrySchema is set but registry is not".into());
                }
                Ok(RegistryLocation::Sqlite)
            }
            Some(url) => {
                let loc = PgLocation::parse(url, cfg.registry_schema.as_deref())?;
                if loc.schema.is_none() {
                    return Err(format!(
                        "registry {} needs registrySchema (the schema holding this repository's rows)",
                        loc.url
                    ));
                }
                Ok(RegistryLocation::Postgres(loc))
            }
        }
    }
}

/// The database credentials a butler uses when none are passed:
/// `~/.daf/db-auth.yaml` if it exists (an error if it is unreadable or not
/// private), else none (PostgreSQL then falls back to `PGPASSWORD` /
/// `~/.pgpass`).
pub fn default_db_auth() -> Result<DbAuth, ButlerError> {
    match DbAuth::default_path() {
        Some(p) if p.exists() => DbAuth::load(&p).map_err(|e| ButlerError::Registry {
            registry: p.display().to_string(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }),
        _ => Ok(DbAuth::new()),
    }
}

/// `auth` if given, else [`default_db_auth`].
pub(crate) fn auth_or_default(
    auth: Option<&DbAuth>,
) -> Result<std::borrow::Cow<'_, DbAuth>, ButlerError> {
    Ok(match auth {
        Some(a) => std::borrow::Cow::Borrowed(a),
        None => std::borrow::Cow::Owned(default_db_auth()?),
    })
}

/// The file registry of one repository: a boxed backend. Dereferences to
/// `dyn` [`DatasetRegistry`], so `reg.find(...)`, `reg.insert(...)` work
/// directly.
///
/// ```
/// use daf_base::data_id;
/// use daf_butler::file_registry::{FileRegistry, DatasetRecord};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("f.txt"), b"abc").unwrap();
/// let mut reg = FileRegistry::open(dir.path(), true).unwrap().unwrap();
/// let (checksum, size) = daf_butler::file_registry::checksum_file(&dir.path().join("f.txt")).unwrap();
/// reg.insert(&DatasetRecord { id: 0, dataset_type: "raw".into(), data_id: data_id!{visit: 1},
///     run: String::new(), path: "f.txt".into(), size, checksum, time_ns: 1, source: None }).unwrap();
/// assert_eq!(reg.find("raw", &data_id!{visit: 1}, None).unwrap().unwrap().size, 3);
/// ```
#[derive(Debug)]
pub struct FileRegistry {
    inner: Box<dyn DatasetRegistry>,
}

impl std::ops::Deref for FileRegistry {
    type Target = dyn DatasetRegistry;
    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl std::ops::DerefMut for FileRegistry {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.inner
    }
}

impl FileRegistry {
    /// Wraps a backend.
    pub fn new(backend: impl DatasetRegistry + 'static) -> FileRegistry {
        FileRegistry {
            inner: Box::new(backend),
        }
    }

    /// Opens (creating if `create`) the registry of the repository at `root`,
    /// where its `repositoryCfg.yaml` says (SQLite when it names none, or
    /// when there is no configuration). PostgreSQL credentials come from
    /// [`default_db_auth`]. Without `create`, a registry that does not exist
    /// yet gives `Ok(None)`.
    pub fn open(root: &Path, create: bool) -> Result<Option<FileRegistry>, ButlerError> {
        let cfg_path = root.join(CFG_FILE);
        let cfg = if cfg_path.is_file() {
            let text =
                std::fs::read_to_string(&cfg_path).map_err(|e| ButlerError::io(&cfg_path, e))?;
            RepositoryCfg::from_yaml_str(&text).map_err(|m| {
                ButlerError::repo(root, format!("corrupt {}: {m}", cfg_path.display()))
            })?
        } else {
            RepositoryCfg::default()
        };
        Self::open_cfg(root, &cfg, create, None)
    }

    /// Opens (creating if `create`) the registry `cfg` names for the
    /// repository at `root`, with `auth` for PostgreSQL (default:
    /// [`default_db_auth`], read only when needed).
    pub fn open_cfg(
        root: &Path,
        cfg: &RepositoryCfg,
        create: bool,
        auth: Option<&DbAuth>,
    ) -> Result<Option<FileRegistry>, ButlerError> {
        let loc = RegistryLocation::from_cfg(cfg).map_err(|m| {
            ButlerError::repo(root, format!("{m}; fix the registry entries of {CFG_FILE}"))
        })?;
        match loc {
            RegistryLocation::Sqlite => {
                Ok(SqliteFileRegistry::open(root, create)?.map(FileRegistry::new))
            }
            RegistryLocation::Postgres(pg) => {
                let auth = auth_or_default(auth)?;
                Ok(PgFileRegistry::connect(&pg, root, &auth, create)?.map(FileRegistry::new))
            }
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn DatasetRegistry {
        &*self.inner
    }
}
