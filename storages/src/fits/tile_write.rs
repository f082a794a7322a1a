//! Writing tile-compressed images (the FITS tiled image compression
//! convention, FITS 4.0 sec. 10), the counterpart of [`super::compressed`]:
//! `RICE_1` and `GZIP_1`/`GZIP_2` for integers (lossless), and for floats
//! either `GZIP_1`/`GZIP_2` of the raw values (lossless) or quantization to
//! integers with `ZSCALE`/`ZZERO` per tile and optional subtractive
//! dithering (`SUBTRACTIVE_DITHER_1`/`_2`, as LSST afw and cfitsio write
//! them), then `RICE_1` or `GZIP`.
//!
//! A tile that cannot be quantized (constant, or with no measurable noise)
//! is stored losslessly in the `GZIP_COMPRESSED_DATA` column, as cfitsio
//! does. NaN pixels of a quantized image are written as `ZBLANK`.
//!
//! Set per dataset type through the storage policy (see
//! [`Compression::from_policy`]).

use std::io::Write;

use super::header::{Card, Value};

/// The compression algorithm (`ZCMPTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `RICE_1`: integers, or quantized floats.
    Rice1,
    /// `GZIP_1`: the big-endian bytes gzipped.
    Gzip1,
    /// `GZIP_2`: the bytes shuffled (most significant first), then gzipped.
    Gzip2,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Rice1 => "RICE_1",
            Algorithm::Gzip1 => "GZIP_1",
            Algorithm::Gzip2 => "GZIP_2",
        }
    }
}

/// Dithering of quantized floats (`ZQUANTIZ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    /// `NO_DITHER`.
    None,
    /// `SUBTRACTIVE_DITHER_1`.
    Subtractive1,
    /// `SUBTRACTIVE_DITHER_2`: as 1, and exact zeros are kept exact.
    Subtractive2,
}

/// How images are compressed when written.
#[derive(Debug, Clone, PartialEq)]
pub struct Compression {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Floats: quantize so that the step is the tile's noise divided by
    /// this (cfitsio's `q`; afw's `quantizeLevel`); a negative value is the
    /// step itself; 0 keeps floats lossless (GZIP only).
    pub quantize_level: f64,
    /// Floats: dithering of the quantization.
    pub dither: Dither,
    /// `ZDITHER0`, 1–10000: which random sequence the dither starts at.
    pub dither_seed: i64,
    /// Image rows per tile (tiles span whole rows).
    pub tile_rows: usize,
}

impl Default for Compression {
    /// Lossless `RICE_1` of one row per tile; floats quantized at level 16
    /// with `SUBTRACTIVE_DITHER_2`, seed 1 (cfitsio's defaults).
    fn default() -> Self {
        Compression {
            algorithm: Algorithm::Rice1,
            quantize_level: 16.0,
            dither: Dither::Subtractive2,
            dither_seed: 1,
            tile_rows: 1,
        }
    }
}

