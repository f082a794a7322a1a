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
    compressed_rows(cfg, &mut rows);
    rows
}

/// A persistence whose FitsStorage writes tile-compressed images.
pub fn compressing_persistence(settings: &str) -> Persistence {
    let yaml = format!("FitsStorage:\n{settings}");
    Persistence::new(
        Policy::from_yaml_str(&yaml, "bench").expect("bench policy"),
        FormatterRegistry::with_defaults(),
        StorageRegistry::with_defaults(),
    )
}

/// Tile-compressed images: RICE_1 (lossless i32) and quantized f32 writes
/// against plain writes of the same image, whole reads against plain
/// reads, and a 100×100 cut-out against the whole decode it used to cost
/// (it now decodes only the tiles under the box).
fn compressed_rows(cfg: &Config, rows: &mut Vec<Row>) {
    let plain = persistence();
    let side = cfg.side;
    let raw_mib = |size: usize| (side * side * size) as u64;
    let img = test_image::<i32>(side);
    let plain_path = cfg.dir.join("bench_plain_i32.fits");
    let rice_path = cfg.dir.join("bench_rice_i32.fits");
    let rice = compressing_persistence("  compression: RICE_1\n");
    write_image(&plain, &img, &plain_path);
    write_image(&rice, &img, &rice_path);
    let t_plain = median_time(cfg.runs, || write_image(&plain, &img, &plain_path));
    let t_rice = median_time(cfg.runs, || write_image(&rice, &img, &rice_path));
    rows.push(Row {
        name: format!("i32 {side}x{side} RICE_1 write (pixel MiB/s)"),
        value: mib_per_s(raw_mib(4), t_rice),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(raw_mib(4), t_plain)),
        reference_name: "plain FITS write".into(),
        target: Target::None,
    });
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64;
    rows.push(Row {
        name: format!("i32 {side}x{side} RICE_1 file size"),
        value: size(&rice_path) / (1 << 20) as f64,
        unit: "MiB".into(),
        reference: Some(size(&plain_path) / (1 << 20) as f64),
        reference_name: "plain FITS".into(),
        target: Target::None,
    });
    let t_full = median_time(cfg.runs, || {
        std::hint::black_box(read_image::<i32>(&plain, &rice_path, None));
    });
    let t_plain_read = median_time(cfg.runs, || {
        std::hint::black_box(read_image::<i32>(&plain, &plain_path, None));
    });
    rows.push(Row {
        name: format!("i32 {side}x{side} RICE_1 whole read (pixel MiB/s)"),
        value: mib_per_s(raw_mib(4), t_full),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(raw_mib(4), t_plain_read)),
        reference_name: "plain FITS read".into(),
        target: Target::None,
    });
    let c = (side / 2) as i32;
    let t_cut = median_time(cfg.runs * 4, || {
        std::hint::black_box(read_image::<i32>(
            &plain,
            &rice_path,
            Some((c, c, 100, 100)),
        ));
    });
    rows.push(Row {
        name: format!("i32 100x100 cut-out of {side}x{side} RICE_1 (decodes its tiles only)"),
        value: t_cut.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(t_full.as_secs_f64() * 1e6),
        reference_name: "whole decode (before)".into(),
        target: Target::AtMost(1.0 / 10.0),
    });
    // What the cut-out decodes, counted.
    if let Ok(f) = daf_storages::fits::FitsFile::open(&rice_path) {
        let idx = f.first_data_hdu();
        if f.read_image::<i32>(idx, Some((side / 2, side / 2, 100, 100)))
            .is_ok()
        {
            rows.push(Row {
                name: "image rows decoded by that cut-out".into(),
                value: (f.tile_stats().pixels / side.max(1)) as f64,
                unit: "rows".into(),
                reference: Some(side as f64),
                reference_name: "image rows".into(),
                target: Target::None,
            });
        }
    }
    let _ = fs::remove_file(&plain_path);
    let _ = fs::remove_file(&rice_path);

    // Quantized floats (afw's lossy setting): RICE_1 of the quantized values.
    let imf = test_image::<f32>(side);
    let q_path = cfg.dir.join("bench_q_f32.fits");
    let fplain = cfg.dir.join("bench_plain_f32.fits");
    let q = compressing_persistence(
        "  compression: RICE_1\n  quantize_level: 16\n  dither: SUBTRACTIVE_DITHER_2\n",
    );
    write_image(&plain, &imf, &fplain);
    let t_q = median_time(cfg.runs, || write_image(&q, &imf, &q_path));
    let t_fplain = median_time(cfg.runs, || write_image(&plain, &imf, &fplain));
    rows.push(Row {
        name: format!("f32 {side}x{side} quantized RICE_1 write (pixel MiB/s)"),
        value: mib_per_s(raw_mib(4), t_q),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(raw_mib(4), t_fplain)),
        reference_name: "plain FITS write".into(),
        target: Target::None,
    });
    let t_qread = median_time(cfg.runs, || {
        std::hint::black_box(read_image::<f32>(&plain, &q_path, None));
    });
    rows.push(Row {
        name: format!("f32 {side}x{side} quantized RICE_1 whole read (pixel MiB/s)"),
        value: mib_per_s(raw_mib(4), t_qread),
        unit: "MiB/s".into(),
        reference: Some(mib_per_s(raw_mib(4), t_plain_read)),
        reference_name: "plain FITS read".into(),
        target: Target::None,
    });
    let _ = fs::remove_file(&q_path);
    let _ = fs::remove_file(&fplain);
}

