//! `daf bench <area>`: benchmark tables, each figure a ratio against a
//! reference measured in the same run.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;

/// `daf bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The area to measure.
    #[command(subcommand)]
    pub area: BenchArea,
}

/// The benchmark areas.
#[derive(Debug, Subcommand)]
pub enum BenchArea {
    /// LogicalLocation template filling against a hand-written `format!`.
    Foundation(QuickArgs),
    /// Database storages: SQLite, PostgreSQL and MariaDB inserts and bulk loads.
    Db(DbBenchArgs),
    /// Policy loading (the seeds' IO-stage policy, PAF and YAML) against
    /// serde_norway's generic parse and `std::fs::read`.
    Policy(QuickArgs),
    /// Butler get/put against plain file I/O, get_many and ingest rates;
    /// get through a PostgreSQL file registry against SQLite.
    Butler(ButlerBenchArgs),
    /// Boost archives: a binary `Vec<f64>` against plain file I/O, records,
    /// doubles in a text archive.
    Boost(BoostBenchArgs),
    /// FITS: image write/read bandwidth, cut-outs, peak memory.
    Fits(FitsBenchArgs),
    /// Registries: partial data-id completion, template mapping, registry creation.
    Registry(QuickArgs),
    /// The harness: per-stage overhead (threads; MPI with `--mpi-only` under
    /// `mpirun -n 5`) and IO-stage throughput with 1, 2 and 4 slices.
    Harness(HarnessBenchArgs),
    /// The Python package (`python -m daf.bench` with DAF_PYTHON): small
    /// get and a 1,000-dataset query against the Gen3 butler, a 4096² image
    /// get against astropy, zero copy and peak memory.
    Python(QuickArgs),
    /// S3 datastore (SeaweedFS or any S3): get, put and cut-outs against
    /// plain object_store calls on the same server.
    Objectstore(ObjectstoreBenchArgs),
}

