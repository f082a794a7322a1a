//! `daf bench db` end to end on a tiny catalog: SQLite always, the servers
//! when `DAF_TEST_POSTGRES_URL` / `DAF_TEST_MYSQL_URL` are set. Checks that
//! every measurement runs and yields a rate and a reference — not the ratios,
//! which only mean something at full size (`daf bench db`).

use daf::formatters::catalog::Cell;
use daf_cli::bench::db::{bench_auth, make_catalog, run, DbBenchConfig};

#[test]
fn catalog_is_deterministic() {
    let cat = make_catalog(20);
    assert_eq!(cat.len(), 20);
    assert_eq!(cat.cell(13, "id"), Some(Cell::I64(13)));
    assert_eq!(cat.cell(13, "parent"), Some(Cell::I64(1)));
    assert_eq!(cat.cell(14, "flag"), Some(Cell::Flag(true)));
}

#[test]
fn db_bench_runs_every_measurement() {
    let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    let pg = env("DAF_TEST_POSTGRES_URL");
    let my = env("DAF_TEST_MYSQL_URL");
    daf::base::testing::available(
        pg.is_some(),
        "DAF_TEST_POSTGRES_URL not set: PostgreSQL bench rows not run",
    );
    daf::base::testing::available(
        my.is_some(),
        "DAF_TEST_MYSQL_URL not set: MariaDB bench rows not run",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbBenchConfig {
        rows: 3000,
        row_insert_rows: 300,
        postgres_url: pg.clone(),
        mysql_url: my.clone(),
        auth: bench_auth(None, pg.as_deref(), my.as_deref()).unwrap(),
        work_dir: dir.path().to_path_buf(),
    };
    let rows = run(&cfg).unwrap();
    let psql = pg.is_some() && daf::base::testing::have_program("psql");
    let expected = 1 + usize::from(pg.is_some()) + usize::from(psql) + usize::from(my.is_some());
    assert_eq!(rows.len(), expected, "{rows:?}");
    for r in &rows {
        assert!(r.value > 0.0 && r.reference.unwrap() > 0.0, "{r:?}");
        assert!(r.met().is_some());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "bench leaves no files"
    );
}
