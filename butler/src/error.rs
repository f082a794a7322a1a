//! [`ButlerError`]: everything that can go wrong in the butler.

use std::path::PathBuf;

use daf_base::DataId;
use daf_formatters::FormatterError;
use daf_mappers::MapperError;
use daf_storages::StorageError;
use thiserror::Error;

/// Errors from repositories, the file registry, the butler and ingest.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ButlerError {
    /// A repository configuration could not be read or is malformed.
    #[error("repository {root}: {message}")]
    Repository {
        /// The repository root.
        root: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A write was attempted on a read-only (input) repository.
    #[error("repository {root} is an input (read-only); pass it as an output to write to it")]
    ReadOnly {
        /// The repository root.
        root: PathBuf,
    },
    /// No dataset was found.
    #[error("no {dataset_type} dataset for {data_id}{} in repositories: {}", run.as_ref().map(|r| format!(" (run {r:?})")).unwrap_or_default(), searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The dataset type asked for.
        dataset_type: String,
        /// The data id asked for.
        data_id: DataId,
        /// The run asked for, if any.
        run: Option<String>,
        /// Repositories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// A dataset a deferred handle found is gone, or was replaced, by the
    /// time the handle reads it.
    #[error("the {dataset_type} dataset {data_id} at {path} vanished: {message}")]
    Vanished {
        /// The dataset type of the handle.
        dataset_type: String,
        /// The dataset's data id.
        data_id: DataId,
        /// Its file.
        path: PathBuf,
        /// What changed.
        message: String,
    },
    /// A dataset exists already and neither clobber nor backup was asked.
    #[error("{dataset_type} {data_id} already exists at {path}; pass clobber (or backup) to overwrite it")]
    Exists {
        /// The dataset type.
        dataset_type: String,
        /// The data id.
        data_id: DataId,
        /// The existing file.
        path: PathBuf,
    },
    /// The datastore (local folder or S3 bucket) failed; the cause is kept.
    #[error(transparent)]
    Datastore(#[from] daf_storages::datastore::DatastoreError),
    /// `data_ref` found zero or several datasets.
    #[error("no unique dataset for {dataset_type} {data_id}: {count} match")]
    NotUnique {
        /// The dataset type.
        dataset_type: String,
        /// The partial data id.
        data_id: DataId,
        /// How many matched.
        count: usize,
    },
    /// A bad alias (`@name`) definition or use.
    #[error("alias: {0}")]
    Alias(String),
    /// A bad data id (unknown key, wrong type).
    #[error("bad data id {data_id} for {dataset_type}: {message}")]
    BadDataId {
        /// The dataset type.
        dataset_type: String,
        /// The data id.
        data_id: DataId,
        /// What is wrong.
        message: String,
    },
    /// The file registry failed.
    #[error("file registry {registry}: {message}")]
    Registry {
        /// The registry: its file, or its URL (never with a password) and
        /// schema.
        registry: String,
        /// What went wrong.
        message: String,
        /// The driver's error (`rusqlite::Error`, `sqlx::Error` ...), when
        /// the failure came from one.
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// A registry row that cannot be read back (e.g. a `data_id` column
    /// that is not a JSON object of scalars): the registry is corrupt there.
    #[error("file registry {registry}: corrupt row {row}: {message}")]
    CorruptRow {
        /// The registry (file, or URL without password and schema).
        registry: String,
        /// Which row: table, row id, dataset type and run.
        row: String,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O error on a path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A query `--where` expression could not be parsed.
    #[error("bad where expression {expr:?}: {message}")]
    Where {
        /// The expression.
        expr: String,
        /// What is wrong.
        message: String,
    },
    /// Ingest of one file failed.
    #[error("ingest {path}: {message}")]
    Ingest {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An input-derived path piece (run name, data-id value, template,
    /// ingest target) would lead outside the repository.
    #[error(transparent)]
    UnsafePath(#[from] daf_base::path_safety::UnsafePath),
    /// Another writer's pending put of the same dataset did not finish in
    /// time.
    #[error("{dataset_type} {data_id} is being written by {owner} (pending since {since_s} s); try again later, or run `daf verify --repair` if that process is gone")]
    Busy {
        /// The dataset type.
        dataset_type: String,
        /// The data id.
        data_id: DataId,
        /// The other writer ([`daf_storages::owner::token`]).
        owner: String,
        /// How long its put has been pending, in seconds.
        since_s: i64,
    },
    /// A mapper error.
    #[error(transparent)]
    Mapper(#[from] MapperError),
    /// A formatter or persistence error.
    #[error(transparent)]
    Formatter(#[from] FormatterError),
    /// A storage error.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ButlerError {
    /// Shorthand for [`ButlerError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ButlerError::Io {
            path: path.into(),
            source,
        }
    }
    /// A [`ButlerError::Registry`] without an underlying error.
    pub fn registry(registry: impl Into<String>, message: impl Into<String>) -> Self {
        ButlerError::Registry {
            registry: registry.into(),
            message: message.into(),
            source: None,
        }
    }
    /// A [`ButlerError::Registry`] keeping the driver's error as its
    /// `source()`; the message is `message: <the driver's text>`.
    pub fn registry_source(
        registry: impl Into<String>,
        message: impl std::fmt::Display,
        source: impl Into<daf_base::BoxError>,
    ) -> Self {
        let source = source.into();
        ButlerError::Registry {
            registry: registry.into(),
            message: format!("{message}: {source}"),
            source: Some(source),
        }
    }
    /// Shorthand for [`ButlerError::Repository`].
    pub fn repo(root: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ButlerError::Repository {
            root: root.into(),
            message: message.into(),
        }
    }
}
