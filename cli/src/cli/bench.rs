//! `daf bench <area>`: benchmark tables, each figure a ratio against a
//! reference measured in the same run.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;

/// `daf bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Also run the peers a user would pick instead (C++ Boost, cfitsio,
    /// astropy, the Gen3 butler, psql `\copy`, Python sqlite3) on the same
    /// data, interleaved with daf's runs; a missing peer is an error.
    #[arg(long, global = true)]
    pub peers: bool,
    /// Print one JSON object per measurement (name, value, unit, reference,
    /// ratio, target, pass) instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
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
    /// How costs grow: butler get, put and query latency and registry size
    /// at 10³ to 10⁶ datasets (SQLite, and PostgreSQL with --postgres), as a
    /// table and a PNG chart.
    Scale(ScaleBenchArgs),
}

/// `daf bench scale` arguments.
#[derive(Debug, Args)]
pub struct ScaleBenchArgs {
    /// A quick run: 10³, 10⁴ and 10⁵ datasets, fewer repeats.
    #[arg(long)]
    pub quick: bool,
    /// Dataset counts, ascending, comma-separated [default: 1000,10000,100000,1000000;
    /// with --quick 1000,10000,100000].
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Timed repeats of each latency (median) [default: 21; with --quick 9].
    #[arg(long)]
    pub runs: Option<usize>,
    /// PostgreSQL location for a PostgreSQL-registry series (default: env
    /// DAF_TEST_POSTGRES_URL; none, or an empty value, skips it).
    #[arg(long)]
    pub postgres: Option<String>,
    /// Where to write the chart (latency against datasets, log–log PNG).
    #[arg(long, default_value = "daf-bench-scale.png")]
    pub plot: PathBuf,
    /// Chart width in pixels.
    #[arg(long, default_value_t = 1000)]
    pub width: u32,
    /// Chart height in pixels.
    #[arg(long, default_value_t = 640)]
    pub height: u32,
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
    /// Datasets in daf's and Gen3's repositories for `--peers` (the query
    /// size; put_many batches are at most this).
    #[arg(long, default_value_t = 1000)]
    pub peer_datasets: usize,
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
    /// A quick run: 3 timed runs of daf's own rows (5 against the peers)
    /// and a 64 MiB peak-memory image.
    #[arg(long)]
    pub quick: bool,
    /// Timed runs per measurement (median taken).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Folder for the temporary files (default: a fresh temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Side of the square test images.
    #[arg(long, default_value_t = 4096)]
    pub side: usize,
}

/// `daf bench boost` arguments.
#[derive(Debug, Args)]
pub struct BoostBenchArgs {
    /// A quick run: 16 MiB of doubles, 100,000 records, 1 MiB of text
    /// (explicit sizes still win).
    #[arg(long)]
    pub quick: bool,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// MiB of doubles in the binary `Vec<f64>` archive [default: 100].
    #[arg(long)]
    pub vec_mib: Option<usize>,
    /// Number of records [default: 1000000].
    #[arg(long)]
    pub records: Option<usize>,
    /// MiB of doubles in the text archive [default: 8].
    #[arg(long)]
    pub text_mib: Option<usize>,
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
    let peers = args.peers;
    let (area, title, rows) = match args.area {
        BenchArea::Foundation(a) => (
            "foundation",
            "daf bench foundation".to_string(),
            no_peers(peers, "foundation", crate::bench::foundation::run(a.quick)),
        ),
        BenchArea::Db(a) => ("db", String::new(), run_db(a, peers)?),
        BenchArea::Policy(a) => (
            "policy",
            "daf bench policy".to_string(),
            no_peers(peers, "policy", crate::bench::policy::run(a.quick)?),
        ),
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
            let mut rows = crate::bench::butler::run_with(a.quick, postgres.as_deref());
            if peers {
                rows.extend(
                    crate::bench::butler::peer_rows(a.quick, a.peer_datasets)
                        .map_err(CliError::new)?,
                );
            }
            ("butler", "daf bench butler".to_string(), rows)
        }
        BenchArea::Boost(a) => ("boost", "daf bench boost".to_string(), run_boost(a, peers)?),
        BenchArea::Fits(a) => ("fits", "daf bench fits".to_string(), run_fits(a, peers)?),
        BenchArea::Registry(a) => {
            let opts = if a.quick {
                crate::bench::registry::Options::quick()
            } else {
                crate::bench::registry::Options::full()
            };
            (
                "registry",
                "daf bench registry".to_string(),
                no_peers(peers, "registry", crate::bench::registry::run(opts)),
            )
        }
        BenchArea::Harness(a) => (
            "harness",
            "daf bench harness".to_string(),
            no_peers(peers, "harness", run_harness(&a)?),
        ),
        BenchArea::Python(a) => {
            let python = std::env::var("DAF_PYTHON").unwrap_or_else(|_| "python3".into());
            let rows = crate::bench::python::run(&python, a.quick).map_err(CliError::new)?;
            ("python", "daf bench python".to_string(), rows)
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
            ("objectstore", "daf bench objectstore".to_string(), rows)
        }
        BenchArea::Scale(a) => {
            let rows = run_scale(a)?;
            (
                "scale",
                "daf bench scale".to_string(),
                no_peers(peers, "scale", rows),
            )
        }
    };
    let title = if title.is_empty() {
        format!("daf bench {area}")
    } else {
        title
    };
    if args.json {
        print!("{}", crate::bench::format_json(area, &rows));
    } else {
        print!("{}", crate::bench::format_table(&title, &rows));
    }
    Ok(())
}

