//! `daf bench harness`: the harness's per-stage overhead and the IO stages'
//! throughput.
//!
//! * Per-stage overhead: a pipeline of empty stages (NoOp serial and parallel
//!   parts) on 4 slices, run for many visits; the time per (visit, stage)
//!   step covers the master's pre/post, the step broadcast, 4 slices'
//!   process and the answers. Target: at most 200 µs, reported as a ratio
//!   against that budget. Over MPI the same pipeline runs under `mpirun -n 5`
//!   (`daf bench harness --mpi-only`, from `.ci/checks/40-mpi.sh`).
//! * IO throughput: 1, 2 and 4 slices write (OutputStage, FitsStorage) and
//!   read back (InputStage) one float image each per visit; the reference is
//!   the same bytes written and read with `std::fs` by as many threads in the
//!   same run (the file-system limit).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daf_base::{data_id, Policy};
use daf_formatters::image::ImageF;
use daf_harness::events::json_to_property_set;
use daf_harness::{
    run_threads, Clipboard, Event, Item, ParallelStage, PipelineConfig, RunOptions, Services,
    StageContext, StageRegistry,
};

use super::{mib_per_s, Row, Target};

/// The per-stage budget of the issue.
pub const STAGE_BUDGET_US: f64 = 200.0;

fn policy(v: serde_json::Value) -> Policy {
    Policy::from_property_set(json_to_property_set(&v).expect("a JSON object"))
}

/// A pipeline of `stages` empty stages.
pub fn empty_pipeline(stages: usize) -> PipelineConfig {
    let list: Vec<_> = (0..stages)
        .map(|i| serde_json::json!({"name": format!("empty{i}"), "serialClass": "NoOpSerial", "parallelClass": "NoOpParallel"}))
        .collect();
    PipelineConfig::from_policy(&policy(serde_json::json!({ "appStage": list })))
        .expect("valid policy")
}

fn visit_events(visits: usize) -> impl Iterator<Item = daf_harness::Result<Event>> {
    (0..visits).map(|v| Ok(Event::with_job_identity(data_id! { visit: v as i64 })))
}

/// Time per (visit, stage) step of empty stages on `slices` thread slices.
pub fn stage_overhead_threads(slices: usize, stages: usize, visits: usize) -> Duration {
    let cfg = empty_pipeline(stages);
    let reg = StageRegistry::with_defaults();
    let services = Arc::new(Services::with_defaults());
    let t = Instant::now();
    let report = run_threads(
        &cfg,
        &reg,
        services,
        visit_events(visits),
        Some(slices),
        &RunOptions::default(),
    )
    .expect("empty pipeline runs");
    assert_eq!(report.visits.len(), visits);
    t.elapsed() / (stages * visits) as u32
}

/// The per-stage overhead row (threads, 4 slices).
pub fn stage_overhead_row(quick: bool) -> Row {
    let (stages, visits) = if quick { (10, 50) } else { (20, 250) };
    let runs: Vec<Duration> = (0..3)
        .map(|_| stage_overhead_threads(4, stages, visits))
        .collect();
    let best = runs.iter().min().copied().unwrap_or_default();
    Row {
        name: "per-stage overhead, 4 thread slices".into(),
        value: best.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(STAGE_BUDGET_US),
        reference_name: "budget (issue 8)".into(),
        target: Target::AtMost(1.0),
    }
}

/// Puts the same image on every clipboard (a stand-in for a processing stage).
struct MakeImage(Arc<ImageF>);
impl ParallelStage for MakeImage {
    fn process(&mut self, _: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        cb.put("image", Item::Object(self.0.clone()));
        Ok(())
    }
}

