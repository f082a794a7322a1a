//! [`YamlStorage`]: one YAML document per file, as Gen2's `YamlStorage`
//! kept the `*_metadata` datasets (PropertySets) of a repository; the same
//! text-file storage serves as `ConfigStorage` (the `*_config` datasets:
//! pex_config Python files, `config.name=value` lines).
//!
//! The storage moves text; the `PropertySet` formatter turns it into a
//! PropertySet and back (nested mappings for dotted names, sequences for
//! arrays, LSST's `!<lsst.daf.base.PropertySet>` tag in front). Writes are
//! atomic ([`AtomicFile`]).

use std::io::Write;
use std::path::PathBuf;

use crate::atomic::AtomicFile;
use crate::location::LogicalLocation;
use crate::storage::Storage;
use crate::{Result, StorageError};

const NAME: &str = "YamlStorage";
/// The name of the storage of pex_config files.
pub const CONFIG_NAME: &str = "ConfigStorage";

/// A file storage holding one YAML document.
///
/// ```
/// use daf_storages::{LogicalLocation, Storage, YamlStorage};
/// let dir = tempfile::tempdir().unwrap();
/// let loc = LogicalLocation::literal(dir.path().join("md.yaml").to_string_lossy());
/// let mut s = YamlStorage::new();
/// s.set_persist_location(&loc).unwrap();
/// s.start_transaction().unwrap();
/// s.write_text("a: 1\n").unwrap();
/// s.prepare_commit().unwrap();
/// s.end_transaction().unwrap();
/// let mut r = YamlStorage::new();
/// r.set_retrieve_location(&loc).unwrap();
/// assert_eq!(r.read_text().unwrap(), "a: 1\n");
/// ```
#[derive(Debug)]
pub struct YamlStorage {
    name: &'static str,
    path: Option<PathBuf>,
    file: Option<AtomicFile>,
}

impl Default for YamlStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl YamlStorage {
    /// A storage with no location yet.
    pub fn new() -> Self {
        YamlStorage {
            name: NAME,
            path: None,
            file: None,
        }
    }

    /// The same text-file storage named `ConfigStorage`, for pex_config
    /// files (`config.name=value` lines); the formatter picks the format
    /// by the storage's name.
    pub fn config() -> Self {
        YamlStorage {
            name: CONFIG_NAME,
            ..Self::new()
        }
    }

    /// Writes the document (to the temporary file, renamed at commit).
    pub fn write_text(&mut self, text: &str) -> Result<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| StorageError::state(self.name, "not opened for writing"))?;
        f.writer()
            .write_all(text.as_bytes())
            .map_err(|e| StorageError::io(f.temp_path(), e))
    }

    /// Reads the document.
    pub fn read_text(&self) -> Result<String> {
        let p = self
            .path
            .as_ref()
            .ok_or_else(|| StorageError::state(self.name, "no location"))?;
        std::fs::read_to_string(p).map_err(|e| StorageError::io(p, e))
    }
}

impl Storage for YamlStorage {
    fn storage_name(&self) -> &str {
        self.name
    }
    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()> {
        self.path = Some(location.as_path().to_path_buf());
        self.file = Some(AtomicFile::create(location.as_path())?);
        Ok(())
    }
    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()> {
        if !location.as_path().is_file() {
            return Err(StorageError::NotFound {
                what: format!("Unable to access file: {}", location.as_path().display()),
            });
        }
        self.path = Some(location.as_path().to_path_buf());
        Ok(())
    }
    fn start_transaction(&mut self) -> Result<()> {
        Ok(())
    }
    fn prepare_commit(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.prepare()?;
        }
        Ok(())
    }
    fn end_transaction(&mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.commit()?;
        }
        Ok(())
    }
    fn abort_transaction(&mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.abort();
        }
        Ok(())
    }
    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{} {}", self.name, p.display()),
            None => self.name.into(),
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
