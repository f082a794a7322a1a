//! SymLinkStage, InputStage / OutputStage (traditional and enhanced methods),
//! the stage tester, and the documented errors.

mod common;

use std::path::Path;
use std::sync::Arc;

use daf_base::{data_id, PropertySet};
use daf_harness::{
    run_threads, Clipboard, Dataset, Event, HarnessError, Item, PipelineConfig, RunOptions,
    StageRegistry, StageTester,
};
use serde_json::json;

fn tester(map: PropertySet) -> StageTester {
    StageTester::with(
        StageRegistry::with_defaults(),
        Arc::new(common::services(map)),
    )
}

fn map(pairs: &[(&str, &str)]) -> PropertySet {
    let mut m = PropertySet::new();
    for (k, v) in pairs {
        m.set(k, *v).unwrap();
    }
    m
}

// ------------------------------------------------------------ SymLinkStage

#[test]
fn symlink_parallel_links_every_slice_with_templates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    std::fs::create_dir_all(dir.path().join("images/g")).unwrap();
    let pol = common::policy(json!({
        "parameters": {"additionalData": ["exposureId=triggerVisitEvent.exposureId", "filterName=triggerVisitEvent.filterName"]},
        "Links": [
            {"sourcePath": "%(input)/images/%(filterName)", "destPath": "%(output)/%(runId)/in/%(exposureId)/c%02d(sliceId)"},
            {"sourcePath": "%(input)/nowhere/%(exposureId)", "destPath": "%(output)/dangling-%(sliceId)"}
        ]
    }));
    let mut t = tester(map(&[("input", root), ("output", root)])).run_id("run7");
    t.add_registered("link", None, Some("SymLinkStageParallel"), Some(pol))
        .unwrap();
    let mut ev = PropertySet::new();
    ev.set("exposureId", 85751839i64).unwrap();
    ev.set("filterName", "g").unwrap();
    for slice in [0, 3] {
        let mut cb = Clipboard::new();
        cb.put("triggerVisitEvent", ev.clone());
        t.run(cb, slice).unwrap();
        let link = dir.path().join(format!("run7/in/85751839/c{slice:02}"));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            dir.path().join("images/g")
        );
        assert!(link.is_dir());
        let dangling = dir.path().join(format!("dangling-{slice}"));
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dangling.exists());
    }
    // An existing link is left alone, even when it points elsewhere.
    let other = dir.path().join("other");
    let _ = std::fs::remove_file(dir.path().join("run7/in/85751839/c00"));
    std::os::unix::fs::symlink(&other, dir.path().join("run7/in/85751839/c00")).unwrap();
    let mut cb = Clipboard::new();
    cb.put("triggerVisitEvent", ev.clone());
    t.run(cb, 0).unwrap();
    assert_eq!(
        std::fs::read_link(dir.path().join("run7/in/85751839/c00")).unwrap(),
        other
    );
}

#[test]
fn symlink_run_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let pol = |mode: Option<&str>, name: &str| {
        let mut v = json!({"Links": {"sourcePath": "/src", "destPath": format!("%(output)/{name}-%(sliceId)")}});
        if let Some(m) = mode {
            v["RunMode"] = json!(m);
        }
        common::policy(v)
    };
    let m = map(&[("output", root)]);
    // Serial: links only in the named phase; never without RunMode.
    for (mode, name) in [
        (Some("preprocess"), "pre"),
        (Some("postprocess"), "post"),
        (None, "none"),
    ] {
        let mut t = tester(m.clone());
        t.add_registered("s", Some("SymLinkStageSerial"), None, Some(pol(mode, name)))
            .unwrap();
        t.run_master(Clipboard::new()).unwrap();
        assert_eq!(
            dir.path()
                .join(format!("{name}--1"))
                .symlink_metadata()
                .is_ok(),
            mode.is_some(),
            "{name}"
        );
    }
    // Parallel: not when RunMode names a serial phase.
    let mut t = tester(m.clone());
    t.add_registered(
        "p",
        None,
        Some("SymLinkStageParallel"),
        Some(pol(Some("preprocess"), "ppre")),
    )
    .unwrap();
    t.run_worker(Clipboard::new()).unwrap();
    assert!(dir.path().join("ppre-0").symlink_metadata().is_err());
    // No Links: a warning, nothing else.
    let mut t = tester(m);
    t.add_registered("p", None, Some("SymLinkStageParallel"), None)
        .unwrap();
    assert!(t.run_worker(Clipboard::new()).is_ok());
}

