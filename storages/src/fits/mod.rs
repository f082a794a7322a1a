//! FITS: [`FitsStorage`], the [`Pixel`] types, header cards ([`header`]), a
//! memory-mapped HDU scanner ([`FitsFile`]), binary tables ([`table`]) and
//! tile-compressed images ([`compressed`]).
//!
//! Location rules (as in LSST): a path with an optional `[N]` suffix naming a
//! 0-based HDU. Without a suffix, reads use the first HDU that has data.
//! Persisting creates the parent folders and writes to a temporary file in the
//! target folder, which is fsynced at `prepare_commit` and renamed into place
//! at `end_transaction`; an abort leaves nothing behind.
//!
//! **Legacy three-file masked images.** In DC3-era afw a `MaskedImage` (or
//! `Exposure`) at a FitsStorage location `BASE` was three files,
//! `BASE_img.fits`, `BASE_msk.fits` and `BASE_var.fits`, each a primary-HDU
//! image. When a retrieve location `BASE` does not exist but
//! `BASE_img.fits` does, the storage reads `BASE_img.fits` and remembers the
//! set ([`FitsStorage::legacy_set`]); the masked-image formatters then read
//! the mask and variance from their files. A set with a mask or variance
//! file but no `BASE_img.fits` is [`StorageError::NotFound`] naming what is
//! missing. Writing never produces the three files.
//!
//! ```
//! use daf_storages::{fits::FitsStorage, LogicalLocation, Storage};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("a/b/img.fits");
//! let mut s = FitsStorage::new();
//! s.set_persist_location(&LogicalLocation::literal(path.to_str().unwrap())).unwrap();
//! s.start_transaction().unwrap();
//! s.write_image::<f32>(&[], 3, 2, (0, 0), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
//! s.prepare_commit().unwrap();
//! s.end_transaction().unwrap();
//!
//! let mut r = FitsStorage::new();
//! r.set_retrieve_location(&LogicalLocation::literal(format!("{}[0]", path.display()))).unwrap();
//! let hdu = r.resolve_hdu().unwrap();
//! let (w, h, px) = r.file().unwrap().read_image::<f32>(hdu, None).unwrap();
//! assert_eq!((w, h, px[5]), (3, 2, 6.0));
//! ```

pub mod compressed;
pub mod file;
pub mod header;
pub mod pixel;
pub mod table;
pub mod tile_write;

use std::any::Any;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use compressed::TileStats;
pub use file::{FitsFile, Hdu, HduKind};
pub use header::{Card, Value};
pub use pixel::Pixel;
pub use table::{ColumnData, TableColumn};

use crate::atomic::AtomicFile;
use crate::error::StorageError;
use crate::location::LogicalLocation;
use crate::storage::{Mode, Storage};
use crate::Result;

use header::{format_header, BLOCK_LEN};

const NAME: &str = "FitsStorage";

/// Splits an optional trailing `[N]` HDU suffix off a location.
///
/// ```
/// use daf_storages::fits::split_hdu_suffix;
/// assert_eq!(split_hdu_suffix("a/b.fits[2]"), ("a/b.fits", Some(2)));
/// assert_eq!(split_hdu_suffix("a/b.fits"), ("a/b.fits", None));
/// assert_eq!(split_hdu_suffix("a/b[x].fits"), ("a/b[x].fits", None));
/// ```
pub fn split_hdu_suffix(loc: &str) -> (&str, Option<usize>) {
    if let Some(stripped) = loc.strip_suffix(']') {
        if let Some(open) = stripped.rfind('[') {
            let num = &stripped[open + 1..];
            if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = num.parse() {
                    return (&loc[..open], Some(n));
                }
            }
        }
    }
    (loc, None)
}

/// The keywords that carry an image's xy0 (see [`xy0_cards`]).
pub const XY0_KEYS: [&str; 10] = [
    "LTV1", "LTV2", "CRVAL1A", "CRVAL2A", "CRPIX1A", "CRPIX2A", "CTYPE1A", "CTYPE2A", "CUNIT1A",
    "CUNIT2A",
];

