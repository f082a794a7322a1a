//! `daf demo`: the main job on embedded defaults. It writes synthetic raw
//! exposures and a bias per CCD as FITS files, runs an input →
//! bias-subtraction → output pipeline on 4 thread slices (one CCD per slice,
//! one visit per event), then reads the outputs back and checks them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daf_base::{data_id, Policy, PropertySet};
use daf_formatters::image::{ExposureF, ImageF, MaskedImageF};
use daf_formatters::{Persistable, Persistence};
use daf_harness::events::json_to_property_set;
use daf_harness::{
    run_threads, Clipboard, Dataset, Event, HarnessError, Item, ParallelStage, PipelineConfig,
    RunOptions, RunReport, Services, StageContext, StageRegistry,
};
use daf_storages::LogicalLocation;

/// What the demo makes.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where the repository goes.
    pub dir: PathBuf,
    /// Number of visits (events).
    pub visits: usize,
    /// Number of CCDs = slices.
    pub ccds: usize,
    /// Image side in pixels.
    pub side: usize,
}

/// Timings and results of a demo run.
#[derive(Debug)]
pub struct DemoSummary {
    /// Raw and bias files written.
    pub inputs_written: usize,
    /// Time to write them.
    pub write_time: Duration,
    /// The pipeline's report.
    pub report: RunReport,
    /// Outputs found and checked.
    pub outputs_checked: usize,
    /// Time to read the outputs back and check them.
    pub check_time: Duration,
}

fn bias_level(x: usize, y: usize) -> f32 {
    1000.0 + (x % 7) as f32 + (y % 5) as f32
}

/// The sky signal of (visit, ccd) at (x, y): what bias subtraction must leave.
pub fn signal(visit: i64, ccd: i64, x: usize, y: usize) -> f32 {
    (100 * visit + ccd) as f32 + ((x + 2 * y) % 11) as f32 * 0.25
}

fn exposure(side: usize, f: impl Fn(usize, usize) -> f32) -> ExposureF {
    let pixels: Vec<f32> = (0..side * side).map(|i| f(i % side, i / side)).collect();
    let im = ImageF::from_vec(side, side, pixels).expect("sized");
    let mi = MaskedImageF::from_parts(im, daf_formatters::image::Mask::new(side, side), None)
        .expect("same sizes");
    ExposureF::new(mi)
}

fn persist(p: &Persistence, obj: &dyn Persistable, path: &Path) -> Result<(), HarnessError> {
    let loc = LogicalLocation::literal(path.display().to_string());
    let mut st = vec![p.persist_storage("FitsStorage", &loc)?];
    p.persist(obj, &mut st, &PropertySet::new())?;
    Ok(())
}

/// Subtracts the bias from the raw exposure; puts `postISR` and the CCD's
/// identity (`ccdIdentity` = job identity + `ccd` = slice rank).
struct BiasSubtract;

impl ParallelStage for BiasSubtract {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        let raw = cb.get_object::<ExposureF>("raw")?;
        let bias = cb.get_object::<ExposureF>("bias")?;
        if raw.width() != bias.width() || raw.height() != bias.height() {
            return Err(HarnessError::stage(
                "SizeMismatch",
                "raw and bias differ in size",
            ));
        }
        let mut out = raw.clone();
        for (o, b) in out
            .masked_image
            .image
            .pixels_mut()
            .iter_mut()
            .zip(bias.masked_image.image.pixels())
        {
            *o -= *b;
        }
        out.metadata.set("BIASCORR", true)?;
        let mut id = cb.get_job_identity("jobIdentity")?.clone();
        id.insert("ccd", i64::from(ctx.rank));
        cb.put("postISR", Item::object(out));
        cb.put("ccdIdentity", id);
        Ok(())
    }
}

