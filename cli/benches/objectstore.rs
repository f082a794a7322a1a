//! Criterion bench of the S3 datastore against plain `object_store` calls
//! on the same server (`daf bench objectstore` prints the ratio table):
//! - get of a 64 MiB FITS image vs one plain GET (target ≥ 0.9×);
//! - `put_many` of small datasets vs as many plain PUTs, 32 in flight
//!   (≥ 0.8×; 200 per batch here, `DAF_BENCH_S3_PUTS` to change);
//! - a 100×100 cut-out vs the whole download (≥ 20×).
//!
//! Needs an S3 server: the AWS variables and `DAF_TEST_S3_BUCKET`, as
//! `.ci/setup/20-seaweedfs.sh` exports them; without them it prints a note
//! and measures nothing.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use daf_cli::bench::objectstore::Fixture;

fn objectstore(c: &mut Criterion) {
    let Ok(bucket) = std::env::var("DAF_TEST_S3_BUCKET") else {
        eprintln!("objectstore bench skipped: DAF_TEST_S3_BUCKET and the AWS variables not set (source .ci/setup/20-seaweedfs.sh)");
        return;
    };
    let puts = std::env::var("DAF_BENCH_S3_PUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let fx = Fixture::new(&format!("s3://{bucket}/daf-bench"), puts).expect("S3 fixture");

    let mut g = c.benchmark_group("objectstore_get_64MiB");
    g.throughput(Throughput::Bytes(fx.size));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("plain object_store GET (reference)", |b| {
        b.iter(|| fx.get_plain().unwrap())
    });
    g.bench_function("butler.get ImageF", |b| b.iter(|| fx.get_daf().unwrap()));
    g.bench_function("butler.get 100x100 cut-out", |b| {
        b.iter(|| fx.cut_out().unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("objectstore_put_small");
    g.throughput(Throughput::Elements(puts as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("plain PUTs, 32 in flight (reference)", |b| {
        b.iter(|| fx.put_plain().unwrap())
    });
    g.bench_function("butler.put_many", |b| b.iter(|| fx.put_daf().unwrap()));
    g.finish();
}

criterion_group!(benches, objectstore);
criterion_main!(benches);
