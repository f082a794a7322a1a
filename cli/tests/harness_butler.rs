//! The IO stages' butler method on a real repository (`daf create`), and
//! provenance (`daf provenance`).

use std::process::Command;

fn daf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_daf"))
}

#[test]
fn butler_method_put_get_and_provenance() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let o = daf()
        .arg("create")
        .arg(&repo)
        .args([
            "--dataset",
            "ps:ps/v%(visit)d-c%(ccd)d.boost:PropertySet:BoostStorage",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = d.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"jobIdentity\": {\"visit\": 1, \"ccd\": 5}, \"inputDatasets\": [{\"type\": \"raw\", \"ids\": {\"visit\": 1, \"ccd\": 5}}, {\"type\": \"bias\", \"ids\": {\"ccd\": 5}}]}\n\
         {\"jobIdentity\": {\"visit\": 2, \"ccd\": 5}}\n",
    )
    .unwrap();
    let dump = d.path().join("dump.json");
    let o = daf()
        .args([
            "run",
            "tests/data/harness/butler_pipeline.yaml",
            "--slices",
            "1",
            "--events",
        ])
        .arg(&events)
        .arg(format!("--location=repo={}", repo.display()))
        .arg("--dump")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(repo.join("ps/v1-c5.boost").is_file());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    for (i, visit) in [(0, 1), (1, 2)] {
        let s = &report["visits"][i]["slices"][0]["summary"];
        assert_eq!(s["back"]["value"], visit * 100, "{s}");
        assert_eq!(
            s["outputDatasets"][0]["ids"],
            serde_json::json!({"visit": visit, "ccd": 5})
        );
    }
    let o = daf()
        .arg("provenance")
        .arg(&repo)
        .args(["ps", "visit=1", "ccd=5", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let prov: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        prov,
        serde_json::json!([
            {"type": "bias", "ids": {"ccd": 5}, "valid": true},
            {"type": "raw", "ids": {"ccd": 5, "visit": 1}, "valid": true}
        ])
    );
    // Visit 2 had no input datasets: nothing recorded.
    let o = daf()
        .arg("provenance")
        .arg(&repo)
        .args(["ps", "visit=2,ccd=5"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("no provenance recorded"));
}

/// A pipeline that puts and gets `calib` (keyed by ccd only) with the
/// visit's full job identity, through the butler named `mapper_name`.
fn calib_pipeline(dir: &std::path::Path, mapper_name: &str) -> std::path::PathBuf {
    let p = dir.join("calib_pipeline.yaml");
    std::fs::write(
        &p,
        format!(
            "appStage:
  - name: share
    parallelClass: daf.harness.ShareParallel
  - name: output
    parallelClass: OutputStageParallel
    stagePolicy:
      parameters:
        butler:
          mapperName: {mapper_name}
          mapperPolicy:
            root: \"%(repo)\"
        outputItems:
          slice:
            required: true
            datasetId:
              datasetType: calib
              fromJobIdentity: [visit, ccd]
  - name: input
    parallelClass: InputStageParallel
    stagePolicy:
      parameters:
        butler:
          mapperPolicy:
            root: \"%(repo)\"
        inputItems:
          back:
            datasetType: calib
            timeout: 5
            datasetId:
              fromJobIdentity: [visit, ccd]
"
        ),
    )
    .unwrap();
    p
}

#[test]
fn butler_method_ignores_keys_a_dataset_does_not_use_and_checks_mapper_name() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let o = daf()
        .arg("create")
        .arg(&repo)
        .args([
            "--dataset",
            "calib:calib/c%(ccd)d.boost:PropertySet:BoostStorage",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = d.path().join("events.jsonl");
    std::fs::write(&events, "{\"jobIdentity\": {\"visit\": 3, \"ccd\": 5}}\n").unwrap();
    // Gen2 ignored data-id keys a dataset does not use: `visit` for a calib.
    // mapperName as an LSST class path naming the repository's mapper.
    let pipeline = calib_pipeline(d.path(), "lsst.daf.persistence.SimpleMapper");
    let dump = d.path().join("dump.json");
    let o = daf()
        .args(["run", "--slices", "1", "--events"])
        .arg(&events)
        .arg(&pipeline)
        .arg(format!("--location=repo={}", repo.display()))
        .arg("--dump")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(repo.join("calib/c5.boost").is_file());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    let s = &report["visits"][0]["slices"][0]["summary"];
    assert_eq!(s["back"]["value"], 300, "{s}");
    // A mapperName that is not the repository's mapper: a clear error.
    let pipeline = calib_pipeline(d.path(), "lsst.obs.lsstSim.LsstSimMapper");
    let o = daf()
        .args(["run", "--slices", "1", "--events"])
        .arg(&events)
        .arg(&pipeline)
        .arg(format!("--location=repo={}", repo.display()))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mapperName is \"lsst.obs.lsstSim.LsstSimMapper\", but the repository")
            && err.contains("uses mapper \"SimpleMapper\""),
        "{err}"
    );
}
