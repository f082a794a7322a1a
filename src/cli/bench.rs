//! `daf bench <area>`: runs an area's measurements and prints a table of
//! ratios against references measured in the same run.

use std::path::PathBuf;

use super::CliError;
use crate::bench::format_table;

/// Arguments of `daf bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The area to measure: `fits`.
    pub area: String,
    /// Timed runs per measurement (median taken).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Folder for temporary files (default: a fresh temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs `daf bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let tmp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| tmp.as_ref().expect("temp dir").path().to_path_buf());
    match args.area.as_str() {
        "fits" => {
            let mut cfg = crate::bench::fits::Config::new(&dir);
            cfg.runs = args.runs.max(1);
            let rows = crate::bench::fits::run(&cfg);
            print!("{}", format_table("daf bench fits", &rows));
            Ok(())
        }
        other => Err(CliError::new(format!(
            "unknown bench area {other:?}; known areas: fits"
        ))),
    }
}
