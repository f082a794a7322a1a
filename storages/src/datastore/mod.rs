//! Where a repository's bytes live: the [`Datastore`] trait and its two
//! backends, [`LocalDatastore`] (a folder; the embedded default) and
//! [`S3Datastore`] (any S3 server, through the `object_store` crate).
//!
//! The trait is deliberately small, after `object_store`: a put that is
//! complete or absent ([`Datastore::put_file`]), ranged reads
//! ([`Datastore::get_ranges`]), [`head`](Datastore::head) (size),
//! [`delete`](Datastore::delete), [`list`](Datastore::list) and
//! [`copy`](Datastore::copy). Keys are `/`-separated relative paths
//! (`raw/v1/c2.fits`); a key with `..`, an empty segment or a leading `/` is
//! refused ([`DatastoreError::BadKey`]). Storages still write and read local
//! files; the butler stages a remote put in a local temporary file and
//! uploads it, and reads whole objects into a temporary file, except FITS,
//! which reads headers and the rows of a cut-out by ranged GETs
//! ([`crate::fits::FitsStorage::set_remote`]).
//!
//! Every backend passes one conformance suite (`conformance::run_all`, with the `testing` feature);
//! the tests run it on a temporary folder and on a real SeaweedFS server.
//!
//! Open a datastore from its URL with [`open_datastore`]: a path or
//! `file:///...` is local, `s3://bucket/prefix` is S3. S3 credentials come
//! from the standard AWS variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`) or the `[default]` (or
//! `AWS_PROFILE`) section of `~/.aws/credentials` ([`S3Config::from_env`]),
//! never from the URL; they appear in no error, log line or `Debug` output.
//!
//! ```
//! use daf_storages::datastore::{open_datastore, Datastore, PutMode};
//! let dir = tempfile::tempdir().unwrap();
//! let ds = open_datastore(dir.path().to_str().unwrap()).unwrap();
//! let tmp = dir.path().join("staged");
//! std::fs::write(&tmp, b"0123456789").unwrap();
//! ds.put_file("a/b.bin", &tmp, PutMode::Create).unwrap();
//! assert_eq!(ds.head("a/b.bin").unwrap().unwrap().size, 10);
//! assert_eq!(ds.get_ranges("a/b.bin", &[2..4, 8..10]).unwrap(), vec![b"23".to_vec(), b"89".to_vec()]);
//! ```

#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod local;
mod s3;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use local::LocalDatastore;
pub use s3::{S3Config, S3Datastore};

