//! The butler method of the IO stages (against an in-memory butler), and the
//! seed pipeline policies run end to end.

mod common;

use std::sync::Arc;

use common::MemButler;
use daf_base::{data_id, DataId, Policy, PropertySet};
use daf_harness::{
    run_threads, Clipboard, Dataset, Event, HarnessError, Item, ParallelStage, PipelineConfig,
    RunOptions, SerialStage, StageContext, StageRegistry, StageTester,
};
use serde_json::json;

fn ps(k: &str, v: i64) -> PropertySet {
    let mut p = PropertySet::new();
    p.set(k, v).unwrap();
    p
}

fn raw_id(amp: i64) -> DataId {
    data_id! { visit: 85751839, raft: "2,3", sensor: "1,1", channel: amp }
}

fn input_policy(item: serde_json::Value) -> Policy {
    common::policy(json!({"parameters": {
        "butler": {"mapperName": "lsst.obs.lsstSim.LsstSimMapper", "mapperPolicy": {"root": "%(input)"}},
        "inputItems": {"x": item}
    }}))
}

fn run_input(
    butler: &Arc<MemButler>,
    pol: Policy,
    cb: Clipboard,
) -> daf_harness::Result<Clipboard> {
    let mut m = PropertySet::new();
    m.set("input", "/repo/in").unwrap();
    let mut t = StageTester::with(
        StageRegistry::with_defaults(),
        Arc::new(common::services_with_butler(m, butler.clone())),
    );
    t.add_registered("in", None, Some("InputStageParallel"), Some(pol))?;
    t.run_worker(cb)
}

#[test]
fn input_from_input_datasets_gives_one_object_or_a_list() {
    let b = Arc::new(MemButler::default());
    b.insert("raw", &raw_id(0), ps("amp", 0));
    b.insert("raw", &raw_id(1), ps("amp", 1));
    let pol = input_policy(
        json!({"datasetType": "raw", "datasetId": {"fromInputDatasets": true}, "set": {"x": 1}}),
    );
    let mut cb = Clipboard::new();
    cb.put(
        "inputDatasets",
        vec![
            Dataset::new("raw", raw_id(0)),
            Dataset::new("bias", data_id! { visit: 1 }),
        ],
    );
    let out = run_input(&b, pol.clone(), cb).unwrap();
    assert_eq!(
        out.get_property_set("x")
            .unwrap()
            .get::<i64>("amp")
            .unwrap(),
        0
    );
    assert_eq!(b.root.lock().unwrap().as_deref(), Some("/repo/in"));

    let mut cb = Clipboard::new();
    cb.put(
        "inputDatasets",
        vec![
            Dataset::new("raw", raw_id(0)),
            Dataset::new("raw", raw_id(1)),
        ],
    );
    let out = run_input(&b, pol.clone(), cb).unwrap();
    assert!(matches!(out.get("x"), Some(Item::Objects(v)) if v.len() == 2));

    let mut cb = Clipboard::new();
    cb.put("inputDatasets", vec![Dataset::new("bias", raw_id(0))]);
    let e = run_input(&b, pol, cb).unwrap_err();
    assert_eq!(e.to_string(), "No input datasets of type raw for item x");
}

#[test]
fn input_from_job_identity_then_set_overrides() {
    let b = Arc::new(MemButler::default());
    b.insert("bias", &data_id! { visit: 0, raft: "2,3" }, ps("level", 7));
    let pol = input_policy(json!({"datasetType": "bias",
        "datasetId": {"fromJobIdentity": ["visit", "raft"], "set": {"visit": 0}}}));
    let mut cb = Clipboard::new();
    cb.put(
        "jobIdentity",
        data_id! { visit: 85751839, raft: "2,3", sensor: "1,1" },
    );
    let out = run_input(&b, pol, cb).unwrap();
    assert_eq!(
        out.get_property_set("x")
            .unwrap()
            .get::<i64>("level")
            .unwrap(),
        7
    );
}

#[test]
fn input_butler_errors() {
    let b = Arc::new(MemButler::default());
    // Neither source.
    let e = run_input(
        &b,
        input_policy(json!({"datasetType": "raw", "datasetId": {}})),
        Clipboard::new(),
    )
    .unwrap_err();
    assert!(matches!(e, HarnessError::DatasetIdSource { .. }), "{e}");
    assert!(e
        .to_string()
        .starts_with("datasetId missing both fromInputDatasets and fromJobIdentity"));
    // Required: timed out.
    let mut cb = Clipboard::new();
    cb.put("jobIdentity", data_id! { visit: 5 });
    let pol = input_policy(
        json!({"datasetType": "flat", "timeout": 0.6, "datasetId": {"fromJobIdentity": "visit"}}),
    );
    let e = run_input(&b, pol, cb.clone()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Timed out waiting for dataset flat with keys {visit: 5}"
    );
    // Not required: the wait stops and the get is still attempted (and fails here).
    let pol = input_policy(
        json!({"datasetType": "flat", "timeout": 0.3, "required": false, "datasetId": {"fromJobIdentity": "visit"}}),
    );
    let e = run_input(&b, pol, cb.clone()).unwrap_err();
    assert!(e.to_string().contains("no flat {visit: 5}"), "{e}");
    // The job identity lacks a key.
    let pol = input_policy(
        json!({"datasetType": "flat", "datasetId": {"fromJobIdentity": ["visit", "ccd"]}}),
    );
    let e = run_input(&b, pol, cb).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Expected data not found on clipboard: jobIdentity.ccd"
    );
    // No butler available at all.
    let mut t = StageTester::new();
    t.add_registered(
        "in",
        None,
        Some("InputStageParallel"),
        Some(input_policy(json!({"datasetType": "raw"}))),
    )
    .unwrap();
    assert!(matches!(
        t.run_worker(Clipboard::new()),
        Err(HarnessError::Butler { .. })
    ));
}

