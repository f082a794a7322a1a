//! Legacy (Gen2) repositories as their users meet them (issue #16 §3–4,
//! #15 §3): the obs_test repository opened as it is with `--policy` /
//! `ButlerBuilder::policy`, `_parent`-only folders, components and Gen2's
//! derived dataset types on the command line, `FitsCatalogStorage`,
//! `YamlStorage`, raw read as an exposure, `daf create --policy`, ingest
//! through the template, export/import keeping the definitions. Expected
//! values are those of LSST's obs_test / obs_base tests on this fixture
//! (tests/data/obs_test/README.md §5).

use std::path::{Path, PathBuf};

mod common;
use common::*;

use daf::base::{data_id, PropertySet};
use daf::butler::{Butler, ButlerError};
use daf::formatters::image::*;
use daf::formatters::SourceCatalog;

fn here() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn policy() -> PathBuf {
    here().join("tests/data/obs_test/policy/testMapper.yaml")
}

/// A private copy of the obs_test input repository (`_mapper`,
/// `registry.sqlite3`, raws, defects): nothing else, no daf files.
fn legacy_copy(dir: &Path) -> PathBuf {
    let src = here().join("tests/data/obs_test/input");
    let dst = dir.join("input");
    for sub in ["", "raw", "defects"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
    }
    for f in [
        "_mapper",
        "registry.sqlite3",
        "calibRegistry.sqlite3",
        "defects/defects.fits",
        "raw/raw_v1_fg.fits.gz",
        "raw/raw_v2_fg.fits.gz",
        "raw/raw_v3_fr.fits.gz",
    ] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    dst
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr_of(args: &[&str]) -> String {
    let o = daf(args);
    assert!(!o.status.success(), "daf {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn exposure(w: usize, h: usize) -> ExposureF {
    let px: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
    let image = ImageF::from_vec(w, h, px).unwrap();
    let mut e = ExposureF::new(MaskedImageF::from_parts(image, Mask::new(w, h), None).unwrap());
    e.filter = Some("g".into());
    e
}

#[test]
fn cli_opens_a_legacy_repository_with_policy() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let (i, p) = (s(&input), s(&policy()).to_string());
    let p = p.as_str();

    // without a policy: says how to give one
    let e = stderr_of(&["get", i, "raw", "visit=1"]);
    assert!(e.contains("--policy"), "{e}");

    // queryMetadata("raw", [visit, filter], {filter: g}) → (1, g), (2, g)
    let q = json(&[
        "query",
        i,
        "--dataset-type",
        "raw",
        "--keys",
        "visit,filter",
        "--where",
        "filter = 'g'",
        "--policy",
        p,
        "--json",
    ]);
    assert_eq!(
        q,
        serde_json::json!([{"visit": 1, "filter": "g"}, {"visit": 2, "filter": "g"}])
    );

    // the datasets of a type: the registry's data ids whose files exist
    let ds = json(&[
        "query",
        i,
        "--dataset-type",
        "raw",
        "--where",
        "visit >= 2",
        "--policy",
        p,
        "--json",
    ]);
    let rows = ds.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{ds}");
    assert_eq!(
        rows[1]["data_id"],
        serde_json::json!({"visit": 3, "filter": "r"})
    );
    assert_eq!(rows[1]["path"], "raw/raw_v3_fr.fits.gz", "{ds}");
    assert_eq!(rows[1]["size"], 2_223_459, "{ds}");

    // get raw visit=1: 1026 × 2000, filter completed from the registry
    let g = json(&["get", i, "raw", "visit=1", "--policy", p, "--json"]);
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
    assert_eq!(g["data_id"]["filter"], "g", "{g}");
    assert_eq!(g["header"]["EXPTIME"], 15.0, "{g}");

    // components as the API takes them, and Gen2's derived types
    let m = json(&["get", i, "raw.metadata", "visit=1", "--policy", p, "--json"]);
    assert_eq!(m["fields"]["EXPTIME"], 15.0, "{m}");
    assert_eq!(m["fields"]["OBSID"], 890104911, "{m}");
    let md = json(&["get", i, "raw_md", "visit=2", "--policy", p, "--json"]);
    assert_eq!(md["fields"]["FILTER"].as_str().unwrap().trim(), "g", "{md}");
    let f = json(&["get", i, "raw_filename", "visit=3", "--policy", p, "--json"]);
    assert_eq!(
        f["fields"]["filename"],
        s(&input.join("raw/raw_v3_fr.fits.gz")),
        "{f}"
    );
    let sub = json(&[
        "get", i, "raw_sub", "visit=1", "llcX=0", "llcY=0", "width=8", "height=3", "--policy", p,
        "--json",
    ]);
    assert_eq!(sub["shape"], serde_json::json!([8, 3]), "{sub}");

    // ccdExposureId / ccdExposureId_bits: obs_test expects 1 and 41 for visit 1
    let id = json(&[
        "get",
        i,
        "ccdExposureId",
        "visit=1",
        "--policy",
        p,
        "--json",
    ]);
    assert_eq!(id["fields"]["ccdExposureId"], 1, "{id}");
    let bits = json(&[
        "get",
        i,
        "ccdExposureId_bits",
        "visit=1",
        "--policy",
        p,
        "--json",
    ]);
    assert_eq!(bits["fields"]["ccdExposureId_bits"], 41, "{bits}");

    // defects: a BaseCatalog through FitsCatalogStorage, 504 rows
    let def = json(&["get", i, "defects", "--policy", p, "--json"]);
    assert_eq!(def["storage"], "FitsCatalogStorage", "{def}");
    assert_eq!(def["rows"], 504, "{def}");

    // export from the legacy repository, import into a new daf repository
    let yaml = d.path().join("raws.yaml");
    ok(&[
        "export",
        i,
        "--dataset-type",
        "raw",
        "--policy",
        p,
        "-o",
        s(&yaml),
    ]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains("mapper: lsst.obs.test.testMapper.TestMapper"),
        "{text}"
    );
    let migrated = d.path().join("migrated");
    ok(&["import", s(&migrated), s(&yaml)]);
    let v = json(&["verify", s(&migrated), "--json"]);
    assert_eq!(v["checked"], 3, "{v}");
    let g = json(&["get", s(&migrated), "raw", "visit=3", "--json"]);
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
    assert_eq!(g["data_id"]["filter"], "r", "{g}");
    let e = stderr_of(&["export", i, "--policy", p]);
    assert!(e.contains("--dataset-type"), "{e}");

    // nothing was written into the legacy repository
    let mut names: Vec<String> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_mapper",
            "calibRegistry.sqlite3",
            "defects",
            "raw",
            "registry.sqlite3"
        ]
    );
}

