//! Tile-compressed images (`.fz`, `ZIMAGE = T`, the FITS tiled image
//! compression convention, FITS 4.0 sec. 10), decompressed in Rust into plain
//! FITS bytes in memory, which the ordinary scanner then reads. Every other
//! HDU is copied as it is.
//!
//! Why not cfitsio: the bundled cfitsio 3.49 crashes the process on damaged
//! files (SIGSEGV, SIGFPE on `ZTILE1 = 0`, SIGABRT in its HCOMPRESS decoder),
//! which no validation before the call can fully prevent because the damage
//! may be in the compressed bytes. Here every header value is checked against
//! the standard and the table, every heap descriptor against the heap, every
//! decoder reads through a bounds-checked cursor, and output grows only with
//! what the compressed bytes actually decode to.
//!
//! Supported: `RICE_1` (`RICE_ONE`), `GZIP_1`, `GZIP_2`, `NOCOMPRESS`, the
//! `UNCOMPRESSED_DATA` / `GZIP_COMPRESSED_DATA` fallback columns, and
//! floating-point quantization (`ZSCALE`/`ZZERO`, `NO_DITHER`,
//! `SUBTRACTIVE_DITHER_1`, `SUBTRACTIVE_DITHER_2`) with `ZBLANK` (null pixels
//! come back as NaN). `PLIO_1` and `HCOMPRESS_1` are refused with an error
//! naming them.

use std::io::Read;
use std::path::Path;

use super::file::{format_err, FitsFile, Hdu, HduKind};
use super::header::{format_header, is_structural, Card, Value, BLOCK_LEN};
use crate::{Result, StorageError};

/// True for a binary table that holds a tile-compressed image.
pub fn is_tile_compressed(hdu: &Hdu) -> bool {
    hdu.kind == HduKind::BinTable && hdu.value("ZIMAGE") == Some(&Value::Logical(true))
}

/// The compression algorithms daf decodes.
pub const DECODED_ALGORITHMS: [&str; 4] = ["RICE_1", "GZIP_1", "GZIP_2", "NOCOMPRESS"];

fn unsupported_message(cmp: &str) -> String {
    format!(
        "tile compression {cmp} is not supported (daf decodes {})",
        DECODED_ALGORITHMS.join(", ")
    )
}

/// A typed [`StorageError::Unsupported`] when `hdu` is compressed with an
/// algorithm of the FITS standard that daf does not decode (`PLIO_1`,
/// `HCOMPRESS_1`).
fn check_supported(path: &Path, hdu: &Hdu) -> Result<()> {
    if let Some(Value::Str(s)) = hdu.value("ZCMPTYPE") {
        let cmp = s.trim();
        if matches!(cmp, "PLIO_1" | "HCOMPRESS_1") {
            return Err(StorageError::Unsupported {
                storage: "FitsStorage".into(),
                what: path.display().to_string(),
                message: format!("HDU {}: {}", hdu.index, unsupported_message(cmp)),
            });
        }
    }
    Ok(())
}