#[test]
fn output_puts_lists_and_records_provenance() {
    let b = Arc::new(MemButler::default());
    let pol = common::policy(json!({"parameters": {
        "butler": {"mapperName": "m", "mapperPolicy": {"root": "/repo"}},
        "outputItems": {"ps": {"required": true, "datasetId": {"datasetType": "postISR",
            "fromClipboard": ["visit", "ccd"], "set": {"field": "deep", "ccd": 99}}}}
    }}));
    let mut t = StageTester::with(
        StageRegistry::with_defaults(),
        Arc::new(common::services_with_butler(PropertySet::new(), b.clone())),
    );
    t.add_registered("out", None, Some("OutputStageParallel"), Some(pol))
        .unwrap();
    let mut cb = Clipboard::new();
    cb.put("ps", ps("answer", 42));
    cb.put("jobIdentity", data_id! { visit: 3, ccd: 13 });
    let inputs = vec![
        Dataset::new("raw", data_id! { visit: 3, ccd: 13 }),
        Dataset::new("bias", data_id! { ccd: 13 }),
    ];
    cb.put("inputDatasets", inputs.clone());
    let out = t.run_worker(cb).unwrap();
    let id = data_id! { visit: 3, ccd: 13, field: "deep" };
    assert_eq!(
        out.get_datasets("outputDatasets").unwrap(),
        &[Dataset::new("postISR", id.clone())]
    );
    assert_eq!(
        b.data.lock().unwrap()[&("postISR".to_string(), id.to_string())]
            .get::<i64>("answer")
            .unwrap(),
        42
    );
    let prov = b.provenance.lock().unwrap().clone();
    assert_eq!(prov, vec![("postISR".to_string(), id.to_string(), inputs)]);
}

// ------------------------------------------------------------ seed policies

fn policy_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/policy")
}

/// The sample stage of creating-a-stage.txt: reads RunMode in setup; the
/// parallel part computes an area from its policy and puts `ps` for the
/// output stage.
struct SampleSerial(Option<String>);
impl SerialStage for SampleSerial {
    fn setup(&mut self, ctx: &StageContext) -> daf_harness::Result<()> {
        let p = ctx.policy_or_empty();
        if p.exists("RunMode") {
            self.0 = Some(p.get::<String>("RunMode")?);
        }
        Ok(())
    }
    fn preprocess(&mut self, _: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        if self.0.as_deref() == Some("preprocess") {
            cb.put("samplePre", true);
        }
        Ok(())
    }
}
struct SampleParallel;
impl ParallelStage for SampleParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
        let p = ctx.policy_or_empty();
        let area = p.get::<f64>("width")? * p.get::<f64>("height")?;
        let exposure = match cb.get("Exposure") {
            Some(Item::PropertySet(e)) => e.get::<i64>("amp")?,
            _ => -1,
        };
        let mut out = PropertySet::new();
        out.set("area", area)?;
        out.set("amp", exposure)?;
        out.set("field", "D4")?;
        cb.put_shared("ps", out);
        Ok(())
    }
}

fn seed_registry() -> StageRegistry {
    let mut reg = StageRegistry::with_defaults();
    reg.register_serial("lsst.pexhexamples.pipeline.SampleStageSerial", |_| {
        Ok(Box::new(SampleSerial(None)))
    });
    reg.register_parallel("lsst.pexhexamples.pipeline.SampleStageParallel", |_| {
        Ok(Box::new(SampleParallel))
    });
    reg
}