#[test]
fn builder_policy_opens_legacy_inputs_and_outputs_inherit_it() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let out = d.path().join("out");
    let b = Butler::builder()
        .input(input.as_path())
        .output(out.as_path())
        .policy(policy())
        .build()
        .unwrap();
    assert_eq!(b.policy(), Some(policy().as_path()));
    let raw: DecoratedImageU = b.get("raw", &data_id! {visit: 1}).unwrap();
    assert_eq!(raw.image.get(0, 0), 966);
    b.put(&exposure(4, 3), "calexp", &data_id! {visit: 1})
        .unwrap();
    assert!(out.join("calexp/calexp_v1_fg.fits").is_file());

    // the output recorded the mapper and its policy: it opens alone
    let cfg = std::fs::read_to_string(out.join("repositoryCfg.yaml")).unwrap();
    assert!(cfg.contains("lsst.obs.test.testMapper.TestMapper"), "{cfg}");
    assert!(cfg.contains(s(&policy())), "{cfg}");
    let again = Butler::builder().input(out.as_path()).build().unwrap();
    let back: ExposureF = again.get("calexp", &data_id! {visit: 1}).unwrap();
    assert_eq!(back.width(), 4);
    // ... and its legacy parent through it
    let raw3: DecoratedImageU = again.get("raw", &data_id! {visit: 3}).unwrap();
    assert_eq!(raw3.image.get(0, 0), 963);
}

