//! Criterion bench of the harness: one visit through 20 empty stages on 4
//! thread slices (per-stage overhead target ≤ 200 µs), and the IO stages
//! writing and reading back one 512² float image per slice with 1, 2 and 4
//! slices. `daf bench harness` prints the same figures as ratios.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use daf_cli::bench::harness::{io_throughput, stage_overhead_threads};

fn overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("harness_stage_overhead");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("20 empty stages x 20 visits, 4 slices (per stage)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| black_box(stage_overhead_threads(4, 20, 20)))
                .sum()
        })
    });
    g.finish();
}

fn io(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let side = 512;
    let mut g = c.benchmark_group("harness_io_stages");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for slices in [1usize, 2, 4] {
        g.throughput(Throughput::Bytes((side * side * 4 * 2 * slices) as u64));
        g.bench_function(format!("{slices} slices, 1 visit"), |b| {
            b.iter(|| black_box(io_throughput(slices, side, 1, dir.path())))
        });
    }
    g.finish();
}

criterion_group!(benches, overhead, io);
criterion_main!(benches);