#[test]
fn seed_pipeline_policies_run_paf_and_yaml() {
    for file in ["pipeline_policy.paf", "pipeline_policy.yaml"] {
        let policy = Policy::load(policy_dir().join(file)).unwrap();
        let cfg = PipelineConfig::from_policy(&policy).unwrap();
        assert_eq!(cfg.stages.len(), 5, "{file}");
        assert!(cfg.share_data_on);
        assert_eq!(
            cfg.stages[1].event_topic.as_deref(),
            Some("triggerImageprocEvent")
        );
        assert!(cfg.stages[2].share_data);

        let dir = tempfile::tempdir().unwrap();
        let mut m = PropertySet::new();
        m.set("input", "/repo").unwrap();
        m.set("output", dir.path().to_str().unwrap()).unwrap();
        let b = Arc::new(MemButler::default());
        for amp in 0..3 {
            b.insert(
                "raw",
                &data_id! { visit: 1, snap: 0, raft: "2,2", sensor: "1,1", channel: amp },
                ps("amp", amp),
            );
        }
        b.insert(
            "bias",
            &data_id! { visit: 1, snap: 0, raft: "2,2", sensor: "1,1", channel: "0,0" },
            ps("bias", 1),
        );
        let mut services = common::services_with_butler(m, b.clone());
        // The output policy names BoostStorage; the JSON test storage stands in.
        services
            .storages
            .register("BoostStorage", || Box::new(common::JsonStorage::default()))
            .unwrap();
        let events = (0..3).map(|amp| {
            let mut e = Event::with_job_identity(data_id! {
            visit: 1, snap: 0, raft: "2,2", sensor: "1,1", channel: "0,0", ccd: 5, amp: amp });
            e.input_datasets = Some(vec![Dataset::new(
                "raw",
                data_id! {
                visit: 1, snap: 0, raft: "2,2", sensor: "1,1", channel: amp },
            )]);
            e.payload.set("visitId", 1i64).unwrap();
            Ok(e)
        });
        let report = run_threads(
            &cfg,
            &seed_registry(),
            Arc::new(services),
            events,
            Some(2),
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(
            report.failures(),
            0,
            "{file}: {:?}",
            report
                .visits
                .iter()
                .map(|v| &v.slices[0].failure)
                .collect::<Vec<_>>()
        );
        for (amp, v) in report.visits.iter().enumerate() {
            assert_eq!(v.master.summary["samplePre"], json!(true));
            for s in &v.slices {
                assert_eq!(s.summary["triggerImageprocEvent"]["visitId"], json!(1));
                assert_eq!(s.summary["Exposure"]["amp"], json!(amp));
                assert_eq!(s.summary["BiasExposure"]["bias"], json!(1));
                assert_eq!(s.summary["ps"]["area"], json!(2.0));
                assert_eq!(s.summary["outputDatasets"][0]["type"], json!("postISR"));
                assert_eq!(
                    s.summary["outputDatasets"][0]["ids"]["field"],
                    json!("deep")
                );
            }
            let written = dir.path().join(format!("PS-deep-v1-c5-a{amp}.boost"));
            let text = std::fs::read_to_string(&written).unwrap();
            assert!(text.contains("area"), "{text}");
        }
    }
}

#[test]
fn seed_io_stage_policies_set_up() {
    let b = Arc::new(MemButler::default());
    let mut m = PropertySet::new();
    m.set("input", "/repo").unwrap();
    let services = Arc::new(common::services_with_butler(m, b));
    let ctx = |p: Policy| StageContext::new("io", 0, Some(p), services.clone());
    let reg = StageRegistry::with_defaults();
    for (file, class) in [
        ("input_stage_butler.paf", "InputStageParallel"),
        ("input_stage_butler.yaml", "InputStageParallel"),
        ("output_stage_butler.paf", "OutputStageParallel"),
        ("output_stage_butler.yaml", "OutputStageParallel"),
        ("output_stage_datasetid.paf", "OutputStageParallel"),
        ("output_stage_datasetid.yaml", "OutputStageParallel"),
    ] {
        let p = Policy::load(policy_dir().join(file)).unwrap();
        reg.make_parallel(Some(class), &ctx(p))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // The storagePolicy example puts outputKeys under parameters: the
    // dictionary check refuses it, naming the key.
    let p = Policy::load(policy_dir().join("io_storage_policy.paf")).unwrap();
    let e = reg
        .make_parallel(Some("OutputStageParallel"), &ctx(p))
        .err()
        .unwrap();
    assert!(e.to_string().contains("parameters.outputKeys"), "{e}");
    // The symlink example (legacy top-level AdditionalData, ignored) sets up
    // and, without RunMode, never links on the master.
    for file in ["symlink_stage.paf", "symlink_stage.yaml"] {
        let p = Policy::load(policy_dir().join(file)).unwrap();
        let mut s = reg
            .make_serial(
                Some("SymLinkStageSerial"),
                &StageContext::new("l", -1, Some(p), services.clone()),
            )
            .unwrap();
        let mut cb = Clipboard::new();
        s.preprocess(&StageContext::new("l", -1, None, services.clone()), &mut cb)
            .unwrap();
        s.postprocess(&StageContext::new("l", -1, None, services.clone()), &mut cb)
            .unwrap();
    }
}

#[test]
fn butler_errors_keep_their_cause() {
    // A repository root that is a file: the butler refuses it, and the
    // harness error keeps the butler's error as its source.
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("not-a-repo");
    std::fs::write(&f, "x").unwrap();
    let Err(e) = daf_harness::repo_butler::ButlerAdapter::open(&f, None) else {
        panic!("a file opened as a repository")
    };
    assert!(matches!(e, HarnessError::Butler { .. }), "{e:?}");
    let src = std::error::Error::source(&e).expect("a source");
    let be = src
        .downcast_ref::<daf_butler::ButlerError>()
        .expect("the butler's error");
    assert!(e.to_string().contains(&be.to_string()), "{e}");
}