#[test]
fn parent_only_legacy_folder_inherits_its_parents_mapper() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let rerun = d.path().join("rerun");
    std::fs::create_dir_all(&rerun).unwrap();
    std::os::unix::fs::symlink(&input, rerun.join("_parent")).unwrap();

    let r = daf::butler::Repository::open(&rerun, daf::butler::repository::Mode::Read).unwrap();
    assert_eq!(
        r.cfg.mapper.as_deref(),
        Some("lsst.obs.test.testMapper.TestMapper")
    );

    // put calexp into the Gen2 output (its mapper is the parent's)
    let b = Butler::builder()
        .output(rerun.as_path())
        .policy(policy())
        .build()
        .unwrap();
    b.put(&exposure(5, 2), "calexp", &data_id! {visit: 2})
        .unwrap();
    assert!(rerun.join("calexp/calexp_v2_fg.fits").is_file());
    let back: ExposureF = b.get("calexp", &data_id! {visit: 2}).unwrap();
    assert_eq!((back.width(), back.height()), (5, 2));

    // `_parent` links in a cycle: an error, not a hang
    let (a, c) = (d.path().join("a"), d.path().join("c"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&c).unwrap();
    std::os::unix::fs::symlink("../c", a.join("_parent")).unwrap();
    std::os::unix::fs::symlink("../a", c.join("_parent")).unwrap();
    let e = Butler::builder()
        .input(a.as_path())
        .policy(policy())
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("cycle"), "{e}");

    // the CLI reads through it too
    let g = json(&[
        "get",
        s(&rerun),
        "raw",
        "visit=2",
        "--policy",
        s(&policy()),
        "--json",
    ]);
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
}

#[test]
fn raw_reads_as_an_exposure_and_yaml_metadata_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let out = d.path().join("out");
    let b = Butler::builder()
        .input(input.as_path())
        .output(out.as_path())
        .policy(policy())
        .build()
        .unwrap();

    // raw as an Exposure (Gen2's std_raw): filter, exposure time, start
    let e: ExposureU = b.get("raw", &data_id! {visit: 1}).unwrap();
    assert_eq!((e.width(), e.height()), (1026, 2000));
    assert_eq!(e.filter.as_deref(), Some("g"));
    assert_eq!(e.exposure_time, Some(15.0));
    let start = e.obs_date.expect("MJD-OBS");
    assert!(
        start
            .to_iso(daf::base::Timescale::Tai)
            .starts_with("1999-01-17T04:53:06"),
        "{start:?}"
    );
    // ... and its detector (obs_test's tests: id 0, name "0", serial
    // "0000011"), from the camera description beside the policy, as the
    // raw header names none
    let det = e.detector.clone().expect("raw has a detector");
    assert_eq!(
        (det.id, det.name.as_str(), det.serial.as_str()),
        (0, "0", "0000011")
    );
    assert_eq!(det.kind, DetectorType::Science);
    // a put/get round trip keeps it, as DETECTOR/DETNAME/DETSER/DETTYPE cards
    let mut calexp = exposure(4, 3);
    calexp.detector = Some(det.clone());
    b.put(&calexp, "calexp", &data_id! {visit: 1}).unwrap();
    let back: ExposureF = b.get("calexp", &data_id! {visit: 1}).unwrap();
    assert_eq!(back.detector.as_ref(), Some(&det));
    assert!(
        !back.metadata.exists("DETSER"),
        "the cards became the field"
    );
    let md: PropertySet = b.get("calexp_md", &data_id! {visit: 1}).unwrap();
    assert_eq!(md.get::<String>("DETSER").unwrap().trim(), "0000011");
    assert_eq!(md.get::<String>("DETNAME").unwrap().trim(), "0");
    assert_eq!(md.get_as_i64("DETECTOR").unwrap(), 0);
    // a header's detector wins over the camera description's
    let mut other = exposure(4, 3);
    other.detector = Some(Detector::new(7, "R22_S00").with_serial("X1"));
    b.put(&other, "calexp", &data_id! {visit: 2}).unwrap();
    let back: ExposureF = b.get("calexp", &data_id! {visit: 2}).unwrap();
    let d = back.detector.unwrap();
    assert_eq!(
        (d.id, d.name.as_str(), d.serial.as_str()),
        (7, "R22_S00", "X1")
    );

    // a raw is not an ExposureF: the error names what it is
    let err = b
        .get::<ExposureF>("raw", &data_id! {visit: 1})
        .unwrap_err()
        .to_string();
    assert!(err.contains("ExposureU"), "{err}");

    // processCcd_metadata: a PropertySet in YamlStorage
    let mut md = PropertySet::new();
    md.set("nStars", 42i64).unwrap();
    md.set("calib.zeroPoint", 27.5).unwrap();
    md.set("label", "daf").unwrap();
    b.put(&md, "processCcd_metadata", &data_id! {visit: 1})
        .unwrap();
    let file = out.join("processCcd_metadata/v1_fg.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("!<lsst.daf.base.PropertySet>"), "{text}");
    let back: PropertySet = b.get("processCcd_metadata", &data_id! {visit: 1}).unwrap();
    assert_eq!(back.get_as_i64("nStars").unwrap(), 42);
    assert_eq!(back.get_as_f64("calib.zeroPoint").unwrap(), 27.5);
    assert_eq!(back.get::<String>("label").unwrap(), "daf");

    // test_config: a pex_config file (ConfigStorage), as Gen2 wrote one
    std::fs::create_dir_all(out.join("config")).unwrap();
    std::fs::write(
        out.join("config/test.py"),
        "import lsst.obs.test\n\
         assert type(config)==lsst.obs.test.TestConfig, 'config is of type %s' % type(config)\n\
         # Write sources?\nconfig.doWriteSources=True\n\
         config.isr.retarget(target=lsst.ip.isr.IsrTask, ConfigClass=lsst.ip.isr.IsrTaskConfig)\n\
         config.isr.fwhm=1.0\nconfig.isr.saturatedMaskName='SAT'\n\
         config.isr.keysToRemove=[]\nconfig.isr.doDark=None\n\
         config.measurement.plugins['base_PsfFlux'].badMaskPlanes=['BAD',\n    'SAT']\n\
         config.stars=[1, 2,\n 3]\n",
    )
    .unwrap();
    let cfg: PropertySet = b.get("test_config", &data_id! {}).unwrap();
    assert!(cfg.get::<bool>("doWriteSources").unwrap());
    assert_eq!(cfg.get_as_f64("isr.fwhm").unwrap(), 1.0);
    assert_eq!(cfg.get::<String>("isr.saturatedMaskName").unwrap(), "SAT");
    assert!(!cfg.exists("isr.doDark") && !cfg.exists("isr.keysToRemove"));
    assert_eq!(
        cfg.get_array::<String>("measurement.plugins.base_PsfFlux.badMaskPlanes")
            .unwrap(),
        ["BAD", "SAT"]
    );
    assert_eq!(cfg.get_array::<i64>("stars").unwrap(), [1, 2, 3]);
    // and written back in the same form
    b.put_with(
        &cfg,
        "test_config",
        &data_id! {},
        &daf::butler::PutOptions::clobber(),
    )
    .unwrap();
    let text = std::fs::read_to_string(out.join("config/test.py")).unwrap();
    assert!(text.contains("config.isr.fwhm=1.0\n"), "{text}");
    assert!(text.contains("config.stars=[1, 2, 3]\n"), "{text}");
    let again: PropertySet = b.get("test_config", &data_id! {}).unwrap();
    assert_eq!(again.get_array::<i64>("stars").unwrap(), [1, 2, 3]);

    // the defects catalog through the API
    let cat: SourceCatalog = b.get("defects", &data_id! {}).unwrap();
    assert_eq!(cat.len(), 504);
    assert!(cat.field_index("SHAPE").is_some());
}

