//! Registry creation from FITS headers and from metadata tables.

use std::path::{Path, PathBuf};

use daf_base::{data_id, DataIdValue};
use daf_mappers::ingest;
use daf_mappers::registry::Registry;
use daf_mappers::{
    CameraMapper, CameraMapperOptions, Mapper, MapperPolicy, PolicyDefaults, SqliteRegistry,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/obs_test")
}

const POLICY: &str = r#"
defaultLevel: visit
exposures:
  raw:
    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz
    tables: raw
ingest:
  table: raw
  visitTable: raw_visit
  visitKeys: [visit, filter, taiObs, expTime]
  headerKeys:
    taiObs: {header: MJD-OBS, convert: mjdTaiToUtc}
    expTime: EXPTIME
    obsId: OBSID
"#;

fn policy() -> MapperPolicy {
    MapperPolicy::from_yaml_str(POLICY, "ingest.yaml", &PolicyDefaults::none()).unwrap()
}

fn obs_test_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    for f in [
        "raw_v1_fg.fits.gz",
        "raw_v2_fg.fits.gz",
        "raw_v3_fr.fits.gz",
    ] {
        std::fs::copy(
            data().join("input/raw").join(f),
            dir.path().join("raw").join(f),
        )
        .unwrap();
    }
    dir
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn obs_test_registry_from_headers_matches_the_legacy_one() {
    let root = obs_test_root();
    let out = root.path().join("registry.sqlite3");
    let calls = std::sync::atomic::AtomicU64::new(0);
    let s = ingest::create_from_files(&policy(), root.path(), &out, &|done, total| {
        assert!(done <= total);
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(s.rows, 3);
    assert_eq!(s.visit_rows, 3);
    assert!(calls.into_inner() >= 1);
    let ours = SqliteRegistry::open(&out).unwrap();
    let legacy = SqliteRegistry::open(data().join("input/registry.sqlite3")).unwrap();
    let props = strs(&["visit", "filter", "taiObs"]);
    let a = ours.lookup(&props, &strs(&["raw"]), &data_id! {}).unwrap();
    let b = legacy
        .lookup(&props, &strs(&["raw"]), &data_id! {})
        .unwrap();
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x[0], y[0]);
        assert_eq!(x[1], y[1]);
        // MJD in a double: equal to the microsecond.
        let (xs, ys) = (x[2].as_str().unwrap(), y[2].as_str().unwrap());
        assert_eq!(&xs[..26], &ys[..26], "{xs} vs {ys}");
    }
    // The header's exposure time (the legacy registry says 0.0).
    assert_eq!(
        ours.lookup(
            &strs(&["expTime", "obsId"]),
            &strs(&["raw"]),
            &data_id! {visit: 2}
        )
        .unwrap(),
        vec![vec![DataIdValue::Float(15.0), DataIdValue::Int(890106021)]]
    );
    assert_eq!(
        ours.lookup(
            &strs(&["filter"]),
            &strs(&["raw_visit"]),
            &data_id! {visit: 3}
        )
        .unwrap(),
        vec![vec!["r".into()]]
    );
    // A mapper over the new registry completes data ids.
    let m = CameraMapper::open(policy(), root.path(), CameraMapperOptions::default()).unwrap();
    assert_eq!(
        m.map("raw", &data_id! {visit: 2}, false).unwrap().locations,
        vec!["raw/raw_v2_fg.fits.gz"]
    );
}

#[test]
fn failures_leave_the_old_registry_alone() {
    let root = obs_test_root();
    let out = root.path().join("registry.sqlite3");
    std::fs::write(&out, b"old registry").unwrap();
    std::fs::write(
        root.path().join("raw/raw_v9_fg.fits.gz"),
        b"\x1f\x8bnot really gzip",
    )
    .unwrap();
    let e = ingest::create_from_files(&policy(), root.path(), &out, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("raw_v9_fg.fits.gz"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"old registry");
    // No stray temp files.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("daf-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // A header lacking a card names the card.
    std::fs::remove_file(root.path().join("raw/raw_v9_fg.fits.gz")).unwrap();
    daf_mappers::fits_header::write_test_fits(
        &root.path().join("raw/raw_v9_fg.fits.gz"),
        &[("EXPTIME", "1.0".into())],
    )
    .unwrap();
    let e = ingest::create_from_files(&policy(), root.path(), &out, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("MJD-OBS") && e.contains("raw_v9_fg"), "{e}");
    // Nothing to ingest.
    let empty = tempfile::tempdir().unwrap();
    let e = ingest::create_from_files(
        &policy(),
        empty.path(),
        &empty.path().join("r.sqlite3"),
        &|_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no files match"), "{e}");
}

#[test]
fn registry_from_csv_and_tsv_tables() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("meta.csv");
    std::fs::write(
        &csv,
        "path,visit,filter,expTime,note\nraw/a.fits,1,g,15,\"a, b\"\nraw/b.fits,2,r,30.5,\"say \"\"hi\"\"\"\n",
    )
    .unwrap();
    let out = dir.path().join("registry.sqlite3");
    let s = ingest::create_from_table(&policy(), &csv, &out).unwrap();
    assert_eq!(s.rows, 2);
    let reg = SqliteRegistry::open(&out).unwrap();
    assert_eq!(
        reg.lookup(
            &strs(&["filter", "expTime", "note"]),
            &strs(&["raw"]),
            &data_id! {visit: 2}
        )
        .unwrap(),
        vec![vec![
            "r".into(),
            DataIdValue::Float(30.5),
            "say \"hi\"".into()
        ]]
    );
    assert_eq!(
        reg.lookup(
            &strs(&["expTime", "note"]),
            &strs(&["raw"]),
            &data_id! {visit: 1}
        )
        .unwrap(),
        vec![vec![DataIdValue::Float(15.0), "a, b".into()]]
    );
    assert!(reg.columns("raw").unwrap().iter().all(|c| c != "path"));

    let tsv = dir.path().join("meta.tsv");
    std::fs::write(&tsv, "visit\tfilter\n5\tz\n6\ty\n").unwrap();
    let out2 = dir.path().join("r2.sqlite3");
    ingest::create_from_table(&policy(), &tsv, &out2).unwrap();
    let reg = SqliteRegistry::open(&out2).unwrap();
    assert_eq!(
        reg.lookup(&strs(&["visit"]), &strs(&["raw"]), &data_id! {filter: "y"})
            .unwrap(),
        vec![vec![6.into()]]
    );
    // Bad tables: clear errors with line numbers.
    std::fs::write(&tsv, "visit\tfilter\n5\n").unwrap();
    let e = ingest::create_from_table(&policy(), &tsv, &out2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    std::fs::write(&tsv, "visit\tfilter\n5\t\n").unwrap();
    let e = ingest::create_from_table(&policy(), &tsv, &out2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("empty"), "{e}");
    std::fs::write(&tsv, "vis it\tfilter\n5\tg\n").unwrap();
    let e = ingest::create_from_table(&policy(), &tsv, &out2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad column name"), "{e}");
}