/// The cards that store an image's origin `xy0` as LSST afw writes (and
/// reads) it: the `A` pixel WCS (`CRVAL1A/2A = xy0`, `CRPIX1A/2A = 1`,
/// `CTYPE1A/2A = 'LINEAR'`, `CUNIT1A/2A = 'PIXEL'`) beside IRAF's
/// `LTV1/LTV2 = -xy0`.
///
/// ```
/// use daf_storages::fits::{xy0_cards, Value};
/// let c = xy0_cards((100, -7));
/// assert_eq!(c[0].key, "LTV1");
/// assert_eq!(c[0].value, Some(Value::Int(-100)));
/// assert!(c.iter().any(|c| c.key == "CRVAL2A" && c.value == Some(Value::Int(-7))));
/// ```
pub fn xy0_cards(xy0: (i32, i32)) -> Vec<Card> {
    let (x, y) = (xy0.0 as i64, xy0.1 as i64);
    let lin = || Value::Str("LINEAR".into());
    let pix = || Value::Str("PIXEL".into());
    vec![
        Card::new("LTV1", Value::Int(-x)),
        Card::new("LTV2", Value::Int(-y)),
        Card::with_comment("CRVAL1A", Value::Int(x), "Column pixel of Reference Pixel"),
        Card::with_comment("CRVAL2A", Value::Int(y), "Row pixel of Reference Pixel"),
        Card::with_comment(
            "CRPIX1A",
            Value::Int(1),
            "Column Pixel Coordinate of Reference",
        ),
        Card::with_comment(
            "CRPIX2A",
            Value::Int(1),
            "Row Pixel Coordinate of Reference",
        ),
        Card::with_comment("CTYPE1A", lin(), "Type of projection"),
        Card::with_comment("CTYPE2A", lin(), "Type of projection"),
        Card::with_comment("CUNIT1A", pix(), "Column unit"),
        Card::with_comment("CUNIT2A", pix(), "Row unit"),
    ]
}

/// Bytes of a remote FITS object fetched by the first request that opens it
/// (4 header blocks: the whole primary header of most files, and the object
/// itself if it is that small).
const REMOTE_PREFIX: u64 = 4 * 2880;

/// The FITS storage: a path and an HDU for formatters, an atomic writer of
/// HDUs, and a lazily opened, memory-mapped reader.
#[derive(Debug, Default)]
pub struct FitsStorage {
    mode: Option<Mode>,
    path: Option<PathBuf>,
    hdu: Option<usize>,
    out: Option<AtomicFile>,
    hdus_written: usize,
    file: Option<FitsFile>,
    remote: Option<Remote>,
    /// Images are written tile-compressed with these settings (policy
    /// `compression: ...`, see [`tile_write::Compression::from_policy`]).
    compression: Option<tile_write::Compression>,
    /// The caller syncs ([`Storage::defer_sync`]).
    defer_sync: bool,
    /// The retrieve location was the base of a legacy three-file set.
    legacy: Option<LegacySet>,
}

/// The files of a DC3-era three-file masked image at a location `BASE`
/// (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySet {
    /// The location as given (`BASE`, which does not exist).
    pub base: PathBuf,
    /// `BASE_img.fits` (exists).
    pub image: PathBuf,
    /// `BASE_msk.fits` (may be missing).
    pub mask: PathBuf,
    /// `BASE_var.fits` (may be missing).
    pub variance: PathBuf,
}

impl LegacySet {
    /// The three file names of the set at `base`.
    pub fn at(base: &Path) -> LegacySet {
        let with = |suffix: &str| {
            let mut s = base.as_os_str().to_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        LegacySet {
            base: base.to_path_buf(),
            image: with("_img.fits"),
            mask: with("_msk.fits"),
            variance: with("_var.fits"),
        }
    }
}

/// A FITS object in a remote datastore, read by ranges.
#[derive(Debug)]
struct Remote {
    ds: std::sync::Arc<dyn crate::datastore::Datastore>,
    key: String,
    /// Every data byte is in the buffer (or the file was downloaded whole).
    complete: bool,
    /// HDUs whose whole data is in the buffer.
    hdus_fetched: Vec<usize>,
    /// The download of a tile-compressed or gzipped object.
    download: Option<tempfile::TempDir>,
}

impl FitsStorage {
    /// A storage with no location yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file path (without any `[N]` suffix).
    pub fn path(&self) -> Result<&Path> {
        self.path
            .as_deref()
            .ok_or_else(|| StorageError::state(NAME, "no location set"))
    }

    /// The HDU named by the location's `[N]` suffix, if any.
    pub fn requested_hdu(&self) -> Option<usize> {
        self.hdu
    }

