//! Criterion benches of the Boost archive engine (issue 3). Sizes come from
//! `DAF_BENCH_VEC_MIB` (default 100), `DAF_BENCH_RECORDS` (1,000,000) and
//! `DAF_BENCH_TEXT_MIB` (8); set them lower for quick CI runs. The ratio
//! table against plain file I/O is `daf bench boost`.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use daf::storages::boost::ArchiveKind;
use daf_cli::bench::boost::{make_doubles, make_records, read_file, write_file, Record};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn boost(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vec_mib = env_usize("DAF_BENCH_VEC_MIB", 100);
    let records = env_usize("DAF_BENCH_RECORDS", 1_000_000);
    let text_mib = env_usize("DAF_BENCH_TEXT_MIB", 8);

    let mut g = c.benchmark_group("boost");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let v = make_doubles(vec_mib * 1024 * 1024 / 8);
    let bytes = (v.len() * 8) as u64;
    let arch = dir.path().join("vec.bin");
    let plain = dir.path().join("plain.bin");
    write_file(&arch, ArchiveKind::Binary, "values", &v).unwrap();
    let raw = std::fs::read(&arch).unwrap();
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(BenchmarkId::new("vec_f64_binary_write", vec_mib), |b| {
        b.iter(|| write_file(&arch, ArchiveKind::Binary, "values", &v).unwrap())
    });
    g.bench_function(BenchmarkId::new("plain_fs_write", vec_mib), |b| {
        b.iter(|| std::fs::write(&plain, &raw).unwrap())
    });
    g.bench_function(BenchmarkId::new("vec_f64_binary_read", vec_mib), |b| {
        b.iter(|| read_file::<Vec<f64>>(&arch, "values").unwrap())
    });
    g.bench_function(BenchmarkId::new("plain_fs_read", vec_mib), |b| {
        b.iter(|| std::fs::read(&plain).unwrap())
    });
    drop((v, raw));

    let recs = make_records(records);
    let arch = dir.path().join("recs.bin");
    write_file(&arch, ArchiveKind::Binary, "records", &recs).unwrap();
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function(BenchmarkId::new("records_binary_write", records), |b| {
        b.iter(|| write_file(&arch, ArchiveKind::Binary, "records", &recs).unwrap())
    });
    g.bench_function(BenchmarkId::new("records_binary_read", records), |b| {
        b.iter(|| read_file::<Vec<Record>>(&arch, "records").unwrap())
    });
    drop(recs);

    let v = make_doubles(text_mib * 1024 * 1024 / 8);
    let arch = dir.path().join("doubles.txt");
    write_file(&arch, ArchiveKind::Text, "values", &v).unwrap();
    g.throughput(Throughput::Bytes((v.len() * 8) as u64));
    g.bench_function(BenchmarkId::new("doubles_text_write", text_mib), |b| {
        b.iter(|| write_file(&arch, ArchiveKind::Text, "values", &v).unwrap())
    });
    g.bench_function(BenchmarkId::new("doubles_text_read", text_mib), |b| {
        b.iter(|| read_file::<Vec<f64>>(&arch, "values").unwrap())
    });
    g.finish();
}

criterion_group!(benches, boost);
criterion_main!(benches);
