//! The `daf` command line: argument definitions and dispatch.
//!
//! Each area keeps its subcommands in its own module; this module assembles
//! them into one [`Cli`].

pub mod bench;
pub mod boost;
pub mod butler;
pub mod harness;
pub mod policy;
pub mod registry;
pub mod show;

use clap::{Parser, Subcommand};

/// The `daf` command line.
#[derive(Debug, Parser)]
#[command(
    name = "daf",
    version,
    about = "daf: persistence, data butler and pipeline harness for survey data"
)]
pub struct Cli {
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

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::new(e.to_string())
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Info => {
            println!("daf {}", env!("CARGO_PKG_VERSION"));
            let storages = daf_storages::StorageRegistry::with_defaults();
            println!("storages: {}", storages.names().join(", "));
            Ok(())
        }
        Command::Create(a) => butler::create(a),
        Command::Ingest(a) => butler::ingest(a),
        Command::Query(a) => butler::query(a),
        Command::Get(a) => butler::get(a),
        Command::DumpPolicy(a) => butler::dump_policy(a),
        Command::Verify(a) => butler::verify(a),
        Command::Export(a) => butler::export(a),
        Command::Import(a) => butler::import(a),
        Command::Bench(args) => bench::run(args),
        Command::Registry(args) => registry::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Run(args) => harness::run(args),
        Command::Demo(args) => harness::demo(args),
        Command::Provenance(args) => harness::provenance(args),
        Command::Show(args) => show::run(&args),
        Command::Convert(args) => boost::run_convert(args),
    }
}
