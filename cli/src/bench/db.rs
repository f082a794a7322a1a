//! `daf bench db`: database storage throughput, each figure a ratio against
//! a reference measured in the same run.
//!
//! - SQLite through `DbStorage` (SourceCatalog formatter path) vs a
//!   hand-written rusqlite prepared-insert loop in one transaction (≥ 0.8×);
//! - PostgreSQL through `DbTsvStorage` vs `DbStorage` row inserts (≥ 10×) and
//!   vs `psql \copy` of the same TSV file (≥ 0.7×);
//! - MariaDB/MySQL through `DbTsvStorage` vs `DbStorage` row inserts (≥ 5×).
//!
//! Row inserts to servers are measured on a smaller row count
//! ([`DbBenchConfig::row_insert_rows`]) and compared as rates (rows/s).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daf_base::{Policy, PropertySet};
use daf_formatters::catalog::{Column, Field, FieldType};
use daf_formatters::SourceCatalog;
use daf_storages::db::{quote_ident, Backend, DbAuth, DbKind, DbStorage, DbTsvStorage, DbUrl};
use daf_storages::Storage;

use super::{Row, Target};

/// What to measure.
#[derive(Debug, Clone)]
pub struct DbBenchConfig {
    /// Catalog rows for SQLite and the bulk (TSV) loads.
    pub rows: usize,
    /// Rows for the server row-insert baselines (slow by nature).
    pub row_insert_rows: usize,
    /// `postgresql://host:port/db`, if PostgreSQL is to be measured.
    pub postgres_url: Option<String>,
    /// `mysql://host:port/db`, if MariaDB/MySQL is to be measured.
    pub mysql_url: Option<String>,
    /// Credentials for the servers.
    pub auth: DbAuth,
    /// Folder for SQLite files and TSV files.
    pub work_dir: PathBuf,
}

/// The schema of the benchmark catalog.
pub const COLUMNS: [(&str, DbKind); 7] = [
    ("id", DbKind::I64),
    ("parent", DbKind::I64),
    ("ra", DbKind::F64),
    ("decl", DbKind::F64),
    ("flux", DbKind::F32),
    ("flux_err", DbKind::F32),
    ("flag", DbKind::Bool),
];

/// A deterministic SourceCatalog of `n` rows with the [`COLUMNS`] schema.
pub fn make_catalog(n: usize) -> SourceCatalog {
    let fields = vec![
        Field::new("id", FieldType::I64),
        Field::new("parent", FieldType::I64),
        Field::new("ra", FieldType::F64),
        Field::new("decl", FieldType::F64),
        Field::new("flux", FieldType::F32),
        Field::new("flux_err", FieldType::F32),
        Field::new("flag", FieldType::Flag),
    ];
    let ids: Vec<i64> = (0..n as i64).collect();
    let columns = vec![
        Column::I64(ids.clone()),
        Column::I64(ids.iter().map(|i| i / 10).collect()),
        Column::F64(
            ids.iter()
                .map(|&i| (i as f64 * 0.000_137) % 360.0)
                .collect(),
        ),
        Column::F64(
            ids.iter()
                .map(|&i| ((i as f64 * 0.000_071) % 180.0) - 90.0)
                .collect(),
        ),
        Column::F32(
            ids.iter()
                .map(|&i| 1000.0 + (i % 977) as f32 * 0.5)
                .collect(),
        ),
        Column::F32(ids.iter().map(|&i| 1.0 + (i % 13) as f32 * 0.01).collect()),
        Column::Flag(ids.iter().map(|&i| i % 7 == 0).collect()),
    ];
    SourceCatalog::from_columns(fields, columns).expect("consistent columns")
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Creates (dropping any old one) the benchmark table `name`.
pub fn create_table(db: &mut DbStorage, name: &str) -> Result<(), String> {
    let b = db.backend().ok_or("not connected")?;
    if db.table_exists(name).map_err(err)? {
        db.drop_table(name).map_err(err)?;
    }
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(c, k)| {
            format!(
                "{} {}",
                quote_ident(b, c).unwrap_or_default(),
                b.column_type(*k)
            )
        })
        .collect();
    db.execute_sql(&format!(
        "CREATE TABLE {} ({})",
        quote_ident(b, name).map_err(err)?,
        cols.join(", ")
    ))
    .map_err(err)?;
    Ok(())
}

fn policy_for(table: &str) -> Policy {
    let mut p = Policy::new();
    p.set("TableName", table).expect("plain name");
    p
}