#[test]
fn symlink_absent_clipboard_key_is_the_documented_error() {
    let pol = common::policy(json!({
        "parameters": {"additionalData": "exposureId=triggerVisitEvent.exposureId"},
        "Links": {"sourcePath": "/a", "destPath": "/tmp/%(exposureId)"}
    }));
    let mut t = tester(PropertySet::new());
    t.add_registered("p", None, Some("SymLinkStageParallel"), Some(pol))
        .unwrap();
    let err = t.run_worker(Clipboard::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Expected data not found on clipboard: triggerVisitEvent"
    );
}

// ------------------------------------------------------------ IO stages

fn tcs_event() -> Clipboard {
    let mut ev = PropertySet::new();
    ev.set("visitId", "fov391").unwrap();
    let mut cb = Clipboard::new();
    cb.put("tcsEvent", ev);
    cb
}

/// TestIO: the parallel output stage writes `theProperty.fov391`; the serial
/// input stage reads it back in postprocess, keeping `tcsEvent`.
#[test]
fn traditional_output_then_serial_input_in_postprocess() {
    let dir = tempfile::tempdir().unwrap();
    let m = map(&[("output", dir.path().to_str().unwrap())]);
    let out_pol = common::policy(json!({"parameters": {
        "additionalData": "visitId=tcsEvent.visitId",
        "outputItems": {"theProperty": {"required": true,
            "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/theProperty.%(visitId)"}}}
    }}));
    let in_pol = common::policy(json!({"parameters": {
        "runMode": "postprocess",
        "additionalData": "visitId=tcsEvent.visitId",
        "inputItems": {"theProperty": {"type": "PropertySet", "pythonType": "lsst.daf.base.PropertySet",
            "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/theProperty.%(visitId)"}}}
    }}));
    let mut prop = PropertySet::new();
    prop.set("str", "foo").unwrap();
    prop.set("num", 42i32).unwrap();
    let mut cb = tcs_event();
    cb.put("theProperty", prop.clone());
    let mut t = tester(m.clone());
    t.add_registered("out", None, Some("OutputStageParallel"), Some(out_pol))
        .unwrap();
    t.run(cb, 0).unwrap();
    assert!(dir.path().join("theProperty.fov391").is_file());

    let mut t = tester(m);
    t.add_registered("in", Some("InputStageSerial"), None, Some(in_pol))
        .unwrap();
    let out = t.run(tcs_event(), -1).unwrap();
    assert_eq!(out.get_property_set("theProperty").unwrap(), &prop);
    assert!(out.contains("tcsEvent"));
}

/// TestIO_3: datasetId from the job identity and `set`; the job identity
/// wins over `set`, `set` over additionalData; one dataset is listed.
#[test]
fn output_dataset_ids_and_output_datasets_list() {
    let dir = tempfile::tempdir().unwrap();
    let m = map(&[("output", dir.path().to_str().unwrap())]);
    let pol = common::policy(json!({
        "inputKeys": {"jobIdentity": "jobIdentity"},
        "outputKeys": {"outputDatasets": "outputDatasets"},
        "parameters": {
            "additionalData": ["field=ps.field"],
            "outputItems": {"ps": {"required": true,
                "datasetId": {"datasetType": "postIsr",
                    "fromJobIdentity": ["name", "visit", "ccd", "snap", "filter"],
                    "set": {"field": "deep", "visit": 1}},
                "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/PS-%(field)-v%(visit)-c%03d(ccd).json"}}}
        }
    }));
    let mut ps = PropertySet::new();
    ps.set("field", "D4").unwrap();
    let mut cb = Clipboard::new();
    cb.put("ps", ps);
    cb.put(
        "jobIdentity",
        data_id! { name: "foo", visit: 707911, ccd: 13, snap: 0, filter: "r" },
    );
    let mut t = tester(m);
    t.add_registered("out", None, Some("OutputStageParallel"), Some(pol))
        .unwrap();
    let out = t.run_worker(cb).unwrap();
    let list = out.get_datasets("outputDatasets").unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0],
        Dataset::new(
            "postIsr",
            data_id! {
            name: "foo", visit: 707911, ccd: 13, snap: 0, filter: "r", field: "deep" }
        )
    );
    assert!(dir.path().join("PS-deep-v707911-c013.json").is_file());
}

