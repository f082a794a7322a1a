//! End to end through the `daf` binary and the library:
//! create → ingest → put → get → query → verify → export → import.

use std::path::Path;

mod common;
use common::*;

#[test]
fn create_ingest_put_get_query_verify_export_import() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();

    // create
    let out = ok(&["create", repo_s, "--dataset", RAW, "--dataset", META]);
    assert!(out.contains("created repository"), "{out}");
    assert!(repo.join("repositoryCfg.yaml").is_file());
    let o = daf(&["create", repo_s]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    // ingest three FITS files with arbitrary names
    let files = ingest_three_raws(d.path(), &repo);
    // ingest without rules says what to do
    let o = daf(&["ingest", repo_s, &files[0]]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--key KEY=HEADERCARD"));

    // put (library) and get back
    put_three_metas(&repo);

    // get (CLI): type, shape and header
    let g = json(&["get", repo_s, "raw", "visit=2", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["shape"], serde_json::json!([0, 0]), "{g}");
    assert_eq!(g["data_id"]["filter"], "r", "{g}");
    assert_eq!(g["header"]["EXPTIME"], 15.0, "{g}");
    assert!(
        g["file"].as_str().unwrap().ends_with("raw/raw_v2_fr.fits"),
        "{g}"
    );
    assert_eq!(g["size"], 2880, "{g}");

    // query: datasets with --where, and distinct keys
    query_three(repo_s);
    let q = json(&["query", repo_s, "--json"]);
    assert_eq!(q.as_array().unwrap().len(), 6);
    let o = daf(&["query", repo_s, "--where", "visit >"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad where expression"));

    // dump-policy
    let p = json(&["dump-policy", repo_s, "--json"]);
    assert_eq!(p[0]["datasets"]["raw"]["keys"]["visit"], "Int", "{p}");
    assert_eq!(p[0]["datasets"]["meta"]["storage"], "JsonStorage", "{p}");

    // verify: clean
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 6);
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 0);

    // export and import into a new repository
    let yaml = d.path().join("export.yaml");
    ok(&["export", repo_s, "-o", yaml.to_str().unwrap()]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("description: daf butler export"), "{text}");
    let repo2 = d.path().join("repo2");
    let repo2_s = repo2.to_str().unwrap();
    ok(&["create", repo2_s, "--dataset", RAW, "--dataset", META]);
    import_six(&repo, &repo2, &yaml);

    // a file changed after ingest is caught by verify
    let err = verify_catches_damage(&repo);
    assert!(err.contains("restore them"), "{err}");
}

#[test]
fn cli_on_obs_test_through_a_camera_mapper_output() {
    let d = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = here.join("tests/data/obs_test/input");
    let policy = here.join("tests/data/obs_test/policy/testMapper.yaml");
    let out = d.path().join("out");
    let out_s = out.to_str().unwrap();
    ok(&[
        "create",
        out_s,
        "--mapper",
        "CameraMapper",
        "--policy",
        policy.to_str().unwrap(),
        "--parent",
        input.to_str().unwrap(),
    ]);
    let q = json(&[
        "query",
        out_s,
        "--dataset-type",
        "raw",
        "--keys",
        "visit,filter",
        "--where",
        "visit > 1",
        "--json",
    ]);
    let mut rows: Vec<String> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![r#"{"filter":"g","visit":2}"#, r#"{"filter":"r","visit":3}"#]
    );
    let g = json(&["get", out_s, "raw", "visit=1", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
    assert_eq!(g["header"]["OBSID"], 890104911, "{g}");
    assert_eq!(g["data_id"]["filter"], "g", "{g}");
    assert!(
        g["file"]
            .as_str()
            .unwrap()
            .ends_with("raw/raw_v1_fg.fits.gz"),
        "{g}"
    );
    let o = daf(&["get", out_s, "raw", "visit=4"]);
    assert!(!o.status.success());
    let p = json(&["dump-policy", out_s, "--json"]);
    assert_eq!(p[0]["datasets"]["raw"]["keys"]["filter"], "Str", "{p}");
    assert_eq!(p.as_array().unwrap().len(), 2);
}
