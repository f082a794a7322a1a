//! FITS benchmarks: image write and read bandwidth against plain file I/O of
//! the same bytes, cut-out time against a full read, and peak memory of a
//! large read against the image size.
//!
//! Used by `daf bench fits` and by the criterion bench `benches/fits.rs`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use daf_base::{Policy, PropertySet};
use daf_formatters::image::{Image, ImagePixel, Pixel};
use daf_formatters::{FormatterRegistry, Persistence};
use daf_storages::{LogicalLocation, StorageRegistry};

use super::{median_time, mib_per_s, Row, Target};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Side of the square images (4096 by default).
    pub side: usize,
    /// Timed runs per measurement (median taken).
    pub runs: usize,
    /// Size of the image for the peak-memory read, in MiB (256 by default).
    pub memory_mib: usize,
    /// Folder for the files.
    pub dir: PathBuf,
}

impl Config {
    /// The settings in a fresh folder under `dir`.
    pub fn new(dir: &Path) -> Self {
        Config {
            side: 4096,
            runs: 5,
            memory_mib: 256,
            dir: dir.to_path_buf(),
        }
    }
}

/// A persistence with the default registries and an empty policy.
pub fn persistence() -> Persistence {
    Persistence::new(
        Policy::new(),
        FormatterRegistry::with_defaults(),
        StorageRegistry::with_defaults(),
    )
}

/// A `side × side` test image.
pub fn test_image<T: Pixel>(side: usize) -> Image<T> {
    let px: Vec<T> = (0..side * side)
        .map(|i| T::from_f64(((i * 7919) % 60_000) as f64 * 0.5))
        .collect();
    Image::from_vec(side, side, px).expect("size")
}

/// Writes `img` to `path` through Persistence and FitsStorage (atomic:
/// temporary file, fsync, rename).
pub fn write_image<T: ImagePixel>(p: &Persistence, img: &Image<T>, path: &Path) {
    let loc = LogicalLocation::literal(path.to_str().expect("utf-8 path"));
    let mut st = vec![p.persist_storage("FitsStorage", &loc).expect("storage")];
    p.persist(img, &mut st, &PropertySet::new())
        .expect("persist");
}

/// Reads an image (or a cut-out) through Persistence and FitsStorage.
pub fn read_image<T: ImagePixel>(
    p: &Persistence,
    path: &Path,
    cut: Option<(i32, i32, i32, i32)>,
) -> Image<T> {
    let loc = LogicalLocation::literal(path.to_str().expect("utf-8 path"));
    let mut st = vec![p.retrieve_storage("FitsStorage", &loc).expect("storage")];
    let mut ad = PropertySet::new();
    if let Some((x, y, w, h)) = cut {
        for (k, v) in [("llcX", x), ("llcY", y), ("width", w), ("height", h)] {
            ad.set(k, v).expect("set");
        }
    }
    p.retrieve_as::<Image<T>>(&mut st, &ad).expect("retrieve")
}

/// The reference write: `std::fs::write`-style of the same bytes, plus the
/// fsync our atomic write also does (durability is part of the contract).
pub fn reference_write(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
}

fn bandwidth_rows<T: ImagePixel>(
    cfg: &Config,
    p: &Persistence,
    label: &str,
    target: Target,
    rows: &mut Vec<Row>,
) -> PathBuf {
    let img = test_image::<T>(cfg.side);
    let path = cfg.dir.join(format!("bench_{label}.fits"));
    let ref_path = cfg.dir.join(format!("bench_{label}.raw"));
    write_image(p, &img, &path);
    let bytes = fs::read(&path).expect("read back");
    let n = bytes.len() as u64;

    let t_write = median_time(cfg.runs, || write_image(p, &img, &path));
    let t_ref_write = median_time(cfg.runs, || reference_write(&ref_path, &bytes));
    drop(bytes);
    rows.push(Row {
        name: format!("{label} {0}x{0} write (atomic, fsync)", cfg.side),
        value: mib_per_s(n, t_write),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(n, t_ref_write)),
        reference_name: "fs write + fsync".into(),
        target,
    });

    let t_read = median_time(cfg.runs, || {
        let im: Image<T> = read_image(p, &path, None);
        std::hint::black_box(im);
    });
    let t_ref_read = median_time(cfg.runs, || {
        std::hint::black_box(fs::read(&path).expect("read"));
    });
    rows.push(Row {
        name: format!("{label} {0}x{0} read (mmap + bulk decode)", cfg.side),
        value: mib_per_s(n, t_read),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(n, t_ref_read)),
        reference_name: "std::fs::read".into(),
        target,
    });
    let _ = fs::remove_file(&ref_path);
    path
}