fn is_compression_key(key: &str) -> bool {
    const PREFIXES: [&str; 17] = [
        "ZIMAGE", "ZBITPIX", "ZNAXIS", "ZTILE", "ZCMPTYPE", "ZNAME", "ZVAL", "ZQUANTIZ", "ZDITHER",
        "ZSIMPLE", "ZEXTEND", "ZBLOCKED", "ZPCOUNT", "ZGCOUNT", "ZTENSION", "ZHECKSUM", "ZDATASUM",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
        || key == "ZBLANK"
        || key == "ZSCALE"
        || key == "ZZERO"
        || key == "CHECKSUM"
        || key == "DATASUM"
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Algo {
    Rice,
    Gzip1,
    Gzip2,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dither {
    No,
    Sub1,
    Sub2,
}

/// A variable-length column (`P`/`Q` descriptor) of the compressed table.
#[derive(Debug, Clone, Copy)]
struct VarCol {
    offset: usize,
    /// 8 for `P`, 16 for `Q`.
    desc: usize,
    /// Bytes per element of the array (B 1, I 2, J/E 4, K/D 8).
    elem: usize,
}

/// A fixed-width scalar column (ZSCALE, ZZERO, ZBLANK).
#[derive(Debug, Clone, Copy)]
struct FixCol {
    offset: usize,
    code: char,
}

struct Layout<'a> {
    heap: &'a [u8],
    /// Where the heap starts, from the start of the HDU's data.
    heap_offset: usize,
    data: &'a [u8],
    row_bytes: usize,
    compressed: VarCol,
    gzip_fallback: Option<VarCol>,
    raw_fallback: Option<VarCol>,
    zscale: Option<FixCol>,
    zzero: Option<FixCol>,
    zblank: Option<FixCol>,
}

impl Layout<'_> {
    fn var(&self, c: VarCol, row: usize) -> std::result::Result<&[u8], String> {
        let at = row * self.row_bytes + c.offset;
        let d = &self.data[at..at + c.desc];
        let (n, off) = if c.desc == 8 {
            (
                i32::from_be_bytes(d[..4].try_into().expect("4")) as i64,
                i32::from_be_bytes(d[4..].try_into().expect("4")) as i64,
            )
        } else {
            (
                i64::from_be_bytes(d[..8].try_into().expect("8")),
                i64::from_be_bytes(d[8..].try_into().expect("8")),
            )
        };
        if n < 0 || off < 0 {
            return Err(format!("tile {row}: negative heap descriptor ({n}, {off})"));
        }
        let len = (n as u64).checked_mul(c.elem as u64);
        let end = len.and_then(|l| l.checked_add(off as u64));
        match end {
            Some(e) if e <= self.heap.len() as u64 => Ok(&self.heap[off as usize..e as usize]),
            _ => Err(format!(
                "tile {row}: heap descriptor ({n} x {} bytes at {off}) runs past the {}-byte heap",
                c.elem,
                self.heap.len()
            )),
        }
    }
    /// The heap range (from the heap's start) of column `c` in `row`, as
    /// its descriptor says, checked against the heap.
    fn var_range(
        &self,
        c: VarCol,
        row: usize,
    ) -> std::result::Result<std::ops::Range<usize>, String> {
        let b = self.var(c, row)?;
        let start = b.as_ptr() as usize - self.heap.as_ptr() as usize;
        Ok(start..start + b.len())
    }
    fn num(&self, c: Option<FixCol>, row: usize) -> Option<f64> {
        let c = c?;
        let at = row * self.row_bytes + c.offset;
        let b = &self.data[at..];
        Some(match c.code {
            'D' => f64::from_be_bytes(b[..8].try_into().ok()?),
            'E' => f32::from_be_bytes(b[..4].try_into().ok()?) as f64,
            'J' => i32::from_be_bytes(b[..4].try_into().ok()?) as f64,
            'K' => i64::from_be_bytes(b[..8].try_into().ok()?) as f64,
            'I' => i16::from_be_bytes(b[..2].try_into().ok()?) as f64,
            _ => return None,
        })
    }
}

fn elem_size(code: char) -> Option<usize> {
    Some(match code {
        'L' | 'B' | 'A' | 'X' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' | 'P' => 8,
        'M' | 'Q' => 16,
        _ => return None,
    })
}

/// Parses `rT(...)` into (repeat, code, element code of a P/Q array).
fn parse_tform(t: &str) -> Option<(usize, char, Option<char>)> {
    let t = t.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let repeat = if digits == 0 {
        1
    } else {
        t[..digits].parse().ok()?
    };
    let mut rest = t[digits..].chars();
    let code = rest.next()?;
    let inner = if code == 'P' || code == 'Q' {
        Some(rest.next()?)
    } else {
        None
    };
    Some((repeat, code, inner))
}

#[derive(Debug)]
struct Spec {
    bitpix: i32,
    naxes: Vec<usize>,
    tiles: Vec<usize>,
    algo: Algo,
    block: usize,
    bytepix: usize,
    dither: Dither,
    dither0: i64,
    zscale_kw: Option<f64>,
    zzero_kw: Option<f64>,
    zblank_kw: Option<i64>,
}

/// Checks every compression keyword of `hdu` against the standard and the
/// table; returns what decoding needs, or a message naming the keyword.
fn spec(hdu: &Hdu) -> std::result::Result<Spec, String> {
    let int = |k: &str| -> std::result::Result<Option<i64>, String> {
        match hdu.value(k) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(v) => Err(format!("{k} is not an integer ({})", v.display())),
        }
    };
    let bitpix = int("ZBITPIX")?.ok_or("missing ZBITPIX")?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(format!("invalid ZBITPIX {bitpix}"));
    }
    let naxis = int("ZNAXIS")?.ok_or("missing ZNAXIS")?;
    if !(1..=999).contains(&naxis) {
        return Err(format!("invalid ZNAXIS {naxis} (must be 1 to 999)"));
    }
    let mut naxes = Vec::new();
    let mut tiles = Vec::new();
    for i in 1..=naxis {
        let n = int(&format!("ZNAXIS{i}"))?.ok_or_else(|| format!("missing ZNAXIS{i}"))?;
        if n < 1 {
            return Err(format!("invalid ZNAXIS{i} = {n} (must be positive)"));
        }
        let default = if i == 1 { n } else { 1 };
        let t = int(&format!("ZTILE{i}"))?.unwrap_or(default);
        if t < 1 {
            return Err(format!("invalid ZTILE{i} = {t} (must be positive)"));
        }
        let n = usize::try_from(n).map_err(|_| format!("ZNAXIS{i} too large"))?;
        naxes.push(n);
        tiles.push((t as u64).min(n as u64) as usize);
    }
    let cmp = match hdu.value("ZCMPTYPE") {
        Some(Value::Str(s)) => s.trim().to_string(),
        Some(v) => return Err(format!("ZCMPTYPE is not a string ({})", v.display())),
        None => return Err("missing ZCMPTYPE".into()),
    };
    let algo = match cmp.as_str() {
        "RICE_1" | "RICE_ONE" => Algo::Rice,
        "GZIP_1" => Algo::Gzip1,
        "GZIP_2" => Algo::Gzip2,
        "NOCOMPRESS" => Algo::None,
        "PLIO_1" | "HCOMPRESS_1" => return Err(unsupported_message(&cmp)),
        other => return Err(format!("unknown ZCMPTYPE {other:?}")),
    };
    // ZNAMEi / ZVALi: BLOCKSIZE and BYTEPIX for RICE.
    let mut block = 32usize;
    let mut bytepix = match bitpix {
        8 => 1,
        16 => 2,
        _ => 4,
    };
    for i in 1..=999 {
        let Some(Value::Str(name)) = hdu.value(&format!("ZNAME{i}")) else {
            break;
        };
        let v = hdu.value(&format!("ZVAL{i}")).and_then(Value::as_i64);
        match (name.trim(), v) {
            ("BLOCKSIZE", Some(b)) if (1..=65536).contains(&b) => block = b as usize,
            ("BYTEPIX", Some(b)) if [1, 2, 4, 8].contains(&b) => bytepix = b as usize,
            ("BLOCKSIZE", _) | ("BYTEPIX", _) => {
                return Err(format!("invalid ZVAL{i} for {}", name.trim()))
            }
            _ => {}
        }
    }
    if algo == Algo::Rice && bytepix == 8 {
        return Err("RICE_1 with BYTEPIX 8 is not defined".into());
    }
    let dither = match hdu.value("ZQUANTIZ") {
        None => Dither::No,
        Some(Value::Str(s)) => match s.trim() {
            "NO_DITHER" | "NONE" => Dither::No,
            "SUBTRACTIVE_DITHER_1" => Dither::Sub1,
            "SUBTRACTIVE_DITHER_2" => Dither::Sub2,
            other => return Err(format!("unknown ZQUANTIZ {other:?}")),
        },
        Some(v) => return Err(format!("ZQUANTIZ is not a string ({})", v.display())),
    };
    let dither0 = int("ZDITHER0")?.unwrap_or(1);
    if dither != Dither::No && !(1..=10000).contains(&dither0) {
        return Err(format!("invalid ZDITHER0 {dither0} (must be 1 to 10000)"));
    }
    let fnum = |k: &str| hdu.value(k).and_then(Value::as_f64);
    Ok(Spec {
        bitpix: bitpix as i32,
        naxes,
        tiles,
        algo,
        block,
        bytepix,
        dither,
        dither0,
        zscale_kw: fnum("ZSCALE"),
        zzero_kw: fnum("ZZERO"),
        zblank_kw: int("ZBLANK")?,
    })
}

