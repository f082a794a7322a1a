//! `daf demo`: the main job on embedded defaults. It creates a repository
//! (SimpleMapper, SQLite registry), writes synthetic raw exposures and a bias
//! per CCD as FITS files and ingests them, runs an input → bias-subtraction →
//! output pipeline through the butler on 4 thread slices (one CCD per slice,
//! one visit per event; provenance recorded), then queries the outputs in the
//! registry, reads each back and checks its pixels.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daf_base::{data_id, DataId, Policy, PropertySet};
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
    /// Raw and bias files written and ingested.
    pub inputs_written: usize,
    /// Time to write them.
    pub write_time: Duration,
    /// Time to create the repository and ingest them.
    pub ingest_time: Duration,
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
        let _ = ctx;
        cb.put("postISR", Item::object(out));
        Ok(())
    }
}

/// Puts the slice's CCD identity: `ccdIdentity` = job identity + `ccd` =
/// slice rank (the IO stages read their data ids from it).
struct SelectCcd;

impl ParallelStage for SelectCcd {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        let mut id = cb.get_job_identity("jobIdentity")?.clone();
        id.insert("ccd", i64::from(ctx.rank));
        cb.put("ccdIdentity", id);
        Ok(())
    }
}

/// The demo pipeline: CCD selection → input (raw + bias, butler) → bias
/// subtraction → output (butler, with provenance).
pub fn pipeline() -> PipelineConfig {
    let butler =
        serde_json::json!({"mapperName": "SimpleMapper", "mapperPolicy": {"root": "%(repo)"}});
    let v = serde_json::json!({
        "pipelineName": "demo",
        "appStage": [
            {"name": "ccd", "parallelClass": "daf.demo.SelectCcdParallel"},
            {"name": "input", "parallelClass": "InputStageParallel", "stagePolicy": {
                "inputKeys": {"jobIdentity": "ccdIdentity"},
                "parameters": {"butler": butler, "inputItems": {
                    "raw": {"datasetType": "raw", "datasetId": {"fromJobIdentity": ["visit", "ccd"]}},
                    "bias": {"datasetType": "bias", "datasetId": {"fromJobIdentity": ["ccd"]}}
                }}}},
            {"name": "isr", "parallelClass": "daf.demo.BiasSubtractParallel"},
            {"name": "output", "parallelClass": "OutputStageParallel", "stagePolicy": {
                "inputKeys": {"jobIdentity": "ccdIdentity"},
                "parameters": {"butler": butler, "outputItems": {"postISR": {"required": true,
                    "datasetId": {"datasetType": "postISR", "fromJobIdentity": ["visit", "ccd"]}}}}}}
        ]
    });
    let p = Policy::from_property_set(json_to_property_set(&v).expect("object"));
    PipelineConfig::from_policy(&p).expect("valid demo policy")
}

fn butler_err(e: impl Into<daf_base::BoxError>) -> HarnessError {
    let e = e.into();
    HarnessError::Butler {
        item: "demo".into(),
        message: e.to_string(),
        source: Some(e),
    }
}