impl Compression {
    /// The `ZCMPTYPE` name of the algorithm.
    pub fn algorithm_name(&self) -> &'static str {
        self.algorithm.name()
    }

    /// Reads the `compression` settings of a storage policy (the FitsStorage
    /// sub-policy, or a dataset type's `storageOptions` in a mapper policy):
    /// `compression: RICE_1 | GZIP_1 | GZIP_2 | NONE`, `quantize_level`
    /// (float, default 16; 0 = lossless floats), `dither: NO_DITHER |
    /// SUBTRACTIVE_DITHER_1 | SUBTRACTIVE_DITHER_2`, `dither_seed` (1–10000)
    /// and `tile_rows`. Returns `Ok(None)` for `NONE` or no `compression`
    /// key, and an error naming the key for anything else.
    ///
    /// ```
    /// use daf_storages::fits::tile_write::{Algorithm, Compression};
    /// let mut ps = daf_base::PropertySet::new();
    /// ps.set("compression", "GZIP_2").unwrap();
    /// ps.set("quantize_level", 0).unwrap();
    /// let c = Compression::from_policy(&ps).unwrap().unwrap();
    /// assert_eq!((c.algorithm, c.quantize_level), (Algorithm::Gzip2, 0.0));
    /// ```
    pub fn from_policy(ps: &daf_base::PropertySet) -> Result<Option<Compression>, String> {
        let text = |k: &str| ps.values(k).and_then(|v| v.text_at(0));
        let Some(algo) = text("compression") else {
            return Ok(None);
        };
        let algorithm = match algo.trim().to_ascii_uppercase().as_str() {
            "NONE" | "" => return Ok(None),
            "RICE_1" | "RICE" => Algorithm::Rice1,
            "GZIP_1" | "GZIP" => Algorithm::Gzip1,
            "GZIP_2" => Algorithm::Gzip2,
            other => {
                return Err(format!(
                    "policy compression: {other:?} is not RICE_1, GZIP_1, GZIP_2 or NONE"
                ))
            }
        };
        let mut c = Compression {
            algorithm,
            ..Compression::default()
        };
        if let Some(q) = text("quantize_level") {
            c.quantize_level = q
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|q| q.is_finite())
                .ok_or_else(|| format!("policy quantize_level: {q:?} is not a number"))?;
        }
        if let Some(d) = text("dither") {
            c.dither = match d.trim().to_ascii_uppercase().as_str() {
                "NO_DITHER" | "NONE" => Dither::None,
                "SUBTRACTIVE_DITHER_1" => Dither::Subtractive1,
                "SUBTRACTIVE_DITHER_2" => Dither::Subtractive2,
                other => {
                    return Err(format!(
                    "policy dither: {other:?} is not NO_DITHER, SUBTRACTIVE_DITHER_1 or SUBTRACTIVE_DITHER_2"
                ))
                }
            };
        }
        if let Some(s) = text("dither_seed") {
            c.dither_seed = s
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| (1..=10000).contains(s))
                .ok_or_else(|| format!("policy dither_seed: {s:?} is not 1 to 10000"))?;
        }
        if let Some(t) = text("tile_rows") {
            c.tile_rows = t
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&t| t >= 1)
                .ok_or_else(|| format!("policy tile_rows: {t:?} is not a positive integer"))?;
        }
        Ok(Some(c))
    }
}

/// Writes bits most significant first.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 32);
        let v = if nbits == 64 {
            value
        } else {
            value & ((1u64 << nbits) - 1)
        };
        self.acc = (self.acc << nbits) | v;
        self.n += nbits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }
    /// `count` zero bits then a one.
    fn unary(&mut self, mut count: u64) {
        while count >= 24 {
            self.put(0, 24);
            count -= 24;
        }
        self.put(1, count as u32 + 1);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let n = self.n;
            self.put(0, 8 - n);
        }
        self.out
    }
}

/// Rice coding of `values` (each `bytepix` bytes wide, stored as signed
/// values of that width) in blocks of `block`: the first value raw, then
/// per block a code of the split position and the zig-zagged differences.
pub(crate) fn rice_encode(values: &[i64], bytepix: usize, block: usize) -> Vec<u8> {
    let (fsbits, fsmax, bbits): (u32, u32, u32) = match bytepix {
        1 => (3, 6, 8),
        2 => (4, 14, 16),
        _ => (5, 25, 32),
    };
    let mask: u64 = (1u64 << bbits) - 1;
    let mut w = Bits {
        out: Vec::with_capacity(values.len() * bytepix / 2 + 16),
        acc: 0,
        n: 0,
    };
    let Some(&first) = values.first() else {
        return Vec::new();
    };
    let first = first as u64 & mask;
    for k in (0..bytepix).rev() {
        w.put((first >> (8 * k)) & 0xFF, 8);
    }
    let mut last = first;
    let mut diffs = Vec::with_capacity(block);
    for chunk in values.chunks(block) {
        diffs.clear();
        let mut sum = 0u64;
        let mut max = 0u64;
        for &v in chunk {
            let v = v as u64 & mask;
            // The difference in the pixel's width, zig-zagged.
            let d = v.wrapping_sub(last) & mask;
            let signed = if d >> (bbits - 1) & 1 == 1 {
                d as i64 - (1i64 << bbits)
            } else {
                d as i64
            };
            let z = if signed < 0 {
                (!((signed as u64) << 1)) & mask
            } else {
                ((signed as u64) << 1) & mask
            };
            diffs.push(z);
            sum += z;
            max = max.max(z);
            last = v;
        }
        let n = chunk.len() as f64;
        let dpsum = ((sum as f64 - (chunk.len() / 2) as f64 - 1.0) / n).max(0.0);
        let mut psum = (dpsum as u64) >> 1;
        let mut fs = 0u32;
        while psum > 0 {
            psum >>= 1;
            fs += 1;
        }
        // Keep every unary run short (≤ 32 zeros): any split is valid
        // Rice data, and strict decoders bound the run.
        while fs < fsmax && (max >> fs) > 32 {
            fs += 1;
        }
        if fs >= fsmax {
            w.put((fsmax + 1) as u64, fsbits);
            for &d in &diffs {
                w.put(d, bbits);
            }
        } else if fs == 0 && sum == 0 {
            w.put(0, fsbits);
        } else {
            w.put((fs + 1) as u64, fsbits);
            for &d in &diffs {
                w.unary(d >> fs);
                if fs > 0 {
                    w.put(d & ((1u64 << fs) - 1), fs);
                }
            }
        }
    }
    w.finish()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        flate2::Compression::default(),
    );
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