/// The columns of the compressed table, checked against NAXIS1.
fn layout<'a>(file: &'a FitsFile, hdu: &Hdu) -> std::result::Result<Layout<'a>, String> {
    if hdu.naxes.len() != 2 {
        return Err("a compressed image table needs NAXIS = 2".into());
    }
    let (row_bytes, rows) = (hdu.naxes[0], hdu.naxes[1]);
    let nfields = match hdu.value("TFIELDS") {
        Some(Value::Int(n)) if (1..=999).contains(n) => *n as usize,
        other => return Err(format!("invalid TFIELDS {other:?} (must be 1 to 999)")),
    };
    let data = file.raw_data(hdu);
    let table = row_bytes
        .checked_mul(rows)
        .filter(|&t| t <= data.len())
        .ok_or("the table is larger than its data")?;
    let theap = match hdu.value("THEAP") {
        None => table,
        Some(Value::Int(t)) if *t >= table as i64 && (*t as u64) <= data.len() as u64 => {
            *t as usize
        }
        Some(v) => return Err(format!("invalid THEAP {}", v.display())),
    };
    let mut offset = 0usize;
    let (mut compressed, mut gz, mut raw) = (None, None, None);
    let (mut zs, mut zz, mut zb) = (None, None, None);
    for n in 1..=nfields {
        let tform = match hdu.value(&format!("TFORM{n}")) {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err(format!("missing TFORM{n}")),
        };
        let (repeat, code, inner) =
            parse_tform(&tform).ok_or_else(|| format!("bad TFORM{n} {tform:?}"))?;
        let size = elem_size(code).ok_or_else(|| format!("bad TFORM{n} {tform:?}"))?;
        let width = if code == 'X' {
            repeat.div_ceil(8)
        } else {
            repeat.checked_mul(size).ok_or("column too wide")?
        };
        let name = match hdu.value(&format!("TTYPE{n}")) {
            Some(Value::Str(s)) => s.trim().to_string(),
            _ => String::new(),
        };
        if offset.checked_add(width).is_none_or(|e| e > row_bytes) {
            return Err(format!("columns are wider than NAXIS1 = {row_bytes}"));
        }
        let var = |inner: Option<char>| -> std::result::Result<VarCol, String> {
            let elem = inner
                .and_then(elem_size)
                .filter(|_| repeat >= 1)
                .ok_or_else(|| format!("column {name} is not a P/Q array: {tform:?}"))?;
            Ok(VarCol {
                offset,
                desc: size,
                elem,
            })
        };
        match name.as_str() {
            "COMPRESSED_DATA" => compressed = Some(var(inner)?),
            "GZIP_COMPRESSED_DATA" => gz = Some(var(inner)?),
            "UNCOMPRESSED_DATA" => raw = Some(var(inner)?),
            "ZSCALE" | "ZZERO" | "ZBLANK" if inner.is_none() && repeat == 1 => {
                let c = Some(FixCol { offset, code });
                match name.as_str() {
                    "ZSCALE" => zs = c,
                    "ZZERO" => zz = c,
                    _ => zb = c,
                }
            }
            _ => {}
        }
        offset += width;
    }
    let compressed = compressed.ok_or("no COMPRESSED_DATA column")?;
    let pcount = hdu.pcount;
    let heap_end = (theap as u64)
        .checked_add(pcount as u64)
        .map_or(data.len(), |e| (e as usize).min(data.len()));
    let heap = data.get(theap..heap_end).unwrap_or(&[]);
    Ok(Layout {
        heap,
        heap_offset: theap,
        data: &data[..table],
        row_bytes,
        compressed,
        gzip_fallback: gz,
        raw_fallback: raw,
        zscale: zs,
        zzero: zz,
        zblank: zb,
    })
}

