//! A minimal FITS header reader: reads header blocks only (never the data),
//! of plain or gzip-compressed files, for registry creation and the
//! filesystem registry.
//!
//! ```no_run
//! use daf_mappers::fits_header::read_header;
//! let h = read_header(std::path::Path::new("raw/raw_v1_fg.fits.gz"), 0).unwrap();
//! assert_eq!(h.get("FILTER").and_then(|v| v.as_str().map(str::to_string)), Some("g".to_string()));
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use daf_base::DataIdValue;

/// A FITS block.
const BLOCK: usize = 2880;
/// A header longer than this many blocks is refused as corrupt.
const MAX_HEADER_BLOCKS: usize = 10_000;

/// One header card value.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// `T` / `F`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real (also `D` exponents).
    Float(f64),
    /// A string (trailing blanks removed, `''` unescaped).
    Str(String),
    /// A keyword with no value.
    Undefined,
}

impl HeaderValue {
    /// The value as a data-id value (`T`/`F` become `1`/`0`); `None` if undefined.
    pub fn to_data_id_value(&self) -> Option<DataIdValue> {
        match self {
            HeaderValue::Bool(b) => Some(DataIdValue::Int(i64::from(*b))),
            HeaderValue::Int(i) => Some(DataIdValue::Int(*i)),
            HeaderValue::Float(f) => Some(DataIdValue::Float(*f)),
            HeaderValue::Str(s) => Some(DataIdValue::Str(s.clone())),
            HeaderValue::Undefined => None,
        }
    }
    /// The string, if a string card.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The value as f64 if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            HeaderValue::Int(i) => Some(*i as f64),
            HeaderValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// One header: the raw card bytes plus an index of keywords; values are
/// parsed only when asked for (`COMMENT`/`HISTORY`/blank cards are skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    bytes: Vec<u8>,
    /// (keyword range, value range) per card; value `None` for a card with
    /// no value indicator.
    index: Vec<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)>,
}

impl Header {
    fn key(&self, i: usize) -> &str {
        // Cards are checked to be ASCII when read.
        std::str::from_utf8(&self.bytes[self.index[i].0.clone()]).unwrap_or("")
    }

    fn value(&self, i: usize) -> HeaderValue {
        match &self.index[i].1 {
            None => HeaderValue::Undefined,
            Some(r) => parse_value(std::str::from_utf8(&self.bytes[r.clone()]).unwrap_or("")),
        }
    }

    /// The number of cards indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True with no cards.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The value of the first card named `key` (exact, then upper-cased).
    pub fn get(&self, key: &str) -> Option<HeaderValue> {
        let find = |k: &str| (0..self.index.len()).find(|&i| self.key(i) == k);
        find(key)
            .or_else(|| {
                if key.bytes().any(|b| b.is_ascii_lowercase()) {
                    find(&key.to_ascii_uppercase())
                } else {
                    None
                }
            })
            .map(|i| self.value(i))
    }

    /// Every (keyword, value) pair in file order.
    pub fn cards(&self) -> Vec<(String, HeaderValue)> {
        (0..self.index.len())
            .map(|i| (self.key(i).to_string(), self.value(i)))
            .collect()
    }

    fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Some(HeaderValue::Int(i)) => i,
            _ => 0,
        }
    }

    /// Bytes of data (and heap) following this header, before padding.
    fn data_bytes(&self) -> io::Result<u64> {
        let naxis = self.int("NAXIS");
        if naxis <= 0 {
            return Ok(0);
        }
        if naxis > 999 {
            return Err(bad("NAXIS out of range"));
        }
        let mut n: u64 = 1;
        for i in 1..=naxis {
            let len = self.int(&format!("NAXIS{i}"));
            if len < 0 {
                return Err(bad("negative NAXISn"));
            }
            n = n
                .checked_mul(len as u64)
                .ok_or_else(|| bad("size overflow"))?;
        }
        let bits = self.int("BITPIX").unsigned_abs();
        let gcount = match self.get("GCOUNT") {
            Some(HeaderValue::Int(g)) => g.max(1) as u64,
            _ => 1,
        };
        let pcount = self.int("PCOUNT").max(0) as u64;
        (bits / 8)
            .checked_mul(gcount)
            .and_then(|x| x.checked_mul(pcount + n))
            .ok_or_else(|| bad("size overflow"))
    }
}