/// Writes and reads back one `side`×`side` float image per slice per visit
/// through the IO stages; returns (stage MiB/s, std::fs MiB/s).
pub fn io_throughput(slices: usize, side: usize, visits: usize, dir: &Path) -> (f64, f64) {
    let pixels: Vec<f32> = (0..side * side).map(|i| (i % 4099) as f32 * 0.5).collect();
    let image = Arc::new(ImageF::from_vec(side, side, pixels).expect("sized"));
    let mut reg = StageRegistry::with_defaults();
    let img = image.clone();
    reg.register_parallel("bench.MakeImage", move |_| {
        Ok(Box::new(MakeImage(img.clone())))
    });
    let loc = "%(output)/v%(visit)-s%(sliceId).fits";
    let cfg = PipelineConfig::from_policy(&policy(serde_json::json!({"appStage": [
        {"name": "make", "parallelClass": "bench.MakeImage"},
        {"name": "out", "parallelClass": "OutputStageParallel", "stagePolicy": {"parameters": {
            "additionalData": "visit=jobIdentity.visit",
            "outputItems": {"image": {"required": true,
                "storagePolicy": {"storage": "FitsStorage", "location": loc}}}}}},
        {"name": "in", "parallelClass": "InputStageParallel", "stagePolicy": {"parameters": {
            "additionalData": "visit=jobIdentity.visit",
            "inputItems": {"back": {"type": "ImageF",
                "storagePolicy": {"storage": "FitsStorage", "location": loc}}}}}}
    ]})))
    .expect("valid policy");
    let out = dir.join(format!("io{slices}"));
    std::fs::create_dir_all(&out).expect("bench folder");
    let mut services = Services::with_defaults();
    services
        .location_map
        .set("output", out.display().to_string())
        .expect("name");
    let bytes = (side * side * 4 * slices * visits * 2) as u64;
    let t = Instant::now();
    let report = run_threads(
        &cfg,
        &reg,
        Arc::new(services),
        visit_events(visits),
        Some(slices),
        &RunOptions::default(),
    )
    .expect("IO pipeline runs");
    let stage = mib_per_s(bytes, t.elapsed());
    assert_eq!(
        report.failures(),
        0,
        "IO bench pipeline failed: {:?}",
        report.visits[0].slices[0].failure
    );

    // Reference: the same bytes through std::fs on as many threads.
    let raw: Vec<u8> = image
        .pixels()
        .iter()
        .flat_map(|p| p.to_be_bytes())
        .collect();
    let raw = Arc::new(raw);
    let t = Instant::now();
    std::thread::scope(|s| {
        for r in 0..slices {
            let raw = raw.clone();
            let out = out.clone();
            s.spawn(move || {
                for v in 0..visits {
                    let p = out.join(format!("ref-v{v}-s{r}.bin"));
                    std::fs::write(&p, raw.as_slice()).expect("write");
                    let back = std::fs::read(&p).expect("read");
                    assert_eq!(back.len(), raw.len());
                }
            });
        }
    });
    let reference = mib_per_s(bytes, t.elapsed());
    (stage, reference)
}

/// Every harness row (threads).
pub fn rows(quick: bool) -> Vec<Row> {
    let mut rows = vec![stage_overhead_row(quick)];
    let dir = tempfile::tempdir().expect("temporary folder");
    let (side, visits) = if quick { (512, 4) } else { (1024, 8) };
    for slices in [1, 2, 4] {
        let (stage, reference) = io_throughput(slices, side, visits, dir.path());
        rows.push(Row {
            name: format!("IO stages write+read, {slices} slice(s), {side}² f32"),
            value: stage,
            unit: "MiB/s".into(),
            reference: Some(reference),
            reference_name: "std::fs write+read".into(),
            target: Target::None,
        });
    }
    rows
}

/// Per-stage overhead over MPI: call once per process under `mpirun`; rank 0
/// gets the row, other ranks `None`.
#[cfg(feature = "mpi")]
pub fn mpi_overhead_row(stages: usize, visits: usize) -> Option<Row> {
    let cfg = empty_pipeline(stages);
    let reg = StageRegistry::with_defaults();
    let t = Instant::now();
    let report = daf_harness::mpi_transport::run_mpi(
        &cfg,
        &reg,
        Arc::new(Services::with_defaults()),
        visit_events(visits),
        &RunOptions::default(),
    )
    .expect("empty pipeline runs")?;
    let per = t.elapsed() / (stages * visits) as u32;
    Some(Row {
        name: format!("per-stage overhead, {} MPI slices", report.n_slices),
        value: per.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(STAGE_BUDGET_US),
        reference_name: "budget (issue 8)".into(),
        target: Target::AtMost(1.0),
    })
}