/// A bounds-checked reader of compressed bytes.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> std::result::Result<u32, String> {
        let v = *self
            .b
            .get(self.i)
            .ok_or("RICE data ends before the tile is complete")?;
        self.i += 1;
        Ok(v as u32)
    }
}

/// Rice decoding (Rice, Yeh & Miller 1993, as in the FITS convention):
/// `n` values of `bytepix` bytes, differences coded in blocks of `block`.
pub(crate) fn rice_decode(
    c: &[u8],
    n: usize,
    block: usize,
    bytepix: usize,
) -> std::result::Result<Vec<i64>, String> {
    let (fsbits, fsmax, bbits): (u32, i64, u32) = match bytepix {
        1 => (3, 6, 8),
        2 => (4, 14, 16),
        _ => (5, 25, 32),
    };
    let mask: u64 = if bbits == 32 {
        0xFFFF_FFFF
    } else {
        (1u64 << bbits) - 1
    };
    if c.len() < bytepix + 1 {
        return Err("RICE tile shorter than its first pixel".into());
    }
    let mut lastpix: u64 = 0;
    for &byte in &c[..bytepix] {
        lastpix = (lastpix << 8) | byte as u64;
    }
    let mut cur = Cursor { b: c, i: bytepix };
    // Grows with what decodes, never with what the header claims.
    let mut out: Vec<i64> = Vec::with_capacity(n.min(c.len() * 8));
    let mut b: u64 = cur.next()? as u64;
    let mut nbits: i64 = 8;
    let sign = |v: u64| -> i64 {
        let v = v & mask;
        match bytepix {
            1 => v as u8 as i8 as i64,
            2 => v as u16 as i16 as i64,
            _ => v as u32 as i32 as i64,
        }
    };
    let undo = |diff: u64| -> u64 {
        if diff & 1 == 0 {
            diff >> 1
        } else {
            !(diff >> 1) & mask
        }
    };
    let mut i = 0;
    while i < n {
        let imax = (i + block).min(n);
        nbits -= fsbits as i64;
        while nbits < 0 {
            b = (b << 8) | cur.next()? as u64;
            nbits += 8;
        }
        let fs = (b >> nbits) as i64 - 1;
        b &= (1u64 << nbits) - 1;
        if fs < 0 {
            for _ in i..imax {
                out.push(sign(lastpix));
            }
        } else if fs == fsmax {
            for _ in i..imax {
                let mut k = bbits as i64 - nbits;
                let mut diff: u64 = b << k;
                k -= 8;
                while k >= 0 {
                    b = cur.next()? as u64;
                    diff |= b << k;
                    k -= 8;
                }
                if nbits > 0 {
                    b = cur.next()? as u64;
                    diff |= b >> (-k);
                    b &= (1u64 << nbits) - 1;
                } else {
                    b = 0;
                }
                lastpix = (undo(diff & mask) + lastpix) & mask;
                out.push(sign(lastpix));
            }
        } else if fs > fsmax {
            return Err(format!("RICE block code {fs} out of range"));
        } else {
            for _ in i..imax {
                while b == 0 {
                    nbits += 8;
                    b = cur.next()? as u64;
                    if nbits > 64 + 8 {
                        return Err("RICE run of zero bits too long".into());
                    }
                }
                let top = 64 - b.leading_zeros() as i64; // bits up to the leading one
                let nzero = nbits - top;
                nbits -= nzero + 1;
                if nbits < 0 {
                    return Err("corrupt RICE data".into());
                }
                b ^= 1u64 << nbits;
                nbits -= fs;
                while nbits < 0 {
                    b = (b << 8) | cur.next()? as u64;
                    nbits += 8;
                }
                if nzero > 40 {
                    return Err("corrupt RICE data (difference too large)".into());
                }
                let diff = ((nzero as u64) << fs) | (b >> nbits);
                b &= (1u64 << nbits) - 1;
                lastpix = (undo(diff & mask) + lastpix) & mask;
                out.push(sign(lastpix));
            }
        }
        i = imax;
    }
    Ok(out)
}

/// Inflates a zlib or gzip stream (cfitsio writes gzip) into at most `limit`
/// bytes; more is an error.
fn inflate(c: &[u8], limit: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(limit.min(c.len() * 4));
    let r = if c.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(c)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(c)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
    };
    r.map_err(|e| format!("corrupt GZIP tile: {e}"))?;
    if out.len() > limit {
        return Err(format!("GZIP tile inflates beyond its {limit} bytes"));
    }
    Ok(out)
}

/// Big-endian integers of `size` bytes (1 unsigned, else signed).
fn be_ints(b: &[u8], size: usize) -> Vec<i64> {
    b.chunks_exact(size)
        .map(|c| match size {
            1 => c[0] as i64,
            2 => i16::from_be_bytes([c[0], c[1]]) as i64,
            4 => i32::from_be_bytes(c.try_into().expect("4")) as i64,
            _ => i64::from_be_bytes(c.try_into().expect("8")),
        })
        .collect()
}

fn unshuffle(b: &[u8], size: usize) -> Vec<u8> {
    let n = b.len() / size;
    let mut out = vec![0u8; n * size];
    for k in 0..size {
        for i in 0..n {
            out[i * size + k] = b[k * n + i];
        }
    }
    out
}

