//! pex_harness's examples under real `mpirun` (feature `mpi`): the ring,
//! syncslices (focal plane) and slice-leaders topologies, EventStage and the
//! exit event, and a slice that dies, is killed, aborts or hangs — the
//! master prints the partial report naming it and the run ends non-zero.
//!
//! Run without `mpirun` (`cargo test --features mpi --test mpi_pex`), the
//! binary launches `mpirun --allow-run-as-root --oversubscribe -n N` on
//! itself once per scenario and checks each; under `mpirun` it runs the
//! scenario named by its first argument and rank 0 checks the report.

#[path = "../examples/custom_stages.rs"]
mod custom_stages;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daf::harness::launch::{EventSource, TransportChoice};
use daf::harness::{run_with_registry, RunReport, RunRequest};

const UP: &str = "tests/data/harness/upstream";

/// (scenario, MPI ranks)
const SCENARIOS: &[(&str, usize)] = &[
    ("ring", 6),
    ("focalplane", 17),
    ("sliceleaders", 7),
    ("events", 2),
    ("shutdown", 3),
];

/// The master asks for a shutdown at the end of the current stage.
struct StopAtEndOfStage;
impl daf::harness::SerialStage for StopAtEndOfStage {
    fn preprocess(
        &mut self,
        ctx: &daf::harness::StageContext,
        _cb: &mut daf::harness::Clipboard,
    ) -> daf::harness::Result<()> {
        ctx.services
            .shutdown
            .request(daf::harness::ShutdownLevel::EndOfStage);
        Ok(())
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn received(r: &RunReport, slice: usize) -> Vec<i64> {
    let v = &r.visits[0].slices[slice].summary["syncTest"]["from"];
    let mut out: Vec<i64> = match v {
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_i64()).collect(),
        serde_json::Value::Null => Vec::new(),
        x => x.as_i64().into_iter().collect(),
    };
    out.sort();
    out
}

fn run(policy: &str) -> Result<Option<RunReport>, String> {
    let mut req = RunRequest::new(policy);
    req.transport = TransportChoice::Mpi;
    req.events = EventSource::Single;
    req.run_id = "mpi_2390".into();
    run_with_registry(&req, &custom_stages::registry()).map_err(|e| format!("{policy}: {e}"))
}

/// One scenario on this rank; rank 0 checks the report.
fn scenario(name: &str) -> Result<(), String> {
    let report = match name {
        "ring" => run(&format!("{UP}/ring/ring.paf"))?,
        "focalplane" => run(&format!("{UP}/syncslices/syncslices.paf"))?,
        "sliceleaders" => run("tests/data/harness/sliceleaders.paf")?,
        "shutdown" => {
            let mut req = RunRequest::new("tests/data/harness/shutdown_levels.paf");
            req.transport = TransportChoice::Mpi;
            req.events = EventSource::Events(
                (1..=2)
                    .map(|v| {
                        serde_json::from_value(serde_json::json!({"payload": {"visitId": v}}))
                            .unwrap()
                    })
                    .collect(),
            );
            let mut reg = custom_stages::registry();
            reg.register_serial("test.StopAtEndOfStageSerial", |_| {
                Ok(Box::new(StopAtEndOfStage))
            });
            let Some(r) = run_with_registry(&req, &reg).map_err(|e| format!("shutdown: {e}"))?
            else {
                return Ok(());
            };
            check(r.visits.is_empty(), "visit 1 was cut")?;
            let s = r.shutdown.as_ref().ok_or("no shutdown report")?;
            check(s.level == 3, "level 3")?;
            check(s.visit == "visitId=1", "in visit 1")?;
            check(
                s.at == "end of stop (#2)",
                &format!("at the end of stage 2, not {}", s.at),
            )?;
            println!("ok: shutdown on {} MPI slices", r.n_slices);
            return Ok(());
        }
        "events" => {
            let a = run(&format!("{UP}/eventstage/eventstage_pipeline_policy.paf"))?;
            let b = run(&format!("{UP}/exitevent/exitevent_policy.paf"));
            // MPI is initialised once per process: the second run is refused.
            check(
                b.as_ref()
                    .is_err_and(|e| e.contains("MPI was already initialised")),
                "a second MPI run in one process is refused",
            )?;
            a
        }
        other => return Err(format!("unknown scenario {other}")),
    };
    let Some(r) = report else {
        return Ok(()); // a slice rank
    };
    check(r.visits.len() == 1 && r.visits[0].ok(), "one visit, ok")?;
    let n = r.n_slices;
    match name {
        "ring" => {
            for s in 0..n {
                let left = ((s + n - 1) % n) as i64;
                check(received(&r, s) == vec![left], &format!("ring slice {s}"))?;
            }
        }
        "focalplane" => {
            check(n == 16, "16 slices")?;
            for s in 0..16usize {
                let (x, y) = (s / 4, s % 4);
                let mut want = vec![
                    (((x + 3) % 4) * 4 + y) as i64,
                    (((x + 1) % 4) * 4 + y) as i64,
                    (x * 4 + (y + 3) % 4) as i64,
                    (x * 4 + (y + 1) % 4) as i64,
                ];
                want.sort();
                check(received(&r, s) == want, &format!("focal plane slice {s}"))?;
            }
        }
        "sliceleaders" => {
            check(n == 6, "6 slices")?;
            check(received(&r, 0) == vec![1, 2], "leader 0")?;
            check(received(&r, 3) == vec![4, 5], "leader 3")?;
            for s in [1, 2, 4, 5] {
                check(received(&r, s).is_empty(), &format!("follower {s}"))?;
            }
        }
        "events" => {
            let p = r.published();
            check(p.len() == 1, "one published event")?;
            check(p[0].topic == "outgoingEvent", "topic outgoingEvent")?;
            check(
                p[0].payload.get::<f64>("FOVDec").ok() == Some(-27.125),
                "payload FOVDec",
            )?;
        }
        _ => {}
    }
    println!("ok: {name} on {n} MPI slices");
    Ok(())
}

fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe"]);
    c
}

