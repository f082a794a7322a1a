//! `daf bench boost`: Boost archive throughput against plain file I/O of
//! the same bytes, measured in the same run.
//!
//! - `Vec<f64>` (100 MiB by default) through a binary archive to a file and
//!   back, against `std::fs::write` / `std::fs::read` of the archive's bytes
//!   (target ≥ 0.8×);
//! - 1,000,000 records `{id: i64, ra: f64, dec: f64, flux: f32, name: String}`
//!   in a binary archive, write and read;
//! - 8 MiB of doubles in a text archive, write and read.

use std::fs::File;
use std::path::Path;

use daf_storages::boost::{ArchiveKind, BoostSerialize, ClassInfo, IArchive, OArchive, Result};

use super::{median_time, mib_per_s, Row, Target};

/// Sizes of the Boost benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct BoostBenchConfig {
    /// MiB of doubles in the binary `Vec<f64>` archive.
    pub vec_mib: usize,
    /// Records in the record archive.
    pub records: usize,
    /// MiB of doubles (8 bytes each) in the text archive.
    pub text_mib: usize,
    /// Timed runs per measurement (the median is reported).
    pub runs: usize,
}

impl Default for BoostBenchConfig {
    /// The sizes: 100 MiB, 1,000,000 records, 8 MiB; 5 runs.
    fn default() -> Self {
        BoostBenchConfig {
            vec_mib: 100,
            records: 1_000_000,
            text_mib: 8,
            runs: 5,
        }
    }
}

/// One catalogue record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Object id.
    pub id: i64,
    /// Right ascension (degrees).
    pub ra: f64,
    /// Declination (degrees).
    pub dec: f64,
    /// Flux.
    pub flux: f32,
    /// Name.
    pub name: String,
}

impl BoostSerialize for Record {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Record")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("id", &self.id)?;
        ar.field("ra", &self.ra)?;
        ar.field("dec", &self.dec)?;
        ar.field("flux", &self.flux)?;
        ar.field("name", &self.name)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok(Record {
            id: ar.field("id")?,
            ra: ar.field("ra")?,
            dec: ar.field("dec")?,
            flux: ar.field("flux")?,
            name: ar.field("name")?,
        })
    }
}

/// The small struct of the C++ peer comparison: `{int, double, string of 8}`
/// (`SmallRec` in `benches/peers/boost_peer.cpp`).
#[derive(Debug, Clone, PartialEq)]
pub struct SmallRec {
    /// An int.
    pub i: i32,
    /// A double.
    pub x: f64,
    /// Eight characters.
    pub s: String,
}

impl BoostSerialize for SmallRec {
    fn class_info() -> ClassInfo {
        ClassInfo::new("SmallRec")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("i", &self.i)?;
        ar.field("x", &self.x)?;
        ar.field("s", &self.s)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok(SmallRec {
            i: ar.field("i")?,
            x: ar.field("x")?,
            s: ar.field("s")?,
        })
    }
}

/// `n` deterministic small structs, the same values the C++ peer makes.
pub fn make_small_recs(n: usize) -> Vec<SmallRec> {
    (0..n)
        .map(|i| SmallRec {
            i: i as i32,
            x: i as f64 * 0.5,
            s: format!("s{:07}", i % 10_000_000),
        })
        .collect()
}

/// `n` deterministic records.
pub fn make_records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            id: i as i64,
            ra: (i as f64 * 0.001) % 360.0,
            dec: ((i as f64 * 0.0007) % 180.0) - 90.0,
            flux: (i % 1000) as f32 * 1.5,
            name: format!("obj{i:07}"),
        })
        .collect()
}

/// `n` deterministic doubles.
pub fn make_doubles(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.25 + 1.0 / 3.0).collect()
}

/// Writes `values` as the single member `name` of an archive file.
pub fn write_file<T: BoostSerialize>(
    path: &Path,
    kind: ArchiveKind,
    name: &str,
    value: &T,
) -> Result<()> {
    let mut f = File::create(path)?;
    let mut ar = OArchive::new(&mut f, kind, 19)?;
    ar.field(name, value)?;
    ar.finish()
}

/// Reads the single member `name` of an archive file (mapped, not copied).
pub fn read_file<T: BoostSerialize>(path: &Path, name: &str) -> Result<T> {
    let f = File::open(path)?;
    // SAFETY: the benchmark's own file, not modified while mapped.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&f) }?;
    IArchive::from_bytes(&map, |ar| ar.field(name))
}

fn row(
    name: &str,
    bytes: u64,
    d: std::time::Duration,
    reference: Option<(&str, std::time::Duration)>,
    target: Target,
) -> Row {
    Row {
        name: name.to_string(),
        value: mib_per_s(bytes, d),
        unit: "MiB/s".into(),
        reference: reference.map(|(_, r)| mib_per_s(bytes, r)),
        reference_name: reference.map_or(String::new(), |(n, _)| n.to_string()),
        target,
    }
}

