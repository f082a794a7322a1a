//! `daf show FILE [--json]`: what a file holds, for any file daf reads —
//! FITS files (headers) and PropertySet Boost archives (binary, text, XML).
//! The file is sniffed: FITS starts with `SIMPLE  =` (or is named `.fits`,
//! `.fz`, `.gz`); everything else is tried as a Boost archive.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;

/// Arguments of `daf show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The file to show.
    pub file: PathBuf,
    /// Print JSON instead of YAML.
    #[arg(long)]
    pub json: bool,
}

/// Is this a FITS file (by content or name)?
pub fn is_fits(path: &Path, bytes: &[u8]) -> bool {
    if bytes.starts_with(b"SIMPLE  =") {
        return true;
    }
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".fits")
        || name.ends_with(".fz")
        || name.ends_with(".gz")
        || name.ends_with(".fit")
}

/// Runs `daf show`.
pub fn run(args: ShowArgs) -> Result<(), CliError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::new(format!("{}: {e}", args.file.display())))?;
    if is_fits(&args.file, &bytes) {
        return show_fits(&args.file, args.json);
    }
    super::boost::show_archive(&args.file, &bytes, args.json)
}

/// FITS: the primary (or `[N]`-selected) header's metadata, typed.
fn show_fits(path: &Path, json: bool) -> Result<(), CliError> {
    use daf_storages::{LogicalLocation, Storage};
    let mut s = daf_storages::fits::FitsStorage::new();
    s.set_retrieve_location(&LogicalLocation::literal(path.to_string_lossy()))?;
    let md = daf_formatters::fits::read_metadata(&mut s)?;
    let doc = super::boost::to_document(&md);
    print!("{}", super::boost::render(&doc, json)?);
    Ok(())
}
