//! `daf bench scale`: how the butler's costs grow with the number of
//! datasets in a repository.
//!
//! One repository per registry backend (SQLite, and PostgreSQL when a
//! location is given) is grown step by step to each size in
//! [`ScaleConfig::sizes`] (registry rows added in bulk, in transactions of
//! 10,000; one real dataset is put first). At each size it measures, as
//! medians:
//! - `get` of the real small dataset by data id (warm: the registry's
//!   in-memory copy is valid);
//! - a durable `put` of a new data id;
//! - a query by a partial data id (`visit`), which the registry answers by
//!   scanning its rows;
//! - the registry's size on disk (SQLite file and write-ahead log).
//!
//! The rows carry the target of issue 14: get and put latency at the
//! largest size ≤ 1.5× their latency at the smallest. [`plot`] draws the
//! latencies against the dataset count (log–log) as a PNG.

use std::path::Path;
use std::time::Instant;

use daf_base::{data_id, DataId};
use daf_butler::file_registry::{now_ns, DatasetRecord};

use super::butler::{drop_pg_schema, pg_location, setup_with, small_object, Env};
use super::{Row, Target};

/// What `daf bench scale` measures.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// Dataset counts, ascending.
    pub sizes: Vec<usize>,
    /// Timed repeats of each latency (median).
    pub runs: usize,
    /// A PostgreSQL location for the PostgreSQL-registry series.
    pub postgres: Option<String>,
}

impl ScaleConfig {
    /// The sizes: 10³ to 10⁶ datasets.
    pub fn full() -> Self {
        ScaleConfig {
            sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            runs: 21,
            postgres: None,
        }
    }

    /// A quick run: 10³ to 10⁵ datasets.
    pub fn quick() -> Self {
        ScaleConfig {
            sizes: vec![1_000, 10_000, 100_000],
            runs: 9,
            postgres: None,
        }
    }
}

/// The figures at one size of one registry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePoint {
    /// `SQLite` or `PostgreSQL`.
    pub registry: String,
    /// Datasets in the repository.
    pub datasets: usize,
    /// Median `get` latency (µs).
    pub get_us: f64,
    /// Median durable `put` latency (µs).
    pub put_us: f64,
    /// Median query latency, partial data id (µs).
    pub query_us: f64,
    /// Registry bytes on disk (SQLite only).
    pub registry_bytes: Option<u64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Adds registry rows for visits `from..to` (no files: the rows are what
/// grows; only visit 0 is read back).
fn grow(env: &Env, from: usize, to: usize) -> Result<(), String> {
    let mut reg = env.butler.registry(0).ok_or("no registry")?;
    let now = now_ns();
    let mut v = from;
    while v < to {
        let end = (v + 10_000).min(to);
        let recs: Vec<DatasetRecord> = (v..end)
            .map(|i| DatasetRecord {
                id: 0,
                dataset_type: "meta".into(),
                data_id: data_id! {visit: 10_000_000 + i as i64},
                run: String::new(),
                path: format!("meta/v{}.boost", 10_000_000 + i),
                size: 1,
                checksum: String::new(),
                time_ns: now,
                source: None,
            })
            .collect();
        reg.insert_many(&recs).map_err(|e| e.to_string())?;
        v = end;
    }
    Ok(())
}

fn registry_bytes(env: &Env) -> Option<u64> {
    let reg = env.butler.registry(0)?;
    let file = reg.local_file()?.to_path_buf();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
    Some(size(&file) + size(&wal))
}

/// Grows one repository through `cfg.sizes`, measuring at each size.
fn series(name: &str, env: &Env, cfg: &ScaleConfig) -> Result<Vec<ScalePoint>, String> {
    let mut out = Vec::new();
    let mut have = 1; // the dataset `setup` put
    let mut next_put = 1_000_000_000i64;
    let object = small_object();
    let probe = env.id.clone();
    let query = data_id! {visit: 0};
    for &n in &cfg.sizes {
        if n > have {
            grow(env, have, n)?;
            have = n;
        }
        let runs = cfg.runs.max(3);
        // warm the registry's copy, then time gets
        env.butler
            .get::<daf_base::PropertySet>("meta", &probe)
            .map_err(|e| e.to_string())?;
        let mut gets = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let got = env
                .butler
                .get::<daf_base::PropertySet>("meta", &probe)
                .map_err(|e| e.to_string())?;
            gets.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(got);
        }
        let mut puts = Vec::with_capacity(runs);
        for _ in 0..runs.min(9) {
            let id: DataId = data_id! {visit: next_put};
            next_put += 1;
            let t = Instant::now();
            env.butler
                .put(&object, "meta", &id)
                .map_err(|e| e.to_string())?;
            puts.push(t.elapsed().as_secs_f64() * 1e6);
        }
        have += puts.len();
        let mut queries = Vec::with_capacity(runs);
        for _ in 0..runs.min(9) {
            let t = Instant::now();
            let reg = env.butler.registry(0).ok_or("no registry")?;
            let found = reg
                .find_matching(Some("meta"), &query, None)
                .map_err(|e| e.to_string())?;
            drop(reg);
            queries.push(t.elapsed().as_secs_f64() * 1e6);
            if found.len() != 1 {
                return Err(format!(
                    "query of visit 0 found {} datasets at {n}",
                    found.len()
                ));
            }
        }
        out.push(ScalePoint {
            registry: name.to_string(),
            datasets: n,
            get_us: median(gets),
            put_us: median(puts),
            query_us: median(queries),
            registry_bytes: registry_bytes(env),
        });
    }
    Ok(out)
}

