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

/// Runs `daf` and returns its stdout, failing with its stderr.
fn daf_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "daf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The data ids of the raws in `repo`, as `daf query --json` prints them.
fn ingested_ids(repo: &Path) -> Vec<serde_json::Value> {
    let q = daf_ok(&[
        "query".as_ref(),
        repo.as_os_str(),
        "--dataset-type".as_ref(),
        "raw".as_ref(),
        "--json".as_ref(),
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&q).unwrap();
    let mut ids: Vec<serde_json::Value> = rows.into_iter().map(|r| r["data_id"].clone()).collect();
    ids.sort_by_key(|id| id["visit"].as_i64());
    ids
}

#[test]
fn daf_ingest_converts_header_cards_like_registry_create() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("raw")).unwrap();
    let mut files = Vec::new();
    for f in [
        "raw_v1_fg.fits.gz",
        "raw_v2_fg.fits.gz",
        "raw_v3_fr.fits.gz",
    ] {
        std::fs::copy(data.join("input/raw").join(f), root.join("raw").join(f)).unwrap();
        files.push(root.join("raw").join(f));
    }
    // visit and filter come from the file name for `daf registry create` and
    // from the header for `daf ingest` (whose files may have any name).
    let policy = dir.path().join("mapper.yaml");
    std::fs::write(
        &policy,
        "exposures:\n  raw:\n    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz\n    tables: raw\n\
         ingest:\n  headerKeys:\n    visit: OBSID\n    filter: FILTER\n    obsId: OBSID\n    \
         expTime: EXPTIME\n    taiObs: {header: MJD-OBS, convert: mjdTaiToUtc}\n",
    )
    .unwrap();
    daf_ok(&[
        "registry".as_ref(),
        "create".as_ref(),
        "--quiet".as_ref(),
        policy.as_os_str(),
        root.as_os_str(),
    ]);
    let reg = SqliteRegistry::open(root.join("registry.sqlite3")).unwrap();
    let registry_rows = reg
        .lookup(
            &["obsId".into(), "taiObs".into(), "expTime".into()],
            &["raw".into()],
            &data_id! {},
        )
        .unwrap();
    let expected = [
        (890104911, "1999-01-17T04:52:34.895201920"),
        (890106021, "1999-01-17T05:22:08.687202048"),
        (890880321, "1999-02-19T01:17:24.056802176"),
    ];
    assert_eq!(
        registry_rows,
        expected
            .iter()
            .map(|(o, t)| vec![(*o).into(), (*t).into(), 15.0.into()])
            .collect::<Vec<_>>()
    );

    // `daf ingest` with the rules of the repository's policy.
    let repo = dir.path().join("repo");
    daf_ok(&[
        "create".as_ref(),
        repo.as_os_str(),
        "--mapper".as_ref(),
        "CameraMapper".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ]);
    let mut args: Vec<&std::ffi::OsStr> = vec!["ingest".as_ref(), repo.as_os_str()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.push("--json".as_ref());
    daf_ok(&args);
    let ids = ingested_ids(&repo);
    let filters = ["g", "g", "r"];
    assert_eq!(ids.len(), 3);
    for ((id, (obs, tai)), filter) in ids.iter().zip(&expected).zip(filters) {
        assert_eq!(
            id,
            &serde_json::json!({"visit": obs, "obsId": obs, "filter": filter,
                                "expTime": 15.0, "taiObs": tai}),
        );
    }

    // Floats print as floats (`15.0`, not `15`) and the printed text reads
    // back as the same value in --where and in a data id.
    let text = daf_ok(&[
        "query".as_ref(),
        repo.as_os_str(),
        "--dataset-type".as_ref(),
        "raw".as_ref(),
        "--keys".as_ref(),
        "visit,expTime".as_ref(),
    ]);
    assert_eq!(
        text,
        "visit\texpTime\n890104911\t15.0\n890106021\t15.0\n890880321\t15.0\n"
    );
    let printed = text.lines().nth(1).unwrap().split('\t').nth(1).unwrap();
    let text = daf_ok(&[
        "query".as_ref(),
        repo.as_os_str(),
        "--dataset-type".as_ref(),
        "raw".as_ref(),
        "--where".as_ref(),
        format!("expTime = {printed} AND filter = 'r'").as_ref(),
    ]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("{expTime: 15.0, filter: \"r\", obsId: 890880321, taiObs: \"1999-02-19T01:17:24.056802176\", visit: 890880321}"),
        "{text}"
    );
    let g: serde_json::Value = serde_json::from_str(&daf_ok(&[
        "get".as_ref(),
        repo.as_os_str(),
        "raw".as_ref(),
        "visit=890880321".as_ref(),
        format!("expTime={printed}").as_ref(),
        "--json".as_ref(),
    ]))
    .unwrap();
    assert_eq!(g["data_id"]["expTime"], 15.0, "{g}");

    // The same through --key rules with a conversion.
    let repo2 = dir.path().join("repo2");
    daf_ok(&[
        "create".as_ref(),
        repo2.as_os_str(),
        "--mapper".as_ref(),
        "CameraMapper".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ]);
    let mut args: Vec<&std::ffi::OsStr> = vec!["ingest".as_ref(), repo2.as_os_str()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    for k in [
        "visit=OBSID:int",
        "filter=FILTER",
        "taiObs=MJD-OBS:mjdTaiToUtc",
    ] {
        args.push("--key".as_ref());
        args.push(k.as_ref());
    }
    daf_ok(&args);
    let ids = ingested_ids(&repo2);
    for ((id, (obs, tai)), filter) in ids.iter().zip(&expected).zip(filters) {
        assert_eq!(
            id,
            &serde_json::json!({"visit": obs, "filter": filter, "taiObs": tai})
        );
    }

    // An unknown conversion: a clear message, nothing ingested.
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .arg("ingest")
        .arg(&repo2)
        .arg(&files[0])
        .args(["--key", "taiObs=MJD-OBS:magic"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--key \"taiObs=MJD-OBS:magic\": unknown conversion \"magic\"")
            && err.contains("mjdTaiToUtc"),
        "{err}"
    );
}
