//! `daf registry create` end to end, on the obs_test raw headers.

use std::path::Path;
use std::process::Command;

use daf_base::data_id;
use daf_mappers::registry::Registry;
use daf_mappers::SqliteRegistry;

#[test]
fn registry_create_from_headers_and_from_a_table() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("raw")).unwrap();
    for f in [
        "raw_v1_fg.fits.gz",
        "raw_v2_fg.fits.gz",
        "raw_v3_fr.fits.gz",
    ] {
        std::fs::copy(data.join("input/raw").join(f), root.join("raw").join(f)).unwrap();
    }
    let policy = dir.path().join("mapper.yaml");
    std::fs::write(
        &policy,
        "exposures:\n  raw:\n    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz\n    tables: raw\n\
         ingest:\n  headerKeys:\n    expTime: EXPTIME\n    taiObs: {header: MJD-OBS, convert: mjdTaiToUtc}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["registry", "create", "--quiet"])
        .arg(&policy)
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 rows"), "{stdout}");
    let reg = SqliteRegistry::open(root.join("registry.sqlite3")).unwrap();
    let rows = reg
        .lookup(
            &["filter".into(), "expTime".into()],
            &["raw".into()],
            &data_id! {visit: 3},
        )
        .unwrap();
    assert_eq!(rows, vec![vec!["r".into(), 15.0.into()]]);

    let table = dir.path().join("meta.tsv");
    std::fs::write(&table, "visit\tfilter\n7\tz\n").unwrap();
    let target = dir.path().join("other.sqlite3");
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["registry", "create", "--from-table"])
        .arg(&table)
        .arg("--output")
        .arg(&target)
        .arg(&policy)
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reg = SqliteRegistry::open(&target).unwrap();
    assert_eq!(
        reg.lookup(&["filter".into()], &["raw".into()], &data_id! {visit: 7})
            .unwrap(),
        vec![vec!["z".into()]]
    );

    // A bad policy: a clear message and a non-zero exit.
    std::fs::write(&policy, "exposures: [1, 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["registry", "create"])
        .arg(&policy)
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mapper.yaml"), "{err}");
}
