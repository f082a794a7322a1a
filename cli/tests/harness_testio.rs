//! pex_harness's IO tests (TestIO, TestIO_2, TestIO_3, TestIO_5) with their
//! stage policy files unchanged (tests/data/harness/upstream/tests/policy),
//! on synthetic data made here with the shapes and headers the upstream
//! tests check (their FITS files are not shipped). TestIO.py drove the
//! stages directly; here the same stages run through `daf run` (TestIO: its
//! locations are relative to the working directory) or the stage tester
//! (TestIO_2..5: `SimpleStageTester(...).run(clip, 0)`, the worker side,
//! with `input = "tests"`-like and `output` locations).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use daf::base::{data_id, Policy, PropertySet};
use daf::formatters::image::{DecoratedImage, Image};
use daf::formatters::{FormatterRegistry, Persistence};
use daf::harness::{Clipboard, Dataset, Item, Services, StageRegistry, StageTester};
use daf::storages::{LogicalLocation, StorageRegistry};

const POL: &str = "tests/data/harness/upstream/tests/policy";

fn policy(name: &str) -> Policy {
    Policy::load(Path::new(&format!("{POL}/{name}"))).unwrap()
}

/// A stage tester whose location map has `input` and `output`.
fn tester(input: &Path, output: &Path) -> StageTester {
    let mut s = Services::with_defaults();
    s.location_map
        .set("input", input.display().to_string())
        .unwrap();
    s.location_map
        .set("output", output.display().to_string())
        .unwrap();
    StageTester::with(StageRegistry::with_defaults(), Arc::new(s))
}

/// A DecoratedImageU FITS file with the given header cards.
fn write_image(path: &Path, width: usize, height: usize, cards: &[(&str, &str)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let pixels = (0..width * height).map(|i| (i % 50_000) as u16).collect();
    let mut d = DecoratedImage::new(Image::<u16>::from_vec(width, height, pixels).unwrap());
    for (k, v) in cards {
        d.metadata.set(k, *v).unwrap();
    }
    let p = Persistence::new(
        Policy::new(),
        FormatterRegistry::with_defaults(),
        StorageRegistry::with_defaults(),
    );
    let mut st = vec![p
        .persist_storage(
            "FitsStorage",
            &LogicalLocation::literal(path.display().to_string()),
        )
        .unwrap()];
    p.persist(&d, &mut st, &PropertySet::new()).unwrap();
}

fn image(item: &Item) -> &DecoratedImage<u16> {
    match item {
        Item::Object(o) => o.downcast_ref::<DecoratedImage<u16>>().unwrap(),
        other => panic!("not an object: {}", other.kind()),
    }
}

fn daf_run(dir: &Path, pipeline: &str, events: &str) -> serde_json::Value {
    let root = std::env::current_dir().unwrap();
    let p = dir.join("pipeline.paf");
    std::fs::write(
        &p,
        pipeline.replace("@POL", &format!("@{}/{POL}", root.display())),
    )
    .unwrap();
    let ev = dir.join("events.jsonl");
    std::fs::write(&ev, events).unwrap();
    let dump = dir.join("dump.json");
    let o = Command::new(env!("CARGO_BIN_EXE_daf"))
        .arg("run")
        .arg(&p)
        .arg("--events")
        .arg(&ev)
        .arg("--dump")
        .arg(&dump)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap()
}

/// TestIO: the parallel OutputStage (output.policy) writes
/// `theProperty.fov391` on slice 0; the serial InputStage (input.policy,
/// runMode postprocess) reads it back as a PropertySet, `tcsEvent` kept.
#[test]
fn test_io_output_then_serial_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = daf_run(
        dir.path(),
        "appStage: {\n name: \"output\"\n parallelClass: \"lsst.pex.harness.IOStage.OutputStageParallel\"\n stagePolicy: @POL/output.policy\n}\n",
        "{\"clipboard\": {\"tcsEvent\": {\"visitId\": \"fov391\"}, \"theProperty\": {\"str\": \"foo\", \"num\": 42}}}\n",
    );
    assert!(out["visits"][0]["slices"][0]["failure"].is_null(), "{out}");
    let written = dir.path().join("theProperty.fov391");
    assert!(written.is_file());
    // A second run without theProperty on the clipboard: the master reads it.
    let back = daf_run(
        dir.path(),
        "appStage: {\n name: \"input\"\n serialClass: \"lsst.pex.harness.IOStage.InputStageSerial\"\n stagePolicy: @POL/input.policy\n}\n",
        "{\"clipboard\": {\"tcsEvent\": {\"visitId\": \"fov391\"}}}\n",
    );
    let m = &back["visits"][0]["master"]["summary"];
    assert_eq!(
        m["theProperty"],
        serde_json::json!({"str": "foo", "num": 42})
    );
    assert_eq!(m["tcsEvent"]["visitId"], "fov391");
    assert!(back["visits"][0]["slices"][0]["summary"]
        .get("theProperty")
        .is_none());
}

