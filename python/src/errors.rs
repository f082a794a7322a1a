//! The exception hierarchy (`daf.DafError` and its subclasses) and the
//! conversion of every Rust error into one of them. Nothing panics across
//! into Python: [`guard`] turns a panic into a `DafError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use daf_butler::ButlerError;
use daf_formatters::FormatterError as RsFormatterError;
use daf_harness::HarnessError as RsHarnessError;
use daf_mappers::MapperError as RsMapperError;
use daf_storages::StorageError as RsStorageError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    daf,
    DafError,
    PyException,
    "Base class of every error daf raises."
);
create_exception!(
    daf,
    NoResults,
    DafError,
    "No dataset matches the dataset type and data id."
);
create_exception!(
    daf,
    DatasetVanished,
    NoResults,
    "A deferred handle's dataset was removed or replaced after the handle was made."
);
create_exception!(
    daf,
    AmbiguousDataId,
    DafError,
    "A partial data id matches zero or several datasets where one was needed."
);
create_exception!(
    daf,
    DatasetExists,
    DafError,
    "The dataset exists already; pass clobber=True (or backup=True) to replace it."
);
create_exception!(
    daf,
    DatasetBusy,
    DafError,
    "Another writer is putting the same dataset; try again later."
);
create_exception!(
    daf,
    ReadOnlyError,
    DafError,
    "A write to an input (read-only) repository."
);
create_exception!(
    daf,
    BadDataId,
    DafError,
    "A data id with an unknown key or a value of the wrong type."
);
create_exception!(
    daf,
    RepositoryError,
    DafError,
    "A repository configuration is missing or malformed."
);
create_exception!(
    daf,
    RegistryError,
    DafError,
    "The file registry or the mapper's registry failed."
);
create_exception!(
    daf,
    MapperError,
    DafError,
    "The mapper could not map a dataset type or data id."
);
create_exception!(
    daf,
    StorageError,
    DafError,
    "A storage failed (I/O, malformed file, database)."
);
create_exception!(
    daf,
    FormatterError,
    DafError,
    "A formatter could not write or read an object."
);
create_exception!(
    daf,
    PolicyError,
    DafError,
    "A policy file is malformed or fails validation."
);
create_exception!(
    daf,
    PropertyError,
    DafError,
    "A PropertySet name is missing or a value has the wrong type."
);
create_exception!(
    daf,
    HarnessError,
    DafError,
    "The pipeline harness failed (configuration, transport, lost slice)."
);

/// The messages of an error and its sources, joined with ": ".
fn message(e: &dyn std::error::Error) -> String {
    e.to_string()
}

/// A storage error as a Python exception.
pub fn storage_err(e: RsStorageError) -> PyErr {
    StorageError::new_err(message(&e))
}

/// A formatter error as a Python exception.
pub fn formatter_err(e: RsFormatterError) -> PyErr {
    let m = message(&e);
    match e {
        RsFormatterError::Storage(_) => StorageError::new_err(m),
        RsFormatterError::Property(_) => PropertyError::new_err(m),
        RsFormatterError::RolledBack { .. } => StorageError::new_err(m),
        _ => FormatterError::new_err(m),
    }
}

/// A mapper error as a Python exception.
pub fn mapper_err(e: RsMapperError) -> PyErr {
    let m = message(&e);
    match e {
        RsMapperError::BadDataId { .. } => BadDataId::new_err(m),
        RsMapperError::NoUniqueLookup { found: 0, .. } => NoResults::new_err(m),
        RsMapperError::NoUniqueLookup { .. } => AmbiguousDataId::new_err(m),
        RsMapperError::Registry { .. } => RegistryError::new_err(m),
        _ => MapperError::new_err(m),
    }
}

/// A butler error as a Python exception.
pub fn butler_err(e: ButlerError) -> PyErr {
    let m = message(&e);
    match e {
        ButlerError::NotFound { .. } => NoResults::new_err(m),
        ButlerError::Vanished { .. } => DatasetVanished::new_err(m),
        ButlerError::NotUnique { .. } => AmbiguousDataId::new_err(m),
        ButlerError::Exists { .. } => DatasetExists::new_err(m),
        ButlerError::ReadOnly { .. } => ReadOnlyError::new_err(m),
        ButlerError::BadDataId { .. } | ButlerError::Where { .. } | ButlerError::Alias(_) => {
            BadDataId::new_err(m)
        }
        ButlerError::Repository { .. } => RepositoryError::new_err(m),
        ButlerError::Registry { .. } | ButlerError::CorruptRow { .. } => RegistryError::new_err(m),
        ButlerError::Io { .. } | ButlerError::Ingest { .. } => StorageError::new_err(m),
        ButlerError::Mapper(e) => mapper_err(e),
        ButlerError::Formatter(e) => formatter_err(e),
        ButlerError::Storage(e) => storage_err(e),
        ButlerError::UnsafePath(_) => BadDataId::new_err(m),
        ButlerError::Busy { .. } => DatasetBusy::new_err(m),
        ButlerError::Datastore(_) => StorageError::new_err(m),
        // The enum is non-exhaustive: a variant added later is still a
        // daf error.
        _ => DafError::new_err(m),
    }
}

/// A harness error as a Python exception.
pub fn harness_err(e: RsHarnessError) -> PyErr {
    let m = message(&e);
    match e {
        RsHarnessError::Policy(_) => PolicyError::new_err(m),
        RsHarnessError::Persistence(e) => formatter_err(e),
        RsHarnessError::Storage(e) => storage_err(e),
        RsHarnessError::Property(_) => PropertyError::new_err(m),
        _ => HarnessError::new_err(m),
    }
}

/// A property error as a Python exception.
pub fn property_err(e: daf_base::PropertyError) -> PyErr {
    PropertyError::new_err(e.to_string())
}

/// A policy error as a Python exception.
pub fn policy_err(e: impl std::fmt::Display) -> PyErr {
    PolicyError::new_err(e.to_string())
}

/// Runs `f` with the GIL released, turning a panic into a `DafError`.
pub fn guard<T: Send, F: FnOnce() -> PyResult<T> + Send>(py: Python<'_>, f: F) -> PyResult<T> {
    py.detach(|| catch(f))
}

/// Runs `f` (GIL held or not), turning a panic into a `DafError`.
pub fn catch<T, F: FnOnce() -> PyResult<T>>(f: F) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(DafError::new_err(format!(
                "internal error in daf (a bug; please report it): {what}"
            )))
        }
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DafError", py.get_type::<DafError>())?;
    m.add("NoResults", py.get_type::<NoResults>())?;
    m.add("DatasetVanished", py.get_type::<DatasetVanished>())?;
    m.add("AmbiguousDataId", py.get_type::<AmbiguousDataId>())?;
    m.add("DatasetExists", py.get_type::<DatasetExists>())?;
    m.add("ReadOnlyError", py.get_type::<ReadOnlyError>())?;
    m.add("DatasetBusy", py.get_type::<DatasetBusy>())?;
    m.add("BadDataId", py.get_type::<BadDataId>())?;
    m.add("RepositoryError", py.get_type::<RepositoryError>())?;
    m.add("RegistryError", py.get_type::<RegistryError>())?;
    m.add("MapperError", py.get_type::<MapperError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("FormatterError", py.get_type::<FormatterError>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("PropertyError", py.get_type::<PropertyError>())?;
    m.add("HarnessError", py.get_type::<HarnessError>())?;
    Ok(())
}
