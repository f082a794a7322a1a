//! [`FormatterError`].

use daf_base::PropertyError;
use daf_storages::StorageError;
use thiserror::Error;

/// Errors from formatters, the registry and persistence.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FormatterError {
    /// No formatter for that persistable name.
    #[error("no formatter registered for persistable name {name:?}")]
    UnknownName {
        /// The name looked up.
        name: String,
    },
    /// No formatter for that Rust type.
    #[error("no formatter registered for Rust type {type_name}")]
    UnknownType {
        /// The Rust type name.
        type_name: String,
    },
    /// A persistable name registered twice.
    #[error("a formatter for persistable name {name:?} is already registered")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A formatter handed a storage it does not support.
    #[error("formatter for {persistable} does not support storage {storage}")]
    UnsupportedStorage {
        /// The persistable name.
        persistable: String,
        /// The storage name.
        storage: String,
    },
    /// The object handed to a formatter is not of its type.
    #[error("formatter for {expected} was given an object of type {actual}")]
    WrongObject {
        /// The formatter's persistable name.
        expected: String,
        /// The object's persistable name.
        actual: String,
    },
    /// `update` is not supported for this persistable/storage pair.
    #[error("formatter for {persistable} cannot update from storage {storage}")]
    UpdateUnsupported {
        /// The persistable name.
        persistable: String,
        /// The storage name.
        storage: String,
    },
    /// An empty storage list.
    #[error("no storages given")]
    NoStorages,
    /// A storage error.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A property error (missing additional data ...).
    #[error(transparent)]
    Property(#[from] PropertyError),
    /// The data read does not form a valid object.
    #[error("invalid {persistable} data: {message}")]
    Invalid {
        /// The persistable name.
        persistable: String,
        /// What is wrong.
        message: String,
    },
    /// A transaction failed and was rolled back; `rollback_errors` lists any
    /// storages that also failed to roll back.
    #[error("{source} (transaction rolled back{})", if rollback_errors.is_empty() { String::new() } else { format!("; rollback problems: {}", rollback_errors.join("; ")) })]
    RolledBack {
        /// The first failure.
        #[source]
        source: Box<FormatterError>,
        /// Problems met while rolling back other storages.
        rollback_errors: Vec<String>,
    },
    /// A storage failed to commit after others had committed, and some of
    /// those commits could not be undone: `committed` names them (storage
    /// and location); everything else was rolled back.
    #[error("{source} (NOT rolled back: {} stayed committed{})", committed.join(", "), if problems.is_empty() { String::new() } else { format!("; problems: {}", problems.join("; ")) })]
    PartiallyCommitted {
        /// The commit failure.
        #[source]
        source: Box<FormatterError>,
        /// The storages whose commit stands (storage and location).
        committed: Vec<String>,
        /// Problems met while undoing or rolling back.
        problems: Vec<String>,
    },
}