/// TestIO_2: the enhanced method (datasetType postIsr, FitsStorage) reads
/// one DecoratedImageU per matching input dataset: two amplifiers.
#[test]
fn test_io_2_enhanced_input_reads_both_amplifiers() {
    let input = tempfile::tempdir().unwrap();
    for amp in 0..2 {
        write_image(
            &input
                .path()
                .join(format!("root/D4/raw-707911-e000-c013-a{amp:03}.fits")),
            1056,
            1153,
            &[("LSSTAMP", &amp.to_string())],
        );
    }
    let mut t = tester(input.path(), Path::new("."));
    t.add_registered(
        "in",
        None,
        Some("lsst.pex.harness.IOStage.InputStageParallel"),
        Some(policy("TestIO_2.policy")),
    )
    .unwrap();
    let mut cb = Clipboard::new();
    cb.put("root", "root");
    let mut ps = PropertySet::new();
    ps.set("field", "D4").unwrap();
    cb.put("ps", ps);
    cb.put(
        "inputDatasets",
        (0..2)
            .map(|amp| {
                Dataset::new(
                    "postIsr",
                    data_id! { visit: 707911, snap: 0, ccd: 13, amp: amp },
                )
            })
            .collect::<Vec<_>>(),
    );
    let out = t.run(cb, 0).unwrap();
    let Some(Item::Objects(list)) = out.get("exposureSet") else {
        panic!("a list of two images")
    };
    assert_eq!(list.len(), 2);
    for (amp, o) in list.iter().enumerate() {
        let img = o.downcast_ref::<DecoratedImage<u16>>().unwrap();
        assert_eq!((img.image.width(), img.image.height()), (1056, 1153));
        assert_eq!(
            img.metadata.get::<String>("LSSTAMP").unwrap(),
            amp.to_string()
        );
    }
}

/// TestIO_3: the output dataset's ids come from the job identity and `set`
/// (field deep over the D4 of additionalData); one dataset is listed and
/// the file is `%(output)/PS-deep.boost`.
#[test]
fn test_io_3_output_dataset_ids() {
    let output = tempfile::tempdir().unwrap();
    let mut t = tester(Path::new("tests"), output.path());
    t.add_registered(
        "out",
        None,
        Some("lsst.pex.harness.IOStage.OutputStageParallel"),
        Some(policy("TestIO_3.policy")),
    )
    .unwrap();
    let mut cb = Clipboard::new();
    cb.put("root", "root");
    let mut ps = PropertySet::new();
    ps.set("field", "D4").unwrap();
    cb.put("ps", ps);
    cb.put(
        "jobIdentity",
        data_id! { name: "foo", visit: 707911, ccd: 13, snap: 0, filter: "r" },
    );
    let out = t.run(cb, 0).unwrap();
    let list = out.get_datasets("outputDatasets").unwrap();
    assert_eq!(
        list,
        &[Dataset::new(
            "postIsr",
            data_id! { name: "foo", visit: 707911, ccd: 13, snap: 0, filter: "r", field: "deep" }
        )]
    );
    assert!(output.path().join("PS-deep.boost").is_file());
}

/// TestIO_5: additionalData from the job identity dict fills the imSim
/// location; the raw reads with CCDID R23_S11_C00.
#[test]
fn test_io_5_additional_data_from_the_job_identity() {
    let input = tempfile::tempdir().unwrap();
    write_image(
        &input
            .path()
            .join("imSim/imsim_85751839_R23_S11_C00_E000.fits"),
        513,
        2001,
        &[("CCDID", "R23_S11_C00"), ("FILTER", "r")],
    );
    let mut t = tester(input.path(), Path::new("."));
    t.add_registered(
        "in",
        None,
        Some("lsst.pex.harness.IOStage.InputStageParallel"),
        Some(policy("TestIO_5.policy")),
    )
    .unwrap();
    let mut cb = Clipboard::new();
    cb.put(
        "jobIdentity",
        data_id! { visit: 85751839, raft: "R23", sensor: "S11", channel: "C00", snap: "E000" },
    );
    let out = t.run(cb, 0).unwrap();
    let img = image(out.get("rawCameraImage").expect("read"));
    assert_eq!(img.metadata.get::<String>("CCDID").unwrap(), "R23_S11_C00");
    assert_eq!((img.image.width(), img.image.height()), (513, 2001));
}

/// The upstream test's own mapper (tests/minMapper.py), translated: imSim
/// templates under the root, `R:2,3`-style ids written `R23` in paths, every
/// calib read from `flat_r` (its late-binding bug, kept), and `std_raw`
/// setting `LSSTAMP` to "raft sensor channel".
struct MinMapper {
    root: std::path::PathBuf,
}