/// Runs every series: SQLite, then PostgreSQL if `cfg.postgres` is set.
pub fn run(cfg: &ScaleConfig) -> Result<Vec<ScalePoint>, String> {
    if cfg.sizes.is_empty() || cfg.sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err("scale sizes must be given in ascending order".into());
    }
    let mut points = series("SQLite", &setup_with(None), cfg)?;
    if let Some(url) = &cfg.postgres {
        let loc = pg_location(url)?;
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            series("PostgreSQL", &setup_with(Some(&loc)), cfg)
        }));
        drop_pg_schema(&loc);
        points.extend(res.map_err(|_| format!("the PostgreSQL series failed ({})", loc.url))??);
    }
    Ok(points)
}

/// The table rows: one per (registry, size, measure), each latency with the
/// smallest size's as reference; get and put at the largest size carry the
/// target ≤ 1.5×.
pub fn rows(points: &[ScalePoint]) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut regs: Vec<&str> = points.iter().map(|p| p.registry.as_str()).collect();
    regs.dedup();
    for reg in regs {
        let pts: Vec<&ScalePoint> = points.iter().filter(|p| p.registry == reg).collect();
        let (first, last) = (pts[0], pts[pts.len() - 1]);
        for p in &pts {
            let at_last = pts.len() > 1 && std::ptr::eq(*p, last);
            let measures: [(&str, f64, f64, bool); 3] = [
                ("get", p.get_us, first.get_us, true),
                ("put (durable)", p.put_us, first.put_us, true),
                ("query by visit", p.query_us, first.query_us, false),
            ];
            for (what, v, r, targeted) in measures {
                rows.push(Row {
                    name: format!("{reg} {what} at {} datasets", p.datasets),
                    value: v,
                    unit: "µs".into(),
                    reference: Some(r),
                    reference_name: format!("same at {} datasets", first.datasets),
                    target: if targeted && at_last {
                        Target::AtMost(1.5)
                    } else {
                        Target::None
                    },
                });
            }
            if let Some(b) = p.registry_bytes {
                rows.push(Row {
                    name: format!("{reg} registry size at {} datasets", p.datasets),
                    value: b as f64 / 1e6,
                    unit: "MB".into(),
                    reference: None,
                    reference_name: String::new(),
                    target: Target::None,
                });
            }
        }
    }
    rows
}

/// Font files tried for the chart's labels (DAF_PLOT_FONT first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a TrueType font for the chart's labels as `sans-serif` (once
/// per process): the file named by `DAF_PLOT_FONT`, else the first of
/// [`FONTS`] found.
fn register_font() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(find_and_register_font).clone()
}

fn find_and_register_font() -> Result<(), String> {
    let mut tried: Vec<String> = std::env::var("DAF_PLOT_FONT")
        .ok()
        .filter(|s| !s.is_empty())
        .into_iter()
        .collect();
    tried.extend(FONTS.iter().map(|s| s.to_string()));
    for p in &tried {
        if let Ok(bytes) = std::fs::read(p) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(format!(
        "no TrueType font for the chart's labels (tried {}): install fonts-dejavu-core \
         or set DAF_PLOT_FONT to a .ttf file",
        tried.join(", ")
    ))
}

/// Refuses chart sizes outside 200×150 ..= 10000×10000 pixels.
pub fn check_plot_size(width: u32, height: u32) -> Result<(), String> {
    if !(200..=10_000).contains(&width) || !(150..=10_000).contains(&height) {
        return Err(format!(
            "chart size {width}x{height}: the width must be 200..=10000 and the height \
             150..=10000 pixels"
        ));
    }
    Ok(())
}

/// Draws get, put and query latency against the dataset count (log–log),
/// one line per (registry, measure), as a `width` × `height` PNG at `path`.
pub fn plot(points: &[ScalePoint], path: &Path, width: u32, height: u32) -> Result<(), String> {
    use plotters::prelude::*;
    if points.is_empty() {
        return Err("nothing to plot".into());
    }
    check_plot_size(width, height)?;
    register_font()?;
    let e = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let xmin = points.iter().map(|p| p.datasets).min().unwrap_or(1).max(1) as f64;
    let xmax = points.iter().map(|p| p.datasets).max().unwrap_or(10) as f64;
    let ys = points
        .iter()
        .flat_map(|p| [p.get_us, p.put_us, p.query_us])
        .filter(|v| v.is_finite() && *v > 0.0);
    let (ymin, ymax) = ys.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (ymin, ymax) = if ymin <= ymax {
        (ymin / 2.0, ymax * 2.0)
    } else {
        (1.0, 10.0)
    };
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "daf butler latency against repository size",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (xmin / 1.5..xmax * 1.5).log_scale(),
                (ymin..ymax).log_scale(),
            )
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("datasets in the repository")
            .y_desc("latency (µs, median)")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|x| e(&x))?;
        let mut regs: Vec<&str> = points.iter().map(|p| p.registry.as_str()).collect();
        regs.dedup();
        let palette = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
        let mut k = 0;
        for reg in regs {
            type Pick = fn(&ScalePoint) -> f64;
            let measures: [(&str, Pick); 3] = [
                ("get", |p| p.get_us),
                ("put", |p| p.put_us),
                ("query", |p| p.query_us),
            ];
            for (what, pick) in measures {
                let color = palette[k % palette.len()];
                k += 1;
                let pts: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.registry == reg)
                    .map(|p| (p.datasets as f64, pick(p)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|x| e(&x))?
                    .label(format!("{reg} {what}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    // Encoded into a temporary file beside `path`, renamed when complete.
    let mut out = daf_storages::atomic::AtomicFile::create(path).map_err(|x| e(&x))?;
    {
        let mut enc = png::Encoder::new(out.writer(), width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|x| e(&x))?;
        w.write_image_data(&rgb).map_err(|x| e(&x))?;
        w.finish().map_err(|x| e(&x))?;
    }
    out.commit().map_err(|x| e(&x))?;
    Ok(())
}
