//! [`BoostStorage`] and [`XmlStorage`]: Boost.Serialization archives in files.

use std::any::Any;
use std::path::{Path, PathBuf};

use daf_base::Policy;

use crate::atomic::{AtomicFile, Committed};
use crate::boost::{ArchiveError, ArchiveKind, IArchive, OArchive, DEFAULT_VERSION};
use crate::error::StorageError;
use crate::location::LogicalLocation;
use crate::storage::{Mode, Storage};
use crate::Result;

/// How a Boost storage writes (from its policy) and what it found on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// The archive kind written (`archive: binary | text` for BoostStorage; XML for XmlStorage).
    pub kind: ArchiveKind,
    /// The archive library version written (`boost_version: 1.74 | 1.81 | 18 | 19`).
    pub version: u16,
    /// Whether the header is written (`no_header: true` turns it off; such
    /// archives are read with the policy's kind and version).
    pub header: bool,
    /// Refuse NaN and ±infinity in text and XML archives (`finite_only:
    /// true`), which Boost 1.74's text and XML readers cannot read back; for
    /// archives meant for C++ programs. Default off.
    pub finite_only: bool,
}

/// The file-backed Boost archive storage behind both [`BoostStorage`] and
/// [`XmlStorage`].
#[derive(Debug)]
pub struct ArchiveStorage {
    name: &'static str,
    settings: ArchiveSettings,
    mode: Option<Mode>,
    path: Option<PathBuf>,
    /// The file opened by `set_retrieve_location`, with its size, for the
    /// first read (later reads open it again).
    opened: Option<(std::fs::File, u64)>,
    out: Option<AtomicFile>,
    /// The last commit, with the file it replaced, until it is final.
    committed: Option<Committed>,
    written: bool,
    in_transaction: bool,
    last_read: Option<ArchiveSettings>,
    /// The caller syncs ([`Storage::defer_sync`]).
    defer_sync: bool,
}

/// Binary and text Boost archives.
///
/// Defaults are LSST's: *text* archives (LSST's `BoostStorage` wrote text in
/// every revision) at library version 18 (Boost 1.74, Debian 12's Boost,
/// which refuses version 19), so that C++ programs on Boost 1.73 and every
/// later release read what daf writes. The sub-policy changes them:
///
/// - `archive: binary` writes binary archives (smaller and faster; the same
///   Boost versions read them), `archive: text` is the default;
/// - `boost_version: 1.81` (or `library_version: 19`) writes version 19,
///   which only Boost 1.76 and later read; `1.74` / `18` is the default;
/// - `no_header: true` omits the header (read back with the policy's kind
///   and version);
/// - `finite_only: true` refuses NaN and ±infinity in text archives (Boost
///   1.74 cannot read them back from text or XML).
///
/// On read the kind and version are detected from the header.
///
/// ```
/// use daf_storages::{BoostStorage, LogicalLocation, Storage};
/// use daf_storages::boost::{ArchiveKind};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a/b/x.boost");
/// let mut s = BoostStorage::new();
/// s.set_persist_location(&LogicalLocation::literal(path.to_str().unwrap())).unwrap();
/// s.start_transaction().unwrap();
/// s.write_archive(|ar| ar.field("x", &42i32)).unwrap();
/// s.prepare_commit().unwrap();
/// s.end_transaction().unwrap();
///
/// let mut r = BoostStorage::new();
/// r.set_retrieve_location(&LogicalLocation::literal(path.to_str().unwrap())).unwrap();
/// r.start_transaction().unwrap();
/// let x: i32 = r.read_archive(|ar| ar.field("x")).unwrap();
/// assert_eq!(x, 42);
/// assert_eq!(r.last_read().unwrap().kind, ArchiveKind::Text);
/// assert_eq!(r.last_read().unwrap().version, 18);
/// ```
pub type BoostStorage = ArchiveStorage;

/// XML Boost archives (`xml_oarchive`).
pub type XmlStorage = ArchiveStorage;

impl Default for ArchiveStorage {
    fn default() -> Self {
        ArchiveStorage::new()
    }
}

impl ArchiveStorage {
    /// A `BoostStorage` (text archives of library version 18 by default).
    pub fn new() -> ArchiveStorage {
        ArchiveStorage::with_kind("BoostStorage", ArchiveKind::Text)
    }

    /// An `XmlStorage` (library version 18 by default; the same policy keys
    /// as [`BoostStorage`] except `archive`).
    pub fn xml() -> ArchiveStorage {
        ArchiveStorage::with_kind("XmlStorage", ArchiveKind::Xml)
    }

    fn with_kind(name: &'static str, kind: ArchiveKind) -> ArchiveStorage {
        ArchiveStorage {
            name,
            settings: ArchiveSettings {
                kind,
                version: DEFAULT_VERSION,
                header: true,
                finite_only: false,
            },
            mode: None,
            path: None,
            opened: None,
            out: None,
            defer_sync: false,
            committed: None,
            written: false,
            in_transaction: false,
            last_read: None,
        }
    }

