//! [`StorageError`]: what can go wrong in a storage.

use std::path::PathBuf;

use daf_base::PropertyError;
use thiserror::Error;

/// Errors from storages and locations.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object to read does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for (a path, a table ...).
        what: String,
    },
    /// An I/O error on a named path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A storage name unknown to the registry.
    #[error("unknown storage {name:?}; known storages: {}", known.join(", "))]
    UnknownStorage {
        /// The requested name.
        name: String,
        /// The names the registry knows.
        known: Vec<String>,
    },
    /// A storage name registered twice.
    #[error("storage {name:?} is already registered")]
    DuplicateStorage {
        /// The name.
        name: String,
    },
    /// Misuse of the storage protocol (e.g. writing before a location was set).
    #[error("{storage}: {message}")]
    State {
        /// The storage name.
        storage: String,
        /// What was wrong.
        message: String,
    },
    /// A location template could not be filled.
    #[error("{0}")]
    Location(String),
    /// A location template could not be filled (typed; see
    /// [`crate::location::LocationError`]).
    #[error(transparent)]
    Template(#[from] crate::location::LocationError),
    /// A property lookup failed.
    #[error(transparent)]
    Property(#[from] PropertyError),
    /// The data read is malformed for this storage.
    #[error("{storage}: malformed data in {what}: {message}")]
    Format {
        /// The storage name.
        storage: String,
        /// Which file or object.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// The data uses a feature this storage does not support (e.g. a FITS
    /// tile compression daf does not decode).
    #[error("{storage}: unsupported data in {what}: {message}")]
    Unsupported {
        /// The storage name.
        storage: String,
        /// Which file or object.
        what: String,
        /// What is not supported.
        message: String,
    },
    /// An error from a backend library (database driver, cfitsio ...).
    #[error("{storage}: {message}")]
    Backend {
        /// The storage name.
        storage: String,
        /// The backend's message (never containing credentials).
        message: String,
        /// The backend library's error, when there is one.
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// An error of the database storages.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl StorageError {
    /// Shorthand for [`StorageError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
    /// Shorthand for [`StorageError::State`].
    pub fn state(storage: &str, message: impl Into<String>) -> Self {
        StorageError::State {
            storage: storage.into(),
            message: message.into(),
        }
    }
}
