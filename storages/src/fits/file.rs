//! [`FitsFile`]: a hand-rolled FITS scanner over a memory map (or over bytes
//! decompressed in memory), with bulk big-endian conversion of pixels.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::header::{parse_cards, Card, Value, BLOCK_LEN, CARD_LEN};
use super::pixel::{decode_stored_f64, Pixel};
use crate::error::StorageError;
use crate::Result;

/// The kind of an HDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HduKind {
    /// The primary HDU (an image, possibly empty).
    Primary,
    /// An `IMAGE` extension.
    Image,
    /// A `BINTABLE` extension.
    BinTable,
    /// A `TABLE` (ASCII) extension.
    AsciiTable,
    /// Any other extension type.
    Other(String),
}

impl HduKind {
    /// A short name: `PRIMARY`, `IMAGE`, `BINTABLE`, `TABLE` or the XTENSION value.
    pub fn name(&self) -> &str {
        match self {
            HduKind::Primary => "PRIMARY",
            HduKind::Image => "IMAGE",
            HduKind::BinTable => "BINTABLE",
            HduKind::AsciiTable => "TABLE",
            HduKind::Other(s) => s,
        }
    }
}

/// One header-data unit as found by the scanner.
#[derive(Debug, Clone)]
pub struct Hdu {
    /// 0-based index.
    pub index: usize,
    /// Kind.
    pub kind: HduKind,
    /// Every card of the header (CONTINUE merged, END excluded).
    pub cards: Vec<Card>,
    /// BITPIX.
    pub bitpix: i32,
    /// NAXISn, fastest axis first.
    pub naxes: Vec<usize>,
    /// PCOUNT (0 for images).
    pub pcount: usize,
    /// Byte offset of the header in the file.
    pub header_offset: usize,
    /// Byte offset of the data.
    pub data_offset: usize,
    /// Data length in bytes, without padding.
    pub data_len: usize,
    /// BSCALE (1 if absent).
    pub bscale: f64,
    /// BZERO (0 if absent).
    pub bzero: f64,
}