/// Errors of a datastore. Each names the object (URL and key) and keeps
/// its cause; none carries a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatastoreError {
    /// The object does not exist (or vanished).
    #[error("{url}: no object {key:?}")]
    NotFound {
        /// The datastore.
        url: String,
        /// The key.
        key: String,
    },
    /// A create-only put or copy found the key taken.
    #[error("{url}: object {key:?} already exists")]
    AlreadyExists {
        /// The datastore.
        url: String,
        /// The key.
        key: String,
    },
    /// The key is not a clean relative path.
    #[error("bad datastore key {key:?}: {message}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// The server could not be reached (after the retries).
    #[error("{url}: endpoint unreachable: {source}")]
    Unreachable {
        /// The datastore.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The bucket does not exist.
    #[error("{url}: bucket {bucket:?} does not exist")]
    NoBucket {
        /// The datastore.
        url: String,
        /// The bucket.
        bucket: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The credentials were refused or lack the right.
    #[error("{url}: access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials): {source}")]
    AccessDenied {
        /// The datastore.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A local file error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The datastore URL or configuration is unusable.
    #[error("datastore {url}: {message}")]
    Config {
        /// The URL as given (never holds a secret: URLs with user info are refused).
        url: String,
        /// Why.
        message: String,
    },
    /// Any other error of the object-store client.
    #[error("{url}: {key:?}: {source}")]
    Backend {
        /// The datastore.
        url: String,
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DatastoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatastoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of datastore operations.
pub type Result<T, E = DatastoreError> = std::result::Result<T, E>;

/// What [`Datastore::head`] and [`Datastore::list`] report of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// How a put treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace it.
    Overwrite,
    /// Fail with [`DatastoreError::AlreadyExists`] if the key is taken.
    Create,
}

/// Bytes and requests moved by a datastore since it was opened.
#[derive(Debug, Default)]
pub struct TransferStats {
    gets: AtomicU64,
    bytes_read: AtomicU64,
    puts: AtomicU64,
    bytes_written: AtomicU64,
}

impl TransferStats {
    /// Read requests (a ranged read of N ranges counts N).
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }
    /// Bytes received by reads.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
    /// Put requests.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }
    /// Bytes sent by puts.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }
    pub(crate) fn read(&self, requests: u64, bytes: u64) {
        self.gets.fetch_add(requests, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn wrote(&self, bytes: u64) {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Where a repository's bytes live. See the [module docs](self).
pub trait Datastore: Send + Sync + std::fmt::Debug {
    /// The datastore's URL (`s3://bucket/prefix`, or the folder), for
    /// messages and `repositoryCfg.yaml`; holds no secret.
    fn url(&self) -> String;

    /// The local file of `key`, when the datastore is a local folder (then
    /// storages read and write it in place).
    fn local_path(&self, key: &str) -> Option<PathBuf>;

    /// Stores the file `src` under `key`: afterwards the object is complete,
    /// or (on any error) nothing new is visible under `key`.
    fn put_file(&self, key: &str, src: &Path, mode: PutMode) -> Result<ObjectMeta>;

    /// Stores `bytes` under `key` (complete or nothing, as
    /// [`put_file`](Datastore::put_file)).
    fn put_bytes(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta>;

    /// The bytes of each range of `key` (a range past the end is an error).
    /// Backends fetch the ranges concurrently.
    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>>;

    /// Downloads the whole object to the local file `dest` (created or
    /// replaced); returns its size.
    fn get_to_file(&self, key: &str, dest: &Path) -> Result<u64>;

    /// The object's size, or `None` if it does not exist.
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// Removes the object (no error if it is already gone).
    fn delete(&self, key: &str) -> Result<()>;

    /// Every object whose key starts with the folder `prefix` (`""`: all),
    /// sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Copies `from` to `to` (server-side where the backend can);
    /// [`PutMode::Create`] refuses to replace `to`.
    fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<()>;

    /// Moves `from` to `to`, replacing it (an atomic rename on a local
    /// folder; copy then delete on S3).
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Bytes and requests moved so far.
    fn stats(&self) -> &TransferStats;

    /// Stores many files at once: `(key, file, mode)` each as
    /// [`put_file`](Datastore::put_file), one result per item in order.
    /// Backends upload them concurrently (the S3 backend keeps up to 32 in
    /// flight); each item is complete or absent on its own.
    fn put_files(&self, items: &[(String, PathBuf, PutMode)]) -> Vec<Result<ObjectMeta>> {
        items
            .iter()
            .map(|(k, f, m)| self.put_file(k, f, *m))
            .collect()
    }

    /// The first `len` bytes of `key` (fewer if the object is shorter) and
    /// the object's whole size, in one request where the backend can (S3: a
    /// ranged GET whose `Content-Range` tells the size), so a reader can
    /// open a file without a separate HEAD.
    fn get_prefix(&self, key: &str, len: u64) -> Result<(Vec<u8>, u64)> {
        let meta = self.head(key)?.ok_or_else(|| DatastoreError::NotFound {
            url: self.url(),
            key: key.into(),
        })?;
        let n = len.min(meta.size);
        if n == 0 {
            return Ok((Vec::new(), meta.size));
        }
        Ok((self.get_range(key, 0..n)?, meta.size))
    }

    /// Fills each `(offset, buffer)` with the bytes of `key` from `offset`
    /// (a range past the end is an error), as
    /// [`get_ranges`](Datastore::get_ranges) but straight into the caller's
    /// buffers: the S3 backend streams every response into its slice, with
    /// no intermediate copy, large buffers as several concurrent GETs.
    fn get_ranges_into(&self, key: &str, parts: &mut [(u64, &mut [u8])]) -> Result<()> {
        let ranges: Vec<Range<u64>> = parts.iter().map(|(o, b)| *o..*o + b.len() as u64).collect();
        for ((_, dst), got) in parts.iter_mut().zip(self.get_ranges(key, &ranges)?) {
            dst.copy_from_slice(&got);
        }
        Ok(())
    }

    /// The bytes of one range of `key`.
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        Ok(self
            .get_ranges(key, std::slice::from_ref(&range))?
            .pop()
            .unwrap_or_default())
    }

    /// The whole object in memory (bounded by `max` bytes).
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>> {
        let meta = self.head(key)?.ok_or_else(|| DatastoreError::NotFound {
            url: self.url(),
            key: key.into(),
        })?;
        if meta.size > max {
            return Err(DatastoreError::Config {
                url: self.url(),
                message: format!("{key}: {} bytes exceed the limit of {max}", meta.size),
            });
        }
        if meta.size == 0 {
            return Ok(Vec::new());
        }
        self.get_range(key, 0..meta.size)
    }

    /// Size and BLAKE3 checksum (hex) of the object, streaming it in 8 MiB
    /// ranges.
    fn checksum(&self, key: &str) -> Result<(String, u64)> {
        let meta = self.head(key)?.ok_or_else(|| DatastoreError::NotFound {
            url: self.url(),
            key: key.into(),
        })?;
        let mut h = blake3::Hasher::new();
        let step = 8u64 << 20;
        let mut off = 0;
        while off < meta.size {
            let end = (off + step).min(meta.size);
            h.update(&self.get_range(key, off..end)?);
            off = end;
        }
        Ok((h.finalize().to_hex().to_string(), meta.size))
    }
}

/// Checks that `key` is a clean relative `/`-separated path.
pub fn check_key(key: &str) -> Result<()> {
    let bad = |m: &str| {
        Err(DatastoreError::BadKey {
            key: key.into(),
            message: m.into(),
        })
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return bad("keys are relative /-separated paths");
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("empty, '.' or '..' path segment");
        }
    }
    Ok(())
}

/// Is `url` an object-store URL (`s3://...`) rather than a local path?
pub fn is_remote_url(url: &str) -> bool {
    url.starts_with("s3://")
}

/// Opens the datastore at `url`: `s3://bucket[/prefix]` (credentials and
/// endpoint from [`S3Config::from_env`]), else a local folder (a path or
/// `file://` URL).
pub fn open_datastore(url: &str) -> Result<Arc<dyn Datastore>> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let _ = rest;
        let cfg = S3Config::from_env(url)?;
        return Ok(Arc::new(S3Datastore::open(cfg)?));
    }
    if url.contains("://") && !url.starts_with("file://") {
        return Err(DatastoreError::Config {
            url: redact_url(url),
            message: "unknown scheme; use a folder, file:// or s3://bucket/prefix".into(),
        });
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    Ok(Arc::new(LocalDatastore::new(path)))
}

/// `url` with any `user:password@` removed (for messages).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((_, host)) = auth.rsplit_once('@') {
            return format!("{scheme}://***@{host}{path}");
        }
    }
    url.to_string()
}
