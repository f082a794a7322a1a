//! Criterion bench of the database storages on a SourceCatalog (rows
//! configurable with `DAF_BENCH_DB_ROWS`, default 20,000 — `daf bench db`
//! runs the full 1,000,000 and prints the ratio table):
//! - SQLite through `DbStorage` vs a hand-written rusqlite prepared-insert
//!   loop in one transaction (target ≥ 0.8× the rate);
//! - PostgreSQL through `DbTsvStorage` (COPY) vs `DbStorage` row inserts
//!   (≥ 10×), when `DAF_TEST_POSTGRES_URL` is set;
//! - MariaDB through `DbTsvStorage` vs `DbStorage` row inserts (≥ 5×), when
//!   `DAF_TEST_MYSQL_URL` is set.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use daf_cli::bench::db::{
    bench_auth, create_table, make_catalog, rusqlite_reference, write_through,
};
use daf_storages::db::{DbStorage, DbTsvStorage};

fn rows() -> usize {
    std::env::var("DAF_BENCH_DB_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn sqlite(c: &mut Criterion) {
    let n = rows();
    let cat = make_catalog(n);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("db_sqlite_source_catalog");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let fresh = |name: &str| {
        let p = dir.path().join(name);
        let _ = std::fs::remove_file(&p);
        let mut db = DbStorage::open_url(&format!("sqlite://{}", p.display()), None).unwrap();
        create_table(&mut db, "bench_src").unwrap();
        p
    };
    g.bench_function("rusqlite prepared loop (reference)", |b| {
        b.iter_batched(
            || fresh("ref.sqlite3"),
            |p| rusqlite_reference(&p, &cat, "bench_src").unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("DbStorage", |b| {
        b.iter_batched(
            || {
                let p = fresh("db.sqlite3");
                DbStorage::open_url(&format!("sqlite://{}", p.display()), None).unwrap()
            },
            |mut db| write_through(&mut db, &cat, "bench_src").unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn server(c: &mut Criterion, var: &str, group: &str) {
    let Some(url) = std::env::var(var).ok().filter(|s| !s.is_empty()) else {
        eprintln!("SKIPPED: {var} not set: {group} not measured");
        return;
    };
    let (pg, my) = if var.contains("POSTGRES") {
        (Some(url.as_str()), None)
    } else {
        (None, Some(url.as_str()))
    };
    let auth = Arc::new(bench_auth(None, pg, my).unwrap());
    let n = rows();
    let cat = make_catalog(n);
    let small = make_catalog((n / 10).max(1));
    let table = format!("daf_crit_{}_{}", std::process::id(), group.len());
    let mut db = DbStorage::open_url(&url, Some(auth.clone())).unwrap();
    let mut g = c.benchmark_group(group);
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("DbStorage row inserts", |b| {
        b.iter_batched(
            || create_table(&mut db, &table).unwrap(),
            |_| {
                let mut s = DbStorage::open_url(&url, Some(auth.clone())).unwrap();
                write_through(&mut s, &small, &table).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("DbTsvStorage bulk load", |b| {
        b.iter_batched(
            || create_table(&mut db, &table).unwrap(),
            |_| {
                let mut s = DbTsvStorage::open_url(&url, Some(auth.clone())).unwrap();
                write_through(&mut s, &cat, &table).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = db.drop_table(&table);
}

fn postgres(c: &mut Criterion) {
    server(c, "DAF_TEST_POSTGRES_URL", "db_postgres_source_catalog");
}

fn mariadb(c: &mut Criterion) {
    server(c, "DAF_TEST_MYSQL_URL", "db_mariadb_source_catalog");
}

criterion_group!(benches, sqlite, postgres, mariadb);
criterion_main!(benches);