/// cfitsio's image type for a pixel type of the peer comparison.
trait CfitsioPixel: ImagePixel + fitsio::images::WriteImage
where
    Vec<Self>: fitsio::images::ReadImage,
{
    const TYPE: fitsio::images::ImageType;
    const LABEL: &'static str;
}
impl CfitsioPixel for f32 {
    const TYPE: fitsio::images::ImageType = fitsio::images::ImageType::Float;
    const LABEL: &'static str = "f32";
}
impl CfitsioPixel for u16 {
    const TYPE: fitsio::images::ImageType = fitsio::images::ImageType::UnsignedShort;
    const LABEL: &'static str = "u16";
}

fn cfitsio_write<T: CfitsioPixel>(path: &Path, side: usize, px: &[T]) -> Result<f64, String>
where
    Vec<T>: fitsio::images::ReadImage,
{
    let t = Instant::now();
    let desc = fitsio::images::ImageDescription {
        data_type: T::TYPE,
        dimensions: &[side, side],
    };
    let mut f = fitsio::FitsFile::create(path)
        .with_custom_primary(&desc)
        .overwrite()
        .open()
        .map_err(|e| format!("cfitsio create: {e}"))?;
    let hdu = f.primary_hdu().map_err(|e| format!("cfitsio: {e}"))?;
    hdu.write_image(&mut f, px)
        .map_err(|e| format!("cfitsio write: {e}"))?;
    drop(f);
    Ok(t.elapsed().as_secs_f64())
}

fn cfitsio_read<T: CfitsioPixel>(path: &Path, n: usize) -> Result<f64, String>
where
    Vec<T>: fitsio::images::ReadImage,
{
    let t = Instant::now();
    let mut f = fitsio::FitsFile::open(path).map_err(|e| format!("cfitsio open: {e}"))?;
    let hdu = f.primary_hdu().map_err(|e| format!("cfitsio: {e}"))?;
    let v: Vec<T> = hdu
        .read_image(&mut f)
        .map_err(|e| format!("cfitsio read: {e}"))?;
    let s = t.elapsed().as_secs_f64();
    if v.len() != n {
        return Err(format!("cfitsio read {} pixels, expected {n}", v.len()));
    }
    Ok(s)
}

fn cfitsio_cut(path: &Path, x: usize, y: usize, w: usize, h: usize) -> Result<f64, String> {
    let t = Instant::now();
    let mut f = fitsio::FitsFile::open(path).map_err(|e| format!("cfitsio open: {e}"))?;
    let hdu = f.primary_hdu().map_err(|e| format!("cfitsio: {e}"))?;
    let v: Vec<f32> = hdu
        .read_region(&mut f, &[&(y..y + h), &(x..x + w)])
        .map_err(|e| format!("cfitsio read_region: {e}"))?;
    let s = t.elapsed().as_secs_f64();
    if v.len() != w * h {
        return Err(format!("cfitsio cut-out of {} pixels", v.len()));
    }
    Ok(s)
}