/// Resets the peak-RSS mark of this process; false where unsupported.
fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// (VmRSS, VmHWM) of this process in bytes.
fn rss_and_peak() -> Option<(u64, u64)> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Extra peak memory (bytes above the resident set before) of `f`.
pub fn peak_extra(f: impl FnOnce()) -> Option<u64> {
    if !reset_peak() {
        return None;
    }
    let (before, _) = rss_and_peak()?;
    f();
    let (_, peak) = rss_and_peak()?;
    Some(peak.saturating_sub(before))
}

/// Runs every FITS measurement and returns the table rows.
pub fn run(cfg: &Config) -> Vec<Row> {
    fs::create_dir_all(&cfg.dir).expect("bench folder");
    let p = persistence();
    let mut rows = Vec::new();
    let f32_path = bandwidth_rows::<f32>(cfg, &p, "f32", Target::AtLeast(0.8), &mut rows);
    let u16_path = bandwidth_rows::<u16>(cfg, &p, "u16 (BZERO)", Target::None, &mut rows);
    let _ = fs::remove_file(&u16_path);

    // Cut-out against a full read of the same file, both through Persistence.
    let full = median_time(cfg.runs, || {
        std::hint::black_box(read_image::<f32>(&p, &f32_path, None));
    });
    let c = (cfg.side / 2) as i32;
    let cut = median_time(cfg.runs * 4, || {
        std::hint::black_box(read_image::<f32>(&p, &f32_path, Some((c, c, 100, 100))));
    });
    rows.push(Row {
        name: format!("f32 100x100 cut-out of {0}x{0}", cfg.side),
        value: cut.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(full.as_secs_f64() * 1e6),
        reference_name: "full read".into(),
        target: Target::AtMost(1.0 / 50.0),
    });

    // The memory-mapped fast path against cfitsio's own image reader.
    let t_cfitsio = median_time(cfg.runs, || {
        let mut f = fitsio::FitsFile::open(&f32_path).expect("cfitsio open");
        let hdu = f.primary_hdu().expect("cfitsio hdu");
        let v: Vec<f32> = hdu.read_image(&mut f).expect("cfitsio read");
        std::hint::black_box(v);
    });
    let n = fs::metadata(&f32_path).map(|m| m.len()).unwrap_or(0);
    rows.push(Row {
        name: format!("f32 {0}x{0} read vs cfitsio", cfg.side),
        value: mib_per_s(n, full),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(n, t_cfitsio)),
        reference_name: "cfitsio fits_read_img".into(),
        // Reported only: the target is against plain file reads.
        target: Target::None,
    });
    let _ = fs::remove_file(&f32_path);

    // Peak memory of reading a large image.
    let side = ((cfg.memory_mib << 20) as f64 / 4.0).sqrt() as usize;
    let big = cfg.dir.join("bench_peak.fits");
    {
        let img = test_image::<f32>(side);
        write_image(&p, &img, &big);
    }
    let image_bytes = (side * side * 4) as u64;
    let t = Instant::now();
    let extra = peak_extra(|| {
        let im: Image<f32> = read_image(&p, &big, None);
        assert_eq!(im.width(), side);
        std::hint::black_box(im);
    });
    let elapsed = t.elapsed();
    let _ = fs::remove_file(&big);
    if let Some(extra) = extra {
        rows.push(Row {
            name: format!(
                "peak memory reading {} MiB f32 image ({:.2} s)",
                image_bytes >> 20,
                elapsed.as_secs_f64()
            ),
            value: extra as f64 / (1 << 20) as f64,
            unit: "MiB".into(),
            reference: Some(image_bytes as f64 / (1 << 20) as f64),
            reference_name: "image size".into(),
            target: Target::AtMost(1.2),
        });
    }
    rows
}
