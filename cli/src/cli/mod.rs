//! The `daf` command line: argument definitions and dispatch.
//!
//! Each area keeps its subcommands in its own module; this module assembles
//! them into one [`Cli`].

pub mod bench;
pub mod boost;
pub mod butler;
pub mod harness;
pub mod lifecycle;
pub mod policy;
pub mod registry;
pub mod show;
pub mod typos;

use clap::{Parser, Subcommand};

/// The `daf` command line.
#[derive(Debug, Parser)]
#[command(
    name = "daf",
    version,
    about = "daf: persistence, data butler and pipeline harness for survey data"
)]
pub struct Cli {
    /// More log output on standard error: -v info, -vv debug, -vvv trace
    /// (default: warnings). RUST_LOG, when set, decides instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: -q errors only and no progress bars, -qq no log at all.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `daf` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version, the registered storages and formatters.
    Info,
    /// Create a repository.
    Create(butler::CreateArgs),
    /// Ingest files into a repository (data ids from FITS headers or a table).
    Ingest(butler::IngestArgs),
    /// List datasets, or distinct data-id values, with an optional --where filter.
    Query(butler::QueryArgs),
    /// Read one dataset and print a summary (type, shape, header or fields).
    Get(butler::GetArgs),
    /// Print the fully merged dataset definitions of a repository chain.
    DumpPolicy(butler::DumpPolicyArgs),
    /// Re-check sizes and checksums of every registered file.
    Verify(butler::VerifyArgs),
    /// Write a YAML listing of datasets and their files.
    Export(butler::ExportArgs),
    /// Import the datasets of an export listing.
    Import(butler::ImportArgs),
    /// Measure an area's performance targets (ratios against a reference).
    Bench(bench::BenchArgs),
    /// Registry management (`daf registry create POLICY ROOT`).
    Registry(registry::RegistryArgs),
    /// Check policy files against dictionaries, dump them as YAML or PAF.
    Policy(policy::PolicyArgs),
    /// Run a pipeline policy on the harness (threads, or MPI under mpirun).
    Run(harness::RunArgs),
    /// The main job: synthetic raws and biases, a bias-subtraction pipeline
    /// on 4 thread slices, outputs checked, timings printed.
    Demo(harness::DemoArgs),
    /// List the input datasets recorded as provenance of a dataset.
    Provenance(harness::ProvenanceArgs),
    /// Show what a file holds: a PropertySet archive (Boost binary, text or
    /// XML; detected) or a FITS header, as YAML (or JSON) with each value's type.
    Show(show::ShowArgs),
    /// Convert a PropertySet between YAML/JSON and Boost binary, text and
    /// XML archives (`--boost-version 1.74|1.81|18|19`; default: the input's).
    Convert(boost::ConvertArgs),
    /// Remove datasets (registry rows; their files too with --purge).
    Prune(lifecycle::PruneArgs),
    /// Remove every dataset of one run (files too with --purge).
    RemoveRun(lifecycle::RemoveRunArgs),
    /// Add a dataset type to an existing SimpleMapper repository.
    RegisterDatasetType(lifecycle::RegisterDatasetTypeArgs),
    /// List the dataset types of a repository chain, with their keys and counts.
    QueryDatasetTypes(lifecycle::QueryDatasetTypesArgs),
    /// List the runs of a repository chain, with their dataset counts.
    QueryRuns(lifecycle::QueryRunsArgs),
    /// Copy the files of datasets out of a repository into a folder.
    Retrieve(lifecycle::RetrieveArgs),
}

/// The error type of command handlers: a message for the user and an exit code.
#[derive(Debug)]
pub struct CliError {
    /// What to tell the user.
    pub message: String,
    /// The process exit status.
    pub code: i32,
}

impl CliError {
    /// An error with exit status 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Error types that convert into a [`CliError`] (exit status 1, their
/// message). A blanket `From<E: Error>` would clash with `CliError` itself
/// being an error, so each is listed.
macro_rules! cli_error_from {
    ($($t:ty),+ $(,)?) => {
        $(impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::new(e.to_string())
            }
        })+
    };
}

cli_error_from!(
    std::io::Error,
    std::fmt::Error,
    serde_json::Error,
    serde_norway::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    daf_base::PropertyError,
    daf_base::PrintfError,
    daf_base::policy::PolicyError,
    daf_storages::StorageError,
    daf_storages::LocationError,
    daf_storages::boost::ArchiveError,
    daf_storages::db::DbError,
    daf_formatters::FormatterError,
    daf_mappers::MapperError,
    daf_butler::ButlerError,
    daf_harness::HarnessError,
);

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    run_with_registry(cli, &daf_harness::StageRegistry::with_defaults())
}

/// Runs a parsed command line; `daf run` uses the stages of `registry`
/// (build it from [`daf_harness::StageRegistry::with_defaults`] and add
/// your own). This is how an application ships a `daf` with its stages —
/// see `examples/custom_stages.rs`.
pub fn run_with_registry(cli: Cli, registry: &daf_harness::StageRegistry) -> Result<(), CliError> {
    init_tracing(cli.verbose, cli.quiet);
    let quiet = cli.quiet > 0;
    match cli.command {
        Command::Info => {
            println!("daf {}", env!("CARGO_PKG_VERSION"));
            let storages = daf_storages::StorageRegistry::with_defaults();
            println!("storages: {}", storages.names().join(", "));
            let formatters = daf_formatters::FormatterRegistry::with_defaults();
            println!("formatters: {}", formatters.names().join(", "));
            Ok(())
        }
        Command::Create(a) => butler::create(a),
        Command::Ingest(mut a) => {
            a.quiet = quiet;
            butler::ingest(a)
        }
        Command::Query(a) => butler::query(a),
        Command::Get(a) => butler::get(a),
        Command::DumpPolicy(a) => butler::dump_policy(a),
        Command::Verify(a) => butler::verify(a),
        Command::Export(a) => butler::export(a),
        Command::Import(mut a) => {
            a.quiet = quiet;
            butler::import(a)
        }
        Command::Bench(args) => bench::run(args),
        Command::Registry(args) => registry::run(args, quiet),
        Command::Policy(args) => policy::run(args),
        Command::Run(args) => harness::run_with_registry(args, registry),
        Command::Demo(args) => harness::demo(args),
        Command::Provenance(args) => harness::provenance(args),
        Command::Show(args) => show::run(&args),
        Command::Convert(args) => boost::run_convert(args),
        Command::Prune(a) => lifecycle::prune(a),
        Command::RemoveRun(a) => lifecycle::remove_run(a),
        Command::RegisterDatasetType(a) => lifecycle::register_dataset_type(a),
        Command::QueryDatasetTypes(a) => lifecycle::query_dataset_types(a),
        Command::QueryRuns(a) => lifecycle::query_runs(a),
        Command::Retrieve(a) => lifecycle::retrieve(a),
    }
}

/// Sets up logging to standard error once per process, for every command:
/// `RUST_LOG` when set, else warnings, raised by `-v` (info, debug, trace)
/// and lowered by `-q` (errors only, then nothing). A second call (an
/// application that set up its own subscriber) changes nothing.
pub fn init_tracing(verbose: u8, quiet: u8) {
    let level = match (i16::from(verbose) - i16::from(quiet)).clamp(-2, 3) {
        -2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => tracing_subscriber::EnvFilter::try_new(v)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        _ => tracing_subscriber::EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
