//! `daf bench <area>`: runs an area's measurements and prints the table.

use clap::{Args, ValueEnum};

use super::CliError;

/// The benchmark areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchArea {
    /// Boost archives: `Vec<f64>` binary vs plain file I/O, records, text doubles.
    Boost,
}

/// Arguments of `daf bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The area to measure.
    #[arg(value_enum)]
    pub area: BenchArea,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Boost: MiB of doubles in the binary `Vec<f64>` archive.
    #[arg(long, default_value_t = 100)]
    pub vec_mib: usize,
    /// Boost: number of records.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Boost: MiB of doubles in the text archive.
    #[arg(long, default_value_t = 8)]
    pub text_mib: usize,
    /// Folder for the benchmark files (default: a temporary folder).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `daf bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    match args.area {
        BenchArea::Boost => {
            let cfg = crate::bench::boost::BoostBenchConfig {
                vec_mib: args.vec_mib,
                records: args.records,
                text_mib: args.text_mib,
                runs: args.runs,
            };
            let rows = crate::bench::boost::run(&cfg, &dir).map_err(CliError::new)?;
            print!("{}", crate::bench::format_table("daf bench boost", &rows));
        }
    }
    Ok(())
}