impl MinMapper {
    fn path(&self, dataset_type: &str, id: &daf::base::DataId) -> std::path::PathBuf {
        let s = |k: &str| {
            let v = id.get(k).map(|v| v.to_string()).unwrap_or_default();
            v.trim_matches('"').replace([':', ','], "")
        };
        let exposure: i64 = id.get("snap").and_then(|v| v.as_i64()).unwrap_or(0);
        let tail = format!(
            "{}_{}_{}_E{exposure:03}.fits",
            s("raft"),
            s("sensor"),
            s("channel")
        );
        match dataset_type {
            "raw" => self.root.join(format!("imsim_{}_{tail}", s("visit"))),
            // minMapper.py binds calibType late: every calib maps like the last, fringe.
            _ => self.root.join(format!("flat_r/imsim_2_{tail}.gz")),
        }
    }
}

impl daf::harness::DataButler for MinMapper {
    fn get(
        &self,
        dataset_type: &str,
        data_id: &daf::base::DataId,
    ) -> daf::harness::Result<Arc<dyn daf::formatters::Persistable>> {
        let path = self.path(dataset_type, data_id);
        let p = Persistence::new(
            Policy::new(),
            FormatterRegistry::with_defaults(),
            StorageRegistry::with_defaults(),
        );
        let mut st = vec![p.retrieve_storage(
            "FitsStorage",
            &LogicalLocation::literal(path.display().to_string()),
        )?];
        let obj = p.retrieve("DecoratedImageU", &mut st, &PropertySet::new())?;
        let mut img = obj
            .downcast_ref::<DecoratedImage<u16>>()
            .expect("a DecoratedImageU")
            .clone();
        if dataset_type == "raw" {
            let s = |k: &str| {
                data_id
                    .get(k)
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            img.metadata
                .set(
                    "LSSTAMP",
                    format!("{} {} {}", s("raft"), s("sensor"), s("channel")),
                )
                .map_err(daf::harness::HarnessError::from)?;
        }
        Ok(Arc::new(img))
    }
    fn put(
        &self,
        _: &dyn daf::formatters::Persistable,
        _: &str,
        _: &daf::base::DataId,
    ) -> daf::harness::Result<()> {
        Err(daf::harness::HarnessError::stage(
            "IOError",
            "MinMapper is read-only",
        ))
    }
    fn dataset_exists(
        &self,
        dataset_type: &str,
        data_id: &daf::base::DataId,
    ) -> daf::harness::Result<bool> {
        Ok(self.path(dataset_type, data_id).is_file())
    }
}

/// TestIO_4: the butler method with the test's own mapper
/// (`mapperName: minMapper.MinMapper`, root `tests/imSim`): the raw from
/// the input datasets, the calibs from the job identity.
#[test]
fn test_io_4_butler_method_with_the_tests_own_mapper() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("tests/imSim");
    write_image(
        &root.join("imsim_85751839_R23_S11_C00_E000.fits"),
        513,
        2001,
        &[("CCDID", "R23_S11_C00")],
    );
    write_image(
        &root.join("flat_r/imsim_2_R23_S11_C00_E000.fits.gz"),
        513,
        2001,
        &[("FILTER", "r")],
    );
    let mut s = Services::with_defaults();
    let base = work.path().to_path_buf();
    s.butler_factory = Some(Arc::new(move |spec: &daf::harness::ButlerSpec| {
        assert_eq!(spec.mapper_name.as_deref(), Some("minMapper.MinMapper"));
        let root = base.join(spec.root.as_deref().unwrap_or("."));
        Ok(Arc::new(MinMapper { root }) as Arc<dyn daf::harness::DataButler>)
    }));
    let mut t = StageTester::with(StageRegistry::with_defaults(), Arc::new(s));
    t.add_registered(
        "in",
        None,
        Some("lsst.pex.harness.IOStage.InputStageParallel"),
        Some(policy("TestIO_4.policy")),
    )
    .unwrap();
    let id =
        data_id! { visit: 85751839, snap: 0, raft: "R:2,3", sensor: "S:1,1", channel: "C:0,0" };
    let mut cb = Clipboard::new();
    cb.put("jobIdentity", id.clone());
    cb.put("inputDatasets", vec![Dataset::new("raw", id)]);
    let out = t.run(cb, 0).unwrap();
    let raw = image(out.get("rawCameraImage").unwrap());
    assert_eq!(
        raw.metadata.get::<String>("LSSTAMP").unwrap(),
        "R:2,3 S:1,1 C:0,0"
    );
    assert_eq!(image(out.get("biasExposure").unwrap()).image.height(), 2001);
    assert_eq!(image(out.get("darkExposure").unwrap()).image.width(), 513);
    assert_eq!(image(out.get("flatExposure").unwrap()).image.height(), 2001);
    assert_eq!(image(out.get("fringeExposure").unwrap()).image.width(), 513);
}
