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
