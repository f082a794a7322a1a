//! [`HarnessError`]: every error the harness and its stages report.

use daf_base::PropertyError;
use daf_formatters::FormatterError;
use daf_storages::StorageError;
use thiserror::Error;

/// Errors from the harness, its policies, transports and built-in stages.
///
/// The messages of the IO-stage variants are the ones documented for
/// LSST's `pex_harness` (`"Missing output item: <item>"`, `"Expected data not
/// found on clipboard: <key>"` ...), so operators recognise them.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A pipeline policy names a stage class nobody registered.
    #[error("unknown {kind} stage class {name:?} (registered: {known})")]
    UnknownStage {
        /// `"serial"` or `"parallel"`.
        kind: &'static str,
        /// The class name asked for.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },
    /// A pipeline or stage policy is malformed (the message names the key).
    #[error("policy: {0}")]
    Policy(String),
    /// A clipboard key is absent.
    #[error("Expected data not found on clipboard: {key}")]
    ExpectedDataNotFound {
        /// The clipboard key (with `.subKey` when one was asked for).
        key: String,
    },
    /// `key.subKey` was asked of an item that is neither a dict nor a PropertySet.
    #[error("Unknown data type (not dict or PropertySet) found on clipboard: {key}")]
    UnknownDataType {
        /// The clipboard key.
        key: String,
    },
    /// An `additionalData` entry is not `key=clipboardKey[.subKey]`.
    #[error("bad additionalData entry {entry:?}: expected \"key=clipboardKey\" or \"key=clipboardKey.subKey\"")]
    BadAdditionalData {
        /// The entry as written.
        entry: String,
    },
    /// A clipboard item holds another kind of value than the stage needs.
    #[error("clipboard item {key:?} is a {actual}, expected {expected}")]
    WrongItemType {
        /// The clipboard key.
        key: String,
        /// What the stage needs.
        expected: &'static str,
        /// What the item is.
        actual: &'static str,
    },
    /// A required output item is absent from the clipboard.
    #[error("Missing output item: {item}")]
    MissingOutputItem {
        /// The item name.
        item: String,
    },
    /// A location template names a key found neither in the location map nor
    /// in the additional data.
    #[error("Unknown substitution: {key}")]
    UnknownSubstitution {
        /// The key.
        key: String,
    },
    /// A location template is malformed.
    #[error("bad location template {template:?}: {message}")]
    BadTemplate {
        /// The template.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// An input file did not appear in time.
    #[error("Timed out waiting for file {path}")]
    FileTimeout {
        /// The path waited for.
        path: String,
    },
    /// An input dataset did not appear in time.
    #[error("Timed out waiting for dataset {dataset_type} with keys {ids}")]
    DatasetTimeout {
        /// The dataset type.
        dataset_type: String,
        /// Its data id.
        ids: String,
    },
    /// `fromInputDatasets` found no dataset of the type.
    #[error("No input datasets of type {dataset_type} for item {item}")]
    NoInputDatasets {
        /// The dataset type.
        dataset_type: String,
        /// The clipboard item.
        item: String,
    },
    /// A butler-method item names neither source of its data id.
    #[error("datasetId missing both fromInputDatasets and fromJobIdentity (item {item})")]
    DatasetIdSource {
        /// The clipboard item.
        item: String,
    },
    /// The butler method was asked for, but no butler is available.
    #[error("item {item}: {message}")]
    Butler {
        /// The clipboard item.
        item: String,
        /// What went wrong.
        message: String,
        /// The butler's error (a `daf_butler::ButlerError`), when there is
        /// one: downcast it to inspect its own cause.
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// An event could not be read or parsed.
    #[error("event stream, {location}: {message}")]
    Event {
        /// File and line (or `stdin:N`).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Persistence (formatters and storages) failed.
    #[error(transparent)]
    Persistence(#[from] FormatterError),
    /// A path filled from input would lead outside its root.
    #[error(transparent)]
    UnsafePath(#[from] daf_base::path_safety::UnsafePath),
    /// A storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A property access failed.
    #[error(transparent)]
    Property(#[from] PropertyError),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An error raised by an application stage: a type name and a message.
    #[error("{kind}: {message}")]
    Stage {
        /// The failure type reported as `failureType`.
        kind: String,
        /// The message reported as `failureMessage`.
        message: String,
    },
    /// A stage panicked; the harness caught it.
    #[error("stage panicked: {0}")]
    Panic(String),
    /// A slice stopped answering or died; the run ends.
    #[error("slice {rank}: {message}")]
    SliceLost {
        /// The slice rank.
        rank: i32,
        /// What happened.
        message: String,
        /// The partial report (the visits that completed, and
        /// [`crate::RunReport::lost`]), when a transport returns it.
        partial: Option<Box<crate::RunReport>>,
    },
    /// The transport failed (MPI error, message decoding ...).
    #[error("transport: {0}")]
    Transport(String),
}

impl HarnessError {
    /// A stable name for the kind of error, reported as `failureType`.
    pub fn kind(&self) -> &'static str {
        match self {
            HarnessError::UnknownStage { .. } => "UnknownStage",
            HarnessError::Policy(_) => "PolicyError",
            HarnessError::ExpectedDataNotFound { .. } => "ExpectedDataNotFound",
            HarnessError::UnknownDataType { .. } => "UnknownDataType",
            HarnessError::BadAdditionalData { .. } => "BadAdditionalData",
            HarnessError::WrongItemType { .. } => "WrongItemType",
            HarnessError::MissingOutputItem { .. } => "MissingOutputItem",
            HarnessError::UnknownSubstitution { .. } => "UnknownSubstitution",
            HarnessError::BadTemplate { .. } => "BadTemplate",
            HarnessError::FileTimeout { .. } => "FileTimeout",
            HarnessError::DatasetTimeout { .. } => "DatasetTimeout",
            HarnessError::NoInputDatasets { .. } => "NoInputDatasets",
            HarnessError::DatasetIdSource { .. } => "DatasetIdSource",
            HarnessError::Butler { .. } => "ButlerError",
            HarnessError::Event { .. } => "EventError",
            HarnessError::Persistence(_) => "PersistenceError",
            HarnessError::UnsafePath(_) => "UnsafePath",
            HarnessError::Storage(_) => "StorageError",
            HarnessError::Property(_) => "PropertyError",
            HarnessError::Io { .. } => "IoError",
            HarnessError::Stage { .. } => "StageError",
            HarnessError::Panic(_) => "Panic",
            HarnessError::SliceLost { .. } => "SliceLost",
            HarnessError::Transport(_) => "TransportError",
        }
    }

    /// An application-stage error with a type name and a message.
    pub fn stage(kind: impl Into<String>, message: impl Into<String>) -> Self {
        HarnessError::Stage {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A lost slice, without a partial report yet.
    pub(crate) fn lost(rank: i32, message: impl Into<String>) -> Self {
        HarnessError::SliceLost {
            rank,
            message: message.into(),
            partial: None,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        HarnessError::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