/// The table of 10,000 uniform deviates of the FITS subtractive dithering
/// (Park & Miller's minimal standard generator, stored as f32, as the
/// convention specifies).
pub(crate) fn random_table() -> Vec<f32> {
    let (a, m) = (16807.0f64, 2147483647.0f64);
    let mut seed = 1.0f64;
    (0..10000)
        .map(|_| {
            let t = a * seed;
            seed = t - m * (t / m).trunc();
            (seed / m) as f32
        })
        .collect()
}

/// Where tile `t` (0-based, axis 1 fastest) lies: its start and shape.
fn tile_box(s: &Spec, mut t: usize) -> (Vec<usize>, Vec<usize>) {
    let mut start = Vec::with_capacity(s.naxes.len());
    let mut shape = Vec::with_capacity(s.naxes.len());
    for (n, tl) in s.naxes.iter().zip(&s.tiles) {
        let per = n.div_ceil(*tl);
        let k = t % per;
        t /= per;
        start.push(k * tl);
        shape.push((*tl).min(n - k * tl));
    }
    (start, shape)
}

/// Decodes tile `t` into big-endian stored values of `BITPIX` (floats
/// de-quantised; null pixels NaN).
fn decode_tile(
    l: &Layout<'_>,
    s: &Spec,
    t: usize,
    rand: &[f32],
) -> std::result::Result<Vec<u8>, String> {
    let size = (s.bitpix.unsigned_abs() / 8) as usize;
    let float = s.bitpix < 0;
    let (_, shape) = tile_box(s, t);
    let npix = shape.iter().product::<usize>();
    let c = l.var(l.compressed, t)?;
    let scale = l.num(l.zscale, t).or(s.zscale_kw);
    let zero = l.num(l.zzero, t).or(s.zzero_kw).unwrap_or(0.0);
    let quantized = float && scale.is_some() && !c.is_empty();
    let mut tile = Vec::with_capacity((npix * size).min(c.len().saturating_mul(64)));
    if c.is_empty() {
        // Fallback: the tile stored as plain values (gzipped or not).
        let plain = match (l.gzip_fallback, l.raw_fallback) {
            (Some(g), _) if !l.var(g, t)?.is_empty() => inflate(l.var(g, t)?, npix * size)?,
            (_, Some(r)) => l.var(r, t)?.to_vec(),
            _ => return Err(format!("tile {t} has no data")),
        };
        if plain.len() != npix * size {
            return Err(format!(
                "tile {t}: {} bytes for {npix} pixels of {size} bytes",
                plain.len()
            ));
        }
        return Ok(plain);
    }
    let ints: Vec<i64> = match s.algo {
        Algo::Rice => {
            rice_decode(c, npix, s.block, s.bytepix).map_err(|e| format!("tile {t}: {e}"))?
        }
        Algo::Gzip1 | Algo::Gzip2 | Algo::None => {
            // Element size: quantized floats are i32, else the image's.
            let es = if quantized { 4 } else { size };
            let raw = match s.algo {
                Algo::None => c.to_vec(),
                _ => inflate(c, npix * es).map_err(|e| format!("tile {t}: {e}"))?,
            };
            // cfitsio stores 8- and 16-bit integer tiles at their own size;
            // accept any whole element size that fits the pixels.
            let es = if raw.len() == npix * es {
                es
            } else if npix > 0
                && raw.len() % npix == 0
                && [1, 2, 4, 8].contains(&(raw.len() / npix))
            {
                raw.len() / npix
            } else {
                return Err(format!(
                    "tile {t}: {} bytes do not hold {npix} pixels",
                    raw.len()
                ));
            };
            let raw = if s.algo == Algo::Gzip2 {
                unshuffle(&raw, es)
            } else {
                raw
            };
            if float && !quantized {
                // Lossless floats: the bytes are the pixels.
                if es != size {
                    return Err(format!("tile {t}: float tile of {es}-byte values"));
                }
                return Ok(raw);
            }
            be_ints(&raw, es)
        }
    };
    if ints.len() != npix {
        return Err(format!(
            "tile {t}: {} pixels decoded, {npix} expected",
            ints.len()
        ));
    }
    if float {
        let scale = scale
            .ok_or_else(|| format!("tile {t}: integer tile of a float image without ZSCALE"))?;
        let blank = l.num(l.zblank, t).map(|b| b as i64).or(s.zblank_kw);
        let mut iseed = ((t as i64 + s.dither0 - 1).rem_euclid(10000)) as usize;
        let mut next = rand.get(iseed).map_or(0, |r| (*r as f64 * 500.0) as usize);
        for &v in &ints {
            let x = if Some(v) == blank {
                f64::NAN
            } else if s.dither == Dither::Sub2 && v == -2147483646 {
                0.0
            } else if s.dither == Dither::No {
                v as f64 * scale + zero
            } else {
                (v as f64 - rand[next] as f64 + 0.5) * scale + zero
            };
            if s.dither != Dither::No {
                next += 1;
                if next == 10000 {
                    iseed = (iseed + 1) % 10000;
                    next = (rand[iseed] as f64 * 500.0) as usize;
                }
            }
            if size == 4 {
                tile.extend_from_slice(&(x as f32).to_be_bytes());
            } else {
                tile.extend_from_slice(&x.to_be_bytes());
            }
        }
    } else {
        for &v in &ints {
            match size {
                1 => tile.push(v as u8),
                2 => tile.extend_from_slice(&(v as i16).to_be_bytes()),
                4 => tile.extend_from_slice(&(v as i32).to_be_bytes()),
                _ => tile.extend_from_slice(&v.to_be_bytes()),
            }
        }
    }
    Ok(tile)
}