fn bad(m: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a valid FITS file: {m}"),
    )
}

fn parse_value(s: &str) -> HeaderValue {
    let t = s.trim_ascii_start();
    if let Some(rest) = t.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out.truncate(out.trim_ascii_end().len());
        return HeaderValue::Str(out);
    }
    let v = t.split('/').next().unwrap_or("").trim_ascii();
    match v {
        "" => HeaderValue::Undefined,
        "T" => HeaderValue::Bool(true),
        "F" => HeaderValue::Bool(false),
        _ => {
            if let Ok(i) = v.parse::<i64>() {
                HeaderValue::Int(i)
            } else if let Ok(f) = v.replace(['D', 'd'], "E").parse::<f64>() {
                HeaderValue::Float(f)
            } else {
                HeaderValue::Str(v.to_string())
            }
        }
    }
}

/// Reads one header from `r`; returns it when `END` is seen.
fn read_one(r: &mut impl Read) -> io::Result<Header> {
    let mut h = Header::default();
    for n in 0..MAX_HEADER_BLOCKS {
        let base = h.bytes.len();
        h.bytes.resize(base + BLOCK, 0);
        if let Err(e) = r.read_exact(&mut h.bytes[base..]) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                bad(if n == 0 {
                    "no header"
                } else {
                    "truncated header (no END card)"
                })
            } else {
                e
            });
        }
        if !h.bytes[base..].is_ascii() {
            return Err(bad("non-ASCII header card"));
        }
        for c in 0..BLOCK / 80 {
            let at = base + c * 80;
            let card = &h.bytes[at..at + 80];
            let key_len = card[..8].trim_ascii_end().len();
            let key = &card[..key_len];
            if key == b"END" {
                let first = h.index.first().map(|(k, _)| &h.bytes[k.clone()]);
                if !matches!(first, Some(b"SIMPLE") | Some(b"XTENSION")) {
                    return Err(bad("first card is not SIMPLE or XTENSION"));
                }
                return Ok(h);
            }
            if key.is_empty() || key == b"COMMENT" || key == b"HISTORY" || key == b"CONTINUE" {
                continue;
            }
            if key == b"HIERARCH" {
                if let Some(eq) = card[8..].iter().position(|&b| b == b'=') {
                    let k = &card[8..8 + eq];
                    let lead = k.len() - k.trim_ascii_start().len();
                    let klen = k.trim_ascii().len();
                    let ks = at + 8 + lead;
                    h.index.push((ks..ks + klen, Some(at + 9 + eq..at + 80)));
                }
                continue;
            }
            let value = (&card[8..10] == b"= ").then_some(at + 10..at + 80);
            h.index.push((at..at + key_len, value));
        }
        if n == 0 {
            let first = h.index.first().map(|(k, _)| &h.bytes[k.clone()]);
            if !matches!(first, Some(b"SIMPLE") | Some(b"XTENSION")) {
                return Err(bad("first card is not SIMPLE or XTENSION"));
            }
        }
    }
    Err(bad("header too long"))
}

/// Reads the header of HDU `hdu` (0 = primary) of a FITS file, plain or
/// gzip-compressed (detected from the magic bytes). Data is skipped, never
/// decoded.
pub fn read_header(path: &Path, hdu: usize) -> io::Result<Header> {
    let mut f = File::open(path)?;
    let mut first = [0u8; 2];
    let got = f.read(&mut first)?;
    let got = if got == 1 {
        1 + f.read(&mut first[1..])?
    } else {
        got
    };
    let head = io::Cursor::new(first[..got].to_vec());
    if got == 2 && first == [0x1f, 0x8b] {
        let mut r =
            BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(head.chain(f)));
        read_hdu(&mut r, hdu)
    } else {
        let mut r = head.chain(BufReader::with_capacity(BLOCK * 4, f));
        read_hdu(&mut r, hdu)
    }
}

