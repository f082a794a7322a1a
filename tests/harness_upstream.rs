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
    let e = daf::cli::CliError::new("boom");
    takes(&e);
    assert_eq!(e.to_string(), "boom");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert_eq!(boxed.to_string(), "boom");
}

/// The template binary as README shows it (`cargo test` builds examples).
#[test]
fn template_binary_runs_the_upstream_template_policy() {
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
