//! The harness on threads: visit order, events, failures, sharing, bad input.

mod common;

use std::sync::{Arc, Mutex};

use daf_base::data_id;
use daf_harness::{
    read_events, run_threads, Clipboard, Event, HarnessError, ParallelStage, PipelineConfig,
    RunOptions, RunReport, SerialStage, Services, StageContext, StageRegistry,
};
use serde_json::json;

type Log = Arc<Mutex<Vec<String>>>;
type Seen = Arc<Mutex<Vec<(i32, String, i64, String, String)>>>;

struct Rec(Log);
impl SerialStage for Rec {
    fn preprocess(&mut self, ctx: &StageContext, _: &mut Clipboard) -> daf_harness::Result<()> {
        self.0.lock().unwrap().push(format!("pre{}", ctx.stage_id));
        Ok(())
    }
    fn postprocess(&mut self, ctx: &StageContext, _: &mut Clipboard) -> daf_harness::Result<()> {
        self.0.lock().unwrap().push(format!("post{}", ctx.stage_id));
        Ok(())
    }
}
impl ParallelStage for Rec {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        assert_eq!(ctx.universe_size, 5);
        assert_eq!(ctx.run_id, "r42");
        cb.put(format!("seen{}", ctx.stage_id), ctx.rank);
        self.0.lock().unwrap().push(format!("proc{}", ctx.stage_id));
        Ok(())
    }
}

fn registry_with_rec(log: &Log) -> StageRegistry {
    let mut reg = StageRegistry::with_defaults();
    let l = log.clone();
    reg.register_serial("Rec", move |_| Ok(Box::new(Rec(l.clone()))));
    let l = log.clone();
    reg.register_parallel("Rec", move |_| Ok(Box::new(Rec(l.clone()))));
    reg
}

fn opts() -> RunOptions {
    RunOptions {
        run_id: "r42".into(),
        keep_clipboards: true,
    }
}

/// Events for visits `1..=n`.
fn visits(n: i64) -> impl Iterator<Item = daf_harness::Result<Event>> {
    (1..=n).map(|v| Ok(Event::with_job_identity(data_id! { visit: v })))
}

/// Runs `cfg` on `slices` threads with the built-in stages and default
/// services.
fn run_builtin(
    cfg: &PipelineConfig,
    events: impl IntoIterator<Item = daf_harness::Result<Event>>,
    slices: usize,
) -> daf_harness::Result<RunReport> {
    run_threads(
        cfg,
        &StageRegistry::with_defaults(),
        Default::default(),
        events,
        Some(slices),
        &opts(),
    )
}

