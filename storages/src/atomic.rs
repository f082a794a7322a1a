//! [`AtomicFile`]: write to a temporary name, fsync, rename at commit.
//!
//! Every file storage writes through this, so a failed or interrupted write
//! never leaves a half-written file at the final path, and an abort leaves no
//! trace at all.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::StorageError;
use crate::Result;

/// A file being written under a temporary name beside its final path
/// (`.NAME.OWNER.RANDOM.daf-tmp`, with the writing process's
/// [`owner::token`](crate::owner::token), so that a repair can tell a dead
/// writer's leftovers from a live writer's file).
///
/// ```
/// use std::io::Write;
/// use daf_storages::atomic::AtomicFile;
/// let dir = tempfile::tempdir().unwrap();
/// let target = dir.path().join("sub/dir/out.bin");
/// let mut f = AtomicFile::create(&target).unwrap();
/// f.writer().write_all(b"hello").unwrap();
/// assert!(!target.exists());
/// f.prepare().unwrap();
/// f.commit().unwrap();
/// assert_eq!(std::fs::read(&target).unwrap(), b"hello");
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    writer: Option<BufWriter<NamedTempFile>>,
    prepared: Option<NamedTempFile>,
}

/// Creates every missing parent folder of `path` (like LSST's `verifyPathName`).
pub fn create_parent_dirs(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directory fsync makes the rename durable; not all platforms allow it.
    match File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

impl AtomicFile {
    /// Starts writing `target`: creates its parent folders and a temporary
    /// file in the same folder.
    pub fn create(target: impl Into<PathBuf>) -> Result<AtomicFile> {
        let target = target.into();
        create_parent_dirs(&target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.{}.", crate::owner::token()))
            .suffix(".daf-tmp")
            .tempfile_in(&dir)
            .map_err(|e| StorageError::io(&dir, e))?;
        Ok(AtomicFile {
            target,
            writer: Some(BufWriter::with_capacity(1 << 20, tmp)),
            prepared: None,
        })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The writer for the temporary file.
    ///
    /// # Panics
    /// Never in correct use; calling it after [`AtomicFile::prepare`] panics.
    pub fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        self.writer
            .as_mut()
            .expect("AtomicFile::writer called after prepare")
    }

    /// The temporary file's path (for libraries that write by path, such as cfitsio).
    pub fn temp_path(&self) -> &Path {
        match (&self.writer, &self.prepared) {
            (Some(w), _) => w.get_ref().path(),
            (None, Some(t)) => t.path(),
            (None, None) => &self.target,
        }
    }

    /// Flushes and fsyncs the temporary file.
    pub fn prepare(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            let tmp = w
                .into_inner()
                .map_err(|e| StorageError::io(&self.target, e.into_error()))?;
            tmp.as_file()
                .sync_all()
                .map_err(|e| StorageError::io(tmp.path(), e))?;
            self.prepared = Some(tmp);
        }
        Ok(())
    }

    /// Renames the temporary file to the final path (replacing any file
    /// there) and fsyncs the folder. Prepares first if needed.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.prepare()?;
        let tmp = self.prepared.take().expect("prepared above");
        tmp.persist(&self.target)
            .map_err(|e| StorageError::io(&self.target, e.error))?;
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        }
        Ok(self.target.clone())
    }

    /// Discards the temporary file; the final path is untouched.
    pub fn abort(self) {
        // Dropping the NamedTempFile removes it.
        drop(self);
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.writer.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("AtomicFile already prepared")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"x").unwrap();
        f.abort();
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn drop_without_commit_leaves_nothing_and_keeps_old() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        fs::write(&target, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"new").unwrap();
            f.prepare().unwrap();
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
