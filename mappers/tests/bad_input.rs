//! Bad policies and registries give clear, typed errors.

use std::path::{Path, PathBuf};

use daf_base::data_id;
use daf_mappers::{
    CameraMapper, CameraMapperOptions, Mapper, MapperError, MapperPolicy, PolicyDefaults,
};
use proptest::prelude::*;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/obs_test")
}

fn load(text: &str) -> Result<MapperPolicy, MapperError> {
    MapperPolicy::from_yaml_str(text, "bad.yaml", &PolicyDefaults::none())
}

fn policy_err(text: &str) -> String {
    match load(text) {
        Err(MapperError::Policy(m)) => m,
        Err(other) => panic!("not a policy error: {other}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let e = policy_err("defaultLevel: visit\nexposures:\n  raw: {template: [\n");
    assert!(e.contains("bad.yaml"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn wrong_types_name_the_key_path() {
    let e = policy_err("levels: [1, 2]\n");
    assert!(e.contains("key levels"), "{e}");
    let e = policy_err("needCalibRegistry: maybe\n");
    assert!(e.contains("key needCalibRegistry"), "{e}");
    let e = policy_err("exposures:\n  raw:\n    template: {a: 1}\n");
    assert!(e.contains("key exposures.raw.template"), "{e}");
    let e = policy_err("calibrations:\n  flat:\n    validRange: sometimes\n");
    assert!(e.contains("key calibrations.flat.validRange"), "{e}");
    let e = policy_err("ingest:\n  headerKeys:\n    taiObs: {header: MJD-OBS, convert: magic}\n");
    assert!(e.contains("key ingest.headerKeys.taiObs.convert"), "{e}");
}

#[test]
fn bad_templates_fail_at_load() {
    let e = policy_err("exposures:\n  raw:\n    template: /abs/raw_%(visit)d.fits\n");
    assert!(
        e.contains("exposures.raw.template") && e.contains("absolute"),
        "{e}"
    );
    let e = policy_err("datasets:\n  x:\n    template: x_%(visit.fits\n");
    assert!(e.contains("datasets.x.template"), "{e}");
    let e = policy_err("datasets:\n  x:\n    template: x_%(visit)q\n");
    assert!(e.contains("unknown conversion"), "{e}");
}

#[test]
fn duplicate_dataset_types() {
    let e = policy_err("exposures:\n  raw:\n    template: a\ndatasets:\n  raw:\n    template: b\n");
    assert!(e.contains("defined twice"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dup.paf");
    std::fs::write(
        &p,
        "datasets: {\n  a: {\n    template: \"x\"\n  }\n  a: {\n    template: \"y\"\n  }\n}\n",
    )
    .unwrap();
    let e = MapperPolicy::load(&p, None).unwrap_err().to_string();
    assert!(
        e.contains("datasets.a") && e.contains("defined twice"),
        "{e}"
    );
}

#[test]
fn malformed_paf_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.paf");
    std::fs::write(&p, "#<?cfg paf policy ?>\ndefaultLevel: \"visit\"\nexposures: {\n  raw: {\n    template: \"raw.fits\n  }\n}\n").unwrap();
    let e = MapperPolicy::load(&p, None).unwrap_err().to_string();
    assert!(e.contains("broken.paf:5"), "{e}");
    std::fs::write(&p, "exposures: {\n  raw: {\n    template: \"a\"\n}\n").unwrap();
    // End of file closes open blocks (LSST's PAF rule, which daf_base's
    // PAF reader follows), so this loads.
    let loaded = MapperPolicy::load(&p, None).unwrap();
    let raw = loaded.datasets["raw"].template.as_ref().unwrap();
    assert_eq!(
        raw.format(&daf_base::DataId::new(), &Default::default())
            .unwrap(),
        "a"
    );
    // A stray `}` still names file and line.
    std::fs::write(&p, "exposures: {\n}\n}\n").unwrap();
    let e = MapperPolicy::load(&p, None).unwrap_err().to_string();
    assert!(e.contains("broken.paf:3:"), "{e}");
    let p2 = dir.path().join("policy.ini");
    std::fs::write(&p2, "x").unwrap();
    assert!(MapperPolicy::load(&p2, None).is_err());
    assert!(MapperPolicy::load(&dir.path().join("missing.yaml"), None).is_err());
}

#[test]
fn template_key_no_table_provides_fails_at_load() {
    let policy =
        load("exposures:\n  raw:\n    template: raw/v%(visit)d_c%(ccd)02d.fits\n    tables: raw\n")
            .unwrap();
    let e = CameraMapper::open(policy, data().join("input"), CameraMapperOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("exposures.raw.template") && e.contains("\"ccd\""),
        "{e}"
    );
    // Declared as given: accepted, and then required from the caller.
    let policy = load(
        "givenKeys: [ccd]\nexposures:\n  raw:\n    template: raw/v%(visit)d_c%(ccd)02d_f%(filter)s.fits\n    tables: raw\n",
    )
    .unwrap();
    let m =
        CameraMapper::open(policy, data().join("input"), CameraMapperOptions::default()).unwrap();
    assert_eq!(
        m.map("raw", &data_id! {visit: 1, ccd: 2}, true)
            .unwrap()
            .locations,
        vec!["raw/v1_c02_fg.fits"]
    );
}

#[test]
fn registry_problems_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    // Explicit registry path that does not exist.
    let policy = load("registryPath: nope.sqlite3\nexposures:\n  raw:\n    template: r%(visit)d.fits\n    tables: raw\n").unwrap();
    let e = CameraMapper::open(policy, dir.path(), CameraMapperOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope.sqlite3") && e.contains("no such registry file"),
        "{e}"
    );
    // Corrupt registry.
    std::fs::write(dir.path().join("registry.sqlite3"), vec![7u8; 2048]).unwrap();
    let policy =
        load("exposures:\n  raw:\n    template: r%(visit)d_%(filter)s.fits\n    tables: raw\n")
            .unwrap();
    let e = CameraMapper::open(policy, dir.path(), CameraMapperOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("registry.sqlite3") && e.contains("not a readable SQLite registry"),
        "{e}"
    );
    // Missing table: reported at lookup with the table name.
    let policy = load("givenKeys: [filter]\nexposures:\n  raw:\n    template: r%(visit)d_%(filter)s.fits\n    tables: no_such_table\n").unwrap();
    let e = CameraMapper::open(policy, data().join("input"), CameraMapperOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no such table: no_such_table") && e.contains("exposures.raw"),
        "{e}"
    );
    // A table that only a lookup touches: reported at lookup.
    let policy =
        load("exposures:\n  raw:\n    template: r%(visit)d.fits\n    tables: [raw, gone]\n")
            .unwrap();
    let m =
        CameraMapper::open(policy, data().join("input"), CameraMapperOptions::default()).unwrap();
    let e = m
        .query_metadata("raw", &["visit".into()], &data_id! {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such table: gone"), "{e}");
    // needCalibRegistry without one.
    let policy = load("needCalibRegistry: true\ncalibRegistryPath: calib.sqlite3\n").unwrap();
    let e = CameraMapper::open(
        policy,
        dir.path().join("nowhere"),
        CameraMapperOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("calib.sqlite3"), "{e}");
}

#[test]
fn bad_data_ids() {
    let m = CameraMapper::from_policy_file(
        &data().join("policy/testMapper.yaml"),
        data().join("input"),
    )
    .unwrap();
    let e = m.map("raw", &data_id! {visit: "one"}, false).unwrap_err();
    assert!(matches!(e, MapperError::BadDataId { .. }), "{e}");
    for bad in ["g/../../etc", "..", "a\0b"] {
        let e = m
            .map("raw", &data_id! {visit: 1, filter: bad}, true)
            .unwrap_err();
        assert!(matches!(e, MapperError::Template { .. }), "{e}");
    }
    assert!(matches!(
        m.map("nosuchtype", &data_id! {}, false),
        Err(MapperError::UnknownDatasetType { .. })
    ));
    // deepCoadd has no tables: missing keys cannot be looked up.
    let e = m
        .map("deepCoadd", &data_id! {tract: 0, patch: "1,1"}, true)
        .unwrap_err();
    assert!(matches!(e, MapperError::BadDataId { .. }), "{e}");
}

#[test]
fn key_rewrites_make_patch_commas_safe() {
    let policy = load(
        "keyRewrites:\n  patch: {',': x}\ndatasets:\n  coadd:\n    template: c/%(tract)d/%(patch)s.fits\n",
    )
    .unwrap();
    let m =
        CameraMapper::open(policy, data().join("input"), CameraMapperOptions::default()).unwrap();
    assert_eq!(
        m.map("coadd", &data_id! {tract: 0, patch: "8,6"}, true)
            .unwrap()
            .locations,
        vec!["c/0/8x6.fits"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary PAF text never panics: it parses or names a line.
    #[test]
    fn paf_garbage_never_panics(text in "[a-z:{}\" \n#.0-9]{0,200}") {
        let defaults = daf_mappers::PolicyDefaults::none();
        match daf_mappers::MapperPolicy::from_paf_str(&text, "fuzz.paf", &defaults) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.to_string().contains("fuzz.paf:")),
        }
    }

    /// Arbitrary template text never panics.
    #[test]
    fn template_garbage_never_panics(text in "[a-z%()0-9.sdf/\\-]{0,60}", v in any::<i64>(), s in "[a-z,./]{0,10}") {
        if let Ok(t) = daf_mappers::PathTemplate::parse(&text) {
            let mut id = daf_base::DataId::new();
            for (k, kt) in t.keys() {
                match kt {
                    daf_mappers::KeyType::Str => id.insert(k.clone(), s.clone()),
                    _ => id.insert(k.clone(), v),
                }
            }
            if let Ok(p) = t.format(&id, &Default::default()) {
                prop_assert!(!p.starts_with('/'));
            }
        }
    }

    /// Garbage FITS headers are errors, never panics.
    #[test]
    fn fits_header_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.fits");
        std::fs::write(&p, &bytes).unwrap();
        let _ = daf_mappers::fits_header::read_header(&p, 1);
    }
}
