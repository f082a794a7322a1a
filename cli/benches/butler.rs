//! Criterion benches of the butler (see `daf_cli::bench::butler`): get and put
//! of a small dataset with their plain-file references, get through a
//! PostgreSQL file registry against SQLite, get_many and ingest.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use daf_cli::bench::butler as b;

fn get_put(c: &mut Criterion) {
    let env = b::setup();
    let mut g = c.benchmark_group("butler_get");
    g.bench_function("butler.get small PropertySet", |x| {
        x.iter(|| b::get_once(&env))
    });
    g.bench_function("reference std::fs::read", |x| x.iter(|| b::read_once(&env)));
    g.finish();
    let mut g = c.benchmark_group("butler_put");
    g.sample_size(20);
    g.bench_function("butler.put small PropertySet", |x| {
        x.iter(|| b::put_once(&env))
    });
    g.bench_function("reference temp+fsync+rename", |x| {
        x.iter(|| b::write_once(&env))
    });
    g.finish();
}

/// `get` through a PostgreSQL file registry against the SQLite one
/// (informational), when `DAF_TEST_POSTGRES_URL` is set.
fn pg_registry(c: &mut Criterion) {
    let Some(url) = std::env::var("DAF_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("note: DAF_TEST_POSTGRES_URL not set: PostgreSQL-registry bench skipped");
        return;
    };
    let loc = b::pg_location(&url).expect("PostgreSQL location");
    let sqlite = b::setup();
    let pg = b::setup_with(Some(&loc));
    let mut g = c.benchmark_group("butler_get_registry");
    g.bench_function("butler.get, PostgreSQL registry", |x| {
        x.iter(|| b::get_once(&pg))
    });
    g.bench_function("butler.get, SQLite registry", |x| {
        x.iter(|| b::get_once(&sqlite))
    });
    g.finish();
    drop(pg);
    b::drop_pg_schema(&loc);
}

fn many(c: &mut Criterion) {
    let env = b::setup();
    let n = 10_000;
    let ids = b::fill(&env, n);
    let mut g = c.benchmark_group("butler_many");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("get_many 10000", |x| {
        x.iter(|| {
            env.butler
                .get_many::<daf::base::PropertySet>("meta", &ids, &Default::default())
        })
    });
    let files = b::make_fits(&env.dir.path().join("src"), n);
    let mut k = 0;
    g.bench_function("ingest 10000 FITS (hardlink)", |x| {
        x.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                k += 1;
                total += std::time::Duration::from_secs_f64(b::ingest_secs(
                    &env,
                    &files,
                    &k.to_string(),
                ));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, get_put, pg_registry, many);
criterion_main!(benches);
