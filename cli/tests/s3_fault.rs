//! The fault test of the S3 datastore: a private SeaweedFS (`weed`, started
//! by this test through `.ci/setup/20-seaweedfs.sh` with its own folder and
//! ports, so the shared server is never touched) is killed with SIGKILL in
//! the middle of a batch of puts made by a child process. Then:
//! * the child's failing puts end with a typed error
//!   (`ButlerError::Datastore(DatastoreError::Unreachable)`), each within a
//!   bound, and the child exits by itself (no hang);
//! * after `weed` is restarted on the same folder and ports, every
//!   acknowledged put is readable with its value, the failed ones have no
//!   registry row and no object under their key, and `daf verify` finds
//!   nothing (no mismatch, pending put or unregistered object).
//!
//! Needs the S3 test environment (`DAF_TEST_S3_ENDPOINT`, as the set-up
//! script exports it): skipped locally without it, a failure in CI.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daf::base::{data_id, PropertySet};
use daf::butler::{Butler, ButlerError, Repository};
use daf::storages::datastore::{Datastore, DatastoreError, S3Config, S3Datastore};

const CHILD: &str = "DAF_S3_FAULT_CHILD";
/// Puts the child tries (far more than it gets through before the kill).
const PUTS: i64 = 100_000;
/// Acknowledged puts the parent waits for before killing `weed`.
const KILL_AFTER: usize = 40;
/// A failing put must end within this (retries with back-off included).
const ERROR_BOUND: Duration = Duration::from_secs(30);

fn mapper() -> daf::butler::simple_mapper::SimpleMapper {
    daf::butler::simple_mapper::SimpleMapper::new([(
        "meta",
        daf::butler::simple_mapper::SimpleDataset::new(
            "meta/v%(visit)d.boost",
            "PropertySet",
            "BoostStorage",
        ),
    )])
    .unwrap()
}

fn key_of(v: i64) -> String {
    format!("meta/v{v}.boost")
}

/// The child: `put|ROOT` puts visits 0.. one at a time, appending `ok V` to
/// `ROOT/../acks` after each acknowledged put and `err V MS KIND` after a
/// failed one (stopping after three failures); `check|ROOT` reads every
/// acknowledged visit back and checks the failed ones left nothing.
#[test]
fn fault_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (mode, root) = spec.split_once('|').unwrap();
    let root = Path::new(root);
    let acks = root.parent().unwrap().join("acks");
    let b = Butler::builder().output(root).build().unwrap();
    if mode == "put" {
        let mut f = std::fs::File::create(&acks).unwrap();
        let mut failures = 0;
        for v in 0..PUTS {
            let mut ps = PropertySet::new();
            ps.set("v", v).unwrap();
            let t = Instant::now();
            match b.put(&ps, "meta", &data_id! {visit: v}) {
                Ok(_) => writeln!(f, "ok {v}").unwrap(),
                Err(e) => {
                    let kind = match &e {
                        ButlerError::Datastore(DatastoreError::Unreachable { .. }) => "unreachable",
                        ButlerError::Datastore(DatastoreError::Backend { .. }) => "backend",
                        ButlerError::Datastore(_) => "datastore",
                        _ => "other",
                    };
                    writeln!(f, "err {v} {} {kind} {e}", t.elapsed().as_millis()).unwrap();
                    failures += 1;
                }
            }
            f.flush().unwrap();
            if failures == 3 {
                break;
            }
        }
        return;
    }
    let text = std::fs::read_to_string(&acks).unwrap();
    let ds = b.remote_datastore(0).unwrap().clone();
    let mut checked = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let v: i64 = f[1].parse().unwrap();
        if f[0] == "ok" {
            let back: PropertySet = b.get("meta", &data_id! {visit: v}).unwrap();
            assert_eq!(back.get::<i64>("v").unwrap(), v);
            checked += 1;
        } else {
            assert!(
                b.registry(0)
                    .unwrap()
                    .find("meta", &data_id! {visit: v}, None)
                    .unwrap()
                    .is_none(),
                "failed put {v} has a row"
            );
            assert!(
                ds.head(&key_of(v)).unwrap().is_none(),
                "failed put {v} left an object"
            );
        }
    }
    assert!(checked >= KILL_AFTER, "{checked}");
    println!("CHECKED {checked}");
}

/// A private `weed`, killed (SIGKILL, by pid) when dropped.
struct Weed {
    pid: u32,
    child: Option<Child>,
    env: Vec<(String, String)>,
    cmdline: Vec<String>,
    dir: PathBuf,
}