/// Areas whose claims have no outside peer: their references (a hand-written
/// loop, `std::fs`, one slice) are what a user would write instead.
fn no_peers(peers: bool, area: &str, rows: Vec<crate::bench::Row>) -> Vec<crate::bench::Row> {
    if peers {
        eprintln!(
            "note: `daf bench {area}` has no outside peer; its references are the \
             hand-written equivalents measured in the same run"
        );
    }
    rows
}

fn run_scale(a: ScaleBenchArgs) -> Result<Vec<crate::bench::Row>, CliError> {
    use crate::bench::scale::{self, ScaleConfig};
    let mut cfg = if a.quick {
        ScaleConfig::quick()
    } else {
        ScaleConfig::full()
    };
    if !a.sizes.is_empty() {
        cfg.sizes = a.sizes.clone();
    }
    if let Some(r) = a.runs {
        cfg.runs = r.max(1);
    }
    cfg.postgres = match &a.postgres {
        Some(url) if url.is_empty() => None,
        Some(url) => Some(url.clone()),
        None => std::env::var("DAF_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    // Checked before the (long) measurements.
    scale::check_plot_size(a.width, a.height).map_err(CliError::new)?;
    let points = scale::run(&cfg).map_err(CliError::new)?;
    scale::plot(&points, &a.plot, a.width, a.height).map_err(CliError::new)?;
    eprintln!("chart: {} ({}x{} PNG)", a.plot.display(), a.width, a.height);
    Ok(scale::rows(&points))
}

fn run_boost(a: BoostBenchArgs, peers: bool) -> Result<Vec<crate::bench::Row>, CliError> {
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
    let (vec_mib, records, text_mib) = if a.quick {
        (16, 100_000, 1)
    } else {
        (100, 1_000_000, 8)
    };
    let cfg = crate::bench::boost::BoostBenchConfig {
        vec_mib: a.vec_mib.unwrap_or(vec_mib),
        records: a.records.unwrap_or(records),
        text_mib: a.text_mib.unwrap_or(text_mib),
        runs: a.runs,
    };
    let mut rows = crate::bench::boost::run(&cfg, &dir).map_err(CliError::new)?;
    if peers {
        rows.extend(crate::bench::boost::peer_rows(&cfg, &dir).map_err(CliError::new)?);
    }
    Ok(rows)
}

fn run_db(a: DbBenchArgs, peers: bool) -> Result<Vec<crate::bench::Row>, CliError> {
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
        if peers {
            return Err(CliError::new(
                "--peers needs PostgreSQL for the psql \\copy peer: pass --postgres or set \
                 DAF_TEST_POSTGRES_URL (and install psql: apt-get install postgresql-client)",
            ));
        }
        eprintln!("note: no PostgreSQL location (--postgres or DAF_TEST_POSTGRES_URL): skipped");
    }
    if mysql.is_none() {
        eprintln!("note: no MariaDB location (--mysql or DAF_TEST_MYSQL_URL): skipped");
    }
    let mut rows = crate::bench::db::run(&cfg).map_err(CliError::new)?;
    if peers {
        rows.extend(crate::bench::db::peer_rows(&cfg).map_err(CliError::new)?);
    }
    Ok(rows)
}

fn run_fits(a: FitsBenchArgs, peers: bool) -> Result<Vec<crate::bench::Row>, CliError> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let mut cfg = crate::bench::fits::Config::new(&dir);
    cfg.runs = a.runs.max(1);
    cfg.side = a.side.max(200);
    if a.quick {
        cfg.runs = cfg.runs.min(3);
        cfg.memory_mib = 64;
    }
    let mut rows = crate::bench::fits::run(&cfg);
    if peers {
        cfg.runs = cfg.runs.max(5);
        rows.extend(crate::bench::fits::peer_rows(&cfg).map_err(CliError::new)?);
    }
    Ok(rows)
}

fn run_harness(args: &HarnessBenchArgs) -> Result<Vec<crate::bench::Row>, CliError> {
    if args.mpi_only {
        #[cfg(feature = "mpi")]
        {
            let (stages, visits) = if args.quick { (10, 50) } else { (20, 200) };
            return Ok(crate::bench::harness::mpi_overhead_row(stages, visits)
                .into_iter()
                .collect());
        }
        #[cfg(not(feature = "mpi"))]
        return Err(CliError::new(
            "--mpi-only needs a daf built with `--features mpi`",
        ));
    }
    Ok(crate::bench::harness::rows(args.quick))
}
