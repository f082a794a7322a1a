//! LSST's own PAF dictionaries (obs_base `paf-dictionaries`) and the obs_test
//! mapper policy: they load, the policy validates, and the mapping
//! dictionaries find what the partial dataset definitions leave out.

use std::path::PathBuf;

use daf_base::policy::{Dictionary, ProblemCode, ValueKind};
use daf_base::Policy;

fn lsst(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/policy/lsst")
        .join(name)
}

#[test]
fn every_obs_base_dictionary_loads() {
    for (file, target, first) in [
        ("MapperDictionary.paf", "CameraMapper", "calibRoot"),
        ("ExposureMappingDictionary.paf", "Mapping", "template"),
        ("ImageMappingDictionary.paf", "Mapping", "template"),
        (
            "CalibrationMappingDictionary.paf",
            "CalibrationMapping",
            "template",
        ),
        ("DatasetMappingDictionary.paf", "DatasetMapping", "template"),
        ("datatypeDictionary.paf", "datatype", "metadataPolicy"),
    ] {
        let d = Dictionary::load(lsst(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(d.target.as_deref(), Some(target), "{file}");
        assert_eq!(
            d.definitions.keys().next().map(String::as_str),
            Some(first),
            "{file}"
        );
    }
    let d = Dictionary::load(lsst("MapperDictionary.paf")).unwrap();
    let level = d.definition("defaultLevel").unwrap();
    assert_eq!(level.kind, ValueKind::String);
    assert_eq!((level.min_occurs, level.max_occurs), (1, Some(1)));
    // `type: Policy` (capitalised) is a policy type.
    let dt = Dictionary::load(lsst("datatypeDictionary.paf")).unwrap();
    assert_eq!(
        dt.definition("metadataPolicy").unwrap().kind,
        ValueKind::Policy
    );
    assert!(dt.defaults().get::<bool>("convertDateobsToTai").unwrap());
}

#[test]
fn obs_test_mapper_policy_validates_against_the_mapper_dictionary() {
    let p = Policy::load(lsst("testMapper.paf")).unwrap();
    assert!(!p.get::<bool>("needCalibRegistry").unwrap());
    assert_eq!(p.get::<String>("levels.skyTile").unwrap(), "visit");
    assert_eq!(
        p.get::<String>("exposures.raw.template").unwrap(),
        "raw/raw_v%(visit)d_f%(filter)s.fits.gz"
    );
    assert_eq!(
        p.get_array::<String>("datasets.test_config.tables")
            .unwrap(),
        vec!["raw", "raw_skyTile"]
    );
    let d = Dictionary::load(lsst("MapperDictionary.paf")).unwrap();
    assert_eq!(p.validate(&d), Ok(()));
    // Dropping the required defaultLevel is caught.
    let mut q = p.clone();
    q.as_property_set_mut().remove("defaultLevel");
    let e = q.validate(&d).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].code, ProblemCode::MissingRequired);
    assert_eq!(e.problems[0].name, "defaultLevel");
}

#[test]
fn partial_exposure_mappings_need_the_obs_base_defaults() {
    let p = Policy::load(lsst("testMapper.paf")).unwrap();
    let d = Dictionary::load(lsst("ExposureMappingDictionary.paf")).unwrap();
    // `raw` only overrides its template: the rest comes from obs_base.
    let mut raw = p.get_policy("exposures.raw").unwrap();
    let e = raw.validate(&d).unwrap_err();
    let got: Vec<(ProblemCode, &str)> = e
        .problems
        .iter()
        .map(|x| (x.code, x.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (ProblemCode::MissingRequired, "python"),
            (ProblemCode::MissingRequired, "persistable"),
            (ProblemCode::MissingRequired, "tables"),
        ]
    );
    raw.merge_defaults(&d).unwrap();
    assert_eq!(raw.get::<String>("storage").unwrap(), "FitsStorage");
    // A complete dataset mapping validates.
    let ds = Dictionary::load(lsst("DatasetMappingDictionary.paf")).unwrap();
    let cfg = p.get_policy("datasets.test_config").unwrap();
    assert_eq!(cfg.validate(&ds), Ok(()), "{cfg:?}");
}