/// TestIO_2: the enhanced method reads one object per matching dataset.
#[test]
fn enhanced_input_reads_every_matching_dataset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/D4")).unwrap();
    for amp in 0..2i32 {
        let mut ps = PropertySet::new();
        ps.set("LSSTAMP", amp).unwrap();
        std::fs::write(
            dir.path()
                .join(format!("root/D4/raw-707911-e000-c013-a{amp:03}.json")),
            serde_json::to_string(&ps).unwrap(),
        )
        .unwrap();
    }
    let m = map(&[("input", dir.path().to_str().unwrap())]);
    let pol = common::policy(json!({"parameters": {
        "additionalData": ["root=root", "field=ps.field"],
        "inputItems": {"raw": {"type": "PropertySet", "datasetType": "postIsr", "storage": "JsonStorage",
            "location": "%(input)/%(root)/%(field)/raw-%(visit)-e%03d(snap)-c%03d(ccd)-a%03d(amp).json"},
            "none": {"type": "PropertySet", "datasetType": "nothing", "storage": "JsonStorage", "location": "x"}}
    }}));
    let mut ps = PropertySet::new();
    ps.set("field", "D4").unwrap();
    let mut cb = Clipboard::new();
    cb.put("ps", ps);
    cb.put("root", "root");
    cb.put(
        "inputDatasets",
        vec![
            Dataset::new(
                "postIsr",
                data_id! { visit: 707911, snap: 0, ccd: 13, amp: 0 },
            ),
            Dataset::new("raw", data_id! { visit: 1 }),
            Dataset::new(
                "postIsr",
                data_id! { visit: 707911, snap: 0, ccd: 13, amp: 1 },
            ),
        ],
    );
    let mut t = tester(m);
    t.add_registered("in", None, Some("InputStageParallel"), Some(pol))
        .unwrap();
    let out = t.run_worker(cb).unwrap();
    let Some(Item::Objects(objs)) = out.get("raw") else {
        panic!("a list")
    };
    let amps: Vec<i32> = objs
        .iter()
        .map(|o| {
            o.downcast_ref::<PropertySet>()
                .unwrap()
                .get::<i32>("LSSTAMP")
                .unwrap()
        })
        .collect();
    assert_eq!(amps, vec![0, 1]);
    assert!(matches!(out.get("none"), Some(Item::Objects(v)) if v.is_empty()));
}

#[test]
fn input_waits_then_times_out_with_the_documented_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.json");
    let pol = common::policy(
        json!({"parameters": {"inputItems": {"late": {"type": "PropertySet", "timeout": 3.0,
        "storagePolicy": {"storage": "JsonStorage", "location": path.to_str().unwrap()}}}}}),
    );
    // Appears after ~0.7 s: the stage waits for it.
    let p2 = path.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        std::fs::write(&p2, "{\"a\":{\"I32\":[5]}}").unwrap();
    });
    let mut t = tester(PropertySet::new());
    t.add_registered("in", None, Some("InputStageParallel"), Some(pol.clone()))
        .unwrap();
    let t0 = std::time::Instant::now();
    let out = t.run_worker(Clipboard::new()).unwrap();
    writer.join().unwrap();
    assert!(t0.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(
        out.get_property_set("late")
            .unwrap()
            .get::<i32>("a")
            .unwrap(),
        5
    );

    let missing = dir.path().join("never.json");
    let pol = common::policy(
        json!({"parameters": {"inputItems": {"never": {"type": "PropertySet", "timeout": 0.6,
        "storagePolicy": {"storage": "JsonStorage", "location": missing.to_str().unwrap()}}}}}),
    );
    let mut t = tester(PropertySet::new());
    t.add_registered("in", None, Some("InputStageParallel"), Some(pol))
        .unwrap();
    let err = t.run_worker(Clipboard::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Timed out waiting for file {}", missing.display())
    );
}

