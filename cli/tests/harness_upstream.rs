//! pex_harness's own examples and tests, their policy files unchanged
//! (tests/data/harness/upstream, copied from LSST/pex_harness), run through
//! `daf run`'s machinery with the application stages of
//! `examples/custom_stages.rs`.

#[path = "../examples/custom_stages.rs"]
mod custom_stages;

use daf::harness::launch::{EventSource, TransportChoice};
use daf::harness::{run_with_registry, RunReport, RunRequest};

const UP: &str = "tests/data/harness/upstream";

fn run(policy: &str, configure: impl FnOnce(&mut RunRequest)) -> RunReport {
    let mut req = RunRequest::new(format!("{UP}/{policy}"));
    req.transport = TransportChoice::Threads;
    configure(&mut req);
    run_with_registry(&req, &custom_stages::registry())
        .unwrap_or_else(|e| panic!("{policy}: {e}"))
        .expect("threads always report")
}

#[test]
fn template_example_runs_its_sample_stage() {
    let r = run("template/template_policy.paf", |r| r.run_id = "tmpl".into());
    assert_eq!(r.visits.len(), 1, "executionMode oneloop");
    assert_eq!(r.n_slices, 1);
    assert!(r.visits[0].ok());
    let m = &r.visits[0].master.summary["sampleSerial"];
    assert_eq!(m["rank"], -1);
    assert_eq!(m["stageId"], 1);
    assert_eq!(m["universeSize"], 2);
    assert_eq!(m["RunMode"], "process", "from @policy/samplestage.paf");
    let s = &r.visits[0].slices[0].summary["sampleParallel"];
    assert_eq!(s["rank"], 0);
    assert_eq!(s["runId"], "tmpl");
}

#[test]
fn failurestage_example_hands_the_failed_clipboard_to_the_failure_stage() {
    let r = run("failurestage/failure_policy.paf", |_| {});
    let v = &r.visits[0];
    assert!(v.master.failure.is_none());
    let f = v.slices[0].failure.as_ref().expect("the slice fails");
    assert_eq!(f.stage, "SampleFailingStage");
    assert_eq!(f.failure_type, "RuntimeError");
    assert_eq!(
        f.message,
        "SampleFailingStageParallel: Divide by zero occurred in process"
    );
}

#[test]
fn a_registry_is_a_value_two_runs_two_registries() {
    // The built-in registry does not know the sample stages; the example's does.
    let mut req = RunRequest::new(format!("{UP}/template/template_policy.paf"));
    req.transport = TransportChoice::Threads;
    req.events = EventSource::Single;
    let e = run_with_registry(&req, &daf::harness::StageRegistry::with_defaults()).unwrap_err();
    assert!(
        e.to_string().contains(
            "unknown serial stage class \"lsst.pexhexamples.pipeline.SampleStageSerial\""
        ),
        "{e}"
    );
    assert!(run_with_registry(&req, &custom_stages::registry()).is_ok());
}

#[test]
fn cli_error_is_a_std_error() {
    fn takes(_: &dyn std::error::Error) {}
    let e = daf_cli::cli::CliError::new("boom");
    takes(&e);
    assert_eq!(e.to_string(), "boom");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert_eq!(boxed.to_string(), "boom");
}

/// The template binary as README shows it (`cargo test` builds examples).
#[test]
fn template_binary_runs_the_upstream_template_policy() {
    let Some(exe) = custom_stages_exe() else {
        return;
    };
    let o = std::process::Command::new(&exe)
        .args(["run", &format!("{UP}/template/template_policy.paf")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("1 visits on 1 slices"), "{stdout}");
    let o = std::process::Command::new(&exe)
        .args(["run", &format!("{UP}/failurestage/failure_policy.paf")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("slice 0: RuntimeError in SampleFailingStage"),
        "{stdout}"
    );
}

#[test]
fn upstream_policies_load_with_warnings_for_ignored_keys() {
    let cfg = daf::harness::launch::load_pipeline(
        std::path::Path::new(&format!("{UP}/template/template_policy.paf")),
        "run",
    )
    .unwrap();
    assert!(cfg.one_loop);
    assert_eq!(cfg.step_timeout, std::time::Duration::from_secs(300));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.contains("eventBrokerHost is ignored")));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.contains("localLogMode is ignored")));
    // `.policy` stage policies (DC3) load as PAF.
    let cfg = daf::harness::launch::load_pipeline(
        std::path::Path::new(&format!("{UP}/inputoutput/inputoutput_policy.paf")),
        "run",
    )
    .unwrap();
    let sp = cfg.stages[0].stage_policy.as_ref().unwrap();
    assert_eq!(sp.get::<String>("parameters.runMode").unwrap(), "process");
    let cfg = daf::harness::launch::load_pipeline(
        std::path::Path::new(&format!("{UP}/exitevent/exitevent_policy.paf")),
        "run",
    )
    .unwrap();
    assert_eq!(cfg.exit_topic.as_deref(), Some("SampleExitTopic"));
}