/// Runs `cmd`, killing it after `limit`: (exit code, stdout, stderr, took).
fn output_within(mut cmd: Command, limit: Duration) -> (Option<i32>, String, String, Duration) {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("mpirun starts");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hang: still running after {limit:?}\n{}",
                std::fs::read_to_string(&o).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        std::fs::read_to_string(&o).unwrap_or_default(),
        std::fs::read_to_string(&e).unwrap_or_default(),
        t0.elapsed(),
    )
}

/// `daf run` under mpirun with a slice that is lost at some visit: the
/// master prints the visits that completed and names the slice; exit 4.
fn lost_rank_case(policy: &str, ranks: usize, completed: usize, lost: i64, visit: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("partial.json");
    let mut cmd = mpirun();
    cmd.args(["-n", &ranks.to_string(), env!("CARGO_BIN_EXE_daf"), "run"])
        .arg(format!("tests/data/harness/{policy}"))
        .args(["--events", "tests/data/harness/ring_events.jsonl", "--dump"])
        .arg(&dump);
    let (code, out, err, took) = output_within(cmd, Duration::from_secs(120));
    let all = format!("{out}\n{err}");
    // The master aborts with 4; mpirun may report the lost rank's own
    // status instead (137 for SIGKILL): non-zero either way.
    assert!(
        code.is_some_and(|c| c != 0),
        "{policy}: exit status {code:?}\n{all}"
    );
    assert!(
        out.contains(&format!("{completed} visits on {} slices", ranks - 1)),
        "{policy}\n{all}"
    );
    assert!(
        out.contains(&format!("LOST slice {lost} in visit {visit}")),
        "{policy}\n{all}"
    );
    assert!(
        err.contains(&format!("daf: slice {lost} lost in visit {visit}")),
        "{policy}\n{all}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).expect("partial dump written"))
            .unwrap();
    assert_eq!(j["visits"].as_array().unwrap().len(), completed, "{policy}");
    assert_eq!(j["lost"]["rank"], lost, "{policy}");
    assert_eq!(j["lost"]["visit"], visit, "{policy}");
    println!(
        "ok: {policy}: status {code:?} after {took:.1?}, {completed} visits reported, slice {lost} named"
    );
}

fn main() {
    if daf::harness::mpi_transport::launched_by_mpi() {
        let name = std::env::args().nth(1).unwrap_or_default();
        if let Err(e) = scenario(&name) {
            eprintln!("mpi_pex {name}: FAILED: {e}");
            std::process::exit(1);
        }
        return;
    }
    let have = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !daf::base::testing::available(have, "mpirun (apt-get install openmpi-bin libopenmpi-dev)") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| n.contains(o.as_str()));
    for (name, ranks) in SCENARIOS.iter().filter(|(n, _)| wanted(n)) {
        let mut cmd = mpirun();
        cmd.args(["-n", &ranks.to_string()]).arg(&exe).arg(name);
        let (code, out, err, took) = output_within(cmd, Duration::from_secs(180));
        assert_eq!(code, Some(0), "{name} with {ranks} ranks:\n{out}\n{err}");
        assert!(out.contains(&format!("ok: {name}")), "{out}\n{err}");
        println!("ok: {name} under mpirun -n {ranks} ({took:.1?})");
    }
    if wanted("lost") {
        assert!(Path::new(env!("CARGO_BIN_EXE_daf")).exists());
        lost_rank_case("killed_slice.yaml", 3, 2, 1, "visit=3");
        lost_rank_case("aborting_slice.yaml", 3, 2, 1, "visit=3");
        lost_rank_case("dying_slice.yaml", 3, 1, 1, "visit=2");
        lost_rank_case("hanging_slice.yaml", 3, 0, 0, "visit=1");
    }
}