#[test]
fn documented_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let m = map(&[("output", dir.path().to_str().unwrap())]);
    let out = |item: serde_json::Value, extra: serde_json::Value| {
        let mut p = json!({"parameters": {"outputItems": {"x": item}}});
        if let serde_json::Value::Object(e) = extra {
            for (k, v) in e {
                p["parameters"][k] = v;
            }
        }
        common::policy(p)
    };
    let sp = json!({"storage": "JsonStorage", "location": "%(output)/x.json"});
    let run = |pol, cb: Clipboard| {
        let mut t = tester(m.clone());
        t.add_registered("out", None, Some("OutputStageParallel"), Some(pol))
            .unwrap();
        t.run_worker(cb)
    };
    let with_x = || {
        let mut cb = Clipboard::new();
        cb.put("x", PropertySet::new());
        cb
    };
    // Missing required item.
    let e = run(
        out(json!({"required": true, "storagePolicy": sp}), json!({})),
        Clipboard::new(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Missing output item: x");
    // Not required: skipped silently, nothing written.
    run(
        out(json!({"storagePolicy": sp}), json!({})),
        Clipboard::new(),
    )
    .unwrap();
    assert!(!dir.path().join("x.json").exists());
    // Bad additionalData entry.
    let e = run(
        out(
            json!({"storagePolicy": sp}),
            json!({"additionalData": "no-equals-sign"}),
        ),
        with_x(),
    )
    .unwrap_err();
    assert!(matches!(e, HarnessError::BadAdditionalData { .. }), "{e}");
    // Absent clipboard key.
    let e = run(
        out(
            json!({"storagePolicy": sp}),
            json!({"additionalData": "v=tcsEvent.visitId"}),
        ),
        with_x(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Expected data not found on clipboard: tcsEvent"
    );
    // `.sub` of something that is neither dict nor PropertySet.
    let mut cb = with_x();
    cb.put("n", 5i64);
    let e = run(
        out(
            json!({"storagePolicy": sp}),
            json!({"additionalData": "v=n.sub"}),
        ),
        cb,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown data type (not dict or PropertySet) found on clipboard: n"
    );
    // Unknown substitution.
    let e = run(
        out(
            json!({"storagePolicy": {"storage": "JsonStorage", "location": "%(nope)/x"}}),
            json!({}),
        ),
        with_x(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Unknown substitution: nope");
    // Unknown storage.
    let e = run(
        out(
            json!({"storagePolicy": {"storage": "NoSuchStorage", "location": "%(output)/y"}}),
            json!({}),
        ),
        with_x(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown storage \"NoSuchStorage\""),
        "{e}"
    );
    assert!(!dir.path().join("y").exists());
    // Unknown parameters key.
    let e = run(
        out(json!({"storagePolicy": sp}), json!({"RunMode": "process"})),
        with_x(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown policy name parameters.RunMode"),
        "{e}"
    );
    // Butler method not wired yet: a clear refusal at setup.
    let e = run(
        out(
            json!({"datasetId": {"datasetType": "calexp"}}),
            json!({"butler": {"mapperName": "m"}}),
        ),
        with_x(),
    )
    .unwrap_err();
    assert!(matches!(e, HarnessError::Butler { .. }), "{e}");
}

#[test]
fn io_stages_in_a_pipeline_with_four_slices() {
    let dir = tempfile::tempdir().unwrap();
    let mut services = common::services(map(&[("output", dir.path().to_str().unwrap())]));
    services
        .location_map
        .set("work", dir.path().to_str().unwrap())
        .unwrap();
    let p = common::policy(json!({
        "appStage": [
            {"name": "share", "parallelClass": "daf.harness.ShareParallel"},
            {"name": "out", "parallelClass": "OutputStageParallel", "stagePolicy": {"parameters": {
                "additionalData": "visit=jobIdentity.visit",
                "outputItems": {"slice": {"required": true, "datasetId": {"datasetType": "slice", "fromJobIdentity": "visit"},
                    "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/v%(visit)/s%(sliceId).json"}}}}}},
            {"name": "in", "serialClass": "InputStageSerial", "stagePolicy": {"parameters": {
                "runMode": "postprocess",
                "additionalData": "visit=jobIdentity.visit",
                "inputItems": {"fromSlice2": {"type": "PropertySet",
                    "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/v%(visit)/s2.json"}}}}}}
        ]
    }));
    let cfg = PipelineConfig::from_policy(&p).unwrap();
    let events = (1..=3).map(|v| Ok(Event::with_job_identity(data_id! { visit: v })));
    let report = run_threads(
        &cfg,
        &StageRegistry::with_defaults(),
        Arc::new(services),
        events,
        Some(4),
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(report.failures(), 0);
    for v in 1..=3i64 {
        for s in 0..4 {
            assert!(Path::new(&dir.path().join(format!("v{v}/s{s}.json"))).is_file());
        }
        let master = &report.visits[(v - 1) as usize].master;
        assert_eq!(master.summary["fromSlice2"]["value"], json!(v * 100 + 2));
        let slice = &report.visits[(v - 1) as usize].slices[1];
        assert_eq!(slice.summary["outputDatasets"][0]["ids"]["visit"], json!(v));
    }
}

#[test]
fn tester_runs_master_and_worker_and_rejects_unknown_stages() {
    let mut t = StageTester::new();
    t.add_registered("share", None, Some("daf.harness.ShareParallel"), None)
        .unwrap();
    t.add_registered("rec", None, Some("daf.harness.RecordParallel"), None)
        .unwrap();
    let mut cb = Clipboard::new();
    cb.put("jobIdentity", data_id! { visit: 3 });
    let out = t.run(cb.clone(), 1).unwrap();
    assert_eq!(
        out.get_property_set("record")
            .unwrap()
            .get::<i64>("stage")
            .unwrap(),
        2
    );
    assert_eq!(
        out.get_property_set("slice")
            .unwrap()
            .get::<i64>("value")
            .unwrap(),
        301
    );
    // As master, parallel parts do not run.
    let out = t.run_master(cb).unwrap();
    assert!(!out.contains("slice"));
    let mut bad = StageTester::new();
    bad.add_registered("x", None, Some("Nope"), None).unwrap();
    assert!(matches!(
        bad.run_worker(Clipboard::new()),
        Err(HarnessError::UnknownStage { .. })
    ));
}

// ------------------------------------------------------------ path safety (issue 20)

/// Every file and link under `dir`, recursively (links not followed).
fn entries_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn event_values_cannot_lead_links_or_outputs_out_of_their_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b/out");
    std::fs::create_dir_all(&out).unwrap();
    let m = map(&[("output", out.to_str().unwrap()), ("input", "/data")]);
    let link_pol = common::policy(json!({
        "parameters": {"additionalData": ["filterName=triggerVisitEvent.filterName"]},
        "Links": [{"sourcePath": "%(input)/images/%(filterName)", "destPath": "%(output)/links/%(filterName)"}]
    }));
    let out_pol = common::policy(json!({"parameters": {
        "additionalData": "filterName=triggerVisitEvent.filterName",
        "outputItems": {"ps": {"required": true,
            "storagePolicy": {"storage": "JsonStorage", "location": "%(output)/ps/%(filterName).json"}}}
    }}));
    let before = entries_under(dir.path());
    for bad in ["../../../../x", "/tmp/daf-escape", "g/../../..", "g\nh"] {
        let mut ev = PropertySet::new();
        ev.set("filterName", bad).unwrap();
        let mut t = tester(m.clone());
        t.add_registered(
            "link",
            None,
            Some("SymLinkStageParallel"),
            Some(link_pol.clone()),
        )
        .unwrap();
        let mut cb = Clipboard::new();
        cb.put("triggerVisitEvent", ev.clone());
        let e = t.run(cb, 0).unwrap_err();
        assert!(e.to_string().contains("unsafe"), "{bad:?}: {e}");
        let mut t = tester(m.clone());
        t.add_registered(
            "out",
            None,
            Some("OutputStageParallel"),
            Some(out_pol.clone()),
        )
        .unwrap();
        let mut cb = Clipboard::new();
        cb.put("triggerVisitEvent", ev);
        cb.put("ps", PropertySet::new());
        let e = t.run(cb, 0).unwrap_err();
        assert!(e.to_string().contains("unsafe"), "{bad:?}: {e}");
    }
    assert_eq!(entries_under(dir.path()), before, "nothing was created");
    assert!(!Path::new("/tmp/daf-escape").exists());
    // a plain value still works, inside the folder
    let mut ev = PropertySet::new();
    ev.set("filterName", "g").unwrap();
    let mut t = tester(m);
    t.add_registered("link", None, Some("SymLinkStageParallel"), Some(link_pol))
        .unwrap();
    let mut cb = Clipboard::new();
    cb.put("triggerVisitEvent", ev);
    t.run(cb, 0).unwrap();
    assert_eq!(
        std::fs::read_link(out.join("links/g")).unwrap(),
        Path::new("/data/images/g")
    );
}