impl Weed {
    /// Starts one through the set-up script, in `dir`.
    fn start(dir: &Path) -> Weed {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/setup/20-seaweedfs.sh");
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ci_cleanup() {{ :; }}; export DAF_WEED_DIR={}; source {} >&2 || exit 1; \
                 env | grep -E '^(AWS_|DAF_WEED_PID=|DAF_TEST_S3_)'",
                dir.display(),
                script.display()
            ))
            .env_remove("DAF_TEST_S3_BUCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "weed did not start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let env: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pid: u32 = env
            .iter()
            .find(|(k, _)| k == "DAF_WEED_PID")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        Weed {
            pid,
            child: None,
            env,
            cmdline,
            dir: dir.to_path_buf(),
        }
    }

    fn var(&self, k: &str) -> String {
        self.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Starts `weed` again with the same command line (folder and ports).
    fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.join("weed-restart.log")).unwrap();
        let c = Command::new(&self.cmdline[0])
            .args(&self.cmdline[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.pid = c.id();
        self.child = Some(c);
    }

    /// A datastore on this server (credentials and endpoint passed, not
    /// read from this process's environment).
    fn datastore(&self, url: &str) -> S3Datastore {
        let cfg = S3Config::from_lookup(url, &|k| {
            self.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| match k {
                    "DAF_S3_RETRIES" => Some("0".into()),
                    _ => None,
                })
        })
        .unwrap();
        S3Datastore::open(cfg).unwrap()
    }

    fn command(&self, exe: &Path) -> Command {
        let mut c = Command::new(exe);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        // fail fast once the server is gone: two retries, 10 s per request
        c.env("DAF_S3_RETRIES", "2")
            .env("DAF_S3_TIMEOUT_SECS", "10");
        c
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_acks(path: &Path) -> (Vec<i64>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut ok = Vec::new();
    let mut err = Vec::new();
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("ok ") {
            ok.push(v.parse().unwrap());
        } else if l.starts_with("err ") {
            err.push(l.to_string());
        }
    }
    (ok, err)
}

#[test]
fn killing_weed_mid_batch_loses_no_acknowledged_put() {
    let ok_env = std::env::var("DAF_TEST_S3_ENDPOINT").is_ok();
    if !daf::base::testing::available(
        ok_env,
        "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut weed = Weed::start(&d.path().join("weed"));
    let url = format!("s3://{}/fault", weed.var("DAF_TEST_S3_BUCKET"));
    let ds = weed.datastore(&url);
    let root = d.path().join("repo");
    Repository::create(&root, Some("SimpleMapper"), mapper().to_args(), &[]).unwrap();
    // recorded as `set_datastore` would, which needs this process's env
    let cfg = root.join("repositoryCfg.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}datastore: {url}\n")).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut child = weed
        .command(&exe)
        .args(["--exact", "fault_child", "--test-threads=1", "--nocapture"])
        .env(CHILD, format!("put|{}", root.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let acks = d.path().join("acks");
    let start = Instant::now();
    while read_acks(&acks).0.len() < KILL_AFTER {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the child made no progress"
        );
        if let Some(s) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&acks).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            panic!("the child ended early: {s}; its last lines: {tail:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    weed.kill();
    let killed = Instant::now();
    // the child must end by itself, its puts failing within a bound
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > ERROR_BOUND * 4 {
            let _ = child.kill();
            panic!("the child hangs after weed was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "put child: {status}");
    let (acked, errs) = read_acks(&acks);
    eprintln!(
        "{} puts acknowledged, then: {errs:?} (child ended {:?} after the kill)",
        acked.len(),
        killed.elapsed()
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    for e in &errs {
        let f: Vec<&str> = e.splitn(5, ' ').collect();
        let ms: u64 = f[2].parse().unwrap();
        assert!(
            ms < ERROR_BOUND.as_millis() as u64,
            "a put took {ms} ms to fail: {e}"
        );
        assert!(
            f[3] == "unreachable" || f[3] == "backend",
            "untyped error: {e}"
        );
        assert!(
            !e.contains(&weed.var("AWS_SECRET_ACCESS_KEY")),
            "secret in {e}"
        );
    }
    assert!(
        errs.last().unwrap().contains(" unreachable "),
        "a put to a dead endpoint is Unreachable: {errs:?}"
    );

    // restart on the same folder and ports; wait until reads work
    weed.restart();
    eprintln!("weed restarted (pid {})", weed.pid);
    let first = key_of(acked[0]);
    let up = Instant::now();
    loop {
        match ds.get(&first, 1 << 20) {
            Ok(_) => break,
            Err(e) if up.elapsed() > Duration::from_secs(90) => {
                panic!("weed did not come back: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    eprintln!("weed answers after {:?}", up.elapsed());
    // every acknowledged put is there; the failed ones left nothing
    let o = weed
        .command(&exe)
        .args(["--exact", "fault_child", "--test-threads=1", "--nocapture"])
        .env(CHILD, format!("check|{}", root.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(&format!("CHECKED {}", acked.len())),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("checked in a child");
    assert_eq!(ds.list("meta").unwrap().len(), acked.len());
    let o = weed
        .command(Path::new(env!("CARGO_BIN_EXE_daf")))
        .args(["verify", root.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checked"], acked.len(), "{v}");
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
    assert_eq!(v["pending_puts"], serde_json::json!([]), "{v}");
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
    assert_eq!(v["temporary_files"], serde_json::json!([]), "{v}");
}
