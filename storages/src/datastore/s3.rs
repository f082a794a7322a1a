//! [`S3Datastore`]: objects in an S3 bucket, through `object_store`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{check_key, DatastoreError, ObjectMeta, PutMode, Result, TransferStats};

/// Objects up to this size go up in one PUT; larger ones as a multipart
/// upload (aborted on failure, so nothing partial is ever visible).
const SINGLE_PUT_MAX: u64 = 16 << 20;
/// Part size of multipart uploads.
const PART_SIZE: usize = 8 << 20;
/// Uploads in flight at once in [`Datastore::put_files`](super::Datastore::put_files).
const CONCURRENT_PUTS: usize = 32;
/// Ranged reads in flight at once per call (connections stay in the
/// client's pool).
const CONCURRENT_RANGES: usize = 32;
/// Reads longer than this are split into concurrent GETs of this size.
const READ_CHUNK: u64 = 8 << 20;

/// How to reach an S3 bucket. Build it with [`S3Config::from_env`]; the
/// secret fields never appear in `Debug` output or errors.
#[derive(Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// Endpoint of a non-AWS server (`http://127.0.0.1:8333`), from
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Region (`AWS_REGION` / `AWS_DEFAULT_REGION`, default `us-east-1`).
    pub region: String,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token.
    pub session_token: Option<String>,
    /// Per-request timeout (default 60 s; `DAF_S3_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// Connection timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Retries of a failed request, with exponential back-off (default 3;
    /// `DAF_S3_RETRIES`).
    pub max_retries: usize,
    /// Give up retrying after this long (default 20 s).
    pub retry_timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// One `key = value` of a section of an AWS credentials file.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_section = name == section || name == format!("profile {section}");
            continue;
        }
        if in_section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