impl Hdu {
    /// The value of keyword `key` (last occurrence).
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.cards
            .iter()
            .rev()
            .find(|c| c.key == key)
            .and_then(|c| c.value.as_ref())
    }
    /// EXTNAME, if present.
    pub fn extname(&self) -> Option<&str> {
        match self.value("EXTNAME") {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    /// EXTTYPE (how LSST afw marks the planes of a masked image: `IMAGE`,
    /// `MASK`, `VARIANCE`, and its archive tables), if present.
    pub fn exttype(&self) -> Option<&str> {
        match self.value("EXTTYPE") {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    /// True for a primary HDU of random-groups data (`GROUPS = T`,
    /// `NAXIS1 = 0`): its data is not an image.
    pub fn is_random_groups(&self) -> bool {
        self.kind == HduKind::Primary
            && self.naxes.first() == Some(&0)
            && self.value("GROUPS") == Some(&Value::Logical(true))
    }
    /// True for an image (primary or IMAGE extension) with pixels.
    pub fn is_image_with_data(&self) -> bool {
        matches!(self.kind, HduKind::Primary | HduKind::Image)
            && self.data_len > 0
            && !self.is_random_groups()
    }
    /// Image width and height: NAXIS1 × NAXIS2 (extra axes must be 1).
    pub fn image_dims(&self) -> Option<(usize, usize)> {
        match self.naxes.as_slice() {
            [] => Some((0, 0)),
            [w] => Some((*w, 1)),
            [w, h, rest @ ..] if rest.iter().all(|&n| n == 1) => Some((*w, *h)),
            _ => None,
        }
    }
}

enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

/// A FITS file opened for reading: every HDU located, headers parsed, data
/// left in place until asked for.
///
/// Plain files are memory-mapped; `.gz` files are inflated into memory and
/// tile-compressed (`.fz`, `ZIMAGE = T`) images are decompressed by cfitsio
/// (see [`super::compressed`]). All errors name the file.
pub struct FitsFile {
    path: PathBuf,
    bytes: Bytes,
    hdus: Vec<Hdu>,
    /// Per HDU: the tile-compressed image it stands for, decoded on demand.
    lazy: Vec<Option<super::compressed::Lazy>>,
    tiles: super::compressed::TileCounter,
    /// The open file behind a memory map: whole-image reads copy pixels
    /// with positioned reads (see [`FitsFile::read_image`]).
    file: Option<File>,
}

impl std::fmt::Debug for FitsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitsFile")
            .field("path", &self.path)
            .field("hdus", &self.hdus.len())
            .finish()
    }
}

/// Upper bound on one header inflated from a `.gz` file: 16 MiB (200,000
/// cards; real headers are a few hundred).
const MAX_GZ_HEADER: usize = 16 << 20;

/// Inflates a gzip stream one HDU at a time: each header is read and checked
/// first, then exactly the data it declares (padded), so the memory used is
/// what the headers imply *and* the stream really holds — never more. A
/// stream that ends inside a header or data is an error; bytes after the last
/// HDU that do not start an extension are ignored (as cfitsio does).
fn inflate_checked(path: &Path, mut dec: impl Read) -> Result<Vec<u8>> {
    let corrupt = |e: std::io::Error| format_err(path, format!("corrupt gzip data: {e}"));
    // Reads up to `n` more bytes into `out`; returns how many came.
    let mut fill = |out: &mut Vec<u8>, n: usize| -> Result<usize> {
        let before = out.len();
        (&mut dec)
            .take(n as u64)
            .read_to_end(out)
            .map_err(corrupt)?;
        Ok(out.len() - before)
    };
    let mut out: Vec<u8> = Vec::new();
    let mut index = 0usize;
    loop {
        let start = out.len();
        // Header blocks until END.
        let mut end = None;
        while end.is_none() {
            let got = fill(&mut out, BLOCK_LEN)?;
            if got == 0 && out.len() == start {
                if index == 0 {
                    return Err(format_err(path, "empty gzip stream, not FITS"));
                }
                return Ok(out); // clean end after the last HDU
            }
            if got < BLOCK_LEN {
                if index > 0 {
                    // Trailing bytes that are not a whole block: ignored.
                    out.truncate(start);
                    return Ok(out);
                }
                return Err(format_err(
                    path,
                    format!("truncated: header of HDU {index} ends inside a 2880-byte block"),
                ));
            }
            let blk = out.len() - BLOCK_LEN;
            if blk == start {
                let magic: &[u8] = if index == 0 {
                    b"SIMPLE  ="
                } else {
                    b"XTENSION="
                };
                if !out[blk..].starts_with(magic) {
                    if index == 0 {
                        return Err(format_err(
                            path,
                            "not a FITS file (it does not start with SIMPLE  =)",
                        ));
                    }
                    out.truncate(start);
                    return Ok(out);
                }
            }
            end = (0..BLOCK_LEN / CARD_LEN)
                .map(|c| blk + c * CARD_LEN)
                .find(|&o| {
                    out[o..o + 3] == *b"END" && out[o + 3..o + CARD_LEN].iter().all(|&b| b == b' ')
                });
            if end.is_none() && out.len() - start > MAX_GZ_HEADER {
                return Err(format_err(
                    path,
                    format!("header of HDU {index} has no END card within 16 MiB"),
                ));
            }
        }
        let cards = parse_cards(&out[start..]);
        let (_, _, data_len) = data_size(path, index, &cards)?;
        let padded = data_len.div_ceil(BLOCK_LEN) * BLOCK_LEN;
        let got = fill(&mut out, padded)?;
        if got < data_len {
            return Err(format_err(
                path,
                format!(
                    "truncated: HDU {index} declares {data_len} data bytes, the gzip stream holds {got}"
                ),
            ));
        }
        index += 1;
        if index > 100_000 {
            return Err(format_err(path, "more than 100000 HDUs"));
        }
    }
}

/// BITPIX, NAXISn and the data length (bytes, unpadded) that a header
/// declares, checked as [`scan`] checks them.
fn data_size(path: &Path, index: usize, cards: &[Card]) -> Result<(i64, Vec<usize>, usize)> {
    let err = |m: String| format_err(path, m);
    let value = |k: &str| {
        cards
            .iter()
            .find(|c| c.key == k)
            .and_then(|c| c.value.clone())
    };
    let int = |k: &str| -> Result<i64> {
        match value(k) {
            Some(Value::Int(i)) => Ok(i),
            Some(other) => Err(err(format!(
                "HDU {index}: {k} is not an integer ({})",
                other.display()
            ))),
            None => Err(err(format!("HDU {index}: missing mandatory keyword {k}"))),
        }
    };
    let bitpix = int("BITPIX")?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(err(format!(
            "HDU {index}: invalid BITPIX {bitpix} (must be 8, 16, 32, 64, -32 or -64)"
        )));
    }
    let naxis = int("NAXIS")?;
    if !(0..=999).contains(&naxis) {
        return Err(err(format!("HDU {index}: invalid NAXIS {naxis}")));
    }
    let mut naxes = Vec::with_capacity(naxis as usize);
    for i in 1..=naxis {
        let n = int(&format!("NAXIS{i}"))?;
        if n < 0 {
            return Err(err(format!("HDU {index}: negative NAXIS{i} = {n}")));
        }
        naxes
            .push(usize::try_from(n).map_err(|_| err(format!("HDU {index}: NAXIS{i} too large")))?);
    }
    let groups = index == 0
        && naxes.first() == Some(&0)
        && naxes.len() > 1
        && value("GROUPS") == Some(Value::Logical(true));
    let (pcount, gcount) = if index == 0 && !groups {
        (0, 1)
    } else {
        let p = int("PCOUNT").unwrap_or(0);
        let g = int("GCOUNT").unwrap_or(1);
        if p < 0 || g < 0 {
            return Err(err(format!("HDU {index}: negative PCOUNT or GCOUNT")));
        }
        (p as u64, g as u64)
    };
    let too_big = || err(format!("HDU {index}: data size overflows"));
    let count: u64 = if naxes.is_empty() {
        0
    } else {
        naxes[usize::from(groups)..]
            .iter()
            .try_fold(1u64, |a, &n| a.checked_mul(n as u64))
            .ok_or_else(too_big)?
    };
    let data_len = if count == 0 && pcount == 0 {
        0
    } else {
        count
            .checked_add(pcount)
            .and_then(|c| c.checked_mul(gcount))
            .and_then(|c| c.checked_mul(bitpix.unsigned_abs() / 8))
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(too_big)?
    };
    Ok((bitpix, naxes, data_len))
}