#[test]
fn events_carry_payloads_per_topic_plain_items_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two_topics.paf");
    std::fs::write(
        &p,
        "nSlices: 2\nshutdownTopic: \"stopNow\"\n\
         appStage: {\n name: \"a\"\n eventTopic: \"triggerAssociationEvent\"\n}\n\
         appStage: {\n name: \"b\"\n eventTopic: \"triggerMatchMopEvent\"\n}\n",
    )
    .unwrap();
    let evs = dir.path().join("ev.jsonl");
    std::fs::write(
        &evs,
        concat!(
            r#"{"jobIdentity": {"visit": 7}, "topics": {"triggerAssociationEvent": {"visitId": 7, "FOVRa": 273.5}, "triggerMatchMopEvent": {"mops": 1}}, "clipboard": {"root": "tests", "n": 3}}"#,
            "\n",
            r#"{"payload": {"visitId": 8}}"#,
            "\n",
            r#"{"topics": {"stopNow": {"level": 4}}}"#,
            "\n",
            r#"{"payload": {"visitId": 9}}"#,
            "\n"
        ),
    )
    .unwrap();
    let mut req = RunRequest::new(&p);
    req.transport = TransportChoice::Threads;
    req.events = EventSource::File(evs);
    let r = run_with_registry(&req, &custom_stages::registry())
        .unwrap()
        .unwrap();
    assert_eq!(r.visits.len(), 2, "the shutdown event ends the run");
    assert_eq!(r.visits[0].id, "visit=7");
    assert_eq!(r.visits[1].id, "visitId=8");
    let s = &r.visits[0].slices[1].summary;
    assert_eq!(s["triggerAssociationEvent"]["FOVRa"], 273.5);
    assert_eq!(s["triggerMatchMopEvent"]["mops"], 1);
    assert_eq!(s["root"], "tests");
    assert_eq!(s["n"], 3);
    // Without `topics`, every topic gets `payload`.
    let s = &r.visits[1].master.summary;
    assert_eq!(s["triggerAssociationEvent"]["visitId"], 8);
    assert_eq!(s["triggerMatchMopEvent"]["visitId"], 8);
}

/// What each slice's SyncTestStage received: (from, their sliceRank) pairs.
fn received(r: &RunReport, slice: usize) -> Vec<(i64, i64)> {
    let s = &r.visits[0].slices[slice].summary["syncTest"];
    let as_vec = |v: &serde_json::Value| -> Vec<i64> {
        match v {
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_i64().unwrap()).collect(),
            serde_json::Value::Null => Vec::new(),
            x => vec![x.as_i64().unwrap()],
        }
    };
    as_vec(&s["from"])
        .into_iter()
        .zip(as_vec(&s["sliceRanks"]))
        .collect()
}

#[test]
fn ring_example_passes_shared_items_clockwise() {
    // examples/ring (2009): 5 slices in the README; the policy has no nSlices.
    let r = run("ring/ring.paf", |r| r.slices = Some(5));
    assert_eq!(r.n_slices, 5);
    for s in 0..5usize {
        let left = ((s + 4) % 5) as i64;
        assert_eq!(received(&r, s), vec![(left, left)], "slice {s}");
        assert_eq!(r.visits[0].slices[s].summary["syncTest"]["rank"], s as i64);
    }
    assert_eq!(r.visits[0].master.summary["redKey"]["redHerring"], -1);
}