fn peer_bandwidth<T: CfitsioPixel>(
    cfg: &Config,
    p: &Persistence,
    astropy: &mut super::peers::PyDriver,
    target: f64,
    rows: &mut Vec<Row>,
) -> Result<PathBuf, String>
where
    Vec<T>: fitsio::images::ReadImage,
{
    use super::peers::{interleaved, timed};
    let side = cfg.side;
    let label = T::LABEL;
    let img = test_image::<T>(side);
    let ours = cfg.dir.join(format!("peer_daf_{label}.fits"));
    let cf = cfg.dir.join(format!("peer_cfitsio_{label}.fits"));
    let ap = cfg.dir.join(format!("peer_astropy_{label}.fits"));
    let plain = cfg.dir.join(format!("peer_plain_{label}.raw"));
    astropy.secs(&format!("make {label} {side}"))?;
    write_image(p, &img, &ours);
    let bytes = fs::read(&ours).map_err(|e| e.to_string())?;
    let n = bytes.len() as u64;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (ours_s, ap_s) = (s(&ours), s(&ap));
    let px = img.pixels().to_vec();
    let mut daf_w = || Ok(timed(|| write_image(p, &img, &ours)));
    let mut cf_w = || cfitsio_write::<T>(&cf, side, &px);
    let mut fs_w = || {
        Ok(timed(|| {
            let mut f = fs::File::create(&plain).expect("create");
            f.write_all(&bytes).expect("write");
        }))
    };
    let mut fs_wsync = || Ok(timed(|| reference_write(&plain, &bytes)));
    let [t_daf_w, t_cf_w, t_ap_w, t_fs_w, t_fs_ws] = {
        let mut ap_w = || astropy.secs(&format!("write {label} {ap_s}"));
        interleaved(
            cfg.runs,
            [&mut daf_w, &mut cf_w, &mut ap_w, &mut fs_w, &mut fs_wsync],
        )?
    };
    let mut daf_r = || {
        Ok(timed(|| {
            let im: Image<T> = read_image(p, &ours, None);
            std::hint::black_box(im);
        }))
    };
    let npx = side * side;
    let mut cf_r = || cfitsio_read::<T>(&ours, npx);
    let mut ap_r = || astropy.secs(&format!("read {ours_s} 0"));
    let [t_daf_r, t_cf_r, t_ap_r] = interleaved(cfg.runs, [&mut daf_r, &mut cf_r, &mut ap_r])?;
    let mib = |secs: f64| mib_per_s(n, std::time::Duration::from_secs_f64(secs));
    let (best_w, best_w_name) = if t_cf_w <= t_ap_w {
        (t_cf_w, "cfitsio (no fsync)")
    } else {
        (t_ap_w, "astropy (no fsync)")
    };
    let fsync = (t_fs_ws - t_fs_w).max(0.0);
    let title = format!("FITS {label} {side}x{side}");
    rows.push(Row {
        name: format!("{title} write (durable: fsync)"),
        value: mib(t_daf_w),
        unit: "MiB/s".into(),
        reference: Some(mib(best_w)),
        reference_name: best_w_name.into(),
        // Informational: the peers do not fsync; the target is on the
        // next line (the same write with the fsync cost, reported on the
        // line after it, taken out).
        target: Target::None,
    });
    rows.push(Row {
        name: format!("{title} write, fsync cost taken out"),
        value: mib((t_daf_w - fsync).max(1e-9)),
        unit: "MiB/s".into(),
        reference: Some(mib(best_w)),
        reference_name: best_w_name.into(),
        target: Target::AtLeast(target),
    });
    rows.push(Row {
        name: format!("  fsync of the {:.1} MiB file", n as f64 / 1048576.0),
        value: fsync * 1e3,
        unit: "ms".into(),
        reference: Some(t_fs_w * 1e3),
        reference_name: "write without fsync".into(),
        target: Target::None,
    });
    for (name, t) in [("cfitsio", t_cf_w), ("astropy", t_ap_w)] {
        rows.push(Row {
            name: format!("  {title} write, {name}"),
            value: mib(t),
            unit: "MiB/s".into(),
            reference: None,
            reference_name: String::new(),
            target: Target::None,
        });
    }
    let (best_r, best_r_name) = if t_cf_r <= t_ap_r {
        (t_cf_r, "cfitsio fits_read_img")
    } else {
        (t_ap_r, "astropy memmap=False")
    };
    rows.push(Row {
        name: format!("{title} read"),
        value: mib(t_daf_r),
        unit: "MiB/s".into(),
        reference: Some(mib(best_r)),
        reference_name: best_r_name.into(),
        target: Target::AtLeast(target),
    });
    for (name, t) in [("cfitsio", t_cf_r), ("astropy memmap=False", t_ap_r)] {
        rows.push(Row {
            name: format!("  {title} read, {name}"),
            value: mib(t),
            unit: "MiB/s".into(),
            reference: None,
            reference_name: String::new(),
            target: Target::None,
        });
    }
    if T::LABEL == "f32" {
        // astropy refuses memmap=True on scaled (BZERO) images.
        let mut daf_r = || {
            Ok(timed(|| {
                let im: Image<T> = read_image(p, &ours, None);
                std::hint::black_box(im);
            }))
        };
        let mut ap_mm = || astropy.secs(&format!("read {ours_s} 1"));
        let [t_daf, t_mm] = interleaved(cfg.runs, [&mut daf_r, &mut ap_mm])?;
        rows.push(Row {
            name: format!("{title} read vs astropy memmap=True"),
            value: mib(t_daf),
            unit: "MiB/s".into(),
            reference: Some(mib(t_mm)),
            reference_name: "astropy memmap + copy".into(),
            target: Target::None,
        });
    }
    for f in [&cf, &ap, &plain] {
        let _ = fs::remove_file(f);
    }
    Ok(ours)
}

