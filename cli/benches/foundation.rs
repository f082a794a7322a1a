//! Criterion bench of the foundation: LogicalLocation filling a 5-key template
//! against a hand-written `format!` producing the same string (target ≤ 2×).

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use daf_cli::bench::foundation::Fixture;

fn location(c: &mut Criterion) {
    let fx = Fixture::new();
    assert_eq!(fx.fill().loc_str(), fx.hand_format());
    let mut g = c.benchmark_group("location_5_keys");
    g.bench_function("format!", |b| {
        b.iter(|| black_box(black_box(&fx).hand_format()))
    });
    g.bench_function("LocationTemplate::fill", |b| {
        b.iter(|| black_box(black_box(&fx).fill()))
    });
    g.bench_function("LogicalLocation::new", |b| {
        b.iter(|| black_box(black_box(&fx).parse_and_fill()))
    });
    g.finish();
}

criterion_group!(benches, location);
criterion_main!(benches);