    /// What will be written (after [`Storage::set_policy`]).
    pub fn settings(&self) -> ArchiveSettings {
        self.settings
    }

    /// Overrides the settings (for callers that do not go through a policy).
    pub fn set_settings(&mut self, settings: ArchiveSettings) -> Result<()> {
        if self.name == "XmlStorage" && settings.kind != ArchiveKind::Xml {
            return Err(StorageError::state(
                self.name,
                "XmlStorage writes XML archives only",
            ));
        }
        if self.name == "BoostStorage" && settings.kind == ArchiveKind::Xml {
            return Err(StorageError::state(
                self.name,
                "BoostStorage writes binary or text archives; use XmlStorage for XML",
            ));
        }
        self.settings = settings;
        Ok(())
    }

    /// The file path, once a location was set.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The settings of the archive read last (kind and version found in its header).
    pub fn last_read(&self) -> Option<ArchiveSettings> {
        self.last_read
    }

    fn archive_error(&self, e: ArchiveError) -> StorageError {
        match e {
            ArchiveError::Io(io) => StorageError::io(self.path.clone().unwrap_or_default(), io),
            other => StorageError::Format {
                storage: self.name.to_string(),
                what: self
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                message: other.to_string(),
            },
        }
    }

    /// Writes the storage's one archive: `body` writes the top-level values.
    /// Only inside a persist transaction; the file appears at commit.
    pub fn write_archive(
        &mut self,
        body: impl FnOnce(&mut OArchive<'_>) -> crate::boost::Result<()>,
    ) -> Result<()> {
        if self.mode != Some(Mode::Persist) || !self.in_transaction {
            return Err(StorageError::state(
                self.name,
                "write_archive outside a persist transaction",
            ));
        }
        if self.written {
            return Err(StorageError::state(
                self.name,
                "one archive per file: write_archive called twice in one transaction",
            ));
        }
        let settings = self.settings;
        let out = self.out.as_mut().expect("persist transaction has a file");
        let result = (|| {
            let mut ar = OArchive::with_header(
                Some(out.writer()),
                settings.kind,
                settings.version,
                settings.header,
            )?;
            ar.set_finite_only(settings.finite_only);
            body(&mut ar)?;
            ar.finish()
        })();
        self.written = true;
        result.map_err(|e| self.archive_error(e))
    }

    /// Reads the archive: `body` reads the top-level values. The kind and
    /// version are detected from the header (or taken from the policy for
    /// `no_header` archives).
    pub fn read_archive<R>(
        &mut self,
        body: impl FnOnce(&mut IArchive<'_>) -> crate::boost::Result<R>,
    ) -> Result<R> {
        if self.mode != Some(Mode::Retrieve) {
            return Err(StorageError::state(
                self.name,
                "read_archive without a retrieve location",
            ));
        }
        let path = self.path.as_deref().expect("retrieve location set");
        let (file, len) = match self.opened.take() {
            Some(opened) => opened,
            None => open_for_read(path)?,
        };
        // Large archives are mapped rather than copied.
        let owned;
        let mapped;
        let bytes: &[u8] = if len >= 1 << 20 {
            // SAFETY: the file is opened read-only; daf writes archives by
            // renaming a new file over the path, never in place, so the
            // mapped file is not modified while mapped.
            mapped = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
                .map_err(|e| StorageError::io(path, e))?;
            &mapped
        } else {
            // Read from the handle already open, sized by its stat (one open,
            // one stat and usually one read; `fs::read` would stat again).
            owned = read_sized(&file, len as usize).map_err(|e| StorageError::io(path, e))?;
            &owned
        };
        let settings = self.settings;
        let name = self.name;
        let result = (|| {
            let mut ar = match ArchiveKind::detect(bytes) {
                Some(kind) => {
                    if name == "XmlStorage" && kind != ArchiveKind::Xml {
                        return Err(ArchiveError::Unsupported(format!(
                            "XmlStorage found a {kind} archive"
                        )));
                    }
                    IArchive::open(bytes, kind, true, settings.version)?
                }
                None if !settings.header => {
                    IArchive::open(bytes, settings.kind, false, settings.version)?
                }
                None => {
                    return Err(ArchiveError::Malformed {
                        offset: 0,
                        message: "not a Boost archive (no binary, text or XML header)".into(),
                    })
                }
            };
            let found = ArchiveSettings {
                kind: ar.kind(),
                version: ar.library_version(),
                header: true,
                finite_only: settings.finite_only,
            };
            let r = body(&mut ar)?;
            ar.finish()?;
            Ok((r, found))
        })();
        match result {
            Ok((r, found)) => {
                self.last_read = Some(found);
                Ok(r)
            }
            Err(e) => Err(self.archive_error(e)),
        }
    }
}

/// Reads `file` from its start: `len` bytes, the size its stat gave. A
/// file daf wrote never changes under an open handle (writes rename a new
/// file over the path), so once `len` bytes arrived the read stops without
/// the extra end-of-file probe; a shorter file gives what it holds.
fn read_sized(mut file: &std::fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Opens `path` for reading and returns the handle with the file's size; a
/// missing path or one that is not a regular file is `NotFound`.
fn open_for_read(path: &Path) -> Result<(std::fs::File, u64)> {
    let file = std::fs::File::open(path).map_err(|e| not_found_or_io(path, e))?;
    let meta = file.metadata().map_err(|e| StorageError::io(path, e))?;
    if !meta.is_file() {
        return Err(StorageError::NotFound {
            what: format!("Unable to access file: {} (not a file)", path.display()),
        });
    }
    Ok((file, meta.len()))
}

fn not_found_or_io(path: &Path, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound {
            what: format!("Unable to access file: {}", path.display()),
        }
    } else {
        StorageError::io(path, e)
    }
}

impl Drop for ArchiveStorage {
    fn drop(&mut self) {
        self.finish_commit();
    }
}

impl Storage for ArchiveStorage {
    fn storage_name(&self) -> &str {
        self.name
    }

    fn set_policy(&mut self, policy: Option<&Policy>) -> Result<()> {
        let Some(p) = policy else { return Ok(()) };
        let ps = p.as_property_set();
        let text = |key: &str| ps.values(key).and_then(|v| v.text_at(0));
        let mut s = self.settings;
        if let Some(kind) = text("archive") {
            s.kind = ArchiveKind::parse(&kind).ok_or_else(|| {
                StorageError::state(
                    self.name,
                    format!("policy archive: {kind:?} is not binary, text or xml"),
                )
            })?;
        }
        for key in ["boost_version", "library_version"] {
            if let Some(v) = text(key) {
                let lv = crate::boost::library_version_for(&v)
                    .filter(|lv| crate::boost::WRITE_VERSIONS.contains(lv))
                    .ok_or_else(|| {
                        StorageError::state(
                            self.name,
                            format!("policy {key}: {v:?} is not a writable Boost version (1.74/18 or 1.81/19)"),
                        )
                    })?;
                s.version = lv;
            }
        }
        if let Some(v) = text("no_header") {
            s.header = !matches!(v.as_str(), "true" | "1" | "yes");
        }
        if let Some(v) = text("finite_only") {
            s.finite_only = matches!(v.as_str(), "true" | "1" | "yes");
        }
        self.set_settings(s)
    }

    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()> {
        self.opened = None;
        self.path = Some(PathBuf::from(location.loc_str()));
        self.mode = Some(Mode::Persist);
        Ok(())
    }

    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()> {
        let path = PathBuf::from(location.loc_str());
        // Opened now (as LSST's BoostStorage did): a missing file is an error
        // here, and the read uses this handle without a second open.
        self.opened = Some(open_for_read(&path)?);
        self.path = Some(path);
        self.mode = Some(Mode::Retrieve);
        Ok(())
    }

    fn start_transaction(&mut self) -> Result<()> {
        match self.mode {
            None => return Err(StorageError::state(self.name, "no location set")),
            Some(Mode::Persist) => {
                let path = self.path.clone().expect("location set");
                let mut out = AtomicFile::create(path)?;
                out.set_sync(!self.defer_sync);
                self.out = Some(out);
                self.written = false;
            }
            Some(Mode::Retrieve) => {}
        }
        self.in_transaction = true;
        Ok(())
    }

    fn prepare_commit(&mut self) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.prepare()?;
        }
        Ok(())
    }

    fn defer_sync(&mut self) -> bool {
        self.defer_sync = true;
        if let Some(out) = self.out.as_mut() {
            out.set_sync(false);
        }
        true
    }

    fn end_transaction(&mut self) -> Result<()> {
        self.in_transaction = false;
        if let Some(out) = self.out.take() {
            if !self.written {
                out.abort();
                return Err(StorageError::state(
                    self.name,
                    "transaction ended with nothing written",
                ));
            }
            self.finish_commit();
            self.committed = Some(out.commit_keeping_old()?);
        }
        Ok(())
    }

    fn undo_commit(&mut self) -> Result<bool> {
        match self.committed.take() {
            Some(c) => c.undo().map(|_| true),
            None => Ok(false),
        }
    }

    fn finish_commit(&mut self) {
        if let Some(c) = self.committed.take() {
            c.finish();
        }
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{} {}", self.name, p.display()),
            None => self.name.to_string(),
        }
    }

    fn abort_transaction(&mut self) -> Result<()> {
        self.in_transaction = false;
        if let Some(out) = self.out.take() {
            out.abort();
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
