//! Criterion benches for FITS: 4096×4096 f32 and u16 (BZERO) write and read
//! against plain file I/O of the same bytes, and a 100×100 cut-out. The
//! ratio table of `daf bench fits` (including peak memory) is printed at the end.

// The same allocator as the `daf` binary, so both measure the same thing.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use daf_cli::bench::fits::{
    persistence, read_image, reference_write, test_image, write_image, Config,
};
use daf_cli::bench::format_table;

const SIDE: usize = 4096;

fn fits(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let p = persistence();
    let mut g = c.benchmark_group("fits");
    g.sample_size(10);

    let f32_img = test_image::<f32>(SIDE);
    let f32_path = dir.path().join("f32.fits");
    write_image(&p, &f32_img, &f32_path);
    let bytes = std::fs::read(&f32_path).unwrap();
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("write_f32_4096", |b| {
        b.iter(|| write_image(&p, &f32_img, &f32_path))
    });
    let raw = dir.path().join("f32.raw");
    g.bench_function("reference_fs_write_fsync_f32_4096", |b| {
        b.iter(|| reference_write(&raw, &bytes))
    });
    g.bench_function("read_f32_4096", |b| {
        b.iter(|| read_image::<f32>(&p, &f32_path, None))
    });
    g.bench_function("reference_fs_read_f32_4096", |b| {
        b.iter(|| std::fs::read(&f32_path).unwrap())
    });
    g.throughput(Throughput::Elements(100 * 100));
    g.bench_function("cutout_100x100_of_f32_4096", |b| {
        b.iter(|| read_image::<f32>(&p, &f32_path, Some((2000, 2000, 100, 100))))
    });
    drop(f32_img);

    let u16_img = test_image::<u16>(SIDE);
    let u16_path = dir.path().join("u16.fits");
    write_image(&p, &u16_img, &u16_path);
    let n = std::fs::metadata(&u16_path).unwrap().len();
    g.throughput(Throughput::Bytes(n));
    g.bench_function("write_u16_bzero_4096", |b| {
        b.iter(|| write_image(&p, &u16_img, &u16_path))
    });
    g.bench_function("read_u16_bzero_4096", |b| {
        b.iter(|| read_image::<u16>(&p, &u16_path, None))
    });
    g.finish();

    let mut cfg = Config::new(&dir.path().join("table"));
    cfg.runs = 3;
    println!(
        "{}",
        format_table("daf bench fits", &daf_cli::bench::fits::run(&cfg))
    );
}

criterion_group!(benches, fits);
criterion_main!(benches);