/// The decoded image of one compressed HDU: big-endian stored values of
/// `BITPIX` (floats de-quantised; null pixels NaN).
fn decode_image(file: &FitsFile, hdu: &Hdu, s: &Spec) -> std::result::Result<Vec<u8>, String> {
    let l = layout(file, hdu)?;
    let rows = hdu.naxes[1];
    let ntiles = s
        .naxes
        .iter()
        .zip(&s.tiles)
        .try_fold(1usize, |a, (n, t)| a.checked_mul(n.div_ceil(*t)))
        .ok_or("tile count overflows")?;
    if ntiles != rows {
        return Err(format!(
            "the image needs {ntiles} tiles (ZNAXISn / ZTILEn) but the table has {rows} rows"
        ));
    }
    let size = (s.bitpix.unsigned_abs() / 8) as usize;
    let float = s.bitpix < 0;
    let rand = if float && s.dither != Dither::No {
        random_table()
    } else {
        Vec::new()
    };
    // Decode every tile first (so output is allocated only once the data
    // proved to hold it), then place them.
    let mut decoded: Vec<Vec<u8>> = Vec::with_capacity(rows.min(l.data.len()));
    for t in 0..rows {
        decoded.push(decode_tile(&l, s, t, &rand)?);
    }
    // Place the tiles.
    let total: usize = decoded.iter().map(Vec::len).sum();
    let npix_all = s.naxes.iter().product::<usize>();
    if total != npix_all * size {
        return Err("tiles do not add up to the image".into());
    }
    // Tiles are already in image order when, past the first axis a tile
    // does not span, every tile is one deep.
    let first_partial = s.tiles.iter().zip(&s.naxes).position(|(t, n)| t != n);
    if first_partial.is_none_or(|k| s.tiles[k + 1..].iter().all(|&t| t == 1)) {
        return Ok(decoded.concat());
    }
    let mut out = vec![0u8; total];
    let w = s.naxes[0];
    for (t, tile) in decoded.iter().enumerate() {
        let (start, shape) = tile_box(s, t);
        let rowlen = shape[0] * size;
        let nrows = tile.len() / rowlen.max(1);
        for r in 0..nrows {
            // Row r of the tile: its coordinates on axes 2.. in the image.
            let mut idx = 0usize;
            let mut stride = w;
            let mut rem = r;
            for ax in 1..s.naxes.len() {
                let k = rem % shape[ax];
                rem /= shape[ax];
                idx += (start[ax] + k) * stride;
                stride *= s.naxes[ax];
            }
            let dst = (idx + start[0]) * size;
            out[dst..dst + rowlen].copy_from_slice(&tile[r * rowlen..(r + 1) * rowlen]);
        }
    }
    Ok(out)
}

/// The header of the plain IMAGE HDU a compressed HDU stands for: the
/// image's structural cards, then every card that is not about the table
/// or the compression (one EXTNAME; BSCALE/BZERO/BLANK for integers only).
fn plain_cards(hdu: &Hdu, s: &Spec) -> Vec<Card> {
    let mut cards = vec![
        Card::new("XTENSION", Value::Str("IMAGE".into())),
        Card::new("BITPIX", Value::Int(s.bitpix as i64)),
        Card::new("NAXIS", Value::Int(s.naxes.len() as i64)),
    ];
    for (i, a) in s.naxes.iter().enumerate() {
        cards.push(Card::new(format!("NAXIS{}", i + 1), Value::Int(*a as i64)));
    }
    cards.push(Card::new("PCOUNT", Value::Int(0)));
    cards.push(Card::new("GCOUNT", Value::Int(1)));
    // One EXTNAME (a compressed header may carry several): the last one
    // that is not astropy's default COMPRESSED_IMAGE, else that default.
    let extname = hdu
        .cards
        .iter()
        .rev()
        .filter(|c| c.key == "EXTNAME")
        .find(|c| !matches!(&c.value, Some(Value::Str(s)) if s.trim() == "COMPRESSED_IMAGE"))
        .or_else(|| hdu.cards.iter().find(|c| c.key == "EXTNAME"));
    let mut seen_extname = false;
    for c in &hdu.cards {
        if c.key == "BSCALE" || c.key == "BZERO" || c.key == "BLANK" {
            // Integer images keep their scaling (we read stored values);
            // float images are read already scaled (and de-quantised).
            if s.bitpix > 0 {
                cards.push(c.clone());
            }
        } else if c.key == "EXTNAME" {
            if !seen_extname {
                cards.extend(extname.cloned());
            }
            seen_extname = true;
        } else if !is_structural(&c.key) && !is_compression_key(&c.key) {
            cards.push(c.clone());
        }
    }
    if s.bitpix > 0 && !hdu.cards.iter().any(|c| c.key == "BLANK") {
        if let Some(b) = s.zblank_kw {
            cards.push(Card::new("BLANK", Value::Int(b)));
        }
    }
    cards
}

/// Counts of the tile decoding done by one [`FitsFile`].
#[derive(Debug, Default)]
pub(crate) struct TileCounter {
    tiles: std::sync::atomic::AtomicUsize,
    pixels: std::sync::atomic::AtomicUsize,
}

/// How much tile decoding a [`FitsFile`] has done: tiles and the pixels
/// they held (see [`FitsFile::tile_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TileStats {
    /// Tiles decompressed.
    pub tiles: usize,
    /// Pixels in those tiles.
    pub pixels: usize,
}