#[test]
fn master_pre_then_all_slices_then_post_stage_after_stage() {
    let log: Log = Default::default();
    let reg = registry_with_rec(&log);
    let p = common::policy(json!({
        "appStage": [
            {"name": "a", "serialClass": "Rec", "parallelClass": "Rec", "eventTopic": "trigger"},
            {"name": "b", "serialClass": "Rec", "parallelClass": "Rec"}
        ],
        "nSlices": 4
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events: Vec<_> = (1..=3)
        .map(|v| {
            let mut e = Event::with_job_identity(data_id! { visit: v });
            e.payload.set("visitId", v).unwrap();
            Ok(e)
        })
        .collect();
    let report = run_threads(
        &cfg,
        &reg,
        Arc::new(Services::with_defaults()),
        events,
        None,
        &opts(),
    )
    .unwrap();
    assert_eq!(report.visits.len(), 3);
    assert_eq!(report.n_slices, 4);
    assert_eq!(report.failures(), 0);
    let log = log.lock().unwrap().clone();
    // Per visit: pre1, 4×proc1, post1, pre2, 4×proc2, post2.
    assert_eq!(log.len(), 3 * 12);
    for visit in log.chunks(12) {
        assert_eq!(visit[0], "pre1");
        assert!(visit[1..5].iter().all(|s| s == "proc1"));
        assert_eq!(visit[5], "post1");
        assert_eq!(visit[6], "pre2");
        assert!(visit[7..11].iter().all(|s| s == "proc2"));
        assert_eq!(visit[11], "post2");
    }
    let v2 = &report.visits[1];
    for (r, s) in v2.slices.iter().enumerate() {
        assert_eq!(s.rank, r as i32);
        assert_eq!(s.summary["seen2"], json!(r));
        assert_eq!(s.summary["trigger"]["visitId"], json!(2));
        assert_eq!(s.summary["jobIdentity"]["visit"], json!(2));
    }
    assert_eq!(v2.master.summary["trigger"]["visitId"], json!(2));
}

#[test]
fn failure_flags_one_slice_one_visit_and_feeds_the_failure_stage() {
    let seen: Seen = Default::default();
    struct FailureStage(Seen);
    impl ParallelStage for FailureStage {
        fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
            let s = |k: &str| match cb.get(k) {
                Some(daf_harness::Item::Str(s)) => s.clone(),
                _ => String::new(),
            };
            let n = match cb.get("failedInStageN") {
                Some(daf_harness::Item::Int(i)) => *i,
                _ => 0,
            };
            self.0.lock().unwrap().push((
                ctx.rank,
                s("failedInStage"),
                n,
                s("failureType"),
                s("failureMessage"),
            ));
            Ok(())
        }
    }
    let mut reg = StageRegistry::with_defaults();
    let s2 = seen.clone();
    reg.register_parallel("FailureStage", move |_| {
        Ok(Box::new(FailureStage(s2.clone())))
    });
    let p = common::policy(json!({
        "appStage": [
            {"name": "share", "parallelClass": "daf.harness.ShareParallel"},
            {"name": "boom", "parallelClass": "daf.harness.FailParallel",
             "stagePolicy": {"failVisit": 2, "failRank": 1}},
            {"name": "record", "parallelClass": "daf.harness.RecordParallel"}
        ],
        "failureStage": {"name": "onFailure", "parallelClass": "FailureStage"}
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = visits(3);
    let report = run_threads(
        &cfg,
        &reg,
        Arc::new(Services::with_defaults()),
        events,
        Some(3),
        &opts(),
    )
    .unwrap();
    assert_eq!(report.visits.len(), 3);
    assert_eq!(report.failures(), 1);
    for v in &report.visits {
        for s in &v.slices {
            let failed = v.visit == 1 && s.rank == 1;
            assert_eq!(
                s.failure.is_some(),
                failed,
                "visit {} rank {}",
                v.visit,
                s.rank
            );
            // The later stage ran everywhere except on the failed slice,
            // whose clipboard went on empty.
            assert_eq!(s.summary.get("record").is_some(), !failed);
            if failed {
                assert_eq!(s.summary, json!({}));
                let f = s.failure.as_ref().unwrap();
                assert_eq!(f.stage, "boom");
                assert_eq!(f.stage_n, 2);
                assert_eq!(f.failure_type, "InjectedFailure");
            } else {
                assert_eq!(s.summary["record"]["visit"], json!(v.visit + 1));
            }
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (rank, stage, n, ty, msg) = &seen[0];
    assert_eq!(
        (*rank, stage.as_str(), *n, ty.as_str()),
        (1, "boom", 2, "InjectedFailure")
    );
    assert!(
        msg.contains("injected failure in boom at visit 2 (rank 1)"),
        "{msg}"
    );
}

#[test]
fn a_panicking_stage_is_a_failure_not_a_crash() {
    let p = common::policy(json!({
        "appStage": [
            {"name": "boom", "parallelClass": "daf.harness.FailParallel",
             "stagePolicy": {"failVisit": 1, "failRank": 0, "panic": true}}
        ]
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = visits(2);
    let report = run_builtin(&cfg, events, 2).unwrap();
    assert_eq!(report.failures(), 1);
    let f = report.visits[0].slices[0].failure.as_ref().unwrap();
    assert_eq!(f.failure_type, "Panic");
    assert!(f.message.contains("injected panic"));
}

#[test]
fn master_failure_is_flagged_on_the_master_only() {
    let p = common::policy(json!({
        "appStage": [
            {"name": "m", "serialClass": "daf.harness.FailSerial", "stagePolicy": {"failVisit": 1}},
            {"name": "record", "parallelClass": "daf.harness.RecordParallel"}
        ]
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = visits(2);
    let report = run_builtin(&cfg, events, 2).unwrap();
    assert_eq!(report.failures(), 1);
    assert_eq!(report.visits[0].master.failure.as_ref().unwrap().stage, "m");
    assert!(report.visits[0]
        .slices
        .iter()
        .all(|s| s.summary.get("record").is_some()));
    assert!(report.visits[1].ok());
}

#[test]
fn shared_items_travel_in_a_ring() {
    for (dir, n) in [("clockwise", 4usize), ("counterclockwise", 3)] {
        let p = common::policy(json!({
            "shareDataOn": true,
            "topology": {"type": "ring", "param1": dir},
            "appStage": [
                {"name": "share", "parallelClass": "daf.harness.ShareParallel"},
                {"name": "record", "parallelClass": "daf.harness.RecordParallel", "shareData": true}
            ]
        }));
        let cfg = PipelineConfig::from_policy(&p).unwrap();
        let events = visits(2);
        let report = run_builtin(&cfg, events, n).unwrap();
        for v in &report.visits {
            for s in &v.slices {
                let r = s.rank as usize;
                // Clockwise: each slice sends to rank+1, so receives from rank−1.
                let from = if dir == "clockwise" {
                    (r + n - 1) % n
                } else {
                    (r + 1) % n
                };
                let visit = (v.visit + 1) as i64;
                assert_eq!(
                    s.summary["record"]["received"],
                    json!(visit * 100 + from as i64),
                    "{dir} {r}"
                );
                assert!(s.summary.get(format!("slice-{from}")).is_some());
                let cb = s.clipboard.as_ref().unwrap();
                assert!(!cb.is_shared(&format!("slice-{from}")));
                assert!(cb.is_shared("slice"));
            }
        }
    }
}

#[test]
fn without_share_data_on_nothing_travels() {
    let p = common::policy(json!({
        "appStage": [
            {"name": "share", "parallelClass": "daf.harness.ShareParallel"},
            {"name": "record", "parallelClass": "daf.harness.RecordParallel", "shareData": true}
        ]
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = std::iter::once(Ok(Event::with_job_identity(data_id! { visit: 1 })));
    let report = run_builtin(&cfg, events, 2).unwrap();
    assert_eq!(
        report.visits[0].slices[0].summary["record"]["received"],
        json!(0)
    );
}

#[test]
fn unknown_stage_is_reported_before_any_visit() {
    let p = common::policy(json!({
        "appStage": [{"name": "x", "parallelClass": "lsst.nope.NoSuchStage"}]
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = std::iter::once(Ok(Event::default()));
    let err = run_builtin(&cfg, events, 2).unwrap_err();
    assert!(
        matches!(err, HarnessError::UnknownStage { kind: "parallel", ref name, .. } if name == "lsst.nope.NoSuchStage")
    );
    assert!(err.to_string().contains("InputStageParallel"));
}

#[test]
fn policy_errors_name_the_key() {
    let no_stages = common::policy(json!({"nSlices": 2}));
    assert!(PipelineConfig::from_policy(&no_stages)
        .unwrap_err()
        .to_string()
        .contains("no appStage"));
    let bad_slices = common::policy(json!({"appStage": [{"name": "a"}], "nSlices": 0}));
    assert!(PipelineConfig::from_policy(&bad_slices)
        .unwrap_err()
        .to_string()
        .contains("nSlices"));
    let bad_topo =
        common::policy(json!({"appStage": [{"name": "a"}], "topology": {"type": "focalplane"}}));
    assert!(PipelineConfig::from_policy(&bad_topo)
        .unwrap_err()
        .to_string()
        .contains("focalplane"));
    let file = common::policy(json!({"appStage": [{"name": "a", "stagePolicy": "@policy/x.paf"}]}));
    assert!(PipelineConfig::from_policy(&file)
        .unwrap_err()
        .to_string()
        .contains("policy/x.paf"));
    // `execute:` wrapper and "None" values.
    let wrapped = common::policy(json!({"execute": {"appStage": [
        {"name": "a", "serialClass": "None", "eventTopic": "None", "stagePolicy": "None"}]}}));
    let cfg = PipelineConfig::from_policy(&wrapped).unwrap();
    assert_eq!(cfg.stages[0].serial_class, None);
    assert_eq!(cfg.stages[0].event_topic, None);
    assert!(cfg.stages[0].stage_policy.is_none());
}

#[test]
fn bad_setup_policy_fails_before_the_run() {
    // An IO stage with the pre-2010 capitalised key is refused, as dictionary
    // validation refused it.
    let p = common::policy(
        json!({"appStage": [{"name": "in", "parallelClass": "InputStageParallel",
        "stagePolicy": {"RunMode": "process"}}]}),
    );
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let err = run_builtin(&cfg, std::iter::once(Ok(Event::default())), 1).unwrap_err();
    assert!(
        err.to_string().contains("unknown policy name RunMode"),
        "{err}"
    );
}

#[test]
fn events_from_json_lines() {
    let text = "# visits\n\n{\"jobIdentity\": {\"visit\": 1, \"filter\": \"g\"}, \"inputDatasets\": [{\"type\": \"raw\", \"ids\": {\"visit\": 1}}], \"payload\": {\"visitId\": 1, \"ra\": 1.5, \"tags\": [\"a\", \"b\"]}}\n{\"jobIdentity\": {\"visit\": 2}}\n";
    let evs: Vec<Event> = read_events(text.as_bytes(), "events.jsonl")
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[0].job_identity,
        Some(data_id! { visit: 1, filter: "g" })
    );
    let ds = evs[0].input_datasets.as_ref().unwrap();
    assert_eq!(ds[0].dataset_type, "raw");
    assert_eq!(ds[0].ids, data_id! { visit: 1 });
    assert_eq!(evs[0].payload.get::<i64>("visitId").unwrap(), 1);
    assert_eq!(evs[0].payload.get::<f64>("ra").unwrap(), 1.5);
    assert_eq!(
        evs[0].payload.get_array::<String>("tags").unwrap(),
        vec!["a", "b"]
    );
    assert!(evs[1].input_datasets.is_none());

    let bad = "{\"jobIdentity\": {\"visit\": 1}}\n{not json\n";
    let r: Vec<_> = read_events(bad.as_bytes(), "ev").collect();
    assert!(r[0].is_ok());
    let err = r[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("ev:2"), "{err}");
}

#[test]
fn a_bad_event_ends_the_run_cleanly_with_its_error() {
    let p = common::policy(
        json!({"appStage": [{"name": "a", "parallelClass": "daf.harness.RecordParallel"}]}),
    );
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let text = "{\"jobIdentity\": {\"visit\": 1}}\n{\"jobIdentity\": 5}\n";
    let err = run_builtin(&cfg, read_events(text.as_bytes(), "ev"), 3).unwrap_err();
    assert!(
        matches!(err, HarnessError::Event { ref location, .. } if location == "ev:2"),
        "{err}"
    );
}

#[test]
fn oneloop_runs_a_single_visit() {
    let p = common::policy(json!({"executionMode": "oneloop",
        "appStage": [{"name": "a", "parallelClass": "daf.harness.RecordParallel"}]}));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = visits(5);
    let report = run_builtin(&cfg, events, 2).unwrap();
    assert_eq!(report.visits.len(), 1);
}

#[test]
fn a_hanging_slice_ends_the_thread_run_with_an_error() {
    let p = common::policy(json!({"stepTimeout": 0.5, "appStage": [
        {"name": "hang", "parallelClass": "daf.harness.FailParallel",
         "stagePolicy": {"failVisit": 1, "failRank": 0, "sleep": 3}}]}));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let t0 = std::time::Instant::now();
    let events = visits(2);
    let err = run_builtin(&cfg, events, 2).unwrap_err();
    assert!(matches!(err, HarnessError::SliceLost { .. }), "{err}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_lost_slice_gives_a_partial_report_naming_it() {
    let p = common::policy(json!({"stepTimeout": 0.5, "appStage": [
        {"name": "rec", "parallelClass": "daf.harness.RecordParallel"},
        {"name": "hang", "parallelClass": "daf.harness.FailParallel",
         "stagePolicy": {"failVisit": 3, "failRank": 1, "sleep": 3}}]}));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut services = common::services(daf_base::PropertySet::new());
    let s2 = seen.clone();
    services.on_lost = Some(std::sync::Arc::new(move |r: &daf_harness::RunReport| {
        *s2.lock().unwrap() = Some((r.visits.len(), r.lost.clone()));
    }));
    let err = run_threads(
        &cfg,
        &StageRegistry::with_defaults(),
        std::sync::Arc::new(services),
        visits(5),
        Some(3),
        &opts(),
    )
    .unwrap_err();
    let HarnessError::SliceLost {
        rank,
        partial: Some(report),
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(rank, 1);
    assert_eq!(report.visits.len(), 2, "visits 1 and 2 completed");
    assert_eq!(report.visits[1].id, "visit=2");
    let lost = report.lost.as_ref().unwrap();
    assert_eq!(lost.rank, 1);
    assert_eq!(lost.visit, "visit=3");
    assert_eq!(lost.stage, "hang (#2)");
    assert!(
        lost.message.contains("no answer from slice(s) [1]"),
        "{}",
        lost.message
    );
    assert!(report.exit_event.is_none());
    let (n, hook_lost) = seen.lock().unwrap().clone().expect("the hook ran");
    assert_eq!(n, 2);
    assert_eq!(hook_lost.as_ref(), Some(lost));
}