pub(crate) fn format_err(path: &Path, message: impl Into<String>) -> StorageError {
    StorageError::Format {
        storage: "FitsStorage".into(),
        what: path.display().to_string(),
        message: message.into(),
    }
}

impl FitsFile {
    /// Opens `path`: memory-maps it, or inflates it when gzip-compressed;
    /// decompresses tile-compressed images through cfitsio.
    pub fn open(path: impl AsRef<Path>) -> Result<FitsFile> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StorageError::NotFound {
                    what: path.display().to_string(),
                }
            } else {
                StorageError::io(path, e)
            }
        })?;
        let mut magic = [0u8; 2];
        let n = file
            .read(&mut magic)
            .map_err(|e| StorageError::io(path, e))?;
        let bytes = if n == 2 && magic == [0x1f, 0x8b] {
            let f = File::open(path).map_err(|e| StorageError::io(path, e))?;
            let dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
            Bytes::Owned(inflate_checked(path, dec)?)
        } else {
            let len = file
                .metadata()
                .map_err(|e| StorageError::io(path, e))?
                .len();
            if len == 0 {
                return Err(format_err(path, "empty file, not FITS"));
            }
            // SAFETY: the map is read-only; daf writes files atomically (a new
            // inode is renamed into place), so a mapped file is not modified
            // under us by daf. Another program truncating it could fault, as
            // with any memory-mapped reader.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(path, e))?;
            Bytes::Map(map)
        };
        let mapped = matches!(bytes, Bytes::Map(_));
        let mut f = Self::from_parts(path.to_path_buf(), bytes)?;
        f.view_compressed_as_images()?;
        if mapped && f.lazy.iter().all(Option::is_none) {
            f.file = Some(file);
        }
        Ok(f)
    }

    /// Opens a FITS object of `size` bytes through ranged reads (`fetch`
    /// returns the bytes of one range): only the header blocks of every HDU
    /// are read now; data bytes stay zero until [`FitsFile::fill`] stores
    /// them (the zeroed buffer is allocated lazily by the OS, so unread
    /// parts cost no memory). The caller fetches before it reads pixels.
    pub fn open_headers(
        name: impl Into<PathBuf>,
        size: u64,
        fetch: &mut dyn FnMut(std::ops::Range<u64>) -> Result<Vec<u8>>,
    ) -> Result<FitsFile> {
        let name = name.into();
        // An object daf reads through ranges is held in memory: refuse
        // sizes no FITS image of a survey reaches (16 GiB).
        const MAX_REMOTE: u64 = 16 << 30;
        if size > MAX_REMOTE {
            return Err(format_err(&name, "object larger than 16 GiB"));
        }
        let size_us = size as usize;
        let mut buf = vec![0u8; size_us];
        let mut off = 0usize;
        // Header blocks are read 4 at a time (11.5 KiB) until END.
        while off + BLOCK_LEN <= size_us {
            let mut pos = off;
            let mut end = None;
            while end.is_none() && pos + BLOCK_LEN <= size_us {
                let upto = (pos + 4 * BLOCK_LEN).min(size_us / BLOCK_LEN * BLOCK_LEN);
                let got = fetch(pos as u64..upto as u64)?;
                buf[pos..upto].copy_from_slice(&got);
                if off > 0 && pos == off && !buf[off..].starts_with(b"XTENSION=") {
                    // trailing blocks that are not an extension: done
                    return Self::from_parts(name, Bytes::Owned(buf));
                }
                for c in (pos..upto).step_by(CARD_LEN) {
                    let card = &buf[c..c + CARD_LEN];
                    if card.starts_with(b"END") && card[3..].iter().all(|&b| b == b' ') {
                        end = Some(c);
                        break;
                    }
                }
                pos = upto;
            }
            let Some(end) = end else { break };
            let header_end = (end / BLOCK_LEN + 1) * BLOCK_LEN;
            let cards = parse_cards(&buf[off..end + CARD_LEN]);
            let int = |k: &str| match cards
                .iter()
                .find(|c| c.key == k)
                .and_then(|c| c.value.clone())
            {
                Some(Value::Int(i)) => Some(i),
                _ => None,
            };
            // malformed sizes are left to the scan below to report
            let Some(data_len) = (|| {
                let bitpix = int("BITPIX")?;
                let naxis = int("NAXIS")?;
                let mut count: u64 = if naxis == 0 { 0 } else { 1 };
                for i in 1..=naxis {
                    count = count.checked_mul(u64::try_from(int(&format!("NAXIS{i}"))?).ok()?)?;
                }
                let (p, g) = if off == 0 {
                    (0, 1)
                } else {
                    (int("PCOUNT").unwrap_or(0), int("GCOUNT").unwrap_or(1))
                };
                let (p, g) = (u64::try_from(p).ok()?, u64::try_from(g).ok()?);
                if count == 0 && p == 0 {
                    return Some(0u64);
                }
                count
                    .checked_add(p)?
                    .checked_mul(g)?
                    .checked_mul(bitpix.unsigned_abs() / 8)
            })() else {
                break;
            };
            off = header_end.saturating_add((data_len as usize).div_ceil(BLOCK_LEN) * BLOCK_LEN);
        }
        Self::from_parts(name, Bytes::Owned(buf))
    }

    /// Replaces every tile-compressed HDU (a BINTABLE with `ZIMAGE = T`)
    /// by the image it holds, checked now and decoded when read: whole, or
    /// only the tiles a cut-out touches. [`FitsFile::open`] does this; a file
    /// opened by [`FitsFile::open_headers`] does it once the table rows of
    /// its compressed HDUs are filled in ([`FitsFile::compressed_rows`]).
    pub fn view_compressed_as_images(&mut self) -> Result<()> {
        for i in 0..self.hdus.len() {
            if super::compressed::is_tile_compressed(&self.hdus[i]) {
                let (plain, lazy) = super::compressed::lazy_view(&self.path, self, &self.hdus[i])?;
                self.hdus[i] = plain;
                self.lazy.resize_with(self.hdus.len(), || None);
                self.lazy[i] = Some(lazy);
            }
        }
        Ok(())
    }

    /// The byte ranges holding the table rows (tile descriptors) of every
    /// tile-compressed HDU not yet viewed as an image.
    pub fn compressed_rows(&self) -> Vec<std::ops::Range<usize>> {
        self.hdus
            .iter()
            .filter(|h| super::compressed::is_tile_compressed(h) && h.naxes.len() == 2)
            .map(|h| {
                let n = h.naxes[0].saturating_mul(h.naxes[1]).min(h.data_len);
                h.data_offset..h.data_offset + n
            })
            .collect()
    }

    /// Where HDU `index`'s data lies in the file as stored (for a
    /// tile-compressed image: its compressed table and heap).
    pub fn stored_extent(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let h = self.hdus.get(index)?;
        Some(match self.lazy_of(h) {
            Some(l) => l.stored_extent(),
            None => h.data_offset..h.data_offset + h.data_len,
        })
    }

    /// For a tile-compressed image HDU: the byte ranges a read of `bbox`
    /// (or of the whole image) needs from the file: only the tiles under
    /// the box. `None` for other HDUs.
    pub fn tile_ranges(
        &self,
        index: usize,
        bbox: Option<(usize, usize, usize, usize)>,
    ) -> Option<Result<Vec<std::ops::Range<usize>>>> {
        let h = self.hdus.get(index)?;
        let l = self.lazy_of(h)?;
        let bbox = bbox.filter(|&(x, y, w, hh)| {
            h.image_dims()
                .is_some_and(|(iw, ih)| x + w <= iw && y + hh <= ih)
        });
        Some(
            l.fetch_ranges(self, bbox).map_err(|m| {
                format_err(&self.path, format!("compressed image in HDU {index}: {m}"))
            }),
        )
    }

    /// Stores `bytes` at `offset` of a file opened by
    /// [`FitsFile::open_headers`] (no effect on a memory-mapped file).
    pub fn fill(&mut self, offset: usize, bytes: &[u8]) {
        if let Bytes::Owned(v) = &mut self.bytes {
            if let Some(dst) = v.get_mut(offset..offset + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
    }

    /// The whole in-memory buffer of a file opened by
    /// [`FitsFile::open_headers`], for a caller that fetches data straight
    /// into it (`None` for a memory-mapped file).
    pub fn buffer_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.bytes {
            Bytes::Owned(v) => Some(v.as_mut_slice()),
            Bytes::Map(_) => None,
        }
    }

    /// Scans FITS bytes already in memory; `name` is used in messages.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<FitsFile> {
        Self::from_parts(name.into(), Bytes::Owned(bytes))
    }

    fn from_parts(path: PathBuf, bytes: Bytes) -> Result<FitsFile> {
        let hdus = scan(&path, data_of(&bytes))?;
        Ok(FitsFile {
            path,
            bytes,
            hdus,
            lazy: Vec::new(),
            tiles: Default::default(),
            file: None,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file's bytes (decompressed).
    pub fn bytes(&self) -> &[u8] {
        data_of(&self.bytes)
    }

    /// Every HDU.
    pub fn hdus(&self) -> &[Hdu] {
        &self.hdus
    }

    /// HDU `index`, or an error naming the file and the number of HDUs.
    pub fn hdu(&self, index: usize) -> Result<&Hdu> {
        self.hdus.get(index).ok_or_else(|| {
            format_err(
                &self.path,
                format!(
                    "HDU index {index} out of range (the file has {} HDUs)",
                    self.hdus.len()
                ),
            )
        })
    }

    /// The first HDU with data (the LSST default when no `[N]` is given);
    /// 0 if none has data.
    pub fn first_data_hdu(&self) -> usize {
        self.hdus.iter().position(|h| h.data_len > 0).unwrap_or(0)
    }

    /// The index of the first HDU whose EXTNAME is `name`.
    pub fn find_extname(&self, name: &str) -> Option<usize> {
        self.hdus.iter().position(|h| h.extname() == Some(name))
    }

    /// The HDU holding the plane `name` (`IMAGE`, `MASK`, `VARIANCE`) of a
    /// masked image: the first whose `EXTNAME` is `name`, else the first whose
    /// `EXTTYPE` is `name` (afw marks planes with EXTTYPE, often without
    /// EXTNAME). HDUs from `from` on are preferred, so a plane after the
    /// chosen image plane wins over one before it.
    pub fn find_plane(&self, name: &str, from: usize) -> Option<usize> {
        let by = |f: &dyn Fn(&Hdu) -> bool| {
            let after = self.hdus.iter().skip(from).position(f).map(|i| i + from);
            after.or_else(|| self.hdus.iter().position(f))
        };
        by(&|h: &Hdu| h.extname().map(str::trim) == Some(name))
            .or_else(|| by(&|h: &Hdu| h.exttype().map(str::trim) == Some(name)))
    }

    /// The raw (stored, big-endian) data bytes of an HDU; for a
    /// tile-compressed image, its decompressed pixels (empty if they do not
    /// decode: [`FitsFile::read_image`] reports why).
    pub fn data(&self, hdu: &Hdu) -> &[u8] {
        match self.lazy_of(hdu) {
            Some(l) => l.full(self, &self.tiles).unwrap_or(&[]),
            None => self.raw_data(hdu),
        }
    }

    /// The bytes of `hdu`'s data as they are in the file.
    pub(crate) fn raw_data(&self, hdu: &Hdu) -> &[u8] {
        &self.bytes()[hdu.data_offset..hdu.data_offset + hdu.data_len]
    }

    fn lazy_of(&self, hdu: &Hdu) -> Option<&super::compressed::Lazy> {
        if hdu.kind == HduKind::BinTable {
            return None;
        }
        self.lazy.get(hdu.index).and_then(Option::as_ref)
    }

    /// For a tile-compressed image HDU, how it is compressed
    /// (`"RICE_1, tiles 100x1"`, with the quantization of floats); `None`
    /// for any other HDU.
    pub fn compression(&self, index: usize) -> Option<String> {
        Some(self.lazy.get(index)?.as_ref()?.describe())
    }

    /// True when HDU `index` is a tile-compressed image (read through
    /// [`FitsFile::read_image`], which decodes only the tiles a cut-out
    /// touches).
    pub fn is_tile_compressed(&self, index: usize) -> bool {
        self.lazy.get(index).is_some_and(Option::is_some)
    }

    /// The tile decoding done so far by this file (tiles and their pixels).
    ///
    /// ```no_run
    /// # let f = daf_storages::fits::FitsFile::open("img.fits.fz").unwrap();
    /// let (_, _, px) = f.read_image::<f32>(1, Some((100, 200, 100, 100))).unwrap();
    /// println!("{} tiles decoded", f.tile_stats().tiles);
    /// ```
    pub fn tile_stats(&self) -> super::compressed::TileStats {
        self.tiles.get()
    }

    /// The size the file would have with every image stored plain (its
    /// size when nothing is tile-compressed).
    pub fn plain_len(&self) -> usize {
        let mut n = self.bytes().len();
        for (i, l) in self.lazy.iter().enumerate() {
            if l.is_some() {
                let h = &self.hdus[i];
                n = n.saturating_add(h.data_len.div_ceil(BLOCK_LEN) * BLOCK_LEN);
            }
        }
        n
    }

    /// The data of an image HDU for reading: plain bytes in place, or the
    /// decoded tiles (all of them, or only those `bbox` touches; then the
    /// returned stride is the box width and the box starts at (0, 0)).
    fn image_data(
        &self,
        hdu: &Hdu,
        w: usize,
        bbox: (usize, usize, usize, usize),
    ) -> Result<(std::borrow::Cow<'_, [u8]>, usize, usize, usize)> {
        let (bx, by, bw, bh) = bbox;
        let Some(l) = self.lazy_of(hdu) else {
            return Ok((self.raw_data(hdu).into(), w, bx, by));
        };
        let err = |m: String| {
            format_err(
                &self.path,
                format!("compressed image in HDU {}: {m}", hdu.index),
            )
        };
        let (_, h) = hdu.image_dims().unwrap_or((w, 0));
        if bw == w && bh == h {
            return Ok((l.full(self, &self.tiles).map_err(err)?.into(), w, bx, by));
        }
        let part = l.decode_box(self, bbox, &self.tiles).map_err(err)?;
        Ok((part.into(), bw, 0, 0))
    }

    fn check_image(&self, index: usize) -> Result<(&Hdu, usize, usize)> {
        let hdu = self.hdu(index)?;
        if !matches!(hdu.kind, HduKind::Primary | HduKind::Image) {
            return Err(format_err(
                &self.path,
                format!("HDU {index} is a {}, not an image", hdu.kind.name()),
            ));
        }
        if hdu.is_random_groups() {
            return Err(format_err(
                &self.path,
                format!("HDU {index} holds random-groups data, not an image"),
            ));
        }
        let (w, h) = hdu.image_dims().ok_or_else(|| {
            format_err(
                &self.path,
                format!(
                    "HDU {index} has {} axes {:?}; only 2-d images are supported",
                    hdu.naxes.len(),
                    hdu.naxes
                ),
            )
        })?;
        let need = (w as u64)
            .checked_mul(h as u64)
            .and_then(|n| n.checked_mul(hdu.bitpix.unsigned_abs() as u64 / 8));
        if need.is_none_or(|n| n > hdu.data_len as u64) {
            return Err(format_err(
                &self.path,
                format!(
                    "HDU {index}: its {} data bytes do not hold the {w}x{h} image (GCOUNT = {:?})",
                    hdu.data_len,
                    hdu.value("GCOUNT").map(Value::display)
                ),
            ));
        }
        Ok((hdu, w, h))
    }

    /// Reads image HDU `index` as `T`, whole (`bbox = None`) or the local box
    /// `(x0, y0, width, height)`. Returns `(width, height, pixels)`.
    ///
    /// When the stored type is `T`'s own (same BITPIX, BSCALE 1, `T`'s BZERO)
    /// the big-endian bytes are converted in bulk. Full-width reads of a
    /// plain file copy the bytes with positioned reads through a small
    /// buffer that stays in cache (no file page is mapped, so the peak
    /// memory is the image itself), into pixel memory the kernel is asked to
    /// back with huge pages (a 64 MiB image then takes 32 page faults, not
    /// 16,384), split over up to 4 threads for images of 16 MiB and more;
    /// other sources convert from memory, releasing mapped pages as they go.
    /// A box touches only its rows. Otherwise the stored values are scaled
    /// (`BSCALE * v + BZERO`) and converted.
    pub fn read_image<T: Pixel>(
        &self,
        index: usize,
        bbox: Option<(usize, usize, usize, usize)>,
    ) -> Result<(usize, usize, Vec<T>)> {
        let (hdu, w, h) = self.check_image(index)?;
        let (bx, by, bw, bh) = bbox.unwrap_or((0, 0, w, h));
        if bx.checked_add(bw).is_none_or(|e| e > w) || by.checked_add(bh).is_none_or(|e| e > h) {
            return Err(StorageError::state(
                "FitsStorage",
                format!(
                    "cut-out {bw}x{bh} at local ({bx}, {by}) does not fit in the {w}x{h} image of HDU {index} of {}",
                    self.path.display()
                ),
            ));
        }
        let size = (hdu.bitpix.unsigned_abs() / 8) as usize;
        let n = bw * bh;
        if n == 0 {
            return Ok((bw, bh, Vec::new()));
        }
        let lazy = self.lazy_of(hdu).is_some();
        // Tiles are decoded before the output is allocated, so a header
        // claiming a huge image costs only what its data decodes to.
        let (data, w, bx, by) = self.image_data(hdu, w, (bx, by, bw, bh))?;
        let data = &data[..];
        let mut out = pixel_buffer::<T>(n);
        let native = hdu.bitpix == T::BITPIX && hdu.bscale == 1.0 && hdu.bzero == T::BZERO;
        let full_width = bx == 0 && bw == w;
        if let (true, true, false, Some(file)) = (native, full_width, lazy, &self.file) {
            let start = (hdu.data_offset + by * w * size) as u64;
            read_native_at(file, start, &mut out).map_err(|e| StorageError::io(&self.path, e))?;
        } else if native && full_width {
            let start = by * w * size;
            let src = &data[start..start + n * size];
            // Chunks of 4 MiB: convert, then let the kernel drop the mapped pages.
            let per = (4 << 20) / size;
            for (i, dst) in out.chunks_mut(per).enumerate() {
                let s = &src[i * per * size..(i * per + dst.len()) * size];
                T::decode_be(s, dst);
                if !lazy {
                    self.release(hdu.data_offset + start + i * per * size, s.len());
                }
            }
        } else if native {
            for (r, dst) in out.chunks_mut(bw).enumerate() {
                let off = ((by + r) * w + bx) * size;
                T::decode_be(&data[off..off + bw * size], dst);
            }
        } else {
            let mut tmp = vec![0f64; bw];
            let blank = match hdu.value("BLANK") {
                Some(Value::Int(b)) if hdu.bitpix > 0 => Some(*b as f64),
                _ => None,
            };
            for (r, dst) in out.chunks_mut(bw).enumerate() {
                let off = ((by + r) * w + bx) * size;
                decode_stored_f64(hdu.bitpix, &data[off..off + bw * size], &mut tmp);
                for (d, v) in dst.iter_mut().zip(&tmp) {
                    *d = if blank == Some(*v) {
                        T::from_f64(f64::NAN)
                    } else {
                        T::from_f64(v * hdu.bscale + hdu.bzero)
                    };
                }
            }
        }
        Ok((bw, bh, out))
    }

    /// Min, max and mean of the scaled pixels of image HDU `index` (NaN and
    /// BLANK skipped), streaming over the data; `None` if there are no pixels.
    pub fn image_stats(&self, index: usize) -> Result<Option<(f64, f64, f64)>> {
        let hdu = self.hdu(index)?;
        if !matches!(hdu.kind, HduKind::Primary | HduKind::Image) {
            return Err(format_err(
                &self.path,
                format!("HDU {index} is a {}, not an image", hdu.kind.name()),
            ));
        }
        if hdu.is_random_groups() {
            return Ok(None);
        }
        let size = (hdu.bitpix.unsigned_abs() / 8) as usize;
        let data = match self.lazy_of(hdu) {
            Some(l) => l.full(self, &self.tiles).map_err(|m| {
                format_err(&self.path, format!("compressed image in HDU {index}: {m}"))
            })?,
            None => self.raw_data(hdu),
        };
        let blank = match hdu.value("BLANK") {
            Some(Value::Int(b)) if hdu.bitpix > 0 => Some(*b as f64),
            _ => None,
        };
        let (mut lo, mut hi, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0u64);
        let mut tmp = vec![0f64; 65536.min(data.len() / size.max(1))];
        for chunk in data.chunks(tmp.len().max(1) * size) {
            let m = chunk.len() / size;
            decode_stored_f64(hdu.bitpix, chunk, &mut tmp[..m]);
            for v in &tmp[..m] {
                if v.is_nan() || blank == Some(*v) {
                    continue;
                }
                let p = v * hdu.bscale + hdu.bzero;
                lo = lo.min(p);
                hi = hi.max(p);
                sum += p;
                n += 1;
            }
        }
        Ok((n > 0).then(|| (lo, hi, sum / n as f64)))
    }

    fn release(&self, offset: usize, len: usize) {
        if let Bytes::Map(m) = &self.bytes {
            #[cfg(unix)]
            {
                // SAFETY: the map is read-only and backed by the file, so
                // dropping its pages only makes a later access read them again.
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
                };
            }
            #[cfg(not(unix))]
            let _ = (m, offset, len);
        }
    }
}

/// `n` default pixels; for large images, memory the kernel is asked to back
/// with transparent huge pages (as NumPy does for its large arrays): the
/// pages are faulted in and zeroed 2 MiB at a time instead of 4 KiB, which
/// is most of the cost of a fresh 64 MiB buffer.
pub(crate) fn pixel_buffer<T: Pixel>(n: usize) -> Vec<T> {
    let mut v = vec![T::default(); n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = std::mem::size_of_val(v.as_slice());
        if bytes >= 2 * HUGE {
            let start = v.as_mut_ptr() as usize;
            let first = start.next_multiple_of(HUGE);
            let end = (start + bytes) / HUGE * HUGE;
            if end > first {
                // SAFETY: advice on whole pages inside `v`'s own allocation,
                // which changes how they are backed, never their contents;
                // an error (no THP support) is harmless and ignored.
                unsafe {
                    libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    v
}

/// Fills `out` with the native pixels whose big-endian bytes start at
/// `offset` of `file`: positioned reads into a 64 KiB buffer, converted from
/// there; images of 16 MiB and more are split over up to 4 threads.
fn read_native_at<T: Pixel>(file: &File, offset: u64, out: &mut [T]) -> std::io::Result<()> {
    let size = std::mem::size_of::<T>();
    let bytes = std::mem::size_of_val(out);
    let threads = if bytes >= 16 << 20 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
            .min(bytes / (4 << 20))
    } else {
        1
    };
    if threads <= 1 {
        return read_native_part(file, offset, out);
    }
    let per = out.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = out
            .chunks_mut(per)
            .enumerate()
            .map(|(i, part)| {
                let off = offset + (i * per * size) as u64;
                s.spawn(move || read_native_part(file, off, part))
            })
            .collect();
        parts
            .into_iter()
            .try_for_each(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

fn read_native_part<T: Pixel>(file: &File, offset: u64, out: &mut [T]) -> std::io::Result<()> {
    let size = std::mem::size_of::<T>();
    let per = (64 << 10) / size;
    let mut buf = vec![0u8; per.min(out.len()) * size];
    for (i, dst) in out.chunks_mut(per).enumerate() {
        let b = &mut buf[..std::mem::size_of_val(dst)];
        read_exact_at(file, b, offset + (i * per * size) as u64)?;
        T::decode_be(b, dst);
    }
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn data_of(b: &Bytes) -> &[u8] {
    match b {
        Bytes::Map(m) => m,
        Bytes::Owned(v) => v,
    }
}

/// Finds every HDU. Errors (naming `path`) on anything that is not FITS, a
/// truncated header or data, or invalid mandatory keywords.
fn scan(path: &Path, bytes: &[u8]) -> Result<Vec<Hdu>> {
    let err = |m: String| format_err(path, m);
    if bytes.len() < BLOCK_LEN || !bytes.starts_with(b"SIMPLE  =") {
        if !bytes.starts_with(b"SIMPLE  =") {
            return Err(err(
                "not a FITS file (it does not start with SIMPLE  =)".into()
            ));
        }
        return Err(err(format!(
            "truncated: {} bytes, less than one 2880-byte header block",
            bytes.len()
        )));
    }
    let mut hdus = Vec::new();
    let mut off = 0usize;
    while off < bytes.len() {
        let index = hdus.len();
        if index > 0 {
            // Trailing blocks that are not an extension header are ignored
            // (as astropy and cfitsio do), but only after at least one HDU.
            if bytes.len() - off < BLOCK_LEN || !bytes[off..].starts_with(b"XTENSION=") {
                break;
            }
        }
        // Header: whole blocks until the END card.
        let mut end_card = None;
        let mut pos = off;
        'blocks: while pos + BLOCK_LEN <= bytes.len() {
            for c in 0..BLOCK_LEN / CARD_LEN {
                let card = &bytes[pos + c * CARD_LEN..pos + (c + 1) * CARD_LEN];
                if card.starts_with(b"END") && card[3..].iter().all(|&b| b == b' ') {
                    end_card = Some(pos + c * CARD_LEN);
                    break 'blocks;
                }
            }
            pos += BLOCK_LEN;
        }
        let Some(end) = end_card else {
            return Err(err(format!(
                "truncated header of HDU {index} at byte {off}: no END card within whole 2880-byte blocks (file has {} bytes)",
                bytes.len()
            )));
        };
        let header_end = (end / BLOCK_LEN + 1) * BLOCK_LEN;
        let cards = parse_cards(&bytes[off..end + CARD_LEN]);
        let value = |k: &str| {
            cards
                .iter()
                .find(|c| c.key == k)
                .and_then(|c| c.value.clone())
        };
        let int = |k: &str| -> Result<i64> {
            match value(k) {
                Some(Value::Int(i)) => Ok(i),
                Some(other) => Err(err(format!(
                    "HDU {index}: {k} is not an integer ({})",
                    other.display()
                ))),
                None => Err(err(format!("HDU {index}: missing mandatory keyword {k}"))),
            }
        };
        let kind = if index == 0 {
            if cards.first().map(|c| c.key.as_str()) != Some("SIMPLE") {
                return Err(err("not a FITS file (first card is not SIMPLE)".into()));
            }
            HduKind::Primary
        } else {
            match value("XTENSION") {
                Some(Value::Str(s)) => match s.as_str() {
                    "IMAGE" => HduKind::Image,
                    "BINTABLE" => HduKind::BinTable,
                    "TABLE" => HduKind::AsciiTable,
                    other => HduKind::Other(other.to_string()),
                },
                _ => return Err(err(format!("HDU {index}: XTENSION is not a string"))),
            }
        };
        let (bitpix, naxes, data_len) = data_size(path, index, &cards)?;
        let pcount = if index == 0 && naxes.first().is_none_or(|&n| n != 0) {
            0
        } else {
            int("PCOUNT").unwrap_or(0).max(0) as usize
        };
        let data_offset = header_end;
        if data_offset
            .checked_add(data_len)
            .is_none_or(|e| e > bytes.len())
        {
            return Err(err(format!(
                "truncated: HDU {index} needs {data_len} data bytes from byte {data_offset}, the file has {}",
                bytes.len()
            )));
        }
        let num = |k: &str, d: f64| value(k).and_then(|v| v.as_f64()).unwrap_or(d);
        hdus.push(Hdu {
            index,
            kind,
            bitpix: bitpix as i32,
            naxes,
            pcount,
            header_offset: off,
            data_offset,
            data_len,
            bscale: num("BSCALE", 1.0),
            bzero: num("BZERO", 0.0),
            cards,
        });
        off = data_offset + data_len.div_ceil(BLOCK_LEN) * BLOCK_LEN;
        if hdus.len() > 100_000 {
            return Err(err("more than 100000 HDUs".into()));
        }
    }
    Ok(hdus)
}
