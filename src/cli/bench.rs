//! `daf bench <area>`: performance figures as ratios against a reference
//! measured in the same run. Each area adds a [`BenchArea`] variant and a
//! match arm in [`run`], with its code in `crate::bench::<area>`.

use clap::{Args, ValueEnum};

use super::CliError;
use crate::bench::format_table;

/// Arguments of `daf bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which area to measure.
    #[arg(value_enum)]
    pub area: BenchArea,
    /// Fewer iterations: a quick, noisier run.
    #[arg(long)]
    pub quick: bool,
}

/// The areas `daf bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchArea {
    /// LogicalLocation template filling against a hand-written `format!`.
    Foundation,
    /// Butler get/put against plain file I/O, get_many and ingest rates.
    Butler,
}

/// Runs `daf bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let (title, rows) = match args.area {
        BenchArea::Foundation => (
            "daf bench foundation",
            crate::bench::foundation::run(args.quick),
        ),
        BenchArea::Butler => ("daf bench butler", crate::bench::butler::run(args.quick)),
    };
    print!("{}", format_table(title, &rows));
    Ok(())
}