#[test]
fn subset_with_a_wrong_typed_value_names_the_key_and_type() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let b = Butler::builder()
        .input(input.as_path())
        .policy(policy())
        .build()
        .unwrap();
    assert_eq!(
        b.subset("raw", None, &data_id! {filter: "g"})
            .unwrap()
            .len(),
        2
    );
    for id in [
        data_id! {visit: "foo"},
        data_id! {visit: "foo", filter: "g"},
    ] {
        let e = b.subset("raw", None, &id).unwrap_err();
        assert!(matches!(e, ButlerError::BadDataId { .. }), "{e}");
        let m = e.to_string();
        assert!(m.contains("\"visit\"") && m.contains("integer"), "{m}");
    }
}

#[test]
fn create_with_policy_then_ingest_takes_ids_from_names() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let repo = d.path().join("repo");
    let r = s(&repo);
    // `daf create REPO --policy P` makes a CameraMapper repository
    let out = ok(&["create", r, "--policy", s(&policy())]);
    assert!(out.contains("mapper CameraMapper"), "{out}");
    let p = json(&["dump-policy", r, "--json"]);
    assert_eq!(p[0]["mapper"], "CameraMapper", "{p}");
    assert_eq!(p[0]["datasets"]["raw"]["keys"]["visit"], "Int", "{p}");
    let e = stderr_of(&[
        "create",
        s(&d.path().join("x")),
        "--policy",
        s(&policy()),
        "--dataset",
        RAW,
    ]);
    assert!(e.contains("--dataset"), "{e}");

    // ingest raw/*.fits.gz: data ids from the names, through the template
    let raws: Vec<String> = ["raw_v1_fg", "raw_v2_fg", "raw_v3_fr"]
        .iter()
        .map(|n| s(&input.join(format!("raw/{n}.fits.gz"))).to_string())
        .collect();
    let mut args = vec!["ingest", r];
    args.extend(raws.iter().map(String::as_str));
    let o = daf(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("data ids from file names through the raw template"),
        "{err}"
    );
    let q = json(&[
        "query",
        r,
        "--dataset-type",
        "raw",
        "--keys",
        "visit,filter",
        "--json",
    ]);
    assert_eq!(
        q,
        serde_json::json!([
            {"visit": 1, "filter": "g"}, {"visit": 2, "filter": "g"}, {"visit": 3, "filter": "r"}
        ])
    );
    let g = json(&["get", r, "raw", "visit=3", "--json"]);
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");

    // export carries the definitions: an import into a new repository reads
    let yaml = d.path().join("export.yaml");
    ok(&["export", r, "-o", s(&yaml)]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("mapper: CameraMapper"), "{text}");
    let fresh = d.path().join("fresh");
    ok(&["import", s(&fresh), s(&yaml)]);
    let g = json(&["get", s(&fresh), "raw", "visit=2", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["data_id"]["filter"], "g", "{g}");
}

