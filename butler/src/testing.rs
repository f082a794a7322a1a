//! Test support: a tiny JSON file storage for `PropertySet`, a storage that
//! fails on demand, and a ready-made [`Persistence`] using them. Used by this
//! crate's tests, the root end-to-end tests and the benches; not part of the
//! public API.

use std::io::Write;
use std::path::PathBuf;

use daf_base::{Policy, PropertySet};
use daf_formatters::formatter::{expect_object, unsupported};
use daf_formatters::{Formatter, FormatterError, FormatterRegistry, Persistable, Persistence};
use daf_storages::atomic::AtomicFile;
use daf_storages::{LogicalLocation, Storage, StorageError, StorageRegistry};

/// Where a [`JsonStorage`] fails, for tests of interrupted writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAt {
    /// Never.
    Never,
    /// While the formatter writes (after some bytes went to the temp file).
    Write,
    /// In `prepare_commit` (after the temp file is complete).
    Prepare,
}

/// A file storage holding one JSON document, written atomically.
#[derive(Debug)]
pub struct JsonStorage {
    name: &'static str,
    path: Option<PathBuf>,
    file: Option<AtomicFile>,
    fail: FailAt,
}

impl JsonStorage {
    /// A storage named `JsonStorage`.
    pub fn new() -> Self {
        JsonStorage {
            name: "JsonStorage",
            path: None,
            file: None,
            fail: FailAt::Never,
        }
    }
    /// A storage named `FailingStorage` that fails at `fail`.
    pub fn failing(fail: FailAt) -> Self {
        JsonStorage {
            name: "FailingStorage",
            path: None,
            file: None,
            fail,
        }
    }
    /// Writes the document (to the temporary file).
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| StorageError::state(self.name, "not opened for writing"))?;
        f.writer()
            .write_all(bytes)
            .map_err(|e| StorageError::io(f.temp_path(), e))?;
        if self.fail == FailAt::Write {
            return Err(StorageError::state(
                self.name,
                "simulated failure while writing",
            ));
        }
        Ok(())
    }
    /// Reads the document.
    pub fn read_bytes(&self) -> Result<Vec<u8>, StorageError> {
        let p = self
            .path
            .as_ref()
            .ok_or_else(|| StorageError::state(self.name, "no location"))?;
        std::fs::read(p).map_err(|e| StorageError::io(p, e))
    }
}

impl Default for JsonStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl Storage for JsonStorage {
    fn storage_name(&self) -> &str {
        self.name
    }
    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<(), StorageError> {
        self.path = Some(location.as_path().to_path_buf());
        self.file = Some(AtomicFile::create(location.as_path())?);
        Ok(())
    }
    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<(), StorageError> {
        if !location.as_path().is_file() {
            return Err(StorageError::NotFound {
                what: location.to_string(),
            });
        }
        self.path = Some(location.as_path().to_path_buf());
        Ok(())
    }
    fn start_transaction(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn prepare_commit(&mut self) -> Result<(), StorageError> {
        if let Some(f) = self.file.as_mut() {
            f.prepare()?;
        }
        if self.fail == FailAt::Prepare {
            return Err(StorageError::state(
                self.name,
                "simulated failure before rename",
            ));
        }
        Ok(())
    }
    fn defer_sync(&mut self) -> bool {
        if let Some(f) = self.file.as_mut() {
            f.set_sync(false);
        }
        true
    }
    fn end_transaction(&mut self) -> Result<(), StorageError> {
        if let Some(f) = self.file.take() {
            f.commit()?;
        }
        Ok(())
    }
    fn abort_transaction(&mut self) -> Result<(), StorageError> {
        if let Some(f) = self.file.take() {
            f.abort();
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Writes and reads a `PropertySet` as JSON through a [`JsonStorage`].
#[derive(Debug, Default)]
pub struct JsonPropertySetFormatter;

impl Formatter for JsonPropertySetFormatter {
    fn persistable_name(&self) -> &str {
        "PropertySet"
    }
    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<(), FormatterError> {
        let ps: &PropertySet = expect_object(self, obj)?;
        let bytes = serde_json::to_vec(ps).map_err(|e| FormatterError::Invalid {
            persistable: "PropertySet".into(),
            message: e.to_string(),
        })?;
        let Some(s) = storage.as_any_mut().downcast_mut::<JsonStorage>() else {
            return Err(unsupported(self, storage));
        };
        s.write_bytes(&bytes)?;
        Ok(())
    }
    fn read(
        &self,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>, FormatterError> {
        let Some(s) = storage.as_any_mut().downcast_mut::<JsonStorage>() else {
            return Err(unsupported(self, storage));
        };
        let bytes = s.read_bytes()?;
        let ps: PropertySet =
            serde_json::from_slice(&bytes).map_err(|e| FormatterError::Invalid {
                persistable: "PropertySet".into(),
                message: e.to_string(),
            })?;
        Ok(Box::new(ps))
    }
}

/// A persistence with `JsonStorage`, `FailingStorage` (fails in
/// `prepare_commit`), `FailingWriteStorage` and the JSON `PropertySet` formatter.
pub fn json_persistence() -> Persistence {
    let mut storages = StorageRegistry::new();
    storages
        .register("JsonStorage", || Box::new(JsonStorage::new()))
        .expect("fresh registry");
    storages
        .register("FailingStorage", || {
            Box::new(JsonStorage::failing(FailAt::Prepare))
        })
        .expect("fresh registry");
    storages
        .register("FailingWriteStorage", || {
            Box::new(JsonStorage::failing(FailAt::Write))
        })
        .expect("fresh registry");
    let mut formatters = FormatterRegistry::new();
    formatters
        .register::<PropertySet>("PropertySet", |_| Box::new(JsonPropertySetFormatter))
        .expect("fresh registry");
    Persistence::new(Policy::new(), formatters, storages)
}

/// Writes a minimal FITS file (primary HDU, no data) whose header holds
/// `cards` as `(keyword, value text)` — strings quoted by the caller.
pub use daf_mappers::fits_header::write_test_fits;

/// Writes a header-only raw exposure for ingest tests: `VISIT = visit`,
/// `FILTER = 'filter'`, `EXPTIME = 15.`.
pub fn write_raw_fits(path: &std::path::Path, visit: i64, filter: &str) -> std::io::Result<()> {
    write_test_fits(
        path,
        &[
            ("VISIT", visit.to_string()),
            ("FILTER", format!("'{filter:<8}'")),
            ("EXPTIME", "15.".into()),
        ],
    )
}
