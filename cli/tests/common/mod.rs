//! Helpers shared by the root end-to-end tests: running the `daf` binary and
//! a JSON-persistence butler over a scratch repository.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output};

use daf::base::{data_id, PropertySet};
use daf::butler::{testing, Butler};

/// Runs the `daf` binary built for these tests.
pub fn daf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .expect("daf runs")
}

/// Runs `daf`, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = daf(args);
    assert!(
        o.status.success(),
        "daf {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs `daf` (with `--json` among `args`) and parses its stdout.
pub fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// `--dataset` definitions of the raw and metadata datasets.
pub const RAW: &str = "raw:raw/raw_v%(visit)d_f%(filter)s.fits:DecoratedImageU:FitsStorage";
/// See [`RAW`].
pub const META: &str = "meta:meta/v%(visit)04d_f%(filter)s.json:PropertySet:JsonStorage";

/// A butler writing to `root` with the JSON test persistence.
pub fn butler(root: &Path) -> Butler {
    Butler::builder()
        .output(root)
        .persistence(testing::json_persistence())
        .build()
        .unwrap()
}

/// Writes three raw FITS files with arbitrary names (visits 1–3, filters g,
/// r, g) under `dir/incoming` and ingests them into `repo` by header keys;
/// a second ingest skips all three. Returns the files.
pub fn ingest_three_raws(dir: &Path, repo: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for (v, f) in [(1, "g"), (2, "r"), (3, "g")] {
        let p = dir.join(format!("incoming/exposure-{v}.fits"));
        testing::write_raw_fits(&p, v, f).unwrap();
        files.push(p.to_str().unwrap().to_string());
    }
    let mut args = vec!["ingest", repo.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--key", "visit=VISIT", "--key", "filter=FILTER", "--json"]);
    let s = json(&args);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 3, "{s}");
    let s = json(&args);
    assert_eq!(s["skipped"].as_array().unwrap().len(), 3, "{s}");
    assert!(repo.join("raw/raw_v2_fr.fits").is_file());
    files
}

/// Puts three `meta` PropertySets (visits 1–3) into `repo` through the
/// library and reads visit 2 back; returns the butler.
pub fn put_three_metas(repo: &Path) -> Butler {
    let b = butler(repo);
    for v in 1..=3i64 {
        let mut ps = PropertySet::new();
        ps.set("visit", v).unwrap();
        ps.set("exptime", 15.0).unwrap();
        let f = if v == 2 { "r" } else { "g" };
        b.put(&ps, "meta", &data_id! {visit: v, filter: f}).unwrap();
    }
    let back: PropertySet = b.get("meta", &data_id! {visit: 2}).unwrap();
    assert_eq!(back.get::<i64>("visit").unwrap(), 2);
    assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
    b
}

/// `daf query` on the repository [`ingest_three_raws`] and
/// [`put_three_metas`] filled: datasets with `--where`, and distinct keys.
pub fn query_three(repo: &str) {
    let q = json(&[
        "query",
        repo,
        "--dataset-type",
        "raw",
        "--where",
        "visit > 1 AND filter = 'g'",
        "--json",
    ]);
    let rows = q.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{q}");
    assert_eq!(rows[0]["data_id"]["visit"], 3);
    let q = json(&[
        "query",
        repo,
        "--dataset-type",
        "meta",
        "--keys",
        "filter",
        "--json",
    ]);
    assert_eq!(q, serde_json::json!([{"filter": "g"}, {"filter": "r"}]));
}

/// Imports the export `yaml` of `repo` into the created, empty `repo2`
/// (twice: the second time skips all six datasets) and checks what arrived;
/// returns a butler on `repo2`.
pub fn import_six(repo: &Path, repo2: &Path, yaml: &Path) -> Butler {
    let (repo2_s, yaml_s) = (repo2.to_str().unwrap(), yaml.to_str().unwrap());
    let s = json(&["import", repo2_s, yaml_s, "--json"]);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 6, "{s}");
    let s = json(&["import", repo2_s, yaml_s, "--json"]);
    assert_eq!(s["skipped"].as_array().unwrap().len(), 6, "{s}");
    let v = json(&["verify", repo2_s, "--json"]);
    assert_eq!(v["checked"], 6);
    let b2 = butler(repo2);
    let back: PropertySet = b2.get("meta", &data_id! {visit: 3}).unwrap();
    assert_eq!(back.get::<i64>("visit").unwrap(), 3);
    assert_eq!(
        std::fs::read(repo2.join("raw/raw_v1_fg.fits")).unwrap(),
        std::fs::read(repo.join("raw/raw_v1_fg.fits")).unwrap()
    );
    b2
}

/// Changes a byte of an ingested file of `repo`: `daf verify` must name it
/// and exit with status 3. Returns verify's stderr.
pub fn verify_catches_damage(repo: &Path) -> String {
    let f = repo.join("raw/raw_v1_fg.fits");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[2000] = b'!';
    std::fs::write(&f, bytes).unwrap();
    let o = daf(&["verify", repo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("raw_v1_fg.fits") && out.contains("checksum changed"),
        "{out}"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}