/// Runs every Boost measurement with files in `dir`.
pub fn run(cfg: &BoostBenchConfig, dir: &Path) -> std::result::Result<Vec<Row>, String> {
    let err = |e: daf_storages::boost::ArchiveError| e.to_string();
    let io = |e: std::io::Error| e.to_string();
    let mut rows = Vec::new();
    let runs = cfg.runs;

    // 1. Vec<f64> binary vs plain file I/O.
    let v = make_doubles(cfg.vec_mib * 1024 * 1024 / 8);
    let arch = dir.join("vec.bin");
    write_file(&arch, ArchiveKind::Binary, "values", &v).map_err(err)?;
    let bytes = std::fs::read(&arch).map_err(io)?;
    let n = bytes.len() as u64;
    let plain = dir.join("plain.bin");
    let t_plain_w = median_time(runs, || std::fs::write(&plain, &bytes).expect("write"));
    let t_arch_w = median_time(runs, || {
        write_file(&arch, ArchiveKind::Binary, "values", &v).expect("archive write")
    });
    let t_plain_r = median_time(runs, || {
        std::hint::black_box(std::fs::read(&plain).expect("read"));
    });
    let t_arch_r = median_time(runs, || {
        let back: Vec<f64> = read_file(&arch, "values").expect("archive read");
        assert_eq!(back.len(), v.len());
        std::hint::black_box(back);
    });
    let mib = cfg.vec_mib;
    rows.push(row(
        &format!("Vec<f64> {mib} MiB binary write"),
        n,
        t_arch_w,
        Some(("std::fs::write", t_plain_w)),
        Target::AtLeast(0.8),
    ));
    rows.push(row(
        &format!("Vec<f64> {mib} MiB binary read"),
        n,
        t_arch_r,
        Some(("std::fs::read", t_plain_r)),
        Target::AtLeast(0.8),
    ));
    drop(v);
    let _ = std::fs::remove_file(&plain);
    let _ = std::fs::remove_file(&arch);

    // 2. Records.
    let recs = make_records(cfg.records);
    let arch = dir.join("records.bin");
    write_file(&arch, ArchiveKind::Binary, "records", &recs).map_err(err)?;
    let n = std::fs::metadata(&arch).map_err(io)?.len();
    let bytes = std::fs::read(&arch).map_err(io)?;
    let t_plain_w = median_time(runs, || std::fs::write(&plain, &bytes).expect("write"));
    let t_w = median_time(runs, || {
        write_file(&arch, ArchiveKind::Binary, "records", &recs).expect("write")
    });
    let t_r = median_time(runs, || {
        let back: Vec<Record> = read_file(&arch, "records").expect("read");
        assert_eq!(back.len(), recs.len());
        std::hint::black_box(back);
    });
    let t_plain_r = median_time(runs, || {
        std::hint::black_box(std::fs::read(&plain).expect("read"));
    });
    let k = cfg.records;
    rows.push(row(
        &format!("{k} records binary write"),
        n,
        t_w,
        Some(("std::fs::write", t_plain_w)),
        Target::None,
    ));
    rows.push(row(
        &format!("{k} records binary read"),
        n,
        t_r,
        Some(("std::fs::read", t_plain_r)),
        Target::None,
    ));
    rows.push(Row {
        name: format!("{k} records binary write"),
        value: k as f64 / t_w.as_secs_f64() / 1e6,
        unit: "Mrec/s".into(),
        reference: None,
        reference_name: String::new(),
        target: Target::None,
    });
    rows.push(Row {
        name: format!("{k} records binary read"),
        value: k as f64 / t_r.as_secs_f64() / 1e6,
        unit: "Mrec/s".into(),
        reference: None,
        reference_name: String::new(),
        target: Target::None,
    });
    drop(recs);
    let _ = std::fs::remove_file(&arch);

    // 3. Text archive of doubles (payload MiB = 8 bytes per double).
    let v = make_doubles(cfg.text_mib * 1024 * 1024 / 8);
    let payload = (v.len() * 8) as u64;
    let arch = dir.join("doubles.txt");
    write_file(&arch, ArchiveKind::Text, "values", &v).map_err(err)?;
    let text = std::fs::read(&arch).map_err(io)?;
    let t_plain_w = median_time(runs, || std::fs::write(&plain, &text).expect("write"));
    let t_w = median_time(runs, || {
        write_file(&arch, ArchiveKind::Text, "values", &v).expect("write")
    });
    let t_r = median_time(runs, || {
        let back: Vec<f64> = read_file(&arch, "values").expect("read");
        assert_eq!(back.len(), v.len());
        std::hint::black_box(back);
    });
    let mib = cfg.text_mib;
    rows.push(row(
        &format!("{mib} MiB doubles text write (payload)"),
        payload,
        t_w,
        None,
        Target::None,
    ));
    rows.push(row(
        &format!("{mib} MiB doubles text read (payload)"),
        payload,
        t_r,
        None,
        Target::None,
    ));
    rows.push(row(
        &format!("{mib} MiB doubles text write (file bytes)"),
        text.len() as u64,
        t_w,
        Some(("std::fs::write", t_plain_w)),
        Target::None,
    ));
    let _ = std::fs::remove_file(&arch);
    let _ = std::fs::remove_file(&plain);
    Ok(rows)
}

