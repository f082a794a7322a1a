//! Criterion benches for mappers and registries (see `daf bench registry`
//! for the same measurements as ratios against their references).

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use daf_base::DataId;
use daf_cli::bench::registry as rb;
use daf_mappers::Mapper;

fn completion(c: &mut Criterion) {
    let fx = rb::registry_fixture(100_000, 1_000);
    let conn = rb::reference_connection(&fx.dir.path().join("registry.sqlite3"));
    let mut stmt = conn
        .prepare("SELECT filter FROM raw WHERE visit = ?")
        .unwrap();
    let mut g = c.benchmark_group("registry");
    let mut i = 0usize;
    g.bench_function("partial completion via mapper (100k rows)", |b| {
        b.iter(|| {
            i = (i + 1) % fx.visits.len();
            rb::complete_with_mapper(&fx.mapper, fx.visits[i])
        })
    });
    g.bench_function("prepared SELECT by hand (100k rows)", |b| {
        b.iter(|| {
            i = (i + 1) % fx.visits.len();
            rb::complete_by_hand(&mut stmt, fx.visits[i])
        })
    });
    let id = DataId::new().with("visit", 12345).with("filter", "r");
    g.bench_function("map complete data id", |b| {
        b.iter(|| fx.mapper.map("raw", &id, true).unwrap())
    });
    g.finish();
}

fn creation(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    rb::write_fits_tree(dir.path(), 2_000);
    let out = dir.path().join("registry.sqlite3");
    let mut g = c.benchmark_group("registry create");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(2_000));
    g.bench_function("2,000 FITS files, headers only", |b| {
        b.iter(|| rb::create_registry(dir.path(), &out))
    });
    g.finish();
}

criterion_group!(benches, completion, creation);
criterion_main!(benches);