/// daf against cfitsio (bundled, called directly) and astropy (venv) on
/// the same images, interleaved, medians of `cfg.runs.max(5)`: 4096² f32
/// and u16 (BZERO) write and read, and a 100×100 cut-out including open.
/// daf's writes are durable (fsync), the peers' are not: the fsync cost is
/// reported separately.
pub fn peer_rows(cfg: &Config) -> Result<Vec<Row>, String> {
    let py = super::peers::python(&["astropy", "numpy"], "astropy numpy")?;
    let mut astropy = super::peers::PyDriver::start(
        &py,
        "astropy",
        include_str!("../../benches/peers/astropy_peer.py"),
        &[],
    )?;
    let mut cfg = cfg.clone();
    cfg.runs = cfg.runs.max(5);
    fs::create_dir_all(&cfg.dir).map_err(|e| e.to_string())?;
    let p = persistence();
    let mut rows = Vec::new();
    let f32_path = peer_bandwidth::<f32>(&cfg, &p, &mut astropy, 1.0, &mut rows)?;
    let u16_path = peer_bandwidth::<u16>(&cfg, &p, &mut astropy, 1.5, &mut rows)?;
    let _ = fs::remove_file(&u16_path);

    let c = cfg.side / 2;
    let f32_s = f32_path.to_string_lossy().into_owned();
    let mut daf_cut = || {
        Ok(super::peers::timed(|| {
            std::hint::black_box(read_image::<f32>(
                &p,
                &f32_path,
                Some((c as i32, c as i32, 100, 100)),
            ));
        }))
    };
    let mut cf_cut = || cfitsio_cut(&f32_path, c, c, 100, 100);
    let mut ap_cut = || astropy.secs(&format!("cut {f32_s} {c} {c} 100 100"));
    let [t_daf, t_cf, t_ap] =
        super::peers::interleaved(cfg.runs * 4, [&mut daf_cut, &mut cf_cut, &mut ap_cut])?;
    rows.push(Row {
        name: "FITS f32 100x100 cut-out incl. open".into(),
        value: t_daf * 1e6,
        unit: "µs".into(),
        reference: Some(t_cf * 1e6),
        reference_name: "cfitsio open+read_region".into(),
        target: Target::AtMost(0.5),
    });
    rows.push(Row {
        name: "  cut-out, astropy open+section".into(),
        value: t_ap * 1e6,
        unit: "µs".into(),
        reference: None,
        reference_name: String::new(),
        target: Target::None,
    });
    let _ = fs::remove_file(&f32_path);
    Ok(rows)
}
