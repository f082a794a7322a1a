//! Shutdown levels acting mid-visit (pex_harness's `ShutdownThread`):
//! 1 stop now, 2 at the next synchronisation point, 3 at the end of the
//! stage, 4 at the end of the visit. Requests come from a stage (at a known
//! point, so the stopping point is exact) and from events on the
//! `shutdownTopic` read while a visit runs.

use std::path::Path;
use std::time::{Duration, Instant};

use daf_harness::launch::{EventSource, TransportChoice};
use daf_harness::{
    run_with_registry, Clipboard, ParallelStage, Result, RunReport, RunRequest, SerialStage,
    ShutdownLevel, StageContext, StageRegistry,
};

/// Puts `<key>` (master: `<key>Pre`/`<key>Post`, slice: `<key>`) on the clipboard.
struct Mark(&'static str);
impl SerialStage for Mark {
    fn preprocess(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        cb.put(format!("{}Pre", self.0), 1i64);
        Ok(())
    }
    fn postprocess(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        cb.put(format!("{}Post", self.0), 1i64);
        Ok(())
    }
}
impl ParallelStage for Mark {
    fn process(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        cb.put(self.0, 1i64);
        Ok(())
    }
}

/// The master asks for a shutdown at `level` in its preprocess.
struct Request(ShutdownLevel);
impl SerialStage for Request {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        cb.put("requested", 1i64);
        ctx.services.shutdown.request(self.0);
        Ok(())
    }
}
impl ParallelStage for Request {}

/// A slice asks for a level-1 shutdown, then keeps working for 5 s.
struct SlowStopNow;
impl SerialStage for SlowStopNow {}
impl ParallelStage for SlowStopNow {
    fn process(&mut self, ctx: &StageContext, _cb: &mut Clipboard) -> Result<()> {
        ctx.services.shutdown.request(ShutdownLevel::Now);
        std::thread::sleep(Duration::from_secs(5));
        Ok(())
    }
}

/// A slice that takes 400 ms (time for a shutdown event to arrive).
struct Slow;
impl SerialStage for Slow {}
impl ParallelStage for Slow {
    fn process(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        std::thread::sleep(Duration::from_millis(400));
        cb.put("slow", 1i64);
        Ok(())
    }
}

fn registry() -> StageRegistry {
    let mut r = StageRegistry::with_defaults();
    for key in ["a", "b", "c"] {
        r.register_serial(key, move |_| Ok(Box::new(Mark(key))));
        r.register_parallel(key, move |_| Ok(Box::new(Mark(key))));
    }
    for l in 1..=4 {
        let level = ShutdownLevel::from_int(l).unwrap();
        r.register_serial(&format!("req{l}"), move |_| Ok(Box::new(Request(level))));
        r.register_parallel(&format!("req{l}"), move |_| Ok(Box::new(Request(level))));
    }
    r.register_serial("slowStopNow", |_| Ok(Box::new(SlowStopNow)));
    r.register_parallel("slowStopNow", |_| Ok(Box::new(SlowStopNow)));
    r.register_serial("slow", |_| Ok(Box::new(Slow)));
    r.register_parallel("slow", |_| Ok(Box::new(Slow)));
    r
}

/// A pipeline of stages (class = name) with shutdownTopic `stopIt`, run
/// on 2 thread slices over `events` (JSON lines).
fn run(dir: &Path, stages: &[&str], events: &str) -> RunReport {
    let mut paf = String::from("nSlices: 2\nshutdownTopic: \"stopIt\"\n");
    for s in stages {
        paf += &format!(
            "appStage: {{\n name: \"{s}\"\n serialClass: \"{s}\"\n parallelClass: \"{s}\"\n}}\n"
        );
    }
    let p = dir.join("pipeline.paf");
    std::fs::write(&p, paf).unwrap();
    let e = dir.join("events.jsonl");
    std::fs::write(&e, events).unwrap();
    let mut req = RunRequest::new(&p);
    req.transport = TransportChoice::Threads;
    req.events = EventSource::File(e);
    run_with_registry(&req, &registry()).unwrap().unwrap()
}

const TWO_VISITS: &str = "{\"payload\": {\"visitId\": 1}}\n{\"payload\": {\"visitId\": 2}}\n";