impl TileCounter {
    fn add(&self, pixels: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.tiles.fetch_add(1, Relaxed);
        self.pixels.fetch_add(pixels, Relaxed);
    }
    pub(crate) fn get(&self) -> TileStats {
        use std::sync::atomic::Ordering::Relaxed;
        TileStats {
            tiles: self.tiles.load(Relaxed),
            pixels: self.pixels.load(Relaxed),
        }
    }
}

/// A tile-compressed image HDU whose tiles are decoded on demand: all of
/// them on a whole read (once, then kept), only those a cut-out touches
/// otherwise.
#[derive(Debug)]
pub(crate) struct Lazy {
    raw: Hdu,
    spec: Spec,
    full: std::sync::OnceLock<std::result::Result<Vec<u8>, String>>,
}

/// Checks the compressed HDU `hdu` of `file` (keywords, columns, tile
/// count) and returns the plain IMAGE HDU it stands for, with the state
/// that decodes it later. Nothing is decompressed here.
pub(crate) fn lazy_view(path: &Path, file: &FitsFile, hdu: &Hdu) -> Result<(Hdu, Lazy)> {
    let err = |m: String| format_err(path, format!("compressed image in HDU {}: {m}", hdu.index));
    check_supported(path, hdu)?;
    let s = spec(hdu).map_err(err)?;
    layout(file, hdu).map_err(err)?; // the columns are checked now
    let ntiles = s
        .naxes
        .iter()
        .zip(&s.tiles)
        .try_fold(1usize, |a, (n, t)| a.checked_mul(n.div_ceil(*t)))
        .ok_or_else(|| err("tile count overflows".into()))?;
    if ntiles != hdu.naxes[1] {
        return Err(err(format!(
            "the image needs {ntiles} tiles (ZNAXISn / ZTILEn) but the table has {} rows",
            hdu.naxes[1]
        )));
    }
    let size = (s.bitpix.unsigned_abs() / 8) as usize;
    let data_len = s
        .naxes
        .iter()
        .try_fold(size, |a, n| a.checked_mul(*n))
        .ok_or_else(|| err("image size overflows".into()))?;
    let cards = plain_cards(hdu, &s);
    let num = |k: &str, d: f64| {
        cards
            .iter()
            .find(|c| c.key == k)
            .and_then(|c| c.value.as_ref()?.as_f64())
            .unwrap_or(d)
    };
    let plain = Hdu {
        index: hdu.index,
        kind: HduKind::Image,
        bitpix: s.bitpix,
        naxes: s.naxes.clone(),
        pcount: 0,
        header_offset: hdu.header_offset,
        data_offset: hdu.data_offset,
        data_len,
        bscale: num("BSCALE", 1.0),
        bzero: num("BZERO", 0.0),
        cards,
    };
    Ok((
        plain,
        Lazy {
            raw: hdu.clone(),
            spec: s,
            full: std::sync::OnceLock::new(),
        },
    ))
}