#[test]
fn syncslices_example_runs_on_a_4x4_focal_plane() {
    // examples/syncslices: `stageName` stages (the 2009 form), topology
    // focalplane 4x4, 16 slices as its run.sh says.
    let r = run("syncslices/syncslices.paf", |r| r.slices = Some(16));
    assert!(r.visits[0].ok());
    for s in 0..16usize {
        let (x, y) = (s / 4, s % 4);
        let mut want: Vec<(i64, i64)> = [
            ((x + 3) % 4) * 4 + y,
            ((x + 1) % 4) * 4 + y,
            x * 4 + (y + 3) % 4,
            x * 4 + (y + 1) % 4,
        ]
        .into_iter()
        .map(|n| (n as i64, n as i64))
        .collect();
        want.sort();
        let mut got = received(&r, s);
        got.sort();
        assert_eq!(got, want, "slice {s}");
    }
    // A focal plane that does not fit the slices is a clear error.
    let mut req = RunRequest::new(format!("{UP}/syncslices/syncslices.paf"));
    req.transport = TransportChoice::Threads;
    req.slices = Some(5);
    let e = run_with_registry(&req, &custom_stages::registry()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy: topology focalplane 4x4 needs 16 slices, not 5"
    );
}

#[test]
fn sliceleaders_topology_gathers_each_group_on_its_leader() {
    let mut req = RunRequest::new("tests/data/harness/sliceleaders.paf");
    req.transport = TransportChoice::Threads;
    let r = run_with_registry(&req, &custom_stages::registry())
        .unwrap()
        .unwrap();
    assert_eq!(r.n_slices, 6);
    assert_eq!(received(&r, 0), vec![(1, 1), (2, 2)]);
    assert_eq!(received(&r, 3), vec![(4, 4), (5, 5)]);
    for s in [1, 2, 4, 5] {
        assert_eq!(received(&r, s), vec![], "slice {s} only sends");
    }
    // 7 slices: the last group (6) has no followers.
    req.slices = Some(7);
    let r = run_with_registry(&req, &custom_stages::registry())
        .unwrap()
        .unwrap();
    assert_eq!(received(&r, 6), vec![]);
    assert_eq!(received(&r, 3), vec![(4, 4), (5, 5)]);
}

#[test]
fn eventstage_example_publishes_the_clipboard_item() {
    let r = run("eventstage/eventstage_pipeline_policy.paf", |_| {});
    let p = r.published();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].topic, "outgoingEvent");
    assert_eq!(p[0].stage, "EventStage");
    assert_eq!(p[0].rank, -1);
    assert_eq!(p[0].visit, "#0");
    assert_eq!(p[0].payload.get::<i64>("visitId").unwrap(), 1);
    assert_eq!(p[0].payload.get::<f64>("FOVDec").unwrap(), -27.125);
    // As an event line another pipeline reads.
    let line = p[0].to_event_line();
    let ev: daf::harness::Event = serde_json::from_value(line).unwrap();
    assert_eq!(
        ev.payload_for("outgoingEvent").get::<f64>("FOVRa").unwrap(),
        273.48066298343
    );
    assert!(r.exit_event.is_none(), "no exitTopic in this policy");
}

#[test]
fn exitevent_example_publishes_exiting_run_id_at_the_end() {
    let r = run("exitevent/exitevent_policy.paf", |r| {
        r.run_id = "test_2390".into()
    });
    let e = r.exit_event.as_ref().expect("exitTopic is set");
    assert_eq!(e.topic, "SampleExitTopic");
    assert_eq!(
        e.payload.get::<String>("message").unwrap(),
        "exiting_test_2390"
    );
    assert_eq!(r.published().len(), 1);
}

#[test]
fn shutdowntest_example_stops_on_its_shutdown_topic() {
    let dir = tempfile::tempdir().unwrap();
    let evs = dir.path().join("ev.jsonl");
    std::fs::write(
        &evs,
        "{\"payload\": {\"visitId\": 1}}\n{\"topics\": {\"triggerShutdownA\": {\"level\": 4}}}\n{\"payload\": {\"visitId\": 2}}\n",
    )
    .unwrap();
    // executionMode oneloop in the policy: one visit, whatever follows.
    let r = run("shutdowntest/shutdowntest_policy.paf", |r| {
        r.events = EventSource::File(evs.clone())
    });
    assert_eq!(r.visits.len(), 1);
    assert_eq!(r.visits[0].slices[0].summary["shutdownTestLoops"], 3);
    // Without oneloop the shutdown event ends the run after visit 1.
    let p = dir.path().join("loop.paf");
    let text = std::fs::read_to_string(format!("{UP}/shutdowntest/shutdowntest_policy.paf"))
        .unwrap()
        .replace("executionMode: \"oneloop\"", "")
        .replace("@policy/", &format!("@{UP}/shutdowntest/policy/"));
    std::fs::write(
        &p,
        text.replace(
            &format!("@{UP}"),
            &format!("@{}/{UP}", std::env::current_dir().unwrap().display()),
        ),
    )
    .unwrap();
    let mut req = RunRequest::new(&p);
    req.transport = TransportChoice::Threads;
    req.events = EventSource::File(evs);
    let r = run_with_registry(&req, &custom_stages::registry())
        .unwrap()
        .unwrap();
    assert_eq!(r.visits.len(), 1, "the shutdown event ends the run");
    assert_eq!(r.visits[0].id, "visitId=1");
}

