//! `daf registry create` end to end, on the obs_test raw headers, and
//! `daf ingest` giving the same values through the same header rules.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use daf_base::data_id;
use daf_mappers::registry::Registry;
use daf_mappers::SqliteRegistry;

/// Runs `daf` with `args`.
fn daf(args: &[&dyn AsRef<OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

/// Runs `daf` and returns its stdout, failing with its stderr.
fn daf_ok(args: &[&dyn AsRef<OsStr>]) -> String {
    let out = daf(args);
    assert!(
        out.status.success(),
        "daf {:?}: {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Copies the three obs_test raws into `root/raw`; returns their paths.
fn obs_test_raws(root: &Path) -> Vec<PathBuf> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/input/raw");
    std::fs::create_dir_all(root.join("raw")).unwrap();
    [
        "raw_v1_fg.fits.gz",
        "raw_v2_fg.fits.gz",
        "raw_v3_fr.fits.gz",
    ]
    .iter()
    .map(|f| {
        let to = root.join("raw").join(f);
        std::fs::copy(data.join(f), &to).unwrap();
        to
    })
    .collect()
}

const RAW_POLICY: &str =
    "exposures:\n  raw:\n    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz\n    tables: raw\n";

#[test]
fn registry_create_from_headers_and_from_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    obs_test_raws(&root);
    let policy = dir.path().join("mapper.yaml");
    std::fs::write(
        &policy,
        format!(
            "{RAW_POLICY}ingest:\n  headerKeys:\n    expTime: EXPTIME\n    \
             taiObs: {{header: MJD-OBS, convert: mjdTaiToUtc}}\n"
        ),
    )
    .unwrap();
    let stdout = daf_ok(&[&"registry", &"create", &"--quiet", &policy, &root]);
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
    daf_ok(&[
        &"registry",
        &"create",
        &"--from-table",
        &table,
        &"--output",
        &target,
        &policy,
        &root,
    ]);
    let reg = SqliteRegistry::open(&target).unwrap();
    assert_eq!(
        reg.lookup(&["filter".into()], &["raw".into()], &data_id! {visit: 7})
            .unwrap(),
        vec![vec!["z".into()]]
    );

    // A bad policy: a clear message and a non-zero exit.
    std::fs::write(&policy, "exposures: [1, 2\n").unwrap();
    let out = daf(&[&"registry", &"create", &policy, &root]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mapper.yaml"), "{err}");
}

/// The data ids of the raws in `repo`, as `daf query --json` prints them.
fn ingested_ids(repo: &Path) -> Vec<serde_json::Value> {
    let q = daf_ok(&[&"query", &repo, &"--dataset-type", &"raw", &"--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&q).unwrap();
    let mut ids: Vec<serde_json::Value> = rows.into_iter().map(|r| r["data_id"].clone()).collect();
    ids.sort_by_key(|id| id["visit"].as_i64());
    ids
}

/// `daf create` of a camera-mapper repository `repo` with `policy`.
fn create_camera_repo(repo: &Path, policy: &Path) {
    daf_ok(&[
        &"create",
        &repo,
        &"--mapper",
        &"CameraMapper",
        &"--policy",
        &policy,
    ]);
}

/// `daf ingest` of `files` into a new camera-mapper repository `repo` with
/// `policy`, with `extra` arguments (rules).
fn create_and_ingest(repo: &Path, policy: &Path, files: &[PathBuf], extra: &[&str]) {
    create_camera_repo(repo, policy);
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"ingest", &repo];
    args.extend(files.iter().map(|f| f as &dyn AsRef<OsStr>));
    args.extend(extra.iter().map(|a| a as &dyn AsRef<OsStr>));
    daf_ok(&args);
}

#[test]
fn daf_ingest_converts_header_cards_like_registry_create() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let files = obs_test_raws(&root);
    // visit and filter come from the file name for `daf registry create` and
    // from the header for `daf ingest` (whose files may have any name).
    let policy = dir.path().join("mapper.yaml");
    std::fs::write(
        &policy,
        format!(
            "{RAW_POLICY}ingest:\n  headerKeys:\n    visit: OBSID\n    filter: FILTER\n    \
             obsId: OBSID\n    expTime: EXPTIME\n    \
             taiObs: {{header: MJD-OBS, convert: mjdTaiToUtc}}\n"
        ),
    )
    .unwrap();
    daf_ok(&[&"registry", &"create", &"--quiet", &policy, &root]);
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
    create_and_ingest(&repo, &policy, &files, &["--json"]);
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
        &"query",
        &repo,
        &"--dataset-type",
        &"raw",
        &"--keys",
        &"visit,expTime",
    ]);
    assert_eq!(
        text,
        "visit\texpTime\n890104911\t15.0\n890106021\t15.0\n890880321\t15.0\n"
    );
    let printed = text.lines().nth(1).unwrap().split('\t').nth(1).unwrap();
    // --keys with a --where on keys that are not listed: the filter sees
    // every key it names, and rows are listed once.
    let text = daf_ok(&[
        &"query",
        &repo,
        &"--dataset-type",
        &"raw",
        &"--keys",
        &"expTime",
        &"--where",
        &"visit > 890104911 AND filter = 'r'",
    ]);
    assert_eq!(text, "expTime\n15.0\n");
    let text = daf_ok(&[
        &"query",
        &repo,
        &"--dataset-type",
        &"raw",
        &"--where",
        &format!("expTime = {printed} AND filter = 'r'"),
    ]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(
            "{expTime: 15.0, filter: \"r\", obsId: 890880321, \
             taiObs: \"1999-02-19T01:17:24.056802176\", visit: 890880321}"
        ),
        "{text}"
    );
    // The policy names no storage, so the read itself fails: `daf get`
    // prints what it found (the data id) and then exits non-zero.
    let out = daf(&[
        &"get",
        &repo,
        &"raw",
        &"visit=890880321",
        &format!("expTime={printed}"),
        &"--json",
    ]);
    assert!(!out.status.success(), "a failed read exits non-zero");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown storage"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["data_id"]["expTime"], 15.0, "{g}");
    // Export YAML keeps the float a float, and import gives the same ids.
    let yaml = dir.path().join("export.yaml");
    daf_ok(&[&"export", &repo, &"-o", &yaml]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("expTime: 15.0"), "{text}");
    let copy = dir.path().join("copy");
    create_camera_repo(&copy, &policy);
    daf_ok(&[&"import", &copy, &yaml, &"--json"]);
    assert_eq!(ingested_ids(&copy), ids);

    // The same through --key rules with a conversion.
    let repo2 = dir.path().join("repo2");
    create_and_ingest(
        &repo2,
        &policy,
        &files,
        &[
            "--key",
            "visit=OBSID:int",
            "--key",
            "filter=FILTER",
            "--key",
            "taiObs=MJD-OBS:mjdTaiToUtc",
        ],
    );
    let ids = ingested_ids(&repo2);
    assert_eq!(ids.len(), 3);
    for ((id, (obs, tai)), filter) in ids.iter().zip(&expected).zip(filters) {
        assert_eq!(
            id,
            &serde_json::json!({"visit": obs, "filter": filter, "taiObs": tai})
        );
    }

    // An unknown conversion: a clear message, nothing ingested.
    let out = daf(&[
        &"ingest",
        &repo2,
        &files[0],
        &"--key",
        &"taiObs=MJD-OBS:magic",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--key \"taiObs=MJD-OBS:magic\": unknown conversion \"magic\"")
            && err.contains("mjdTaiToUtc"),
        "{err}"
    );
}
