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
    /// db: SourceCatalog rows for SQLite and the bulk loads (default
    /// 1,000,000; 100,000 with --quick).
    #[arg(long)]
    pub rows: Option<usize>,
    /// db: rows for the (slow) server row-insert baselines (default 50,000;
    /// 10,000 with --quick).
    #[arg(long)]
    pub row_insert_rows: Option<usize>,
    /// db: PostgreSQL location (default: env DAF_TEST_POSTGRES_URL; none skips).
    #[arg(long)]
    pub postgres: Option<String>,
    /// db: MariaDB/MySQL location (default: env DAF_TEST_MYSQL_URL; none skips).
    #[arg(long)]
    pub mysql: Option<String>,
    /// db: auth file (default ~/.daf/db-auth.yaml if present, else
    /// password-less users postgres / root).
    #[arg(long)]
    pub auth: Option<std::path::PathBuf>,
}

/// The areas `daf bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchArea {
    /// LogicalLocation template filling against a hand-written `format!`.
    Foundation,
    /// Database storages: SQLite DbStorage vs rusqlite, PostgreSQL COPY and
    /// MariaDB bulk loads vs row inserts and `psql \copy`.
    Db,
}

/// Runs `daf bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let (title, rows) = match args.area {
        BenchArea::Foundation => (
            "daf bench foundation",
            crate::bench::foundation::run(args.quick),
        ),
        BenchArea::Db => ("daf bench db", run_db(args)?),
    };
    print!("{}", format_table(title, &rows));
    Ok(())
}

fn run_db(a: &BenchArgs) -> Result<Vec<crate::bench::Row>, CliError> {
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
    eprintln!("measuring {} SourceCatalog rows ...", cfg.rows);
    crate::bench::db::run(&cfg).map_err(CliError::new)
}