/// The example binary `examples/custom_stages.rs` (`daf` plus the sample
/// stages), built by `cargo test`.
fn custom_stages_exe() -> Option<std::path::PathBuf> {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_daf"))
        .parent()
        .unwrap()
        .join("examples/custom_stages");
    daf::base::testing::available(
        exe.exists(),
        "target/debug/examples/custom_stages (cargo build --examples)",
    )
    .then_some(exe)
}

#[test]
fn inputoutput_example_reads_its_library_version_5_archive() {
    let Some(exe) = custom_stages_exe() else {
        return;
    };
    // As the README says: run in the example's directory (the location
    // `inputImage.%(visitId).%(sliceId)` is relative), with the event
    // triggerIpdpEventTransmit.py publishes.
    let dir = tempfile::tempdir().unwrap();
    let evs = dir.path().join("ev.jsonl");
    std::fs::write(
        &evs,
        "{\"topics\": {\"triggerIpdpEvent\": {\"visitid\": \"fov391\"}}}\n",
    )
    .unwrap();
    let dump = dir.path().join("dump.json");
    let o = std::process::Command::new(&exe)
        .current_dir(format!("{UP}/inputoutput"))
        .arg("run")
        .arg("inputoutput_policy.paf")
        .args(["--run-id", "test_2390", "-v"])
        .arg("--events")
        .arg(&evs)
        .arg("--dump")
        .arg(&dump)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 visits on 1 slices"), "{stdout}");
    // The IPDP stage's log line, as the upstream stage prints it.
    assert!(
        stderr.contains("inputImage property foo3 This is a Fits string"),
        "{stderr}"
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    let text = d.to_string();
    assert!(
        text.contains(r#""ipdp":{"foo3":"This is a Fits string"}"#),
        "{text}"
    );
}

#[test]
fn association_example_gets_two_topics_per_visit() {
    let dir = tempfile::tempdir().unwrap();
    let evs = dir.path().join("ev.jsonl");
    std::fs::write(
        &evs,
        concat!(
            r#"{"topics": {"triggerAssociationEvent": {"visitId": 1, "FOVRa": 273.48066298343, "FOVDec": -27.125}, "triggerMatchMopEvent": {"visitId": 1}}}"#,
            "\n",
            r#"{"topics": {"triggerShutdownA": {"level": 4}}}"#,
            "\n"
        ),
    )
    .unwrap();
    let r = run("association/association_policy.paf", |r| {
        r.events = EventSource::File(evs.clone())
    });
    assert_eq!(r.visits.len(), 1);
    let m = &r.visits[0].master.summary;
    assert_eq!(m["loadStage"]["triggerAssociationEvent"]["FOVDec"], -27.125);
    assert_eq!(m["loadStage"]["triggerAssociationEvent"]["visitId"], 1.0);
    // MatchMop runs after its own topic arrived, and still sees the first.
    let s = &r.visits[0].slices[0].summary;
    assert_eq!(s["matchMopStage"]["triggerMatchMopEvent"]["visitId"], 1.0);
    assert_eq!(
        s["matchMopStage"]["triggerAssociationEvent"]["FOVRa"],
        273.48066298343
    );
    assert!(s["loadStage"].get("triggerMatchMopEvent").is_none());
}

/// The README's example commands, typed as written (from the repository root).
#[test]
fn readme_topology_and_events_commands_run_as_written() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_daf"))
        .parent()
        .unwrap()
        .join("examples/custom_stages");
    if !daf::base::testing::available(
        exe.exists(),
        "target/debug/examples/custom_stages (cargo build --examples)",
    ) {
        return;
    }
    let readme = std::fs::read_to_string("../README.md").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = std::env::current_dir().unwrap();
    for line in readme.lines().filter(|l| l.starts_with("printf ")) {
        // Files the commands below read (a shell line, run as written).
        let o = std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}");
    }
    for line in readme
        .lines()
        .filter(|l| l.starts_with("cargo run --example custom_stages -- run "))
    {
        let args: Vec<&str> = line
            .trim_start_matches("cargo run --example custom_stages -- ")
            .split_whitespace()
            .collect();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if a.starts_with("tests/") {
                    root.join(a).display().to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let o = std::process::Command::new(&exe)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{line}\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        if line.contains("--events shutdown_events.jsonl") {
            // oneloop: visit 1 only, the shutdown (level 4) read during it.
            assert!(stdout.contains("1 visits on 1 slices"), "{stdout}");
        }
        if line.contains("syncslices") {
            assert!(stdout.contains("1 visits on 16 slices"), "{stdout}");
        }
        if line.contains("--publish published.jsonl") {
            assert!(
                stdout.contains("published 1 events (outgoingEvent)"),
                "{stdout}"
            );
            let text = std::fs::read_to_string(dir.path().join("published.jsonl")).unwrap();
            let ev: daf::harness::Event = serde_json::from_str(text.trim()).unwrap();
            assert_eq!(
                ev.payload_for("outgoingEvent")
                    .get::<i64>("visitId")
                    .unwrap(),
                1
            );
        }
    }
    assert!(readme.contains("syncslices.paf --slices 16"));
    assert!(readme.contains("--publish published.jsonl"));
    assert!(readme.contains("--events shutdown_events.jsonl"));
}

#[test]
fn run_help_documents_the_pipeline_keys_and_exit_statuses() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for word in [
        "exitTopic",
        "shutdownTopic",
        "sliceleaders",
        "focalplane",
        "stepTimeout",
        "default 300",
        "EventStage",
        "--publish",
        "4 a slice was lost",
        "5 stopped by a shutdown at level 1",
        "3 at the end of the stage",
    ] {
        assert!(
            help.contains(word),
            "{word} missing from daf run --help:\n{help}"
        );
    }
}

