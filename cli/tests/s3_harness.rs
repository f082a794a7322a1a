//! The harness's IO stages (butler method) on a repository whose bytes are
//! in S3 (SeaweedFS) and whose file registry is in PostgreSQL: `daf run`
//! with three thread slices writing and reading one bucket and one
//! registry, then `daf verify` and `daf provenance` on it. The same run
//! under real `mpirun` is `.ci/checks/41-s3-mpi.sh`.
//!
//! Needs `DAF_TEST_S3_ENDPOINT` and `DAF_TEST_POSTGRES_URL` (skipped
//! locally without them, a failure in CI).

use std::path::Path;
use std::process::Command;

use daf::butler::file_registry::{PgFileRegistry, PgLocation};
use daf::storages::datastore::open_datastore;
use daf::storages::db::DbAuth;

fn daf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_daf"))
}

/// Drops the test's schema when the test ends, passed or not.
struct DropSchema(String, String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let loc = PgLocation::parse(&self.0, Some(&self.1)).unwrap();
        if let Ok(Some(reg)) =
            PgFileRegistry::connect(&loc, &std::env::temp_dir(), &DbAuth::new(), false)
        {
            let _ = reg.drop_schema();
        }
    }
}

const VISITS: i64 = 6;
const SLICES: i64 = 3;

fn events(path: &Path) {
    let mut text = String::new();
    for v in 1..=VISITS {
        text.push_str(&format!(
            "{{\"jobIdentity\": {{\"visit\": {v}, \"ccd\": 5}}, \"inputDatasets\": \
             [{{\"type\": \"raw\", \"ids\": {{\"visit\": {v}, \"ccd\": 5}}}}, \
             {{\"type\": \"bias\", \"ids\": {{\"ccd\": 5}}}}]}}\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn io_stages_on_threads_write_and_read_an_s3_repository() {
    let Some(pg) = servers() else { return };
    run_pipeline(&pg, None);
}

/// The same pipeline under `mpirun -n 3` (two slice ranks) with the
/// MPI-enabled `daf` named by `DAF_S3_MPI_DAF`; `.ci/checks/41-s3-mpi.sh`
/// builds that binary and runs this test (without the variable it does
/// nothing: `cargo test` alone has no MPI build to run).
#[test]
fn io_stages_under_mpirun_write_and_read_an_s3_repository() {
    let Ok(exe) = std::env::var("DAF_S3_MPI_DAF") else {
        eprintln!("not run: DAF_S3_MPI_DAF not set (.ci/checks/41-s3-mpi.sh sets it)");
        return;
    };
    let Some(pg) = servers() else { return };
    run_pipeline(&pg, Some(&exe));
}

/// The PostgreSQL URL when S3 and PostgreSQL are configured (else skipped
/// locally, a failure in CI).
fn servers() -> Option<String> {
    let ok = std::env::var("DAF_TEST_S3_ENDPOINT").is_ok();
    if !daf::base::testing::available(
        ok,
        "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)",
    ) {
        return None;
    }
    let pg = std::env::var("DAF_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if !daf::base::testing::available(pg.is_some(), "DAF_TEST_POSTGRES_URL not set") {
        return None;
    }
    pg
}

/// Creates the repository and runs the butler pipeline on threads, or with
/// `mpi_daf` under `mpirun -n 3`, then checks what it left.
fn run_pipeline(pg: &str, mpi_daf: Option<&str>) {
    let tag = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let schema = format!("daf_s3h_{tag}");
    let _drop = DropSchema(pg.to_string(), schema.clone());
    let bucket = std::env::var("DAF_TEST_S3_BUCKET").unwrap_or_else(|_| "daf-test".into());
    let url = format!("s3://{bucket}/daf-tests/harness-{tag}");
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let o = daf()
        .arg("create")
        .arg(&repo)
        .args([
            "--dataset",
            "ps:ps/v%(visit)d-c%(ccd)d.boost:PropertySet:BoostStorage",
            "--datastore",
            &url,
            "--registry",
            pg,
            "--registry-schema",
            &schema,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = d.path().join("events.jsonl");
    events(&ev);
    let dump = d.path().join("dump.json");
    let (mut cmd, slices) = match mpi_daf {
        None => {
            let mut c = daf();
            c.args(["run", "tests/data/harness/butler_pipeline.yaml"])
                .args(["--slices", &SLICES.to_string()]);
            (c, SLICES)
        }
        Some(exe) => {
            let mut c = Command::new("mpirun");
            c.arg("--oversubscribe");
            if std::env::var("USER").as_deref() == Ok("root") || is_root() {
                c.arg("--allow-run-as-root");
            }
            c.args([
                "-n",
                "3",
                exe,
                "run",
                "tests/data/harness/butler_pipeline.yaml",
            ]);
            (c, 2)
        }
    };
    let o = cmd
        .arg("--events")
        .arg(&ev)
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
    check_run(&repo, &url, &dump, slices);
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What every run of the butler pipeline over an S3 repository must leave:
/// one object and one row per visit (every slice put it, clobbering), each
/// slice read back a value some slice wrote, `daf verify` is clean and
/// `daf provenance` lists the visit's inputs.
pub fn check_run(repo: &Path, url: &str, dump: &Path, slices: i64) {
    let ds = open_datastore(url).unwrap();
    let keys: Vec<String> = ds.list("").unwrap().into_iter().map(|m| m.key).collect();
    let want: Vec<String> = (1..=VISITS).map(|v| format!("ps/v{v}-c5.boost")).collect();
    assert_eq!(keys, want);
    // no bytes in the folder (staging files are gone; the folder may stay)
    let left: Vec<_> = std::fs::read_dir(repo.join("ps"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dump).unwrap()).unwrap();
    for v in 0..VISITS {
        let visit = v + 1;
        let got = report["visits"][v as usize]["slices"].as_array().unwrap();
        assert_eq!(got.len() as i64, slices);
        for s in got {
            let value = s["summary"]["back"]["value"].as_i64().unwrap();
            assert!(
                (visit * 100..visit * 100 + slices + 1).contains(&value),
                "visit {visit}: read back {value}"
            );
        }
    }
    let o = daf()
        .arg("verify")
        .arg(repo)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checked"], VISITS, "{v}");
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
    assert_eq!(v["pending_puts"], serde_json::json!([]), "{v}");
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
    for visit in [1, VISITS] {
        let o = daf()
            .arg("provenance")
            .arg(repo)
            .args(["ps", &format!("visit={visit}"), "ccd=5", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let prov: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            prov,
            serde_json::json!([
                {"type": "bias", "ids": {"ccd": 5}, "valid": true},
                {"type": "raw", "ids": {"ccd": 5, "visit": visit}, "valid": true}
            ])
        );
    }
}
