//! `daf bench <area>`: prints an area's benchmark table (figures as ratios
//! against a reference measured in the same run).

use super::CliError;

/// Arguments of `daf bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The area: `harness`.
    pub area: String,
    /// Fewer repetitions (a smoke run).
    #[arg(long)]
    pub quick: bool,
    /// harness: only the MPI per-stage overhead (run under `mpirun -n 5`; needs `--features mpi`).
    #[arg(long)]
    pub mpi_only: bool,
}

/// Runs `daf bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    match args.area.as_str() {
        "harness" => harness(&args),
        other => Err(CliError::new(format!(
            "unknown bench area {other:?} (known: harness)"
        ))),
    }
}

fn harness(args: &BenchArgs) -> Result<(), CliError> {
    if args.mpi_only {
        #[cfg(feature = "mpi")]
        {
            let (stages, visits) = if args.quick { (10, 50) } else { (20, 200) };
            if let Some(row) = crate::bench::harness::mpi_overhead_row(stages, visits) {
                print!(
                    "{}",
                    crate::bench::format_table("daf bench harness (MPI)", &[row])
                );
            }
            return Ok(());
        }
        #[cfg(not(feature = "mpi"))]
        return Err(CliError::new(
            "--mpi-only needs a daf built with `--features mpi`",
        ));
    }
    let rows = crate::bench::harness::rows(args.quick);
    print!("{}", crate::bench::format_table("daf bench harness", &rows));
    Ok(())
}