impl S3Config {
    /// Parses `s3://bucket[/prefix]` and takes credentials and endpoint from
    /// `env` (a lookup, so tests pass their own values) and the credentials
    /// file `AWS_SHARED_CREDENTIALS_FILE` or `$HOME/.aws/credentials`
    /// (section `AWS_PROFILE`, default `default`).
    pub fn from_lookup(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Config> {
        let bad = |m: &str| DatastoreError::Config {
            url: super::redact_url(url),
            message: m.into(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') || bucket.contains(':') {
            return Err(bad(
                "credentials do not belong in the URL; use AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY or ~/.aws/credentials",
            ));
        }
        if bucket.is_empty() {
            return Err(bad("no bucket; use s3://bucket/prefix"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            check_key(&prefix).map_err(|_| bad("prefix has an empty, '.' or '..' segment"))?;
        }
        let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut access_key_id = nonempty("AWS_ACCESS_KEY_ID");
        let mut secret_access_key = nonempty("AWS_SECRET_ACCESS_KEY");
        let mut session_token = nonempty("AWS_SESSION_TOKEN");
        if access_key_id.is_none() || secret_access_key.is_none() {
            let file = nonempty("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| nonempty("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
            if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
                let profile = nonempty("AWS_PROFILE").unwrap_or_else(|| "default".into());
                access_key_id = ini_value(&text, &profile, "aws_access_key_id");
                secret_access_key = ini_value(&text, &profile, "aws_secret_access_key");
                session_token = ini_value(&text, &profile, "aws_session_token");
            }
        }
        let secs = |k: &str, d: u64| {
            nonempty(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(Duration::from_secs(d), Duration::from_secs)
        };
        Ok(S3Config {
            bucket: bucket.into(),
            prefix,
            endpoint: nonempty("AWS_ENDPOINT_URL").or_else(|| nonempty("AWS_ENDPOINT")),
            region: nonempty("AWS_REGION")
                .or_else(|| nonempty("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id,
            secret_access_key,
            session_token,
            timeout: secs("DAF_S3_TIMEOUT_SECS", 60),
            connect_timeout: Duration::from_secs(5),
            max_retries: nonempty("DAF_S3_RETRIES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3),
            retry_timeout: Duration::from_secs(20),
        })
    }

    /// [`from_lookup`](S3Config::from_lookup) over the process environment.
    pub fn from_env(url: &str) -> Result<S3Config> {
        Self::from_lookup(url, &|k| std::env::var(k).ok())
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A datastore in an S3 bucket (AWS or any S3 server such as SeaweedFS),
/// through `object_store`'s `AmazonS3`. Blocking calls over its own small
/// tokio runtime (two workers), shared by every clone of the `Arc`.
pub struct S3Datastore {
    cfg: S3Config,
    store: Arc<AmazonS3>,
    rt: tokio::runtime::Runtime,
    stats: TransferStats,
}

impl std::fmt::Debug for S3Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Datastore")
            .field("url", &self.cfg.url())
            .field("endpoint", &self.cfg.endpoint)
            .finish()
    }
}

impl S3Datastore {
    /// Connects (lazily: no request is made until the first operation).
    pub fn open(cfg: S3Config) -> Result<S3Datastore> {
        let url = cfg.url();
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: cfg.max_retries,
                retry_timeout: cfg.retry_timeout,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(cfg.timeout)
                    .with_connect_timeout(cfg.connect_timeout)
                    .with_allow_http(
                        cfg.endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(k), Some(s)) => {
                b = b.with_access_key_id(k).with_secret_access_key(s);
                if let Some(t) = &cfg.session_token {
                    b = b.with_token(t);
                }
            }
            _ => {
                return Err(DatastoreError::Config {
                    url,
                    message: "no S3 credentials: set AWS_ACCESS_KEY_ID and \
                              AWS_SECRET_ACCESS_KEY, or write them to ~/.aws/credentials"
                        .into(),
                })
            }
        }
        let store = b.build().map_err(|e| DatastoreError::Config {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("daf-s3")
            .enable_all()
            .build()
            .map_err(|e| DatastoreError::Config {
                url: url.clone(),
                message: format!("cannot start the S3 I/O runtime: {e}"),
            })?;
        Ok(S3Datastore {
            cfg,
            store: Arc::new(store),
            rt,
            stats: TransferStats::default(),
        })
    }

    /// The configuration (secrets redacted in `Debug`).
    pub fn config(&self) -> &S3Config {
        &self.cfg
    }

    /// The underlying `object_store` client (for benchmarks comparing with
    /// plain object-store calls).
    pub fn object_store(&self) -> Arc<AmazonS3> {
        self.store.clone()
    }

    /// Runs `f` on this datastore's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn obj(&self, key: &str) -> Result<ObjPath> {
        check_key(key)?;
        let full = if self.cfg.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.cfg.prefix)
        };
        ObjPath::parse(&full).map_err(|e| DatastoreError::BadKey {
            key: key.into(),
            message: e.to_string(),
        })
    }

    /// Maps an object-store error to a typed one.
    fn err(&self, key: &str, e: object_store::Error) -> DatastoreError {
        let url = self.cfg.url();
        let mut text = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(" | ");
            text.push_str(&s.to_string());
            src = s.source();
        }
        let boxed =
            |e: object_store::Error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) };
        if text.contains("NoSuchBucket") || text.contains("bucket does not exist") {
            return DatastoreError::NoBucket {
                url,
                bucket: self.cfg.bucket.clone(),
                source: boxed(e),
            };
        }
        match e {
            object_store::Error::NotFound { .. } => DatastoreError::NotFound {
                url,
                key: key.into(),
            },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => DatastoreError::AlreadyExists {
                url,
                key: key.into(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => DatastoreError::AccessDenied {
                url,
                source: boxed(e),
            },
            e if [
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
            ]
            .iter()
            .any(|m| text.contains(m)) =>
            {
                DatastoreError::AccessDenied {
                    url,
                    source: boxed(e),
                }
            }
            e if [
                "error sending request",
                "Connection refused",
                "connection error",
                "timed out",
                "dns error",
                "error trying to connect",
                "client error (Connect)",
            ]
            .iter()
            .any(|m| text.contains(m)) =>
            {
                DatastoreError::Unreachable {
                    url,
                    source: boxed(e),
                }
            }
            e => DatastoreError::Backend {
                url,
                key: key.into(),
                source: boxed(e),
            },
        }
    }

    async fn put_payload(&self, path: &ObjPath, payload: PutPayload, mode: PutMode) -> Result<()> {
        let key = path.as_ref();
        let opts = object_store::PutOptions {
            mode: match mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
            },
            ..Default::default()
        };
        self.store
            .put_opts(path, payload, opts)
            .await
            .map(|_| ())
            .map_err(|e| self.err(key, e))
    }

    async fn put_multipart_file(&self, path: &ObjPath, src: &Path) -> Result<u64> {
        use tokio::io::AsyncReadExt;
        let key = path.as_ref();
        let mut upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| self.err(key, e))?;
        let res: Result<u64> = async {
            let mut f = tokio::fs::File::open(src)
                .await
                .map_err(|e| DatastoreError::io(src, e))?;
            let mut total = 0u64;
            let mut parts = Vec::new();
            loop {
                let mut buf = Vec::with_capacity(PART_SIZE);
                let mut chunk = (&mut f).take(PART_SIZE as u64);
                let n = chunk
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|e| DatastoreError::io(src, e))?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                parts.push(upload.put_part(PutPayload::from(buf)));
                if parts.len() >= 4 {
                    futures::future::try_join_all(parts.drain(..))
                        .await
                        .map_err(|e| self.err(key, e))?;
                }
            }
            futures::future::try_join_all(parts)
                .await
                .map_err(|e| self.err(key, e))?;
            upload.complete().await.map_err(|e| self.err(key, e))?;
            Ok(total)
        }
        .await;
        if res.is_err() {
            // nothing partial stays: the parts are discarded
            let _ = upload.abort().await;
        }
        res
    }
}

impl S3Datastore {
    /// [`Datastore::put_file`](super::Datastore::put_file) on the runtime.
    async fn put_file_async(&self, key: &str, src: &Path, mode: PutMode) -> Result<ObjectMeta> {
        let path = self.obj(key)?;
        let size = tokio::fs::metadata(src)
            .await
            .map_err(|e| DatastoreError::io(src, e))?
            .len();
        let n = if size <= SINGLE_PUT_MAX {
            let bytes = tokio::fs::read(src)
                .await
                .map_err(|e| DatastoreError::io(src, e))?;
            let n = bytes.len() as u64;
            self.put_payload(&path, PutPayload::from(bytes), mode)
                .await?;
            n
        } else {
            if mode == PutMode::Create {
                match self.store.head(&path).await {
                    Ok(_) => {
                        return Err(DatastoreError::AlreadyExists {
                            url: self.url_string(),
                            key: key.into(),
                        })
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err(key, e)),
                }
            }
            self.put_multipart_file(&path, src).await?
        };
        self.stats.wrote(n);
        Ok(ObjectMeta {
            key: key.into(),
            size: n,
        })
    }

    fn url_string(&self) -> String {
        self.cfg.url()
    }
}

impl super::Datastore for S3Datastore {
    fn url(&self) -> String {
        self.cfg.url()
    }

    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    fn put_file(&self, key: &str, src: &Path, mode: PutMode) -> Result<ObjectMeta> {
        self.rt.block_on(self.put_file_async(key, src, mode))
    }

    fn put_files(&self, items: &[(String, PathBuf, PutMode)]) -> Vec<Result<ObjectMeta>> {
        self.rt.block_on(async {
            futures::stream::iter(items.iter())
                .map(|(k, f, m)| self.put_file_async(k, f, *m))
                .buffered(CONCURRENT_PUTS)
                .collect()
                .await
        })
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta> {
        let path = self.obj(key)?;
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(bytes));
        self.rt.block_on(self.put_payload(&path, payload, mode))?;
        self.stats.wrote(bytes.len() as u64);
        Ok(ObjectMeta {
            key: key.into(),
            size: bytes.len() as u64,
        })
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let path = self.obj(key)?;
        let store = &self.store;
        // Large ranges are fetched as several concurrent GETs of
        // READ_CHUNK bytes (one stream from the server is slower than a
        // few), small ones as they are; all of them at once, up to
        // CONCURRENT_RANGES in flight.
        let mut pieces: Vec<(usize, Range<u64>)> = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            if r.end < r.start {
                return Err(DatastoreError::BadKey {
                    key: key.into(),
                    message: format!("range {r:?} ends before it starts"),
                });
            }
            if r.end - r.start <= READ_CHUNK + READ_CHUNK / 2 {
                pieces.push((i, r.clone()));
                continue;
            }
            let mut s = r.start;
            while s < r.end {
                let e = (s + READ_CHUNK).min(r.end);
                pieces.push((i, s..e));
                s = e;
            }
        }
        let got: Vec<bytes::Bytes> = self.rt.block_on(async {
            futures::stream::iter(pieces.iter().map(|(_, r)| r.clone()))
                .map(|r| {
                    let path = &path;
                    async move {
                        if r.start == r.end {
                            return Ok(bytes::Bytes::new());
                        }
                        store.get_range(path, r).await
                    }
                })
                .buffered(CONCURRENT_RANGES)
                .try_collect()
                .await
                .map_err(|e| self.err(key, e))
        })?;
        let total: u64 = got.iter().map(|b| b.len() as u64).sum();
        self.stats.read(pieces.len() as u64, total);
        for (b, (_, r)) in got.iter().zip(&pieces) {
            if b.len() as u64 != r.end - r.start {
                return Err(DatastoreError::BadKey {
                    key: key.into(),
                    message: format!("range {r:?}: got {} bytes", b.len()),
                });
            }
        }
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(ranges.len());
        let mut got = got
            .into_iter()
            .zip(pieces.iter().map(|(i, _)| *i))
            .peekable();
        for (i, r) in ranges.iter().enumerate() {
            let (first, _) = got.next().expect("one piece per range at least");
            if got.peek().is_none_or(|(_, j)| *j != i) {
                // one piece: the buffer is taken over without a copy when
                // nothing else holds it
                out.push(Vec::from(first));
                continue;
            }
            let mut v = Vec::with_capacity((r.end - r.start) as usize);
            v.extend_from_slice(&first);
            while let Some((b, _)) = got.next_if(|(_, j)| *j == i) {
                v.extend_from_slice(&b);
            }
            out.push(v);
        }
        Ok(out)
    }

    fn get_prefix(&self, key: &str, len: u64) -> Result<(Vec<u8>, u64)> {
        let path = self.obj(key)?;
        if len == 0 {
            let meta = self.head(key)?.ok_or_else(|| DatastoreError::NotFound {
                url: self.url_string(),
                key: key.into(),
            })?;
            return Ok((Vec::new(), meta.size));
        }
        // One ranged GET: S3 answers with the bytes there are and the
        // object's size in Content-Range.
        let got = self.rt.block_on(async {
            let opts = object_store::GetOptions {
                range: Some(object_store::GetRange::Bounded(0..len)),
                ..Default::default()
            };
            let res = self.store.get_opts(&path, opts).await?;
            let size = res.meta.size;
            Ok::<_, object_store::Error>((res.bytes().await?, size))
        });
        match got {
            Ok((b, size)) => {
                self.stats.read(1, b.len() as u64);
                Ok((Vec::from(b), size))
            }
            Err(object_store::Error::NotFound { .. }) => Err(DatastoreError::NotFound {
                url: self.url_string(),
                key: key.into(),
            }),
            // an empty object has no byte 0 to range over (HTTP 416)
            Err(e) => match self.head(key)? {
                Some(m) if m.size == 0 => Ok((Vec::new(), 0)),
                _ => Err(self.err(key, e)),
            },
        }
    }

    fn get_ranges_into(&self, key: &str, parts: &mut [(u64, &mut [u8])]) -> Result<()> {
        let path = self.obj(key)?;
        // Large buffers are split into READ_CHUNK pieces fetched
        // concurrently; every response is streamed into its slice.
        let mut pieces: Vec<(u64, &mut [u8])> = Vec::new();
        for (off, buf) in parts.iter_mut() {
            let mut at = *off;
            let mut rest: &mut [u8] = buf;
            while !rest.is_empty() {
                let n = if rest.len() as u64 <= READ_CHUNK + READ_CHUNK / 2 {
                    rest.len()
                } else {
                    READ_CHUNK as usize
                };
                let (a, b) = std::mem::take(&mut rest).split_at_mut(n);
                pieces.push((at, a));
                at += n as u64;
                rest = b;
            }
        }
        let requests = pieces.len() as u64;
        let (path, store) = (&path, &self.store);
        let total = self.rt.block_on(async {
            futures::stream::iter(pieces)
                .map(|(off, dst)| async move {
                    let want = off..off + dst.len() as u64;
                    let short = |got: u64| DatastoreError::BadKey {
                        key: key.into(),
                        message: format!("range {want:?}: got {got} bytes"),
                    };
                    let opts = object_store::GetOptions {
                        range: Some(object_store::GetRange::Bounded(want.clone())),
                        ..Default::default()
                    };
                    let res = store
                        .get_opts(path, opts)
                        .await
                        .map_err(|e| self.err(key, e))?;
                    if res.range != want {
                        return Err(short(res.range.end - res.range.start));
                    }
                    let mut stream = res.into_stream();
                    let mut at = 0usize;
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| self.err(key, e))?;
                        let end = at + chunk.len();
                        let Some(d) = dst.get_mut(at..end) else {
                            return Err(short(end as u64));
                        };
                        d.copy_from_slice(&chunk);
                        at = end;
                    }
                    if at != dst.len() {
                        return Err(short(at as u64));
                    }
                    Ok(at as u64)
                })
                .buffer_unordered(CONCURRENT_RANGES)
                .try_fold(0u64, |acc, n| std::future::ready(Ok(acc + n)))
                .await
        })?;
        self.stats.read(requests, total);
        Ok(())
    }

    fn get_to_file(&self, key: &str, dest: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let path = self.obj(key)?;
        let n = self.rt.block_on(async {
            let res = self.store.get(&path).await.map_err(|e| self.err(key, e))?;
            let mut stream = res.into_stream();
            let mut f = tokio::fs::File::create(dest)
                .await
                .map_err(|e| DatastoreError::io(dest, e))?;
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.err(key, e))?;
                n += chunk.len() as u64;
                f.write_all(&chunk)
                    .await
                    .map_err(|e| DatastoreError::io(dest, e))?;
            }
            f.flush().await.map_err(|e| DatastoreError::io(dest, e))?;
            Ok::<u64, DatastoreError>(n)
        })?;
        self.stats.read(1, n);
        Ok(n)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.obj(key)?;
        match self.rt.block_on(self.store.head(&path)) {
            Ok(m) => Ok(Some(ObjectMeta {
                key: key.into(),
                size: m.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.obj(key)?;
        match self.rt.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let p = prefix.trim_end_matches('/');
        let full = match (self.cfg.prefix.is_empty(), p.is_empty()) {
            (true, true) => None,
            (true, false) => Some(p.to_string()),
            (false, true) => Some(self.cfg.prefix.clone()),
            (false, false) => Some(format!("{}/{p}", self.cfg.prefix)),
        };
        let full = full
            .map(|f| {
                ObjPath::parse(&f).map_err(|e| DatastoreError::BadKey {
                    key: prefix.into(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(full.as_ref()).try_collect())
            .map_err(|e| self.err(prefix, e))?;
        let strip = if self.cfg.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.cfg.prefix)
        };
        let mut out: Vec<ObjectMeta> = metas
            .into_iter()
            .filter_map(|m| {
                let k = m
                    .location
                    .as_ref()
                    .strip_prefix(strip.as_str())?
                    .to_string();
                Some(ObjectMeta {
                    key: k,
                    size: m.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<()> {
        let (f, t) = (self.obj(from)?, self.obj(to)?);
        if mode == PutMode::Create && self.head(to)?.is_some() {
            return Err(DatastoreError::AlreadyExists {
                url: self.url(),
                key: to.into(),
            });
        }
        self.rt
            .block_on(self.store.copy(&f, &t))
            .map_err(|e| self.err(from, e))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.copy(from, to, PutMode::Overwrite)?;
        self.delete(from)
    }

    fn stats(&self) -> &TransferStats {
        &self.stats
    }
}
