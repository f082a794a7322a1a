//! Criterion bench of policy loading: the seeds' IO-stage policy from PAF and
//! from YAML, with serde_norway's generic parse and `std::fs::read` as the
//! references measured in the same run.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use daf_cli::bench::policy::{self, Fixture};

fn policy_loading(c: &mut Criterion) {
    let fx = Fixture::new().expect("temporary files");
    assert_eq!(policy::parse_paf(), policy::parse_yaml());
    let mut g = c.benchmark_group("policy_io_stage");
    g.bench_function("serde_norway Value (reference)", |b| {
        b.iter(|| black_box(policy::parse_yaml_value()))
    });
    g.bench_function("Policy::from_yaml_str", |b| {
        b.iter(|| black_box(policy::parse_yaml()))
    });
    g.bench_function("Policy::from_paf_str", |b| {
        b.iter(|| black_box(policy::parse_paf()))
    });
    g.bench_function("std::fs::read .paf (reference)", |b| {
        b.iter(|| black_box(policy::read(&fx.paf_path)))
    });
    g.bench_function("Policy::load .paf", |b| {
        b.iter(|| black_box(policy::load(&fx.paf_path)))
    });
    g.bench_function("Policy::load .yaml", |b| {
        b.iter(|| black_box(policy::load(&fx.yaml_path)))
    });
    g.finish();
}

criterion_group!(benches, policy_loading);
criterion_main!(benches);
