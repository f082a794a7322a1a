//! `daf run` and `daf demo` end to end (the binary, threads).

use std::process::Command;

fn daf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_daf"))
}

#[test]
fn run_ring_pipeline_reports_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let dump = dir.path().join("dump.json");
    let o = daf()
        .args([
            "run",
            "tests/data/harness/ring_pipeline.yaml",
            "--events",
            "tests/data/harness/ring_events.jsonl",
            "--slices",
            "3",
            "--location",
            "input=/data",
        ])
        .arg(format!("--location=output={}", out.display()))
        .arg("--dump")
        .arg(&dump)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    // One visit fails on purpose on slice 1: exit status 3, the others finish.
    assert_eq!(
        o.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("4 visits on 3 slices"), "{stdout}");
    assert!(
        stdout.contains("slice 1: InjectedFailure in boom"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    assert_eq!(report["n_slices"], 3);
    let v3 = &report["visits"][2];
    assert_eq!(
        v3["slices"][1]["failure"]["failure_type"],
        "InjectedFailure"
    );
    assert_eq!(v3["slices"][1]["summary"], serde_json::json!({}));
    assert_eq!(v3["slices"][2]["summary"]["record"]["received"], 301);
    for visit in 1..=4 {
        for s in 0..3 {
            let link = out.join(format!("v{visit:04}/slice{s:02}.fits"));
            let target = std::fs::read_link(&link).unwrap();
            assert!(
                target
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("/data/raw-{visit}-")),
                "{target:?}"
            );
        }
    }
}

#[test]
fn run_reads_events_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = daf()
        .args([
            "run",
            "tests/data/harness/ring_pipeline.yaml",
            "--events",
            "-",
            "--slices",
            "2",
            "--location",
            "input=/d",
        ])
        .arg(format!("--location=output={}", dir.path().display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"jobIdentity\": {\"visit\": 7}, \"payload\": {\"filter\": \"z\"}}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 visits on 2 slices"));
    assert!(dir
        .path()
        .join("v0007/slice01.fits")
        .symlink_metadata()
        .is_ok());
}

#[test]
fn run_bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p.yaml");
    std::fs::write(
        &pol,
        "appStage:\n  - name: x\n    parallelClass: lsst.nope.Missing\n",
    )
    .unwrap();
    let o = daf().arg("run").arg(&pol).output().unwrap();
    // A dotted class the built-in registry does not know is looked up as a
    // Python stage (`python -m daf.run`), which cannot import it either.
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("stage class lsst.nope.Missing is not a built-in stage"),
        "{err}"
    );

    let o = daf()
        .args([
            "run",
            "tests/data/harness/ring_pipeline.yaml",
            "--events",
            "/nonexistent.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.jsonl"));

    let ev = dir.path().join("bad.jsonl");
    std::fs::write(
        &ev,
        "{\"jobIdentity\": {\"visit\": 1}, \"payload\": {\"filter\": \"g\"}}\n[1, 2]\n",
    )
    .unwrap();
    let o = daf()
        .args([
            "run",
            "tests/data/harness/ring_pipeline.yaml",
            "--slices",
            "2",
            "--location",
            "input=/d",
        ])
        .arg(format!("--location=output={}", dir.path().display()))
        .arg("--events")
        .arg(&ev)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn demo_runs_and_checks_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let o = daf()
        .arg("demo")
        .arg(dir.path())
        .args(["--visits", "2", "--side", "64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("2 visits on 4 slices"), "{stdout}");
    assert!(stdout.contains("queried 8 postISR outputs"), "{stdout}");
    let repo = dir.path().join("repo");
    assert!(repo.join("postISR/v2/c03.fits").is_file());
    assert!(repo.join("raw/v1/c00.fits").is_file());
    // Provenance: each output's own inputs (its CCD's raw and bias), not
    // every CCD's of the visit.
    let o = daf()
        .arg("provenance")
        .arg(&repo)
        .args(["postISR", "visit=2", "ccd=3", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let prov: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        prov,
        serde_json::json!([
            {"type": "bias", "ids": {"ccd": 3}, "valid": true},
            {"type": "raw", "ids": {"ccd": 3, "visit": 2}, "valid": true}
        ]),
        "{prov}"
    );
    // A second demo in the same folder is refused, nothing overwritten.
    let o = daf()
        .arg("demo")
        .arg(dir.path())
        .args(["--visits", "1", "--side", "16"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a repository"));
}