fn shuffle(b: &[u8], size: usize) -> Vec<u8> {
    let n = b.len() / size;
    let mut out = vec![0u8; b.len()];
    for i in 0..n {
        for k in 0..size {
            out[k * n + i] = b[i * size + k];
        }
    }
    out
}

fn be_int(c: &[u8]) -> i64 {
    match c.len() {
        1 => c[0] as i64,
        2 => i16::from_be_bytes([c[0], c[1]]) as i64,
        4 => i32::from_be_bytes(c.try_into().expect("4")) as i64,
        _ => i64::from_be_bytes(c.try_into().expect("8")),
    }
}

/// The value cfitsio writes for a null (NaN) pixel of a quantized tile.
const NULL_VALUE: i64 = -2147483647;
/// `SUBTRACTIVE_DITHER_2`'s code for an exact zero.
const ZERO_VALUE: i64 = -2147483646;

/// The noise of a tile: the median absolute second difference along rows
/// (cfitsio's "noise3" estimator), scaled to a Gaussian sigma.
fn noise3(v: &[f64], width: usize) -> f64 {
    let mut d: Vec<f64> = Vec::with_capacity(v.len());
    for row in v.chunks(width) {
        let row: Vec<f64> = row.iter().copied().filter(|x| x.is_finite()).collect();
        for i in 2..row.len().saturating_sub(2) {
            d.push((2.0 * row[i] - row[i - 2] - row[i + 2]).abs());
        }
    }
    if d.is_empty() {
        return 0.0;
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    0.6052697 * *m
}

/// The quantized integers of one float tile and its `(ZSCALE, ZZERO)`, or
/// `None` when the tile cannot be quantized (no noise, or its range does
/// not fit 32-bit integers at that step).
fn quantize(
    v: &[f64],
    width: usize,
    c: &Compression,
    tile: usize,
    rand: &[f32],
) -> Option<(Vec<i64>, f64, f64)> {
    let finite = v.iter().copied().filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() {
        return None; // only NaN / Inf
    }
    let delta = if c.quantize_level < 0.0 {
        -c.quantize_level
    } else {
        noise3(v, width) / c.quantize_level
    };
    if !(delta > 0.0 && delta.is_finite()) || (hi - lo) / delta > 2147483000.0 {
        return None;
    }
    if v.iter().any(|x| x.is_infinite()) {
        return None;
    }
    // The zero point keeps every code within 32 bits above the two
    // reserved codes.
    let zero = lo;
    let dither = c.dither != Dither::None;
    let mut iseed = ((tile as i64 + c.dither_seed - 1).rem_euclid(10000)) as usize;
    let mut next = (rand.get(iseed).copied().unwrap_or(0.0) as f64 * 500.0) as usize;
    let mut out = Vec::with_capacity(v.len());
    for &x in v {
        let q = if x.is_nan() {
            NULL_VALUE
        } else if c.dither == Dither::Subtractive2 && x == 0.0 {
            ZERO_VALUE
        } else if dither {
            ((x - zero) / delta + rand[next] as f64 - 0.5).round() as i64
        } else {
            ((x - zero) / delta).round() as i64
        };
        if dither {
            next += 1;
            if next == 10000 {
                iseed = (iseed + 1) % 10000;
                next = (rand[iseed] as f64 * 500.0) as usize;
            }
        }
        out.push(q);
    }
    Some((out, delta, zero))
}

/// The structural cards (compressed-table header, without `END`) and the
/// data (rows and heap, unpadded) of a tile-compressed image of `width ×
/// height` pixels given as stored big-endian values of `bitpix`. Errors say
/// which setting cannot apply to this image.
pub fn compress_image(
    bitpix: i32,
    width: usize,
    height: usize,
    stored: &[u8],
    c: &Compression,
) -> Result<(Vec<Card>, Vec<u8>), String> {
    let size = (bitpix.unsigned_abs() / 8) as usize;
    debug_assert_eq!(stored.len(), width * height * size);
    let float = bitpix < 0;
    let quantized = float && c.quantize_level != 0.0;
    if float && !quantized && c.algorithm == Algorithm::Rice1 {
        return Err("RICE_1 compresses floats only once quantized: set quantize_level (e.g. 16), or use GZIP_2 for lossless floats".into());
    }
    if bitpix == 64 && c.algorithm == Algorithm::Rice1 {
        return Err("RICE_1 is not defined for 64-bit integers: use GZIP_2".into());
    }
    let rows_per = c.tile_rows.clamp(1, height.max(1));
    let ntiles = height.div_ceil(rows_per);
    let rand = if quantized && c.dither != Dither::None {
        super::compressed::random_table()
    } else {
        Vec::new()
    };
    // Per tile: compressed bytes, lossless fallback bytes, ZSCALE, ZZERO.
    let mut tiles: Vec<(Vec<u8>, Vec<u8>, f64, f64)> = Vec::with_capacity(ntiles);
    let mut any_null = false;
    for t in 0..ntiles {
        let r0 = t * rows_per;
        let r1 = (r0 + rows_per).min(height);
        let bytes = &stored[r0 * width * size..r1 * width * size];
        if quantized {
            let vals: Vec<f64> = bytes
                .chunks_exact(size)
                .map(|b| {
                    if size == 4 {
                        f32::from_be_bytes(b.try_into().expect("4")) as f64
                    } else {
                        f64::from_be_bytes(b.try_into().expect("8"))
                    }
                })
                .collect();
            match quantize(&vals, width, c, t, &rand) {
                Some((ints, scale, zero)) => {
                    any_null |= ints.contains(&NULL_VALUE);
                    let data = match c.algorithm {
                        Algorithm::Rice1 => rice_encode(&ints, 4, 32),
                        a => {
                            let mut be = Vec::with_capacity(ints.len() * 4);
                            for i in &ints {
                                be.extend_from_slice(&(*i as i32).to_be_bytes());
                            }
                            gzip(&if a == Algorithm::Gzip2 {
                                shuffle(&be, 4)
                            } else {
                                be
                            })
                        }
                    };
                    tiles.push((data, Vec::new(), scale, zero));
                }
                None => tiles.push((Vec::new(), gzip(bytes), 0.0, 0.0)),
            }
            continue;
        }
        let data = match c.algorithm {
            Algorithm::Rice1 => {
                let ints: Vec<i64> = bytes.chunks_exact(size).map(be_int).collect();
                rice_encode(&ints, size, 32)
            }
            Algorithm::Gzip1 => gzip(bytes),
            Algorithm::Gzip2 => gzip(&shuffle(bytes, size)),
        };
        tiles.push((data, Vec::new(), 0.0, 0.0));
    }
    // Columns: COMPRESSED_DATA (1PB), and for quantized floats
    // GZIP_COMPRESSED_DATA (1PB), ZSCALE (1D), ZZERO (1D).
    let row_bytes = if quantized { 8 + 8 + 8 + 8 } else { 8 };
    let heap_len: usize = tiles.iter().map(|t| t.0.len() + t.1.len()).sum();
    if heap_len > i32::MAX as usize {
        return Err("the compressed image is larger than 2 GiB".into());
    }
    let mut table = Vec::with_capacity(ntiles * row_bytes);
    let mut heap = Vec::with_capacity(heap_len);
    let (mut max_c, mut max_g) = (0usize, 0usize);
    for (data, fallback, scale, zero) in &tiles {
        let mut desc = |b: &[u8], table: &mut Vec<u8>| {
            table.extend_from_slice(&(b.len() as i32).to_be_bytes());
            table.extend_from_slice(&(heap.len() as i32).to_be_bytes());
            heap.extend_from_slice(b);
        };
        desc(data, &mut table);
        max_c = max_c.max(data.len());
        if quantized {
            desc(fallback, &mut table);
            max_g = max_g.max(fallback.len());
            table.extend_from_slice(&scale.to_be_bytes());
            table.extend_from_slice(&zero.to_be_bytes());
        }
    }
    let s = |v: &str| Value::Str(v.into());
    let i = |v: i64| Value::Int(v);
    let mut cards = vec![
        Card::new("XTENSION", s("BINTABLE")),
        Card::new("BITPIX", i(8)),
        Card::new("NAXIS", i(2)),
        Card::new("NAXIS1", i(row_bytes as i64)),
        Card::new("NAXIS2", i(ntiles as i64)),
        Card::new("PCOUNT", i(heap.len() as i64)),
        Card::new("GCOUNT", i(1)),
        Card::new("TFIELDS", i(if quantized { 4 } else { 1 })),
        Card::new("TTYPE1", s("COMPRESSED_DATA")),
        Card::new("TFORM1", s(&format!("1PB({max_c})"))),
    ];
    if quantized {
        cards.extend([
            Card::new("TTYPE2", s("GZIP_COMPRESSED_DATA")),
            Card::new("TFORM2", s(&format!("1PB({max_g})"))),
            Card::new("TTYPE3", s("ZSCALE")),
            Card::new("TFORM3", s("1D")),
            Card::new("TTYPE4", s("ZZERO")),
            Card::new("TFORM4", s("1D")),
        ]);
    }
    cards.extend([
        Card::with_comment(
            "ZIMAGE",
            Value::Logical(true),
            "extension contains compressed image",
        ),
        Card::new("ZTENSION", s("IMAGE")),
        Card::new("ZBITPIX", i(bitpix as i64)),
        Card::new("ZNAXIS", i(2)),
        Card::new("ZNAXIS1", i(width as i64)),
        Card::new("ZNAXIS2", i(height as i64)),
        Card::new("ZTILE1", i(width as i64)),
        Card::new("ZTILE2", i(rows_per as i64)),
        Card::new("ZPCOUNT", i(0)),
        Card::new("ZGCOUNT", i(1)),
        Card::new("ZCMPTYPE", s(c.algorithm.name())),
    ]);
    if c.algorithm == Algorithm::Rice1 {
        let bytepix = if quantized { 4 } else { size };
        cards.extend([
            Card::new("ZNAME1", s("BLOCKSIZE")),
            Card::new("ZVAL1", i(32)),
            Card::new("ZNAME2", s("BYTEPIX")),
            Card::new("ZVAL2", i(bytepix as i64)),
        ]);
    }
    if quantized {
        let q = match c.dither {
            Dither::None => "NO_DITHER",
            Dither::Subtractive1 => "SUBTRACTIVE_DITHER_1",
            Dither::Subtractive2 => "SUBTRACTIVE_DITHER_2",
        };
        cards.push(Card::new("ZQUANTIZ", s(q)));
        if c.dither != Dither::None {
            cards.push(Card::new("ZDITHER0", i(c.dither_seed)));
        }
        if any_null {
            cards.push(Card::new("ZBLANK", i(NULL_VALUE)));
        }
    }
    table.extend_from_slice(&heap);
    Ok((cards, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rice_round_trips_every_width() {
        for (bytepix, vals) in [
            (1usize, vec![0i64, 255, 3, 3, 3, 128, 127, 0, 1]),
            (
                2,
                vec![-32768, 32767, 0, 5, -5, 100, 100, 100, 30000, -30000],
            ),
            (
                4,
                vec![i32::MIN as i64, i32::MAX as i64, 0, 1, -1, 1 << 20, 7, 7, 7],
            ),
        ] {
            let mut long = vals.clone();
            for k in 0..500i64 {
                long.push(k * 37 % 101 - 50);
            }
            for v in [vals, long, vec![9; 100]] {
                let enc = rice_encode(&v, bytepix, 32);
                let dec =
                    super::super::compressed::rice_decode(&enc, v.len(), 32, bytepix).unwrap();
                let norm = |x: i64| match bytepix {
                    1 => x as u8 as i8 as i64,
                    2 => x as i16 as i64,
                    _ => x as i32 as i64,
                };
                let want: Vec<i64> = v.iter().map(|&x| norm(x)).collect();
                assert_eq!(dec, want, "bytepix {bytepix}");
            }
        }
    }
}