/// `daf bench objectstore` arguments.
#[derive(Debug, Args)]
pub struct ObjectstoreBenchArgs {
    /// Bucket and prefix to work under (default: s3://$DAF_TEST_S3_BUCKET);
    /// credentials and endpoint from the AWS variables.
    #[arg(long)]
    pub url: Option<String>,
    /// Repetitions of each timing (median).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// `daf bench butler` arguments.
#[derive(Debug, Args)]
pub struct ButlerBenchArgs {
    /// Fewer iterations: a quick, noisier run.
    #[arg(long)]
    pub quick: bool,
    /// PostgreSQL location for the PostgreSQL-registry row (default: env
    /// DAF_TEST_POSTGRES_URL; none skips it). Credentials as for any
    /// registry: ~/.daf/db-auth.yaml or PGUSER / PGPASSWORD.
    #[arg(long)]
    pub postgres: Option<String>,
}

/// `daf bench harness` arguments.
#[derive(Debug, Args)]
pub struct HarnessBenchArgs {
    /// Fewer iterations: a quick, noisier run.
    #[arg(long)]
    pub quick: bool,
    /// Only the MPI per-stage overhead (run under `mpirun -n 5`; needs a daf
    /// built with `--features mpi`).
    #[arg(long)]
    pub mpi_only: bool,
}

/// `daf bench fits` arguments.
#[derive(Debug, Args)]
pub struct FitsBenchArgs {
    /// Timed runs per measurement (median taken).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Folder for the temporary files (default: a fresh temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `daf bench boost` arguments.
#[derive(Debug, Args)]
pub struct BoostBenchArgs {
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// MiB of doubles in the binary `Vec<f64>` archive.
    #[arg(long, default_value_t = 100)]
    pub vec_mib: usize,
    /// Number of records.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// MiB of doubles in the text archive.
    #[arg(long, default_value_t = 8)]
    pub text_mib: usize,
    /// Folder for the benchmark files (default: a temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Arguments of areas that only have a quick mode.
#[derive(Debug, Args)]
pub struct QuickArgs {
    /// Fewer iterations: a quick, noisier run.
    #[arg(long)]
    pub quick: bool,
}

/// `daf bench db` arguments.
#[derive(Debug, Args)]
pub struct DbBenchArgs {
    /// A quick run: 100,000 rows (10,000 for the server row-insert baselines).
    #[arg(long)]
    pub quick: bool,
    /// SourceCatalog rows for SQLite and the bulk loads (default 1,000,000).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Rows for the (slow) server row-insert baselines (default 50,000).
    #[arg(long)]
    pub row_insert_rows: Option<usize>,
    /// PostgreSQL location (default: env DAF_TEST_POSTGRES_URL; none skips).
    #[arg(long)]
    pub postgres: Option<String>,
    /// MariaDB/MySQL location (default: env DAF_TEST_MYSQL_URL; none skips).
    #[arg(long)]
    pub mysql: Option<String>,
    /// Auth file (default ~/.daf/db-auth.yaml if present, else password-less
    /// users postgres / root).
    #[arg(long)]
    pub auth: Option<PathBuf>,
}

/// Runs `daf bench <area>`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    match args.area {
        BenchArea::Foundation(a) => {
            let rows = crate::bench::foundation::run(a.quick);
            print!(
                "{}",
                crate::bench::format_table("daf bench foundation", &rows)
            );
            Ok(())
        }
        BenchArea::Db(a) => run_db(a),
        BenchArea::Policy(a) => {
            let rows = crate::bench::policy::run(a.quick)?;
            print!("{}", crate::bench::format_table("daf bench policy", &rows));
            Ok(())
        }
        BenchArea::Butler(a) => {
            let postgres = a.postgres.clone().or_else(|| {
                std::env::var("DAF_TEST_POSTGRES_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            });
            if postgres.is_none() {
                eprintln!(
                    "note: no PostgreSQL location (--postgres or DAF_TEST_POSTGRES_URL): \
                     PostgreSQL-registry row skipped"
                );
            }
            let rows = crate::bench::butler::run_with(a.quick, postgres.as_deref());
            print!("{}", crate::bench::format_table("daf bench butler", &rows));
            Ok(())
        }
        BenchArea::Boost(a) => run_boost(a),
        BenchArea::Fits(a) => run_fits(a),
        BenchArea::Registry(a) => {
            let opts = if a.quick {
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
        BenchArea::Harness(a) => run_harness(&a),
        BenchArea::Python(a) => {
            let python = std::env::var("DAF_PYTHON").unwrap_or_else(|_| "python3".into());
            let rows = crate::bench::python::run(&python, a.quick).map_err(CliError::new)?;
            print!("{}", crate::bench::format_table("daf bench python", &rows));
            Ok(())
        }
        BenchArea::Objectstore(a) => {
            let url = match a.url {
                Some(u) => u,
                None => format!(
                    "s3://{}",
                    std::env::var("DAF_TEST_S3_BUCKET").map_err(|_| CliError::new(
                        "pass --url s3://bucket/prefix (or set DAF_TEST_S3_BUCKET)"
                    ))?
                ),
            };
            let rows =
                crate::bench::objectstore::run(&url, a.runs.max(1)).map_err(CliError::new)?;
            print!(
                "{}",
                crate::bench::format_table("daf bench objectstore", &rows)
            );
            Ok(())
        }
    }
}

fn run_boost(a: BoostBenchArgs) -> Result<(), CliError> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = crate::bench::boost::BoostBenchConfig {
        vec_mib: a.vec_mib,
        records: a.records,
        text_mib: a.text_mib,
        runs: a.runs,
    };
    let rows = crate::bench::boost::run(&cfg, &dir).map_err(CliError::new)?;
    print!("{}", crate::bench::format_table("daf bench boost", &rows));
    Ok(())
}

fn run_db(a: DbBenchArgs) -> Result<(), CliError> {
    let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    let postgres = a.postgres.clone().or_else(|| env("DAF_TEST_POSTGRES_URL"));
    let mysql = a.mysql.clone().or_else(|| env("DAF_TEST_MYSQL_URL"));
    let auth =
        crate::bench::db::bench_auth(a.auth.as_deref(), postgres.as_deref(), mysql.as_deref())
            .map_err(CliError::new)?;
    let dir = tempfile::tempdir()?;
    let cfg = crate::bench::db::DbBenchConfig {
        rows: a.rows.unwrap_or(if a.quick { 100_000 } else { 1_000_000 }),
        row_insert_rows: a
            .row_insert_rows
            .unwrap_or(if a.quick { 10_000 } else { 50_000 }),
        postgres_url: postgres.clone(),
        mysql_url: mysql.clone(),
        auth,
        work_dir: dir.path().to_path_buf(),
    };
    if postgres.is_none() {
        eprintln!("note: no PostgreSQL location (--postgres or DAF_TEST_POSTGRES_URL): skipped");
    }
    if mysql.is_none() {
        eprintln!("note: no MariaDB location (--mysql or DAF_TEST_MYSQL_URL): skipped");
    }
    let rows = crate::bench::db::run(&cfg).map_err(CliError::new)?;
    print!(
        "{}",
        crate::bench::format_table(
            &format!("daf bench db ({} SourceCatalog rows)", cfg.rows),
            &rows
        )
    );
    Ok(())
}

fn run_fits(a: FitsBenchArgs) -> Result<(), CliError> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let mut cfg = crate::bench::fits::Config::new(&dir);
    cfg.runs = a.runs.max(1);
    let rows = crate::bench::fits::run(&cfg);
    print!("{}", crate::bench::format_table("daf bench fits", &rows));
    Ok(())
}

fn run_harness(args: &HarnessBenchArgs) -> Result<(), CliError> {
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