    /// The legacy three-file set being read, when the retrieve location
    /// `BASE` did not exist but `BASE_img.fits` did ([`FitsStorage::path`]
    /// is then `BASE_img.fits`).
    pub fn legacy_set(&self) -> Option<&LegacySet> {
        self.legacy.as_ref()
    }

    /// Reads from `key` of the datastore `ds` instead of the local path
    /// (the location's `[N]` suffix still names the HDU). Headers are read
    /// by ranged GETs; [`FitsStorage::read_image`] then fetches only the
    /// rows of a cut-out, or only the HDU it reads; [`FitsStorage::file`]
    /// fetches every byte. Gzipped objects are downloaded whole;
    /// of a tile-compressed image, a cut-out fetches only the tiles it
    /// touches.
    pub fn set_remote(&mut self, ds: std::sync::Arc<dyn crate::datastore::Datastore>, key: String) {
        self.file = None;
        self.legacy = None;
        self.mode = Some(Mode::Retrieve);
        self.remote = Some(Remote {
            ds,
            key,
            complete: false,
            hdus_fetched: Vec::new(),
            download: None,
        });
    }

    fn remote_err(&self, e: crate::datastore::DatastoreError) -> StorageError {
        StorageError::Backend {
            storage: NAME.into(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    /// A storage reading `key` of `ds`; `location` (a path with an
    /// optional `[N]` HDU suffix) names it in messages and picks the HDU.
    pub fn remote(
        location: &str,
        ds: std::sync::Arc<dyn crate::datastore::Datastore>,
        key: String,
    ) -> FitsStorage {
        let (p, hdu) = split_hdu_suffix(location);
        let mut s = FitsStorage {
            path: Some(PathBuf::from(p)),
            hdu,
            ..Default::default()
        };
        s.set_remote(ds, key);
        s
    }

    /// Opens the remote object: headers only (and the tile descriptors of
    /// compressed images), or the whole download when it is gzipped.
    ///
    /// One ranged GET of the first [`REMOTE_PREFIX`] bytes brings the
    /// object's size (from `Content-Range`), its magic and, usually, the
    /// whole primary header; further header blocks are fetched only when
    /// the headers go beyond it. An object no longer than the prefix is
    /// complete after that one request.
    fn open_remote(&mut self) -> Result<()> {
        let r = self.remote.as_ref().expect("remote set");
        let (ds, key) = (r.ds.clone(), r.key.clone());
        let name = PathBuf::from(format!("{}/{}", ds.url(), key));
        let (prefix, size) = ds.get_prefix(&key, REMOTE_PREFIX).map_err(|e| match e {
            crate::datastore::DatastoreError::NotFound { .. } => StorageError::NotFound {
                what: name.display().to_string(),
            },
            e => self.remote_err(e),
        })?;
        let whole = prefix.starts_with(&[0x1f, 0x8b]) || {
            let mut fetch = |r: std::ops::Range<u64>| {
                if r.end <= prefix.len() as u64 {
                    return Ok(prefix[r.start as usize..r.end as usize].to_vec());
                }
                ds.get_range(&key, r).map_err(|e| StorageError::Backend {
                    storage: NAME.into(),
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                })
            };
            let mut f = FitsFile::open_headers(&name, size, &mut fetch)?;
            if prefix.len() as u64 == size {
                // the whole object came with the first request
                f.fill(0, &prefix);
                self.remote.as_mut().expect("remote set").complete = true;
            } else {
                // Tile-compressed images: fetch their tile descriptors now,
                // the tiles a read needs later.
                let rows = f.compressed_rows();
                if !rows.is_empty() {
                    let ranges: Vec<_> =
                        rows.iter().map(|r| r.start as u64..r.end as u64).collect();
                    let parts = ds
                        .get_ranges(&key, &ranges)
                        .map_err(|e| self.remote_err(e))?;
                    for (rg, bytes) in rows.iter().zip(parts) {
                        f.fill(rg.start, &bytes);
                    }
                }
            }
            if !f.compressed_rows().is_empty() {
                f.view_compressed_as_images()?;
            }
            self.file = Some(f);
            false
        };
        if whole {
            let dir = tempfile::Builder::new()
                .prefix("daf-fits.")
                .tempdir()
                .map_err(|e| StorageError::io(std::env::temp_dir(), e))?;
            let local = dir.path().join(
                std::path::Path::new(&key)
                    .file_name()
                    .unwrap_or(std::ffi::OsStr::new("object.fits")),
            );
            ds.get_to_file(&key, &local)
                .map_err(|e| self.remote_err(e))?;
            self.file = Some(FitsFile::open(&local)?);
            let r = self.remote.as_mut().expect("remote set");
            r.complete = true;
            r.download = Some(dir);
        }
        Ok(())
    }

    /// Fetches `ranges` (byte offsets in the object) into the open remote
    /// file: straight into its buffer, each range as its own request (up to
    /// the datastore's limit in flight; rows are never merged, so a cut-out
    /// moves only its bytes).
    fn fetch_into(&mut self, mut ranges: Vec<std::ops::Range<u64>>) -> Result<()> {
        ranges.retain(|r| r.end > r.start);
        ranges.sort_by_key(|r| r.start);
        // overlapping ranges (never made by the callers) are merged
        let mut merged: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let r = self.remote.as_ref().expect("remote set");
        let f = self.file.as_mut().expect("opened");
        let Some(buf) = f.buffer_mut() else {
            return Ok(()); // a download: every byte is there
        };
        if merged.last().is_some_and(|l| l.end > buf.len() as u64) {
            return Err(StorageError::Backend {
                storage: NAME.into(),
                message: format!(
                    "{}/{}: a read past the object's {} bytes",
                    r.ds.url(),
                    r.key,
                    buf.len()
                ),
                source: None,
            });
        }
        let mut parts: Vec<(u64, &mut [u8])> = Vec::with_capacity(merged.len());
        let mut rest: &mut [u8] = buf;
        let mut base = 0u64;
        for rg in &merged {
            let tail = std::mem::take(&mut rest)
                .split_at_mut((rg.start - base) as usize)
                .1;
            let (mid, tail) = tail.split_at_mut((rg.end - rg.start) as usize);
            parts.push((rg.start, mid));
            rest = tail;
            base = rg.end;
        }
        let res = r.ds.get_ranges_into(&r.key, &mut parts);
        res.map_err(|e| self.remote_err(e))
    }

    /// The file's headers (every HDU located and parsed); for a remote
    /// object no data byte is read. Use [`FitsStorage::read_image`] or
    /// [`FitsStorage::file`] for pixels.
    pub fn headers(&mut self) -> Result<&FitsFile> {
        if self.remote.is_some() {
            if self.mode != Some(Mode::Retrieve) {
                return Err(StorageError::state(NAME, "not opened for reading"));
            }
            if self.file.is_none() {
                self.open_remote()?;
            }
            return Ok(self.file.as_ref().expect("opened above"));
        }
        self.file()
    }

    /// Reads image HDU `index` (whole, or the local box `(x0, y0, width,
    /// height)`) as [`FitsFile::read_image`] does; from a remote object only
    /// the rows of the box (or the HDU's data) are fetched.
    pub fn read_image<T: Pixel>(
        &mut self,
        index: usize,
        bbox: Option<(usize, usize, usize, usize)>,
    ) -> Result<(usize, usize, Vec<T>)> {
        if self.remote.is_some() {
            self.headers()?;
            let r = self.remote.as_ref().expect("remote set");
            if bbox.is_none() && !r.complete && !r.hdus_fetched.contains(&index) {
                if let Some(out) = self.read_remote_whole::<T>(index)? {
                    return Ok(out);
                }
            }
            let r = self.remote.as_ref().expect("remote set");
            if !r.complete && !r.hdus_fetched.contains(&index) {
                let f = self.file.as_ref().expect("opened");
                if let Some(tiles) = f.tile_ranges(index, bbox) {
                    // a compressed image: only the tiles under the box, or
                    // all of its data for a whole read
                    let ranges: Vec<_> = tiles?
                        .into_iter()
                        .map(|r| r.start as u64..r.end as u64)
                        .collect();
                    let whole = bbox.is_none();
                    if !ranges.is_empty() {
                        self.fetch_into(ranges)?;
                    }
                    if whole {
                        let r = self.remote.as_mut().expect("remote set");
                        r.hdus_fetched.push(index);
                    }
                    return self.file.as_ref().expect("opened").read_image(index, bbox);
                }
                let hdu = f.hdu(index)?;
                let size = (hdu.bitpix.unsigned_abs() / 8) as usize;
                let base = hdu.data_offset as u64;
                let mut ranges = Vec::new();
                match (bbox, hdu.image_dims()) {
                    (Some((bx, by, bw, bh)), Some((w, h)))
                        if bx + bw <= w && by + bh <= h && bw > 0 =>
                    {
                        if bw == w {
                            let s = base + (by * w * size) as u64;
                            ranges.push(s..s + (bh * w * size) as u64);
                        } else {
                            for row in by..by + bh {
                                let s = base + ((row * w + bx) * size) as u64;
                                ranges.push(s..s + (bw * size) as u64);
                            }
                        }
                    }
                    (Some(_), Some(_)) => {} // read_image reports the bad box
                    _ => {
                        if hdu.data_len > 0 {
                            ranges.push(base..base + hdu.data_len as u64);
                        }
                        self.remote
                            .as_mut()
                            .expect("remote set")
                            .hdus_fetched
                            .push(index);
                    }
                }
                if !ranges.is_empty() {
                    self.fetch_into(ranges)?;
                }
            }
            return self.file.as_ref().expect("opened").read_image(index, bbox);
        }
        self.file()?.read_image(index, bbox)
    }

    /// A whole read of an uncompressed remote image stored in `T`'s own
    /// type (BITPIX, BSCALE 1, `T`'s BZERO): the pixel bytes are fetched
    /// straight into the output buffer (concurrent ranged GETs) and
    /// byte-swapped in place, so the object's data never passes through
    /// the file buffer. `None`: any other case (read the usual way).
    fn read_remote_whole<T: Pixel>(
        &mut self,
        index: usize,
    ) -> Result<Option<(usize, usize, Vec<T>)>> {
        use std::any::TypeId;
        // plain integers and floats only: no padding, every bit pattern valid
        let plain = [
            TypeId::of::<u8>(),
            TypeId::of::<i16>(),
            TypeId::of::<u16>(),
            TypeId::of::<i32>(),
            TypeId::of::<u32>(),
            TypeId::of::<i64>(),
            TypeId::of::<u64>(),
            TypeId::of::<f32>(),
            TypeId::of::<f64>(),
        ];
        if !plain.contains(&TypeId::of::<T>()) || std::mem::size_of::<T>() != T::SIZE {
            return Ok(None);
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(None);
        };
        if f.tile_ranges(index, None).is_some() {
            return Ok(None); // tile-compressed
        }
        let object_len = f.buffer_mut().map_or(0, |b| b.len());
        let hdu = f.hdu(index)?;
        let native = hdu.bitpix == T::BITPIX && hdu.bscale == 1.0 && hdu.bzero == T::BZERO;
        let Some((w, h)) = hdu.image_dims() else {
            return Ok(None);
        };
        let Some(len) = w.checked_mul(h).and_then(|n| n.checked_mul(T::SIZE)) else {
            return Ok(None);
        };
        let offset = hdu.data_offset;
        if !native
            || !hdu.is_image_with_data()
            || len == 0
            || len > hdu.data_len
            || offset.saturating_add(len) > object_len
        {
            return Ok(None); // read_image handles (or reports) these
        }
        let n = len / T::SIZE;
        let mut out = file::pixel_buffer::<T>(n);
        let r = self.remote.as_ref().expect("remote set");
        {
            // SAFETY: `T` is one of the plain number types checked above
            // (size_of::<T>() == T::SIZE, no padding, every bit pattern a
            // valid value), and `out` holds exactly `n` of them; `out` is
            // not touched while this byte view lives.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), len) };
            r.ds.get_ranges_into(&r.key, &mut [(offset as u64, bytes)])
                .map_err(|e| self.remote_err(e))?;
        }
        // big-endian to native in place, through a cache-sized scratch
        let mut tmp = vec![0u8; 64 << 10];
        let per = tmp.len() / T::SIZE;
        for chunk in out.chunks_mut(per) {
            let nb = chunk.len() * T::SIZE;
            // SAFETY: as above; the view ends before `chunk` is written.
            let src = unsafe { std::slice::from_raw_parts(chunk.as_ptr().cast::<u8>(), nb) };
            tmp[..nb].copy_from_slice(src);
            T::decode_be(&tmp[..nb], chunk);
        }
        Ok(Some((w, h, out)))
    }

    /// The file being read (opened on first use; a remote object is
    /// fetched whole).
    pub fn file(&mut self) -> Result<&FitsFile> {
        if self.mode != Some(Mode::Retrieve) {
            return Err(StorageError::state(NAME, "not opened for reading"));
        }
        if self.remote.is_some() {
            if self.file.is_none() {
                self.open_remote()?;
            }
            if !self.remote.as_ref().expect("remote set").complete {
                let f = self.file.as_ref().expect("opened");
                let ranges: Vec<_> = (0..f.hdus().len())
                    .filter_map(|i| f.stored_extent(i))
                    .filter(|r| !r.is_empty())
                    .map(|r| r.start as u64..r.end as u64)
                    .collect();
                self.fetch_into(ranges)?;
                self.remote.as_mut().expect("remote set").complete = true;
            }
            return Ok(self.file.as_ref().expect("opened"));
        }
        if self.file.is_none() {
            let f = FitsFile::open(self.path()?)?;
            self.file = Some(f);
        }
        Ok(self.file.as_ref().expect("opened above"))
    }

    /// The HDU to read: the `[N]` suffix if given (checked against the file),
    /// else the first HDU with data.
    pub fn resolve_hdu(&mut self) -> Result<usize> {
        let want = self.hdu;
        let f = self.headers()?;
        match want {
            Some(n) => f.hdu(n).map(|h| h.index),
            None => Ok(f.first_data_hdu()),
        }
    }

    /// Writes images tile-compressed with `c` (or plain with `None`).
    pub fn set_compression(&mut self, c: Option<tile_write::Compression>) {
        self.compression = c;
    }

    /// The compression images are written with.
    pub fn compression(&self) -> Option<&tile_write::Compression> {
        self.compression.as_ref()
    }

    /// Number of HDUs written so far in this transaction.
    pub fn hdus_written(&self) -> usize {
        self.hdus_written
    }

    fn writer(&mut self) -> Result<&mut AtomicFile> {
        if self.mode != Some(Mode::Persist) {
            return Err(StorageError::state(NAME, "not opened for writing"));
        }
        if self.out.is_none() {
            let p = self.path()?.to_path_buf();
            let mut out = AtomicFile::create(p)?;
            out.set_sync(!self.defer_sync);
            self.out = Some(out);
        }
        Ok(self.out.as_mut().expect("created above"))
    }

    fn write_header(&mut self, structural: Vec<Card>, cards: &[Card]) -> Result<()> {
        let naxis = structural
            .iter()
            .find(|c| c.key == "NAXIS")
            .and_then(|c| c.value.as_ref()?.as_i64())
            .unwrap_or(0) as usize;
        let mut all = structural;
        // WCSAXES goes before the WCS keywords it sizes.
        all.extend(header::wcsaxes_cards(naxis, cards));
        all.extend(
            cards
                .iter()
                .filter(|c| !header::is_structural(&c.key))
                .cloned(),
        );
        let path = self.path()?.to_path_buf();
        let bytes = format_header(&all).map_err(|m| file::format_err(&path, m))?;
        let w = self.writer()?;
        w.write_all(&bytes).map_err(|e| StorageError::io(&path, e))
    }

    fn pad(&mut self, written: usize) -> Result<()> {
        let rem = written % BLOCK_LEN;
        if rem != 0 {
            let path = self.path()?.to_path_buf();
            let zeros = vec![0u8; BLOCK_LEN - rem];
            self.writer()?
                .write_all(&zeros)
                .map_err(|e| StorageError::io(&path, e))?;
        }
        Ok(())
    }

    fn image_structural(&self, bitpix: i32, naxes: &[usize]) -> Vec<Card> {
        let mut c = if self.hdus_written == 0 {
            vec![Card::new("SIMPLE", Value::Logical(true))]
        } else {
            vec![Card::new("XTENSION", Value::Str("IMAGE".into()))]
        };
        c.push(Card::new("BITPIX", Value::Int(bitpix as i64)));
        c.push(Card::new("NAXIS", Value::Int(naxes.len() as i64)));
        for (i, n) in naxes.iter().enumerate() {
            c.push(Card::new(format!("NAXIS{}", i + 1), Value::Int(*n as i64)));
        }
        if self.hdus_written == 0 {
            c.push(Card::new("EXTEND", Value::Logical(true)));
        } else {
            c.push(Card::new("PCOUNT", Value::Int(0)));
            c.push(Card::new("GCOUNT", Value::Int(1)));
        }
        c
    }

    /// Writes an HDU with no data (the empty primary of a multi-extension
    /// file) carrying `cards`.
    pub fn write_empty(&mut self, cards: &[Card]) -> Result<()> {
        let s = self.image_structural(8, &[]);
        self.write_header(s, cards)?;
        self.hdus_written += 1;
        Ok(())
    }

    /// Writes an image HDU (the primary if it is the first HDU, else an
    /// `IMAGE` extension) of `width × height` pixels with origin `xy0`
    /// (stored as afw stores it: see [`xy0_cards`]), plus `cards`. Unsigned
    /// types get their `BZERO`.
    pub fn write_image<T: Pixel>(
        &mut self,
        cards: &[Card],
        width: usize,
        height: usize,
        xy0: (i32, i32),
        pixels: &[T],
    ) -> Result<()> {
        if width.checked_mul(height) != Some(pixels.len()) {
            return Err(StorageError::state(
                NAME,
                format!("{} pixels for a {width}x{height} image", pixels.len()),
            ));
        }
        if let Some(c) = self.compression.clone().filter(|_| !pixels.is_empty()) {
            return self.write_compressed(cards, width, height, xy0, pixels, &c);
        }
        let mut s = self.image_structural(T::BITPIX, &[width, height]);
        if T::BZERO != 0.0 {
            s.push(Card::new("BSCALE", Value::Int(1)));
            s.push(Card::new("BZERO", Value::Int(T::BZERO as i64)));
        }
        let mut cards = cards.to_vec();
        cards.retain(|c| !XY0_KEYS.contains(&c.key.as_str()));
        cards.extend(xy0_cards(xy0));
        self.write_header(s, &cards)?;
        let path = self.path()?.to_path_buf();
        let w = self.writer()?;
        // Encode into a small buffer that stays in the CPU cache and hand it
        // straight to the file (past the BufWriter, flushed first so the
        // header stays in order).
        let io = |e| StorageError::io(&path, e);
        w.flush().map_err(io)?;
        let file = w.writer().get_mut();
        let per = (256 << 10) / T::SIZE;
        let mut buf = vec![0u8; per.min(pixels.len().max(1)) * T::SIZE];
        for chunk in pixels.chunks(per) {
            let b = &mut buf[..chunk.len() * T::SIZE];
            T::encode_be(chunk, b);
            file.write_all(b).map_err(io)?;
        }
        self.pad(pixels.len() * T::SIZE)?;
        self.hdus_written += 1;
        Ok(())
    }

    /// Writes an image as a tile-compressed binary table (after an empty
    /// primary if it is the first HDU: a compressed image cannot be the
    /// primary).
    fn write_compressed<T: Pixel>(
        &mut self,
        cards: &[Card],
        width: usize,
        height: usize,
        xy0: (i32, i32),
        pixels: &[T],
        c: &tile_write::Compression,
    ) -> Result<()> {
        if self.hdus_written == 0 {
            self.write_empty(&[])?;
        }
        let path = self.path()?.to_path_buf();
        let mut stored = vec![0u8; pixels.len() * T::SIZE];
        T::encode_be(pixels, &mut stored);
        let (mut s, data) = tile_write::compress_image(T::BITPIX, width, height, &stored, c)
            .map_err(|m| file::format_err(&path, format!("cannot compress the image: {m}")))?;
        drop(stored);
        if T::BZERO != 0.0 {
            s.push(Card::new("BSCALE", Value::Int(1)));
            s.push(Card::new("BZERO", Value::Int(T::BZERO as i64)));
        }
        let mut cards = cards.to_vec();
        cards.retain(|c| !XY0_KEYS.contains(&c.key.as_str()) && c.key != "EXTEND");
        cards.extend(xy0_cards(xy0));
        self.write_header(s, &cards)?;
        self.writer()?
            .write_all(&data)
            .map_err(|e| StorageError::io(&path, e))?;
        self.pad(data.len())?;
        self.hdus_written += 1;
        Ok(())
    }

    /// Writes a binary table extension (after an empty primary if it is the
    /// first HDU) with `columns` and `cards`.
    pub fn write_table(&mut self, cards: &[Card], columns: &[TableColumn]) -> Result<()> {
        if self.hdus_written == 0 {
            self.write_empty(&[])?;
        }
        let path = self.path()?.to_path_buf();
        let (s, data) = table::encode_table(columns).map_err(|m| file::format_err(&path, m))?;
        self.write_header(s, cards)?;
        self.writer()?
            .write_all(&data)
            .map_err(|e| StorageError::io(&path, e))?;
        self.pad(data.len())?;
        self.hdus_written += 1;
        Ok(())
    }
}

impl Storage for FitsStorage {
    fn storage_name(&self) -> &str {
        NAME
    }

    /// Policy keys: `compression` (`RICE_1`, `GZIP_1`, `GZIP_2`, `NONE`),
    /// `quantize_level`, `dither`, `dither_seed`, `tile_rows` (see
    /// [`tile_write::Compression::from_policy`]); absent keys keep the
    /// current settings.
    fn set_policy(&mut self, policy: Option<&daf_base::Policy>) -> Result<()> {
        let Some(p) = policy else { return Ok(()) };
        let ps = p.as_property_set();
        if ps.exists("compression") {
            self.compression = tile_write::Compression::from_policy(ps)
                .map_err(|m| StorageError::state(NAME, m))?;
        } else if let Some(c) = self.compression.as_mut() {
            // Tuning keys alone adjust the compression already chosen.
            let mut with = ps.clone();
            with.set("compression", c.algorithm_name()).ok();
            *c = tile_write::Compression::from_policy(&with)
                .map_err(|m| StorageError::state(NAME, m))?
                .unwrap_or_else(|| c.clone());
        }
        Ok(())
    }

    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()> {
        let (p, hdu) = split_hdu_suffix(location.loc_str());
        if hdu.is_some() {
            return Err(StorageError::state(
                NAME,
                format!("cannot write to one HDU of {p}: persist locations take no [N] suffix"),
            ));
        }
        self.mode = Some(Mode::Persist);
        self.path = Some(PathBuf::from(p));
        self.hdu = None;
        self.legacy = None;
        Ok(())
    }

    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()> {
        let (p, hdu) = split_hdu_suffix(location.loc_str());
        let mut path = PathBuf::from(p);
        let is_file = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
        self.legacy = None;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            // Permission denied (on the file's folder) says so.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::io(&path, e))
            }
            Err(_) if is_file(&LegacySet::at(&path).image) => {
                let set = LegacySet::at(&path);
                path = set.image.clone();
                self.legacy = Some(set);
            }
            Err(_) => {
                let set = LegacySet::at(&path);
                let part: Vec<String> = [&set.mask, &set.variance]
                    .into_iter()
                    .filter(|p| is_file(p))
                    .map(|p| p.display().to_string())
                    .collect();
                let what = if part.is_empty() {
                    format!("Unable to access file: {}", path.display())
                } else {
                    format!(
                        "Unable to access file: {} (a legacy three-file masked image there has {} but no {})",
                        path.display(),
                        part.join(" and "),
                        set.image.display()
                    )
                };
                return Err(StorageError::NotFound { what });
            }
            _ => {
                return Err(StorageError::NotFound {
                    what: format!("Unable to access file: {}", path.display()),
                })
            }
        }
        self.mode = Some(Mode::Retrieve);
        self.path = Some(path);
        self.hdu = hdu;
        self.file = None;
        Ok(())
    }

    fn start_transaction(&mut self) -> Result<()> {
        if self.mode.is_none() {
            return Err(StorageError::state(NAME, "no location set"));
        }
        if self.mode == Some(Mode::Persist) {
            self.out = None;
            self.hdus_written = 0;
            self.writer()?;
        }
        Ok(())
    }

    fn prepare_commit(&mut self) -> Result<()> {
        if self.mode == Some(Mode::Persist) {
            if self.hdus_written == 0 {
                return Err(StorageError::state(
                    NAME,
                    format!("nothing was written to {}", self.path()?.display()),
                ));
            }
            if let Some(out) = self.out.as_mut() {
                out.prepare()?;
            }
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
        if self.mode == Some(Mode::Persist) {
            self.prepare_commit()?;
            if let Some(out) = self.out.take() {
                out.commit()?;
            }
        }
        Ok(())
    }

    fn abort_transaction(&mut self) -> Result<()> {
        if let Some(out) = self.out.take() {
            out.abort();
        }
        self.hdus_written = 0;
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