#[test]
fn level_4_finishes_the_visit() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["a", "req4", "c"], TWO_VISITS);
    assert_eq!(r.visits.len(), 1);
    let v = &r.visits[0];
    assert_eq!(v.id, "visitId=1");
    assert_eq!(v.master.summary["cPost"], 1, "the last stage ran");
    assert_eq!(v.slices[1].summary["c"], 1);
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!(
        (s.level, s.visit.as_str(), s.at.as_str()),
        (4, "visitId=1", "end of visit")
    );
}

#[test]
fn level_3_stops_at_the_end_of_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["a", "req3", "c"], TWO_VISITS);
    assert!(r.visits.is_empty(), "the visit was cut");
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!(
        (s.level, s.visit.as_str(), s.at.as_str()),
        (3, "visitId=1", "end of req3 (#2)")
    );
}

#[test]
fn level_2_stops_at_the_next_synchronisation_point() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["a", "req2", "c"], TWO_VISITS);
    assert!(r.visits.is_empty());
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!(
        (s.level, s.at.as_str()),
        (2, "after preprocess of req2 (#2)"),
        "the slices never processed req2"
    );
}

#[test]
fn level_1_does_not_wait_for_working_slices() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let r = run(dir.path(), &["a", "slowStopNow", "c"], TWO_VISITS);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "returned after {:?}",
        t0.elapsed()
    );
    assert!(r.visits.is_empty());
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!((s.level, s.at.as_str()), (1, "during slowStopNow (#2)"));
    assert!(r.exit_event.is_none());
    // Level 1 from the master's own stage stops at once too.
    let r = run(dir.path(), &["req1", "c"], TWO_VISITS);
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!(
        (s.level, s.at.as_str()),
        (1, "after preprocess of req1 (#1)")
    );
}

#[test]
fn a_shutdown_event_read_during_a_visit_stops_it_at_its_level() {
    let dir = tempfile::tempdir().unwrap();
    // The event after visit 1's arrives while visit 1's slow stage runs.
    let events = concat!(
        "{\"payload\": {\"visitId\": 1}}\n",
        "{\"topics\": {\"stopIt\": {\"level\": 3}}}\n",
        "{\"payload\": {\"visitId\": 2}}\n"
    );
    let r = run(dir.path(), &["slow", "c"], events);
    assert!(r.visits.is_empty());
    let s = r.shutdown.as_ref().unwrap();
    assert_eq!(
        (s.level, s.visit.as_str(), s.at.as_str()),
        (3, "visitId=1", "end of slow (#1)")
    );
    // Level 4 (and no level: 4, with a warning) lets visit 1 finish; visit 2
    // never starts.
    for stop in [r#"{"level": 4}"#, r#"{}"#, r#"{"level": 9}"#] {
        let events = format!(
            "{{\"payload\": {{\"visitId\": 1}}}}\n{{\"topics\": {{\"stopIt\": {stop}}}}}\n{{\"payload\": {{\"visitId\": 2}}}}\n"
        );
        let r = run(dir.path(), &["slow", "c"], &events);
        assert_eq!(r.visits.len(), 1, "{stop}");
        assert_eq!(r.visits[0].slices[0].summary["c"], 1);
        assert_eq!(r.shutdown.as_ref().unwrap().level, 4);
    }
    // A shutdown event first: no visit runs.
    let r = run(
        dir.path(),
        &["a"],
        "{\"topics\": {\"stopIt\": {\"level\": 2}}}\n{\"payload\": {\"visitId\": 1}}\n",
    );
    assert!(r.visits.is_empty());
    assert_eq!(r.shutdown.as_ref().unwrap().at, "start of visit");
}

#[test]
fn the_most_urgent_request_wins() {
    let s = daf_harness::ShutdownSignal::new();
    assert_eq!(s.level(), None);
    s.request(ShutdownLevel::EndOfVisit);
    s.request(ShutdownLevel::EndOfStage);
    s.request(ShutdownLevel::EndOfVisit);
    assert_eq!(s.level(), Some(ShutdownLevel::EndOfStage));
    assert_eq!(ShutdownLevel::from_int(0), None);
    assert_eq!(
        ShutdownLevel::SyncPoint.to_string(),
        "level 2 (stop at the next synchronisation point)"
    );
}