impl Lazy {
    /// How the image is stored: the algorithm, its tile size and, for
    /// quantized floats, the quantization (`RICE_1, tiles 100x1,
    /// SUBTRACTIVE_DITHER_1`).
    pub(crate) fn describe(&self) -> String {
        let text = |k: &str| match self.raw.value(k) {
            Some(Value::Str(s)) => Some(s.trim().to_string()),
            _ => None,
        };
        let mut d = text("ZCMPTYPE").unwrap_or_else(|| "?".into());
        let tiles: Vec<String> = self.spec.tiles.iter().map(usize::to_string).collect();
        d.push_str(&format!(", tiles {}", tiles.join("x")));
        if let Some(q) = text("ZQUANTIZ") {
            d.push_str(&format!(", {q}"));
        }
        d
    }
    /// Every pixel (stored big-endian values), decoded on first use.
    pub(crate) fn full(
        &self,
        file: &FitsFile,
        counter: &TileCounter,
    ) -> std::result::Result<&[u8], String> {
        self.full
            .get_or_init(|| {
                for t in 0..self.raw.naxes[1] {
                    let (_, shape) = tile_box(&self.spec, t);
                    counter.add(shape.iter().product());
                }
                decode_image(file, &self.raw, &self.spec)
            })
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// The byte ranges (in the file) to fetch before decoding: the tiles
    /// under `bbox` (their compressed and fallback arrays), or all of the
    /// HDU's data. The table rows (the descriptors) must already be there.
    pub(crate) fn fetch_ranges(
        &self,
        file: &FitsFile,
        bbox: Option<(usize, usize, usize, usize)>,
    ) -> std::result::Result<Vec<std::ops::Range<usize>>, String> {
        let base = self.raw.data_offset;
        let Some((bx, by, bw, bh)) = bbox.filter(|b| b.2 > 0 && b.3 > 0) else {
            return Ok(std::iter::once(base..base + self.raw.data_len).collect());
        };
        let l = layout(file, &self.raw)?;
        let s = &self.spec;
        let (w, t1, t2) = (s.naxes[0], s.tiles[0], s.tiles.get(1).copied().unwrap_or(1));
        let nx = w.div_ceil(t1);
        let heap = base + l.heap_offset;
        let mut out = Vec::new();
        for ty in by / t2..=(by + bh - 1) / t2 {
            for tx in bx / t1..=(bx + bw - 1) / t1 {
                let t = ty * nx + tx;
                for c in [Some(l.compressed), l.gzip_fallback, l.raw_fallback]
                    .into_iter()
                    .flatten()
                {
                    let r = l.var_range(c, t)?;
                    if !r.is_empty() {
                        out.push(heap + r.start..heap + r.end);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Where the compressed HDU's data lies in the file.
    pub(crate) fn stored_extent(&self) -> std::ops::Range<usize> {
        self.raw.data_offset..self.raw.data_offset + self.raw.data_len
    }

    /// The stored big-endian values of the box `(x0, y0, width, height)`
    /// (inside the image, 2-d), decoding only the tiles it touches.
    pub(crate) fn decode_box(
        &self,
        file: &FitsFile,
        (bx, by, bw, bh): (usize, usize, usize, usize),
        counter: &TileCounter,
    ) -> std::result::Result<Vec<u8>, String> {
        if let Some(full) = self.full.get() {
            // already decoded whole: copy the rows
            let full = full.as_ref().map_err(Clone::clone)?;
            let s = &self.spec;
            let size = (s.bitpix.unsigned_abs() / 8) as usize;
            let w = s.naxes[0];
            let mut out = Vec::with_capacity(bw * bh * size);
            for y in by..by + bh {
                out.extend_from_slice(&full[(y * w + bx) * size..(y * w + bx + bw) * size]);
            }
            return Ok(out);
        }
        let s = &self.spec;
        let l = layout(file, &self.raw)?;
        let size = (s.bitpix.unsigned_abs() / 8) as usize;
        let (w, h) = (s.naxes[0], s.naxes.get(1).copied().unwrap_or(1));
        let (t1, t2) = (s.tiles[0], s.tiles.get(1).copied().unwrap_or(1));
        let nx = w.div_ceil(t1);
        let rand = if s.bitpix < 0 && s.dither != Dither::No {
            random_table()
        } else {
            Vec::new()
        };
        let mut out = vec![0u8; bw * bh * size];
        if bw == 0 || bh == 0 {
            return Ok(out);
        }
        debug_assert!(bx + bw <= w && by + bh <= h);
        for ty in by / t2..=(by + bh - 1) / t2 {
            for tx in bx / t1..=(bx + bw - 1) / t1 {
                let t = ty * nx + tx;
                let tile = decode_tile(&l, s, t, &rand)?;
                let tw = t1.min(w - tx * t1);
                let th = t2.min(h - ty * t2);
                counter.add(tw * th);
                if tile.len() != tw * th * size {
                    return Err(format!(
                        "tile {t}: {} bytes for {tw}x{th} pixels",
                        tile.len()
                    ));
                }
                // the part of the tile inside the box
                let (x0, x1) = (bx.max(tx * t1), (bx + bw).min(tx * t1 + tw));
                let (y0, y1) = (by.max(ty * t2), (by + bh).min(ty * t2 + th));
                for y in y0..y1 {
                    let src = ((y - ty * t2) * tw + (x0 - tx * t1)) * size;
                    let dst = ((y - by) * bw + (x0 - bx)) * size;
                    let n = (x1 - x0) * size;
                    out[dst..dst + n].copy_from_slice(&tile[src..src + n]);
                }
            }
        }
        Ok(out)
    }
}

/// Rebuilds `file` (as scanned by [`FitsFile::from_bytes`], which leaves
/// compressed HDUs as tables) with every tile-compressed image HDU replaced by a plain
/// IMAGE HDU holding the decompressed (stored) pixels; floats are
/// de-quantised (null pixels NaN). Errors name the file, the HDU and what is
/// wrong.
pub fn decompress_to_bytes(path: &Path, file: &FitsFile) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for hdu in file.hdus() {
        if !is_tile_compressed(hdu) {
            let end = hdu.data_offset + hdu.data_len.div_ceil(BLOCK_LEN) * BLOCK_LEN;
            let bytes = file.bytes();
            let end = end.min(bytes.len());
            out.extend_from_slice(&bytes[hdu.header_offset..end]);
            out.resize(out.len().div_ceil(BLOCK_LEN) * BLOCK_LEN, 0);
            continue;
        }
        let err =
            |m: String| format_err(path, format!("compressed image in HDU {}: {m}", hdu.index));
        check_supported(path, hdu)?;
        let s = spec(hdu).map_err(err)?;
        let pixels = decode_image(file, hdu, &s).map_err(err)?;
        let cards = plain_cards(hdu, &s);
        out.extend(format_header(&cards).map_err(|m| format_err(path, m))?);
        out.extend_from_slice(&pixels);
        out.resize(out.len().div_ceil(BLOCK_LEN) * BLOCK_LEN, 0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_table_matches_the_convention() {
        // The convention's check value: the 10,000th seed is 1043618065.
        let (a, m) = (16807.0f64, 2147483647.0f64);
        let mut seed = 1.0f64;
        for _ in 0..10000 {
            let t = a * seed;
            seed = t - m * (t / m).trunc();
        }
        assert_eq!(seed as i64, 1043618065);
        assert_eq!(random_table().len(), 10000);
    }

    #[test]
    fn rice_rejects_truncated_and_garbage_streams() {
        assert!(rice_decode(&[0, 0], 100, 32, 4).is_err());
        for n in [0usize, 1, 7, 64, 1000] {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = rice_decode(&junk, 5000, 32, 4);
            let _ = rice_decode(&junk, 5000, 32, 2);
            let _ = rice_decode(&junk, 5000, 16, 1);
        }
    }
}
