//! [`LocalDatastore`]: objects are files under a folder.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{check_key, DatastoreError, ObjectMeta, PutMode, Result, TransferStats};

/// A datastore in a local folder: key `a/b.fits` is the file
/// `ROOT/a/b.fits`. Puts write a temporary file beside the target, fsync it
/// and rename it into place (a create-only put links it, so an existing
/// file is never replaced).
#[derive(Debug)]
pub struct LocalDatastore {
    root: PathBuf,
    stats: TransferStats,
}

impl LocalDatastore {
    /// A datastore rooted at `root` (created on first put).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDatastore {
            root: root.into(),
            stats: TransferStats::default(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn not_found(&self, key: &str) -> DatastoreError {
        DatastoreError::NotFound {
            url: self.root.display().to_string(),
            key: key.into(),
        }
    }

    fn exists_err(&self, key: &str) -> DatastoreError {
        DatastoreError::AlreadyExists {
            url: self.root.display().to_string(),
            key: key.into(),
        }
    }

    /// Writes through `fill` into a temporary file beside `key` and moves it
    /// into place (rename, or hard link for a create-only put).
    fn put_with(
        &self,
        key: &str,
        mode: PutMode,
        fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        if mode == PutMode::Create && path.exists() {
            return Err(self.exists_err(key));
        }
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| DatastoreError::io(parent, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".daf-put.")
            .suffix(".tmp")
            .permissions(crate::atomic::umask_file_mode())
            .tempfile_in(parent)
            .map_err(|e| DatastoreError::io(parent, e))?;
        fill(tmp.as_file_mut()).map_err(|e| DatastoreError::io(&path, e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| DatastoreError::io(&path, e))?;
        let size = tmp
            .as_file()
            .metadata()
            .map_err(|e| DatastoreError::io(&path, e))?
            .len();
        // The temporary file is removed on every error path (its drop).
        let res = match mode {
            PutMode::Overwrite => tmp.persist(&path).map(|_| ()),
            PutMode::Create => tmp.persist_noclobber(&path).map(|_| ()),
        };
        res.map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                self.exists_err(key)
            } else {
                DatastoreError::io(&path, e.error)
            }
        })?;
        self.stats.wrote(size);
        Ok(ObjectMeta {
            key: key.into(),
            size,
        })
    }
}

impl super::Datastore for LocalDatastore {
    fn url(&self) -> String {
        self.root.display().to_string()
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn put_file(&self, key: &str, src: &Path, mode: PutMode) -> Result<ObjectMeta> {
        let mut input = std::fs::File::open(src).map_err(|e| DatastoreError::io(src, e))?;
        self.put_with(key, mode, |out| std::io::copy(&mut input, out).map(|_| ()))
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta> {
        self.put_with(key, mode, |out| std::io::Write::write_all(out, bytes))
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let path = self.path(key)?;
        let mut f = std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.not_found(key)
            } else {
                DatastoreError::io(&path, e)
            }
        })?;
        let len = f
            .metadata()
            .map_err(|e| DatastoreError::io(&path, e))?
            .len();
        let mut out = Vec::with_capacity(ranges.len());
        let mut total = 0;
        for r in ranges {
            if r.start > r.end || r.end > len {
                return Err(DatastoreError::BadKey {
                    key: key.into(),
                    message: format!("range {r:?} outside the object's {len} bytes"),
                });
            }
            let mut buf = vec![0; (r.end - r.start) as usize];
            f.seek(SeekFrom::Start(r.start))
                .and_then(|_| f.read_exact(&mut buf))
                .map_err(|e| DatastoreError::io(&path, e))?;
            total += buf.len() as u64;
            out.push(buf);
        }
        self.stats.read(ranges.len() as u64, total);
        Ok(out)
    }

    fn get_to_file(&self, key: &str, dest: &Path) -> Result<u64> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(DatastoreError::io(&path, e))
            }
            _ => return Err(self.not_found(key)),
        }
        let n = std::fs::copy(&path, dest).map_err(|e| DatastoreError::io(dest, e))?;
        self.stats.read(1, n);
        Ok(n)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.into(),
                size: m.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DatastoreError::io(&path, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DatastoreError::io(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix.trim_end_matches('/'))?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(DatastoreError::io(&dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| DatastoreError::io(&dir, e))?;
                let p = ent.path();
                let ft = ent.file_type().map_err(|e| DatastoreError::io(&p, e))?;
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    // in-flight temporary files of AtomicFile are not objects
                    if name.starts_with(".daf-put.")
                        || (name.starts_with('.') && name.ends_with(".tmp"))
                    {
                        continue;
                    }
                    let rel = p.strip_prefix(&self.root).unwrap_or(&p);
                    let key: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    let size = ent.metadata().map_err(|e| DatastoreError::io(&p, e))?.len();
                    out.push(ObjectMeta {
                        key: key.join("/"),
                        size,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<()> {
        let src = self.path(from)?;
        if !src.is_file() {
            return Err(self.not_found(from));
        }
        self.put_file(to, &src, mode).map(|_| ())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let src = self.path(from)?;
        let dst = self.path(to)?;
        if !src.is_file() {
            return Err(self.not_found(from));
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DatastoreError::io(parent, e))?;
        }
        std::fs::rename(&src, &dst).map_err(|e| DatastoreError::io(&dst, e))
    }

    fn stats(&self) -> &TransferStats {
        &self.stats
    }
}
