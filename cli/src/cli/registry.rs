//! `daf registry ...`: registry management.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use daf_mappers::ingest;
use daf_mappers::MapperPolicy;
use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;

/// `daf registry` arguments.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry subcommand.
    #[command(subcommand)]
    pub command: RegistryCommand,
}

/// Registry subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Build ROOT/registry.sqlite3 from the raw FITS files under ROOT (headers
    /// only, in parallel), or from a metadata table with --from-table.
    ///
    /// Keys come from the file paths (the policy's ingest template, by
    /// default the raw template) and from the header rules in the policy's
    /// `ingest.headerKeys` section.
    Create {
        /// The mapper policy (.yaml or .paf).
        policy: PathBuf,
        /// The repository root holding the raw files.
        root: PathBuf,
        /// Where to write the registry (default ROOT/registry.sqlite3).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Build from this TSV/CSV table (one row per file) instead of
        /// reading FITS headers.
        #[arg(long)]
        from_table: Option<PathBuf>,
        /// Folder of obs_base-style defaults (default: obs_base/ next to the policy).
        #[arg(long)]
        defaults: Option<PathBuf>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Do not show a progress bar (the global `-q`/`--quiet`).
        #[arg(skip)]
        quiet: bool,
    },
}

/// Runs `daf registry ...`.
pub fn run(args: RegistryArgs, quiet_flag: bool) -> Result<(), CliError> {
    match args.command {
        RegistryCommand::Create {
            policy,
            root,
            output,
            from_table,
            defaults,
            jobs,
            quiet,
        } => {
            let quiet = quiet || quiet_flag;
            let policy = MapperPolicy::load(&policy, defaults.as_deref())?;
            let out = output.unwrap_or_else(|| root.join("registry.sqlite3"));
            let start = std::time::Instant::now();
            let summary = match from_table {
                Some(table) => ingest::create_from_table(&policy, &table, &out)?,
                None => {
                    let bar = if quiet {
                        ProgressBar::hidden()
                    } else {
                        let b = ProgressBar::new(0);
                        b.set_style(
                            ProgressStyle::with_template(
                                "{spinner} reading headers {pos}/{len} [{bar:30}] {per_sec} {eta}",
                            )
                            .map_err(|e| CliError::new(e.to_string()))?
                            .progress_chars("=> "),
                        );
                        b
                    };
                    let progress = |done: u64, total: u64| {
                        bar.set_length(total);
                        bar.set_position(done);
                    };
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(jobs.unwrap_or(0))
                        .build()
                        .map_err(|e| CliError::new(e.to_string()))?;
                    let r =
                        pool.install(|| ingest::create_from_files(&policy, &root, &out, &progress));
                    bar.finish_and_clear();
                    r?
                }
            };
            let secs = start.elapsed().as_secs_f64();
            println!(
                "wrote {} ({} rows{}) in {:.2} s ({:.0} rows/s)",
                summary.path.display(),
                summary.rows,
                if summary.visit_rows > 0 {
                    format!(", {} visits", summary.visit_rows)
                } else {
                    String::new()
                },
                secs,
                summary.rows as f64 / secs.max(1e-9)
            );
            Ok(())
        }
    }
}
