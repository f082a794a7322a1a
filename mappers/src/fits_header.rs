//! A minimal FITS header reader: reads header blocks only (never the data),
//! of plain or gzip-compressed files, for registry creation and the
//! filesystem registry.
//!
//! ```no_run
//! use daf_mappers::fits_header::read_header;
//! let h = read_header(std::path::Path::new("raw/raw_v1_fg.fits.gz"), 0).unwrap();
//! assert_eq!(h.get("FILTER").and_then(|v| v.as_str()), Some("g"));
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

/// The cards of one header, in file order (`COMMENT`/`HISTORY`/blank skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// (keyword, value) pairs.
    pub cards: Vec<(String, HeaderValue)>,
}

impl Header {
    /// The first card named `key` (exact, then upper-cased).
    pub fn get(&self, key: &str) -> Option<&HeaderValue> {
        self.cards
            .iter()
            .find(|(k, _)| k == key)
            .or_else(|| {
                let up = key.to_ascii_uppercase();
                self.cards.iter().find(|(k, _)| *k == up)
            })
            .map(|(_, v)| v)
    }

    fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Some(HeaderValue::Int(i)) => *i,
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
            Some(HeaderValue::Int(g)) => (*g).max(1) as u64,
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
    let t = s.trim_start();
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
        return HeaderValue::Str(out.trim_end().to_string());
    }
    let v = t.split('/').next().unwrap_or("").trim();
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
    let mut block = [0u8; BLOCK];
    for n in 0..MAX_HEADER_BLOCKS {
        if let Err(e) = r.read_exact(&mut block) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                bad(if n == 0 && h.cards.is_empty() {
                    "no header"
                } else {
                    "truncated header (no END card)"
                })
            } else {
                e
            });
        }
        for card in block.chunks_exact(80) {
            if !card.is_ascii() {
                return Err(bad("non-ASCII header card"));
            }
            // The chunk is ASCII, so this cannot fail.
            let card = std::str::from_utf8(card).map_err(|_| bad("card"))?;
            let key = card[..8].trim_end();
            if key == "END" {
                if !matches!(
                    h.cards.first().map(|(k, _)| k.as_str()),
                    Some("SIMPLE") | Some("XTENSION")
                ) {
                    return Err(bad("first card is not SIMPLE or XTENSION"));
                }
                return Ok(h);
            }
            if key.is_empty() || key == "COMMENT" || key == "HISTORY" || key == "CONTINUE" {
                continue;
            }
            if key == "HIERARCH" {
                if let Some((k, v)) = card[8..].split_once('=') {
                    h.cards.push((k.trim().to_string(), parse_value(v)));
                }
                continue;
            }
            if &card[8..10] == "= " {
                h.cards.push((key.to_string(), parse_value(&card[10..])));
            } else {
                h.cards.push((key.to_string(), HeaderValue::Undefined));
            }
        }
        if n == 0
            && !matches!(
                h.cards.first().map(|(k, _)| k.as_str()),
                Some("SIMPLE") | Some("XTENSION")
            )
        {
            return Err(bad("first card is not SIMPLE or XTENSION"));
        }
    }
    Err(bad("header too long"))
}

/// Reads the header of HDU `hdu` (0 = primary) of a FITS file, plain or
/// gzip-compressed (detected from the magic bytes). Data is skipped, never
/// decoded.
pub fn read_header(path: &Path, hdu: usize) -> io::Result<Header> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(f);
    let f = File::open(path)?;
    if gz {
        let mut r = BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(f));
        read_hdu(&mut r, hdu)
    } else {
        let mut r = BufReader::with_capacity(BLOCK * 8, f);
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
        assert_eq!(h.get("filter"), Some(&HeaderValue::Str("g".into())));
        assert_eq!(h.get("EXPTIME"), Some(&HeaderValue::Float(15.0)));
        assert_eq!(h.get("MJD"), Some(&HeaderValue::Float(51195.203552)));
        assert_eq!(h.get("QUOTE"), Some(&HeaderValue::Str("it's".into())));
        assert_eq!(h.get("LONG KEY"), Some(&HeaderValue::Int(3)));
        let h1 = read_header(&p, 1).unwrap();
        assert_eq!(h1.get("OBJECT").and_then(|v| v.as_str()), Some("x"));
        assert!(read_header(&p, 2).is_err());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_header(&p, 0).is_err());
    }
}
