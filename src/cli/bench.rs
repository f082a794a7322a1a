//! `daf bench <area>`: performance measurements as ratios against a
//! reference measured in the same run (see [`crate::bench`]).

use clap::Args;

use super::CliError;

/// `daf bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure: `registry`.
    pub area: String,
    /// Smaller sizes, for a quick smoke run.
    #[arg(long)]
    pub quick: bool,
}

/// Runs `daf bench <area>` and prints its table.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    match args.area.as_str() {
        "registry" => {
            let opts = if args.quick {
                crate::bench::registry::Options::quick()
            } else {
                crate::bench::registry::Options::full()
            };
            let rows = crate::bench::registry::run(opts);
            print!(
                "{}",
                crate::bench::format_table("daf bench registry", &rows)
            );
            Ok(())
        }
        other => Err(CliError::new(format!(
            "unknown bench area {other:?} (known: registry)"
        ))),
    }
}