/// The demo pipeline: input (raw + bias) → bias subtraction → output.
pub fn pipeline() -> PipelineConfig {
    let v = serde_json::json!({
        "pipelineName": "demo",
        "appStage": [
            {"name": "input", "parallelClass": "InputStageParallel", "stagePolicy": {"parameters": {
                "additionalData": "visit=jobIdentity.visit",
                "inputItems": {
                    "raw": {"type": "ExposureF",
                        "storagePolicy": {"storage": "FitsStorage", "location": "%(input)/raw/v%(visit)/c%02d(sliceId).fits"}},
                    "bias": {"type": "ExposureF",
                        "storagePolicy": {"storage": "FitsStorage", "location": "%(input)/calib/bias-c%02d(sliceId).fits"}}
                }}}},
            {"name": "isr", "parallelClass": "daf.demo.BiasSubtractParallel"},
            {"name": "output", "parallelClass": "OutputStageParallel", "stagePolicy": {
                "inputKeys": {"jobIdentity": "ccdIdentity"},
                "parameters": {"outputItems": {"postISR": {"required": true,
                    "datasetId": {"datasetType": "postISR", "fromJobIdentity": ["visit", "ccd"]},
                    "storagePolicy": {"storage": "FitsStorage",
                        "location": "%(output)/postISR/v%(visit)/c%02d(ccd).fits"}}}}}}
        ]
    });
    let p = Policy::from_property_set(json_to_property_set(&v).expect("object"));
    PipelineConfig::from_policy(&p).expect("valid demo policy")
}

/// Runs the demo.
pub fn run(cfg: &DemoConfig) -> Result<DemoSummary, HarnessError> {
    let repo = cfg.dir.join("repo");
    let out = cfg.dir.join("out");
    let services = Services::with_defaults();
    let persistence = Persistence::new(
        Policy::new(),
        services.formatters.clone(),
        services.storages.clone(),
    );
    // 1. Synthetic inputs.
    let t = Instant::now();
    let mut written = 0;
    for ccd in 0..cfg.ccds {
        let bias = exposure(cfg.side, bias_level);
        persist(
            &persistence,
            &bias,
            &repo.join(format!("calib/bias-c{ccd:02}.fits")),
        )?;
        written += 1;
        for visit in 1..=cfg.visits as i64 {
            let raw = exposure(cfg.side, |x, y| {
                bias_level(x, y) + signal(visit, ccd as i64, x, y)
            });
            persist(
                &persistence,
                &raw,
                &repo.join(format!("raw/v{visit}/c{ccd:02}.fits")),
            )?;
            written += 1;
        }
    }
    let write_time = t.elapsed();

    // 2. The pipeline, one event per visit; slice r handles CCD r.
    let mut services = services;
    services
        .location_map
        .set("input", repo.display().to_string())?;
    services
        .location_map
        .set("output", out.display().to_string())?;
    let mut registry = StageRegistry::with_defaults();
    registry.register_parallel("daf.demo.BiasSubtractParallel", |_| {
        Ok(Box::new(BiasSubtract))
    });
    let ccds = cfg.ccds;
    let events = (1..=cfg.visits as i64).map(move |visit| {
        let mut e = Event::with_job_identity(data_id! { visit: visit });
        e.input_datasets = Some(
            (0..ccds as i64)
                .map(|ccd| Dataset::new("raw", data_id! { visit: visit, ccd: ccd }))
                .collect(),
        );
        Ok(e)
    });
    let report = run_threads(
        &pipeline(),
        &registry,
        Arc::new(services.clone()),
        events,
        Some(cfg.ccds),
        &RunOptions {
            run_id: "demo".into(),
            keep_clipboards: false,
        },
    )?;

    // 3. Query the outputs: every slice listed its dataset; read each back.
    let t = Instant::now();
    let mut checked = 0;
    for v in &report.visits {
        for s in &v.slices {
            let list = s.summary["outputDatasets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for ds in list {
                let visit = ds["ids"]["visit"].as_i64().unwrap_or(-1);
                let ccd = ds["ids"]["ccd"].as_i64().unwrap_or(-1);
                let path = out.join(format!("postISR/v{visit}/c{ccd:02}.fits"));
                let loc = LogicalLocation::literal(path.display().to_string());
                let mut st = vec![persistence.retrieve_storage("FitsStorage", &loc)?];
                let obj: ExposureF = persistence.retrieve_as(&mut st, &PropertySet::new())?;
                let im = &obj.masked_image.image;
                for (x, y) in [
                    (0, 0),
                    (cfg.side - 1, cfg.side / 2),
                    (cfg.side / 3, cfg.side - 1),
                ] {
                    let want = signal(visit, ccd, x, y);
                    if (im.get(x, y) - want).abs() > 1e-3 {
                        return Err(HarnessError::stage(
                            "DemoCheck",
                            format!(
                                "{}: pixel ({x},{y}) is {}, expected {want}",
                                path.display(),
                                im.get(x, y)
                            ),
                        ));
                    }
                }
                checked += 1;
            }
        }
    }
    Ok(DemoSummary {
        inputs_written: written,
        write_time,
        report,
        outputs_checked: checked,
        check_time: t.elapsed(),
    })
}
