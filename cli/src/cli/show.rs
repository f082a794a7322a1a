//! `daf show FILE [--json]`: describes a stored file.
//!
//! FITS files (recognised by `SIMPLE  =`, gzip magic, or a `.fits`, `.fit`,
//! `.fz`, `.gz` name) list every HDU — type, BITPIX, shape, EXTNAME — with
//! its header cards and, for images, min / max / mean of the scaled pixels.
//! Every other file is read as a PropertySet Boost archive (binary, text or
//! XML, detected) and shown as YAML or JSON with each value's type.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

use daf_storages::fits::{FitsFile, HduKind, Value};

use super::CliError;

/// Arguments of `daf show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The file to describe.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What kind of file `path` looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A FITS file (possibly gzip- or tile-compressed).
    Fits,
    /// Anything else (tried as a Boost archive).
    Unknown,
}

/// Sniffs the first bytes (and the name) of `path`.
pub fn sniff(path: &Path) -> Result<FileKind, CliError> {
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path)
        .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))?;
    let n = f
        .read(&mut head)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let by_name = [".fits", ".fit", ".fz", ".fits.gz", ".fit.gz"]
        .iter()
        .any(|s| name.ends_with(s));
    let mut simple = &head[..n] == b"SIMPLE  =";
    if !simple && n >= 2 && head[..2] == [0x1f, 0x8b] {
        // Gzip: look at the first inflated bytes.
        let mut inner = [0u8; 9];
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))?;
        let mut dec = flate2::read::GzDecoder::new(f);
        simple = dec.read_exact(&mut inner).is_ok() && &inner == b"SIMPLE  =";
    }
    if simple || by_name {
        Ok(FileKind::Fits)
    } else {
        Ok(FileKind::Unknown)
    }
}

/// Runs `daf show`.
pub fn run(args: &ShowArgs) -> Result<(), CliError> {
    match sniff(&args.file)? {
        FileKind::Fits => {
            let out = show_fits(&args.file, args.json)?;
            print!("{out}");
            Ok(())
        }
        // Everything else is tried as a PropertySet Boost archive (binary,
        // text or XML, detected from its header).
        FileKind::Unknown => {
            let bytes = std::fs::read(&args.file)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", args.file.display())))?;
            super::boost::show_archive(&args.file, &bytes, args.json)
        }
    }
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Logical(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) if f.is_finite() => json!(f),
        Value::Float(f) => json!(f.to_string()),
        Value::Str(s) => json!(s),
        Value::Undefined => Json::Null,
    }
}

/// True when the file at `path` starts with the gzip magic bytes.
fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// Describes a FITS file as text or JSON (saying how it is compressed).
pub fn show_fits(path: &Path, as_json: bool) -> Result<String, CliError> {
    let f = FitsFile::open(path)?;
    let mut hdus = Vec::new();
    for h in f.hdus() {
        let stats = match h.kind {
            HduKind::Primary | HduKind::Image if h.data_len > 0 => f.image_stats(h.index)?,
            _ => None,
        };
        // The cards as JSON only for --json (text prints them from `h`).
        let cards: Vec<Json> = h
            .cards
            .iter()
            .filter(|_| as_json)
            .map(|c| match &c.value {
                Some(v) => json!({"key": c.key, "value": value_json(v), "comment": c.comment}),
                None => json!({"key": c.key, "text": c.comment}),
            })
            .collect();
        let mut d = json!({
            "index": h.index,
            "type": h.kind.name(),
            "bitpix": h.bitpix,
            "shape": h.naxes,
            "extname": h.extname(),
            "cards": cards,
        });
        if let Some(c) = f.compression(h.index) {
            d["compression"] = json!(c);
        }
        if let Some((min, max, mean)) = stats {
            d["stats"] = json!({"min": min, "max": max, "mean": mean});
        }
        if h.kind == HduKind::BinTable {
            // TFIELDS is at most 999 (FITS 4.0 sec. 7.3.1); a larger value
            // is shown as it is, but no more columns are listed, nor more
            // than have a TFORMn card (what is listed grows with the header,
            // not with what it claims).
            let n = h
                .value("TFIELDS")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .clamp(0, 999);
            let cols: Vec<Json> = (1..=n)
                .take_while(|i| h.value(&format!("TFORM{i}")).is_some())
                .map(|i| {
                    let s = |k: String| match h.value(&k) {
                        Some(Value::Str(s)) => s.clone(),
                        _ => String::new(),
                    };
                    json!({"name": s(format!("TTYPE{i}")), "format": s(format!("TFORM{i}"))})
                })
                .collect();
            d["rows"] = json!(h.naxes.get(1).copied().unwrap_or(0));
            d["columns"] = json!(cols);
        }
        hdus.push(d);
    }
    let gzip = is_gzip(path);
    if as_json {
        let doc = json!({"file": path.display().to_string(), "format": "FITS", "gzip": gzip, "hdus": hdus});
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("json")
        ));
    }
    let mut out = format!(
        "{}: FITS{}, {} HDU(s)\n",
        path.display(),
        if gzip { " (gzip-compressed)" } else { "" },
        hdus.len()
    );
    for (h, d) in f.hdus().iter().zip(&hdus) {
        let shape = if h.naxes.is_empty() {
            "no data".to_string()
        } else {
            h.naxes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" x ")
        };
        out.push_str(&format!(
            "\nHDU {}  {}  BITPIX={}  shape={}  EXTNAME={}{}\n",
            h.index,
            h.kind.name(),
            h.bitpix,
            shape,
            h.extname().unwrap_or("-"),
            d.get("compression")
                .and_then(Json::as_str)
                .map(|c| format!("  compressed ({c})"))
                .unwrap_or_default()
        ));
        if let Some(s) = d.get("stats") {
            out.push_str(&format!(
                "  pixels: min={} max={} mean={}\n",
                s["min"], s["max"], s["mean"]
            ));
        }
        if let Some(cols) = d.get("columns").and_then(Json::as_array) {
            out.push_str(&format!("  rows: {}\n", d["rows"]));
            for c in cols {
                out.push_str(&format!(
                    "  column {} ({})\n",
                    c["name"].as_str().unwrap_or(""),
                    c["format"].as_str().unwrap_or("")
                ));
            }
        }
        for c in &h.cards {
            match &c.value {
                Some(v) => {
                    let mut line = format!("  {:<8} = {}", c.key, v.display());
                    if !c.comment.is_empty() {
                        line.push_str(&format!(" / {}", c.comment));
                    }
                    out.push_str(&line);
                    out.push('\n');
                }
                None => out.push_str(&format!("  {:<8} {}\n", c.key, c.comment)),
            }
        }
    }
    Ok(out)
}