/// `daf get REPO raw visit=1 --policy …` prints raw's detector, from the
/// camera description beside the policy (obs_test's tests expect id 0,
/// name "0", serial "0000011"); a policy with no camera description gives
/// no detector, and a bad description is a clear error.
#[test]
fn cli_get_raw_prints_its_detector() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let p = policy();
    let g = json(&[
        "get",
        s(&input),
        "raw",
        "visit=1",
        "--policy",
        s(&p),
        "--json",
    ]);
    assert_eq!(
        g["detector"],
        serde_json::json!({"id": 0, "name": "0", "serial": "0000011", "type": "SCIENCE"}),
        "{g}"
    );
    let y = ok(&["get", s(&input), "raw", "visit=3", "--policy", s(&p)]);
    assert!(
        y.contains("serial: '0000011'") || y.contains("serial: \"0000011\""),
        "{y}"
    );

    // the same policy without camera.yaml beside it: no detector is invented
    let bare = d.path().join("bare");
    std::fs::create_dir_all(bare.join("obs_base")).unwrap();
    std::fs::copy(&p, bare.join("testMapper.yaml")).unwrap();
    for e in std::fs::read_dir(p.parent().unwrap().join("obs_base")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), bare.join("obs_base").join(e.file_name())).unwrap();
        }
    }
    let bare_policy = bare.join("testMapper.yaml");
    let g = json(&[
        "get",
        s(&input),
        "raw",
        "visit=1",
        "--policy",
        s(&bare_policy),
        "--json",
    ]);
    assert!(g.get("detector").is_none(), "{g}");
    let b = Butler::builder()
        .input(input.as_path())
        .policy(&bare_policy)
        .build()
        .unwrap();
    let e: ExposureU = b.get("raw", &data_id! {visit: 1}).unwrap();
    assert_eq!(e.detector, None);

    // a camera description that does not parse is named in the error
    std::fs::write(
        bare.join("camera.yaml"),
        "name: test\ndetectors: [{id: x}]\n",
    )
    .unwrap();
    let err = stderr_of(&[
        "get",
        s(&input),
        "raw",
        "visit=1",
        "--policy",
        s(&bare_policy),
    ]);
    assert!(err.contains("camera.yaml"), "{err}");
}