#[test]
fn daf_run_reports_where_a_shutdown_stopped_and_exits_5_at_level_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.paf");
    std::fs::write(
        &p,
        "nSlices: 2\nshutdownTopic: \"stopIt\"\nappStage: {\n name: \"n\"\n serialClass: \"NoOpSerial\"\n parallelClass: \"NoOpParallel\"\n}\n",
    )
    .unwrap();
    let run = |events: &str| {
        let e = dir.path().join("ev.jsonl");
        std::fs::write(&e, events).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
            .arg("run")
            .arg(&p)
            .arg("--events")
            .arg(&e)
            .output()
            .unwrap()
    };
    // Level 4 before any visit: nothing runs, exit 0.
    let o = run("{\"topics\": {\"stopIt\": {\"level\": 4}}}\n{\"payload\": {\"visitId\": 1}}\n");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 visits on 2 slices"), "{stdout}");
    assert!(
        stdout.contains("shutdown at level 4 (stop at the end of the visit) before any visit"),
        "{stdout}"
    );
    // Level 1 after visit 1's event: visit 2 never runs, exit status 5.
    let o = run(concat!(
        "{\"payload\": {\"visitId\": 1}}\n",
        "{\"topics\": {\"stopIt\": {\"level\": 1}}}\n",
        "{\"payload\": {\"visitId\": 2}}\n"
    ));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{stdout}");
    assert!(
        stdout.contains("shutdown at level 1 (stop now)"),
        "{stdout}"
    );
    assert!(!stdout.contains("visitId=2"), "{stdout}");
}

#[test]
fn symlink_example_links_the_repository_into_the_run_directory() {
    // As upstream: run where the links go (dir.input is `.` under the run
    // directory `%(runid)s`); the sources need not exist.
    let dir = tempfile::tempdir().unwrap();
    let policy = std::env::current_dir()
        .unwrap()
        .join(format!("{UP}/symlink/symlink_pipeline_policy.paf"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
        .current_dir(dir.path())
        .arg("run")
        .arg(&policy)
        .args(["--run-id", "test_2390"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("1 visits on 1 slices"), "{stdout}");
    for name in ["raw", "calib", "template"] {
        let link = dir.path().join("test_2390").join(name);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::path::Path::new("/lsst/images/repository").join(name)
        );
    }
}
