//! Tile-compressed images (`.fz`, `ZIMAGE = T`): decompressed by cfitsio
//! (the bundled copy from `fitsio-src`) into plain FITS bytes in memory, which
//! the ordinary scanner then reads. Every other HDU is copied as it is.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use fitsio::sys;

use super::file::{format_err, FitsFile, Hdu};
use super::header::{format_header, is_structural, Card, Value, BLOCK_LEN};
use crate::Result;

/// True for a binary table that holds a tile-compressed image.
pub fn is_tile_compressed(hdu: &Hdu) -> bool {
    hdu.kind == super::file::HduKind::BinTable && hdu.value("ZIMAGE") == Some(&Value::Logical(true))
}

fn is_compression_key(key: &str) -> bool {
    // ZIMAGE, ZBITPIX, ZNAXISn, ZTILEn, ZCMPTYPE, ZNAMEn, ZVALn, ZQUANTIZ,
    // ZDITHER0, ZSIMPLE, ZEXTEND, ZBLOCKED, ZPCOUNT, ZGCOUNT, ZTENSION,
    // ZHECKSUM, ZDATASUM, and the checksums of the compressed table.
    (key.starts_with('Z')
        && key.len() > 1
        && key != "ZENITH"
        && key != "ZD"
        && key != "ZEROPT"
        && (key.starts_with("ZIMAGE")
            || key.starts_with("ZBITPIX")
            || key.starts_with("ZNAXIS")
            || key.starts_with("ZTILE")
            || key.starts_with("ZCMPTYPE")
            || key.starts_with("ZNAME")
            || key.starts_with("ZVAL")
            || key.starts_with("ZQUANTIZ")
            || key.starts_with("ZDITHER")
            || key.starts_with("ZSIMPLE")
            || key.starts_with("ZEXTEND")
            || key.starts_with("ZBLOCKED")
            || key.starts_with("ZPCOUNT")
            || key.starts_with("ZGCOUNT")
            || key.starts_with("ZTENSION")
            || key.starts_with("ZHECKSUM")
            || key.starts_with("ZDATASUM")))
        || key == "CHECKSUM"
        || key == "DATASUM"
}

struct Fits(*mut sys::fitsfile);

impl Drop for Fits {
    fn drop(&mut self) {
        let mut status = 0;
        // SAFETY: the pointer came from ffopen and is closed once.
        unsafe { sys::ffclos(self.0, &mut status) };
    }
}

fn cfitsio_error(path: &Path, what: &str, status: c_int) -> crate::StorageError {
    let mut buf = [0 as c_char; 32];
    // SAFETY: ffgerr writes at most 31 characters and a NUL.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    // SAFETY: NUL-terminated by ffgerr.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    format_err(path, format!("cfitsio: {what}: {text} (status {status})"))
}

/// Rebuilds `file` with every tile-compressed image HDU replaced by a plain
/// IMAGE HDU holding the decompressed (stored, unscaled) pixels.
pub fn decompress_to_bytes(path: &Path, file: &FitsFile) -> Result<Vec<u8>> {
    let cpath = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| format_err(path, "path contains a NUL byte"))?;
    let mut fptr: *mut sys::fitsfile = std::ptr::null_mut();
    let mut status: c_int = 0;
    // SAFETY: valid C string and out-pointers; READONLY = 0.
    unsafe { sys::ffopen(&mut fptr, cpath.as_ptr(), 0, &mut status) };
    if status != 0 {
        return Err(cfitsio_error(path, "open", status));
    }
    let fits = Fits(fptr);
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
        let mut hdutype = 0;
        // SAFETY: open file, 1-based HDU number.
        unsafe { sys::ffmahd(fits.0, hdu.index as c_int + 1, &mut hdutype, &mut status) };
        if status != 0 {
            return Err(cfitsio_error(path, "move to HDU", status));
        }
        let mut bitpix: c_int = 0;
        let mut naxis: c_int = 0;
        let mut naxes = [0 as std::ffi::c_long; 9];
        // SAFETY: naxes has room for 9 axes.
        unsafe {
            sys::ffgipr(
                fits.0,
                9,
                &mut bitpix,
                &mut naxis,
                naxes.as_mut_ptr(),
                &mut status,
            )
        };
        if status != 0 {
            return Err(cfitsio_error(path, "image parameters", status));
        }
        let naxes: Vec<usize> = naxes[..naxis.clamp(0, 9) as usize]
            .iter()
            .map(|&n| n.max(0) as usize)
            .collect();
        let n: usize = if naxes.is_empty() {
            0
        } else {
            naxes.iter().product()
        };
        let mut cards = vec![
            Card::new("XTENSION", Value::Str("IMAGE".into())),
            Card::new("BITPIX", Value::Int(bitpix as i64)),
            Card::new("NAXIS", Value::Int(naxes.len() as i64)),
        ];
        for (i, a) in naxes.iter().enumerate() {
            cards.push(Card::new(format!("NAXIS{}", i + 1), Value::Int(*a as i64)));
        }
        cards.push(Card::new("PCOUNT", Value::Int(0)));
        cards.push(Card::new("GCOUNT", Value::Int(1)));
        for c in &hdu.cards {
            if c.key == "BSCALE" || c.key == "BZERO" || c.key == "BLANK" {
                // Integer images keep their scaling (we read stored values);
                // float images are read already scaled (and de-quantised).
                if bitpix > 0 {
                    cards.push(c.clone());
                }
            } else if !is_structural(&c.key) && !is_compression_key(&c.key) {
                cards.push(c.clone());
            }
        }
        out.extend(format_header(&cards).map_err(|m| format_err(path, m))?);
        // Integers: switch scaling off and read the stored values.
        if bitpix > 0 {
            // SAFETY: open file positioned at the image.
            unsafe { sys::ffpscl(fits.0, 1.0, 0.0, &mut status) };
        }
        let size = (bitpix.unsigned_abs() / 8) as usize;
        let mut raw = vec![0u8; n * size];
        let datatype = match bitpix {
            8 => 11,   // TBYTE
            16 => 21,  // TSHORT
            32 => 31,  // TINT
            64 => 81,  // TLONGLONG
            -32 => 42, // TFLOAT
            _ => 82,   // TDOUBLE
        };
        if n > 0 {
            let mut anynul = 0;
            // SAFETY: `raw` has room for n values of the requested type.
            unsafe {
                sys::ffgpv(
                    fits.0,
                    datatype,
                    1,
                    n as sys::LONGLONG,
                    std::ptr::null_mut::<c_void>(),
                    raw.as_mut_ptr() as *mut c_void,
                    &mut anynul,
                    &mut status,
                )
            };
            if status != 0 {
                return Err(cfitsio_error(path, "decompress image", status));
            }
            // Native to big-endian in place.
            if cfg!(target_endian = "little") {
                for c in raw.chunks_exact_mut(size) {
                    c.reverse();
                }
            }
        }
        out.extend_from_slice(&raw);
        out.resize(out.len().div_ceil(BLOCK_LEN) * BLOCK_LEN, 0);
    }
    Ok(out)
}