fn read_hdu(r: &mut impl Read, hdu: usize) -> io::Result<Header> {
    for _ in 0..hdu {
        let h = read_one(r)?;
        let bytes = h.data_bytes()?;
        let padded = bytes.div_ceil(BLOCK as u64) * BLOCK as u64;
        let skipped = io::copy(&mut r.take(padded), &mut io::sink())?;
        if skipped != padded {
            return Err(bad("truncated data"));
        }
    }
    read_one(r)
}

/// Writes a minimal FITS file (primary HDU, no data) whose header holds
/// `cards` as `(keyword, value text)`; the value text is written verbatim
/// (quote strings yourself: `'g       '`). For tests, examples and benches.
pub fn write_test_fits(path: &Path, cards: &[(&str, String)]) -> io::Result<()> {
    let mut h = String::with_capacity(BLOCK);
    let mut push = |s: String| {
        let mut s = s;
        s.truncate(80);
        h.push_str(&format!("{s:<80}"));
    };
    push(format!("{:<8}= {:>20}", "SIMPLE", "T"));
    push(format!("{:<8}= {:>20}", "BITPIX", "8"));
    push(format!("{:<8}= {:>20}", "NAXIS", "0"));
    for (k, v) in cards {
        push(format!("{k:<8}= {v:>20}"));
    }
    push("END".to_string());
    let mut bytes = h.into_bytes();
    let padded = bytes.len().div_ceil(BLOCK) * BLOCK;
    bytes.resize(padded, b' ');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(s: &str) -> String {
        format!("{s:<80}")
    }

    #[test]
    fn parses_cards_and_skips_hdus() {
        let mut bytes = String::new();
        for c in [
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    1",
            "NAXIS1  =                   10",
            "FILTER  = 'g       '           / band",
            "EXPTIME =                  15.",
            "MJD     =       5.1195203552D4",
            "QUOTE   = 'it''s'",
            "HIERARCH LONG KEY = 3",
            "END",
        ] {
            bytes.push_str(&card(c));
        }
        let mut b = bytes.into_bytes();
        b.resize(BLOCK, b' ');
        b.extend(std::iter::repeat_n(0u8, BLOCK));
        let mut ext = String::new();
        for c in [
            "XTENSION= 'IMAGE   '",
            "BITPIX  = 16",
            "NAXIS   = 0",
            "OBJECT  = 'x'",
            "END",
        ] {
            ext.push_str(&card(c));
        }
        let mut e = ext.into_bytes();
        e.resize(BLOCK, b' ');
        b.extend(e);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.fits");
        std::fs::write(&p, &b).unwrap();
        let h = read_header(&p, 0).unwrap();
        assert_eq!(h.get("filter"), Some(HeaderValue::Str("g".into())));
        assert_eq!(h.get("EXPTIME"), Some(HeaderValue::Float(15.0)));
        assert_eq!(h.get("MJD"), Some(HeaderValue::Float(51195.203552)));
        assert_eq!(h.get("QUOTE"), Some(HeaderValue::Str("it's".into())));
        assert_eq!(h.get("LONG KEY"), Some(HeaderValue::Int(3)));
        assert_eq!(h.len(), 9);
        assert_eq!(h.cards()[4].0, "FILTER");
        let h1 = read_header(&p, 1).unwrap();
        assert_eq!(h1.get("OBJECT"), Some(HeaderValue::Str("x".into())));
        assert!(read_header(&p, 2).is_err());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_header(&p, 0).is_err());
    }
}