/// The C++ Boost.Serialization peer (`benches/peers/boost_peer.cpp`),
/// compiled on first use.
pub fn cpp_peer() -> std::result::Result<std::path::PathBuf, String> {
    super::peers::cpp_exe(
        "boost_peer",
        include_str!("../../benches/peers/boost_peer.cpp"),
        &["boost_serialization"],
        "apt-get install g++ libboost-serialization-dev",
    )
}

/// daf against C++ Boost 1.74 on the same data, interleaved (daf write, C++
/// write, daf read, C++ read, repeated; medians of `cfg.runs.max(5)`). Each
/// side reads the file it wrote; daf also reads C++'s files once and checks
/// the values are identical, so both sides move the same archive.
pub fn peer_rows(cfg: &BoostBenchConfig, dir: &Path) -> std::result::Result<Vec<Row>, String> {
    let exe = cpp_peer()?;
    let runs = cfg.runs.max(5);
    let mut rows = Vec::new();

    fn measure<T: BoostSerialize + PartialEq>(
        exe: &Path,
        dir: &Path,
        runs: usize,
        kind: ArchiveKind,
        mode: &str,
        value: &T,
        n: usize,
    ) -> std::result::Result<[f64; 4], String> {
        let ours = dir.join(format!("daf-{mode}"));
        let theirs = dir.join(format!("cpp-{mode}"));
        let t = theirs.to_string_lossy().into_owned();
        let ns = n.to_string();
        let (w, r) = (format!("{mode}-write"), format!("{mode}-read"));
        let mut daf_w = || {
            let t = std::time::Instant::now();
            write_file(&ours, kind, "values", value).map_err(|e| e.to_string())?;
            Ok(t.elapsed().as_secs_f64())
        };
        let mut cpp_w = || super::peers::run_secs(exe, &[&w, &t, &ns]);
        let mut daf_r = || {
            let t = std::time::Instant::now();
            let back: T = read_file(&ours, "values").map_err(|e| e.to_string())?;
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(back);
            Ok(s)
        };
        let mut cpp_r = || super::peers::run_secs(exe, &[&r, &t, &ns]);
        let times =
            super::peers::interleaved(runs, [&mut daf_w, &mut cpp_w, &mut daf_r, &mut cpp_r])?;
        let theirs_back: T = read_file(&theirs, "values")
            .map_err(|e| format!("daf reading C++'s {mode} archive: {e}"))?;
        if &theirs_back != value {
            return Err(format!(
                "daf read C++'s {mode} archive with different values"
            ));
        }
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_file(&theirs);
        Ok(times)
    }

    let peer = "C++ Boost 1.74";
    let v = make_doubles(cfg.vec_mib * 1024 * 1024 / 8);
    let n = v.len();
    let [dw, cw, dr, cr] = measure(&exe, dir, runs, ArchiveKind::Binary, "vec", &v, n)?;
    let bytes = (n * 8) as u64;
    let mib = |secs: f64| bytes as f64 / 1048576.0 / secs;
    for (what, d, c) in [("write", dw, cw), ("read", dr, cr)] {
        rows.push(Row {
            name: format!("Vec<f64> {} MiB binary {what}", cfg.vec_mib),
            value: mib(d),
            unit: "MiB/s".into(),
            reference: Some(mib(c)),
            reference_name: peer.into(),
            target: Target::AtLeast(1.0),
        });
    }
    drop(v);

    let recs = make_small_recs(cfg.records);
    let n = recs.len();
    let [dw, cw, dr, cr] = measure(&exe, dir, runs, ArchiveKind::Binary, "rec", &recs, n)?;
    let mrec = |secs: f64| n as f64 / secs / 1e6;
    for (what, d, c) in [("write", dw, cw), ("read", dr, cr)] {
        rows.push(Row {
            name: format!("{n} small structs binary {what}"),
            value: mrec(d),
            unit: "Mrec/s".into(),
            reference: Some(mrec(c)),
            reference_name: peer.into(),
            target: Target::AtLeast(2.0),
        });
    }
    drop(recs);

    let v = make_doubles(cfg.text_mib * 1024 * 1024 / 8);
    let n = v.len();
    let [dw, cw, dr, cr] = measure(&exe, dir, runs, ArchiveKind::Text, "txt", &v, n)?;
    let bytes = (n * 8) as u64;
    let mib = |secs: f64| bytes as f64 / 1048576.0 / secs;
    for (what, d, c) in [("write", dw, cw), ("read", dr, cr)] {
        rows.push(Row {
            name: format!("{} MiB doubles text {what} (payload)", cfg.text_mib),
            value: mib(d),
            unit: "MiB/s".into(),
            reference: Some(mib(c)),
            reference_name: peer.into(),
            target: Target::AtLeast(3.0),
        });
    }
    Ok(rows)
}