/// Runs the demo.
pub fn run(cfg: &DemoConfig) -> Result<DemoSummary, HarnessError> {
    use daf_butler::ingest::{ingest, DataIdSource, IngestOptions, Transfer};
    use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
    use daf_butler::{Butler, GetOptions, Repository};

    let repo = cfg.dir.join("repo");
    let incoming = cfg.dir.join("incoming");
    let services = Services::with_defaults();
    let persistence = Persistence::new(
        Policy::new(),
        services.formatters.clone(),
        services.storages.clone(),
    );
    // 1. Synthetic inputs, written as FITS files to ingest.
    let t = Instant::now();
    let mut raws = std::collections::BTreeMap::new();
    let mut biases = std::collections::BTreeMap::new();
    for ccd in 0..cfg.ccds as i64 {
        let p = incoming.join(format!("bias-{ccd}.fits"));
        persist(&persistence, &exposure(cfg.side, bias_level), &p)?;
        biases.insert(p, data_id! { ccd: ccd });
        for visit in 1..=cfg.visits as i64 {
            let raw = exposure(cfg.side, |x, y| bias_level(x, y) + signal(visit, ccd, x, y));
            let p = incoming.join(format!("exp-{visit}-{ccd}.fits"));
            persist(&persistence, &raw, &p)?;
            raws.insert(p, data_id! { visit: visit, ccd: ccd });
        }
    }
    let written = raws.len() + biases.len();
    let write_time = t.elapsed();

    // 2. A repository on embedded defaults, and the ingest.
    let t = Instant::now();
    if Repository::exists(&repo) {
        return Err(butler_err(format!(
            "{} already holds a repository: give daf demo a new folder",
            repo.display()
        )));
    }
    let mapper = SimpleMapper::new(vec![
        (
            "raw",
            SimpleDataset::new("raw/v%(visit)d/c%(ccd)02d.fits", "ExposureF", "FitsStorage"),
        ),
        (
            "bias",
            SimpleDataset::new("calib/bias-c%(ccd)02d.fits", "ExposureF", "FitsStorage"),
        ),
        (
            "postISR",
            SimpleDataset::new(
                "postISR/v%(visit)d/c%(ccd)02d.fits",
                "ExposureF",
                "FitsStorage",
            ),
        ),
    ])
    .map_err(butler_err)?;
    Repository::create(&repo, Some("SimpleMapper"), mapper.to_args(), &[]).map_err(butler_err)?;
    let butler = Butler::builder()
        .output(repo.as_path())
        .build()
        .map_err(butler_err)?;
    for (dataset_type, table) in [("bias", biases), ("raw", raws)] {
        let files: Vec<PathBuf> = table.keys().cloned().collect();
        let opts = IngestOptions {
            dataset_type: dataset_type.into(),
            transfer: Transfer::Move,
            ids: DataIdSource::Table(table),
            run: String::new(),
        };
        let s = ingest(&butler, &files, &opts, &|| {}).map_err(butler_err)?;
        if !s.failed.is_empty() {
            return Err(butler_err(format!("ingest of {dataset_type}: {s}")));
        }
    }
    let ingest_time = t.elapsed();

    // 3. The pipeline, one event per visit; slice r handles CCD r.
    let mut services = services;
    services
        .location_map
        .set("repo", repo.display().to_string())?;
    services.butler_factory = Some(daf::harness_butler::butler_factory(None));
    let mut registry = StageRegistry::with_defaults();
    registry.register_parallel("daf.demo.BiasSubtractParallel", |_| {
        Ok(Box::new(BiasSubtract))
    });
    registry.register_parallel("daf.demo.SelectCcdParallel", |_| Ok(Box::new(SelectCcd)));
    let ccds = cfg.ccds;
    let events = (1..=cfg.visits as i64).map(move |visit| {
        let mut e = Event::with_job_identity(data_id! { visit: visit });
        e.input_datasets = Some(
            (0..ccds as i64)
                .flat_map(|ccd| {
                    [
                        Dataset::new("raw", data_id! { visit: visit, ccd: ccd }),
                        Dataset::new("bias", data_id! { ccd: ccd }),
                    ]
                })
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

    // 4. Query the outputs in the registry, read each back, check it.
    let t = Instant::now();
    let butler = Butler::builder()
        .output(repo.as_path())
        .build()
        .map_err(butler_err)?;
    let found = butler
        .query_metadata("postISR", &["visit", "ccd"], &DataId::new())
        .map_err(butler_err)?;
    let mut checked = 0;
    for row in &found {
        let (Some(visit), Some(ccd)) = (row[0].as_i64(), row[1].as_i64()) else {
            return Err(butler_err(format!("unexpected postISR id {row:?}")));
        };
        let obj = butler
            .get_dyn(
                "postISR",
                &data_id! { visit: visit, ccd: ccd },
                &GetOptions::default(),
            )
            .map_err(butler_err)?;
        let exp = obj
            .downcast_ref::<ExposureF>()
            .ok_or_else(|| butler_err("postISR is not an ExposureF"))?;
        let im = &exp.masked_image.image;
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
                        "postISR v{visit} c{ccd}: pixel ({x},{y}) is {}, expected {want}",
                        im.get(x, y)
                    ),
                ));
            }
        }
        checked += 1;
    }
    Ok(DemoSummary {
        inputs_written: written,
        write_time,
        ingest_time,
        report,
        outputs_checked: checked,
        check_time: t.elapsed(),
    })
}