/// Writes `cat` through a storage with the SourceCatalog formatter's
/// database path, inside one transaction; returns the elapsed time.
pub fn write_through(
    storage: &mut dyn Storage,
    cat: &SourceCatalog,
    table: &str,
) -> Result<Duration, String> {
    let policy = policy_for(table);
    let t = Instant::now();
    storage.start_transaction().map_err(err)?;
    if let Err(e) =
        daf_formatters::db::write_catalog(cat, storage, &PropertySet::new(), Some(&policy))
    {
        let _ = storage.abort_transaction();
        return Err(e.to_string());
    }
    storage.prepare_commit().map_err(err)?;
    storage.end_transaction().map_err(err)?;
    Ok(t.elapsed())
}

/// The reference: a hand-written rusqlite prepared-insert loop in one transaction.
pub fn rusqlite_reference(
    path: &Path,
    cat: &SourceCatalog,
    table: &str,
) -> Result<Duration, String> {
    let mut conn = rusqlite::Connection::open(path).map_err(err)?;
    let t = Instant::now();
    let tx = conn.transaction().map_err(err)?;
    {
        let mut st = tx
            .prepare(&format!(
                "INSERT INTO \"{table}\" (id, parent, ra, decl, flux, flux_err, flag) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ))
            .map_err(err)?;
        let c = cat.columns();
        let (Column::I64(id), Column::I64(parent), Column::F64(ra), Column::F64(dec)) =
            (&c[0], &c[1], &c[2], &c[3])
        else {
            return Err("unexpected schema".into());
        };
        let (Column::F32(flux), Column::F32(ferr), Column::Flag(flag)) = (&c[4], &c[5], &c[6])
        else {
            return Err("unexpected schema".into());
        };
        for i in 0..cat.len() {
            st.execute(rusqlite::params![
                id[i],
                parent[i],
                ra[i],
                dec[i],
                flux[i] as f64,
                ferr[i] as f64,
                flag[i]
            ])
            .map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    Ok(t.elapsed())
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn row(
    name: &str,
    value: f64,
    reference: Option<f64>,
    reference_name: &str,
    target: Target,
) -> Row {
    Row {
        name: name.into(),
        value,
        unit: "rows/s".into(),
        reference,
        reference_name: reference_name.into(),
        target,
    }
}

fn count(db: &mut DbStorage, table: &str) -> Result<i64, String> {
    db.set_table_for_query(table).map_err(err)?;
    db.out_column("id").map_err(err)?;
    db.query().map_err(err)?;
    let mut n = 0;
    while db.next().map_err(err)? {
        n += 1;
    }
    db.finish_query();
    Ok(n)
}

/// Measures SQLite: DbStorage vs the rusqlite loop.
pub fn bench_sqlite(cfg: &DbBenchConfig, cat: &SourceCatalog) -> Result<Vec<Row>, String> {
    let n = cat.len();
    let mut best_ref = Duration::MAX;
    let mut best_db = Duration::MAX;
    for run in 0..3 {
        let p_ref = cfg.work_dir.join(format!("bench-ref-{run}.sqlite3"));
        let p_db = cfg.work_dir.join(format!("bench-db-{run}.sqlite3"));
        for p in [&p_ref, &p_db] {
            let _ = std::fs::remove_file(p);
            let mut d =
                DbStorage::open_url(&format!("sqlite://{}", p.display()), None).map_err(err)?;
            create_table(&mut d, "bench_src")?;
        }
        best_ref = best_ref.min(rusqlite_reference(&p_ref, cat, "bench_src")?);
        let mut db =
            DbStorage::open_url(&format!("sqlite://{}", p_db.display()), None).map_err(err)?;
        best_db = best_db.min(write_through(&mut db, cat, "bench_src")?);
        if count(&mut db, "bench_src")? != n as i64 {
            return Err("SQLite DbStorage row count mismatch".into());
        }
        for p in [&p_ref, &p_db] {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(vec![row(
        "SQLite DbStorage SourceCatalog insert",
        rate(n, best_db),
        Some(rate(n, best_ref)),
        "rusqlite prepared loop",
        Target::AtLeast(0.8),
    )])
}

fn server_url(url: &str) -> Result<DbUrl, String> {
    DbUrl::parse(url).map_err(err)
}

/// Measures a server: DbTsvStorage bulk load vs DbStorage row inserts
/// (and, for PostgreSQL, vs `psql \copy`).
pub fn bench_server(
    cfg: &DbBenchConfig,
    url: &str,
    cat: &SourceCatalog,
) -> Result<Vec<Row>, String> {
    let u = server_url(url)?;
    let auth = Arc::new(cfg.auth.clone());
    let table = format!(
        "daf_bench_{}_{}",
        std::process::id(),
        u.backend.name().to_ascii_lowercase()
    );
    let mut db = DbStorage::open_url(url, Some(auth.clone())).map_err(err)?;
    let small = make_catalog(cfg.row_insert_rows.min(cat.len()).max(1));

    create_table(&mut db, &table)?;
    let d_rows = write_through(&mut db, &small, &table)?;
    let rows_rate = rate(small.len(), d_rows);

    // Bulk loads: best of two runs (the machine may be shared).
    let mut d_tsv = Duration::MAX;
    let mut tsv_file: Option<PathBuf> = None;
    for _ in 0..2 {
        create_table(&mut db, &table)?;
        let mut tsv = DbTsvStorage::open_url(url, Some(auth.clone())).map_err(err)?;
        tsv.set_temp_path(&cfg.work_dir);
        tsv.set_save_temp(u.backend == Backend::Postgres);
        d_tsv = d_tsv.min(write_through(&mut tsv, cat, &table)?);
        if count(&mut db, &table)? != cat.len() as i64 {
            return Err(format!("{}: bulk load row count mismatch", u.backend));
        }
        if let Some(f) = tsv.saved_files().first() {
            if let Some(old) = tsv_file.replace(f.clone()) {
                let _ = std::fs::remove_file(old);
            }
        }
    }
    let tsv_rate = rate(cat.len(), d_tsv);
    let mut out = Vec::new();
    let (name, target) = match u.backend {
        Backend::Postgres => ("PostgreSQL DbTsvStorage (COPY) load", Target::AtLeast(10.0)),
        _ => (
            "MariaDB DbTsvStorage (LOAD DATA LOCAL INFILE) load",
            Target::AtLeast(5.0),
        ),
    };
    out.push(row(
        name,
        tsv_rate,
        Some(rows_rate),
        "DbStorage row inserts",
        target,
    ));

    if u.backend == Backend::Postgres {
        if let Some(file) = tsv_file {
            if have_program("psql") {
                let entry = cfg.auth.lookup(&u.host, u.port).map_err(err)?.clone();
                let cols = COLUMNS
                    .iter()
                    .map(|(c, _)| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut d_psql = Duration::MAX;
                for _ in 0..2 {
                    create_table(&mut db, &table)?;
                    let t = Instant::now();
                    let st = std::process::Command::new("psql")
                        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &u.host])
                        .args([
                            "-p",
                            &u.port.to_string(),
                            "-U",
                            &entry.user,
                            "-d",
                            &u.database,
                            "-c",
                        ])
                        .arg(format!(
                            "\\copy \"{table}\" ({cols}) FROM '{}'",
                            file.display()
                        ))
                        .env("PGPASSWORD", &entry.password)
                        .status()
                        .map_err(err)?;
                    d_psql = d_psql.min(t.elapsed());
                    if !st.success() || count(&mut db, &table)? != cat.len() as i64 {
                        return Err("psql \\copy failed".into());
                    }
                }
                out.push(row(
                    "PostgreSQL DbTsvStorage (COPY) load",
                    tsv_rate,
                    Some(rate(cat.len(), d_psql)),
                    "psql \\copy of the same TSV",
                    Target::AtLeast(0.7),
                ));
            }
            let _ = std::fs::remove_file(file);
        }
    }
    db.drop_table(&table).map_err(err)?;
    Ok(out)
}

/// Runs every measurement the configuration allows.
pub fn run(cfg: &DbBenchConfig) -> Result<Vec<Row>, String> {
    let cat = make_catalog(cfg.rows);
    let mut rows = bench_sqlite(cfg, &cat)?;
    if let Some(url) = &cfg.postgres_url {
        rows.extend(bench_server(cfg, url, &cat)?);
    }
    if let Some(url) = &cfg.mysql_url {
        rows.extend(bench_server(cfg, url, &cat)?);
    }
    Ok(rows)
}

/// Credentials for the benchmark: `auth_file`, else `~/.daf/db-auth.yaml`
/// if it exists, else password-less entries for the given servers with
/// users `postgres` / `root` (the local trust setup of the test servers).
pub fn bench_auth(
    auth_file: Option<&Path>,
    pg: Option<&str>,
    my: Option<&str>,
) -> Result<DbAuth, String> {
    if let Some(p) = auth_file {
        return DbAuth::load(p).map_err(err);
    }
    if let Some(p) = DbAuth::default_path().filter(|p| p.exists()) {
        return DbAuth::load(&p).map_err(err);
    }
    let mut auth = DbAuth::new();
    for (url, user) in [(pg, "postgres"), (my, "root")] {
        if let Some(url) = url {
            let u = server_url(url)?;
            auth.add(&u.host, u.port, user, "");
        }
    }
    Ok(auth)
}

/// daf against the loaders a user would pick, interleaved, medians of 5:
/// the SQLite row load (`DbStorage`, one transaction) against Python's
/// `sqlite3.executemany` in one transaction (target ≥ 2×), and, with
/// PostgreSQL, the `DbTsvStorage` COPY load against `psql \copy` of the same
/// TSV file (target ≥ 1×; psql's time includes starting psql, as a user
/// running it would pay, daf's includes formatting the TSV).
pub fn peer_rows(cfg: &DbBenchConfig) -> Result<Vec<Row>, String> {
    use super::peers::{interleaved, PyDriver};
    let py = super::peers::python(&["sqlite3"], "(the standard library's sqlite3)")?;
    let cat = make_catalog(cfg.rows);
    let n = cat.len();
    let runs = 5;
    let mut out = Vec::new();

    let mut sq = PyDriver::start(
        &py,
        "sqlite3",
        include_str!("../../benches/peers/sqlite_peer.py"),
        &[],
    )?;
    sq.secs(&format!("make {n}"))?;
    let p_db = cfg.work_dir.join("peer-daf.sqlite3");
    let p_py = cfg.work_dir.join("peer-py.sqlite3");
    let p_py_s = p_py.to_string_lossy().into_owned();
    let mut daf = || {
        let _ = std::fs::remove_file(&p_db);
        let mut d =
            DbStorage::open_url(&format!("sqlite://{}", p_db.display()), None).map_err(err)?;
        create_table(&mut d, "bench_src")?;
        let t = write_through(&mut d, &cat, "bench_src")?;
        if count(&mut d, "bench_src")? != n as i64 {
            return Err("SQLite DbStorage row count mismatch".into());
        }
        Ok(t.as_secs_f64())
    };
    let mut pyload = || sq.secs(&format!("load {p_py_s}"));
    let [d, p] = interleaved(runs, [&mut daf, &mut pyload])?;
    out.push(row(
        "SQLite row load (DbStorage)",
        n as f64 / d,
        Some(n as f64 / p),
        "Python sqlite3.executemany",
        Target::AtLeast(2.0),
    ));
    let _ = std::fs::remove_file(&p_db);
    let _ = std::fs::remove_file(&p_py);

    let Some(url) = &cfg.postgres_url else {
        return Err(
            "--peers needs PostgreSQL for the psql \\copy peer: pass --postgres or set \
                    DAF_TEST_POSTGRES_URL"
                .into(),
        );
    };
    if !have_program("psql") {
        return Err("peer missing: psql (install with `apt-get install postgresql-client`)".into());
    }
    let u = server_url(url)?;
    let auth = Arc::new(cfg.auth.clone());
    let entry = cfg.auth.lookup(&u.host, u.port).map_err(err)?.clone();
    let table = format!("daf_peer_{}_copy", std::process::id());
    let mut db = DbStorage::open_url(url, Some(auth.clone())).map_err(err)?;
    let cols = COLUMNS
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // One load to keep daf's TSV file for psql.
    create_table(&mut db, &table)?;
    let mut tsv = DbTsvStorage::open_url(url, Some(auth.clone())).map_err(err)?;
    tsv.set_temp_path(&cfg.work_dir);
    tsv.set_save_temp(true);
    write_through(&mut tsv, &cat, &table)?;
    let file = tsv
        .saved_files()
        .first()
        .cloned()
        .ok_or("DbTsvStorage kept no TSV file")?;
    drop(tsv);
    let db = std::cell::RefCell::new(db);
    let mut daf = || {
        create_table(&mut db.borrow_mut(), &table)?;
        let mut tsv = DbTsvStorage::open_url(url, Some(auth.clone())).map_err(err)?;
        tsv.set_temp_path(&cfg.work_dir);
        let t = write_through(&mut tsv, &cat, &table)?;
        if count(&mut db.borrow_mut(), &table)? != n as i64 {
            return Err("PostgreSQL COPY load row count mismatch".into());
        }
        Ok(t.as_secs_f64())
    };
    let mut psql = || {
        create_table(&mut db.borrow_mut(), &table)?;
        let t = Instant::now();
        let st = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &u.host])
            .args([
                "-p",
                &u.port.to_string(),
                "-U",
                &entry.user,
                "-d",
                &u.database,
                "-c",
            ])
            .arg(format!(
                "\\copy \"{table}\" ({cols}) FROM '{}'",
                file.display()
            ))
            .env("PGPASSWORD", &entry.password)
            .status()
            .map_err(err)?;
        let s = t.elapsed().as_secs_f64();
        if !st.success() || count(&mut db.borrow_mut(), &table)? != n as i64 {
            return Err("psql \\copy failed".into());
        }
        Ok(s)
    };
    let [d, p] = interleaved(runs, [&mut daf, &mut psql])?;
    out.push(row(
        "PostgreSQL bulk load (DbTsvStorage COPY)",
        n as f64 / d,
        Some(n as f64 / p),
        "psql \\copy of the same TSV",
        Target::AtLeast(1.0),
    ));
    let _ = std::fs::remove_file(&file);
    db.borrow_mut().drop_table(&table).map_err(err)?;
    Ok(out)
}

/// Is `program` on the `PATH`? (The bench is part of the binary, which does
/// not compile the crates' test support.)
fn have_program(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