/// `daf dump-policy` of a legacy repository prints each dataset type's
/// template, storage options and the rest of the merged policy entry.
#[test]
fn dump_policy_prints_templates_and_storage_options() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let pol = d.path().join("policy");
    std::fs::create_dir_all(pol.join("obs_base")).unwrap();
    for e in std::fs::read_dir(policy().parent().unwrap().join("obs_base")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), pol.join("obs_base").join(e.file_name())).unwrap();
        }
    }
    let text = std::fs::read_to_string(policy()).unwrap();
    let old = "  calexp:\n    template: calexp/calexp_v%(visit)d_f%(filter)s.fits\n";
    assert!(text.contains(old));
    let text = text.replace(
        old,
        &format!("{old}    storageOptions:\n      compression: RICE_1\n      quantize_level: 16\n"),
    );
    let p = pol.join("testMapper.yaml");
    std::fs::write(&p, text).unwrap();
    let v = json(&["dump-policy", s(&input), "--policy", s(&p), "--json"]);
    let ds = &v[0]["datasets"];
    assert_eq!(
        ds["raw"]["template"], "raw/raw_v%(visit)d_f%(filter)s.fits.gz",
        "{}",
        ds["raw"]
    );
    assert_eq!(ds["raw"]["storage"], "FitsStorage");
    assert_eq!(ds["raw"]["persistable"], "DecoratedImageU");
    assert_eq!(
        ds["calexp"]["template"],
        "calexp/calexp_v%(visit)d_f%(filter)s.fits"
    );
    assert_eq!(
        ds["calexp"]["storageOptions"],
        serde_json::json!({"compression": "RICE_1", "quantize_level": 16}),
        "{}",
        ds["calexp"]
    );
    assert_eq!(ds["defects"]["storage"], "FitsCatalogStorage");
    // the YAML form too
    let y = ok(&["dump-policy", s(&input), "--policy", s(&p)]);
    assert!(
        y.contains("template: raw/raw_v%(visit)d_f%(filter)s.fits.gz"),
        "{y}"
    );
    assert!(y.contains("compression: RICE_1"), "{y}");
}

/// A policy lent to a Gen2 parent (an output made with `daf create --mapper
/// CameraMapper --policy P --parent GEN2`) serves `daf run`'s InputStage as
/// it serves `daf query`: the stage reads the parent's raw.
#[test]
fn daf_run_input_stage_reads_through_a_lent_policy() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let out = d.path().join("out");
    ok(&[
        "create",
        s(&out),
        "--mapper",
        "CameraMapper",
        "--policy",
        s(&policy()),
        "--parent",
        s(&input),
    ]);
    let q = json(&[
        "query",
        s(&out),
        "--dataset-type",
        "raw",
        "--keys",
        "visit",
        "--json",
    ]);
    assert_eq!(
        q,
        serde_json::json!([{"visit": 1}, {"visit": 2}, {"visit": 3}]),
        "{q}"
    );
    let pipeline = d.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "appStage:\n  - name: input\n    parallelClass: InputStageParallel\n    stagePolicy:\n      parameters:\n        butler:\n          mapperPolicy:\n            root: \"%(repo)\"\n        inputItems:\n          raw:\n            datasetType: raw\n            timeout: 2\n            datasetId:\n              fromJobIdentity: [visit]\n",
    )
    .unwrap();
    let events = d.path().join("events.jsonl");
    std::fs::write(&events, "{\"jobIdentity\": {\"visit\": 3}}\n").unwrap();
    let dump = d.path().join("dump.json");
    let o = daf(&[
        "run",
        s(&pipeline),
        "--slices",
        "1",
        "--events",
        s(&events),
        &format!("--location=repo={}", out.display()),
        "--dump",
        s(&dump),
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    let slice = &report["visits"][0]["slices"][0];
    assert!(slice["failure"].is_null(), "{slice}");
    assert!(slice["summary"].get("raw").is_some(), "{slice}");
}

/// `-v` tells a user debugging a `daf get` what happened: the repository
/// opened (mode, registry, datastore), the mapper and its policy, the
/// mapper's registry, and the path the data id resolved to; without `-v`
/// none of it is printed.
#[test]
fn verbose_get_says_what_was_opened_and_resolved() {
    let d = tempfile::tempdir().unwrap();
    let input = legacy_copy(d.path());
    let p = policy();
    let o = daf(&["get", s(&input), "raw", "visit=1", "--policy", s(&p), "-v"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = String::from_utf8_lossy(&o.stderr);
    for want in [
        "repository opened",
        "mode=\"read-only\"",
        "datastore=local folder",
        "mapper chosen",
        "lsst.obs.test.testMapper.TestMapper",
        "testMapper.yaml",
        "camera mapper opened",
        "registry.sqlite3",
        "camera=\"test\"",
        "dataset located",
        "raw/raw_v1_fg.fits.gz",
        "by=\"mapper\"",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    // -vv adds the registry query counts of a query
    let o = daf(&[
        "query",
        s(&input),
        "--dataset-type",
        "raw",
        "--keys",
        "visit",
        "--policy",
        s(&p),
        "-vv",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("mapper registry query") && e.contains("rows=3"),
        "{e}"
    );
    let o = daf(&["get", s(&input), "raw", "visit=1", "--policy", s(&p)]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("repository opened"), "{e}");
}
