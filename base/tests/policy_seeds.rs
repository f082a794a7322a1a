//! Every policy example from the seeds (IO stages, SymLink stage, pipeline
//! policies) loads from PAF, equals its YAML translation, and survives a
//! dump / reload in both formats.

use std::path::PathBuf;

use daf_base::policy::PolicyError;
use daf_base::{Policy, PropertySet};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/policy")
        .join(name)
}

const PAIRS: &[&str] = &[
    "io_storage_policy",
    "input_stage_butler",
    "output_stage_datasetid",
    "output_stage_butler",
    "symlink_stage",
    "app_stage_verbatim",
    "pipeline_policy",
];

fn load_pair(stem: &str) -> (Policy, Policy) {
    let paf =
        Policy::load(data(&format!("{stem}.paf"))).unwrap_or_else(|e| panic!("{stem}.paf: {e}"));
    let yaml =
        Policy::load(data(&format!("{stem}.yaml"))).unwrap_or_else(|e| panic!("{stem}.yaml: {e}"));
    (paf, yaml)
}

#[test]
fn every_seed_policy_equals_its_yaml_translation() {
    for stem in PAIRS {
        let (paf, yaml) = load_pair(stem);
        assert!(!paf.names().is_empty(), "{stem} is empty");
        assert_eq!(paf, yaml, "{stem}: PAF and YAML differ");
    }
}

#[test]
fn dump_then_reload_gives_an_equal_policy() {
    for stem in PAIRS {
        let (paf, _) = load_pair(stem);
        let text = paf.to_paf_string().unwrap();
        let back = Policy::from_paf_str(&text, stem).unwrap();
        assert_eq!(back, paf, "{stem} via PAF:\n{text}");
        let text = paf.to_yaml_string().unwrap();
        let back = Policy::from_yaml_str(&text, stem).unwrap();
        assert_eq!(back, paf, "{stem} via YAML:\n{text}");
    }
}

#[test]
fn storage_policy_values() {
    let p = Policy::load(data("io_storage_policy.paf")).unwrap();
    let sp = p
        .get_policy("parameters.outputKeys.diffIm.storagePolicy")
        .unwrap();
    assert_eq!(sp.get::<String>("storage").unwrap(), "FitsStorage");
    assert_eq!(
        sp.get::<String>("location").unwrap(),
        "/lsst/images/%(visitId)/difference1.%03d(sliceId)"
    );
    assert_eq!(
        p.param_names(),
        vec![
            "parameters.outputKeys.diffIm.storagePolicy.storage",
            "parameters.outputKeys.diffIm.storagePolicy.location"
        ]
    );
}

#[test]
fn input_stage_values() {
    let p = Policy::load(data("input_stage_butler.paf")).unwrap();
    assert_eq!(
        p.get::<String>("parameters.butler.mapperName").unwrap(),
        "lsst.obs.lsstSim.LsstSimMapper"
    );
    assert_eq!(
        p.get::<String>("parameters.butler.mapperPolicy.root")
            .unwrap(),
        "%(input)"
    );
    assert!(p
        .get::<bool>("parameters.inputItems.Exposure.datasetId.fromInputDatasets")
        .unwrap());
    assert_eq!(
        p.get_array::<String>("parameters.inputItems.BiasExposure.datasetId.fromJobIdentity")
            .unwrap(),
        vec!["visit", "snap", "raft", "sensor", "channel"]
    );
    assert_eq!(
        p.get_policy("parameters.inputItems").unwrap().names(),
        vec!["Exposure", "BiasExposure"]
    );
}

#[test]
fn output_stage_values() {
    let p = Policy::load(data("output_stage_datasetid.paf")).unwrap();
    let ps = p.get_policy("parameters.outputItems.ps").unwrap();
    assert!(ps.get::<bool>("required").unwrap());
    assert_eq!(ps.get::<String>("datasetId.set.field").unwrap(), "deep");
    assert_eq!(
        ps.get::<String>("storagePolicy.location").unwrap(),
        "%(output)/PS-%(field)-v%(visit)-c%(ccd)-a%(amp).boost"
    );
    assert_eq!(
        p.get::<String>("outputKeys.outputDatasets").unwrap(),
        "outputDatasets"
    );
}

#[test]
fn symlink_values_and_the_verbatim_wiki_copy_error() {
    let p = Policy::load(data("symlink_stage.paf")).unwrap();
    assert_eq!(
        p.get_array::<String>("AdditionalData").unwrap(),
        vec![
            "exposureId=triggerVisitEvent.exposureId",
            "filterName=triggerVisitEvent.filterName"
        ]
    );
    assert_eq!(
        p.get::<String>("Links.destPath").unwrap(),
        "/share/lsst9/DC2root/%(runId)s/ipd/input/%(exposureId)d/%(ccdId)s"
    );
    // The wiki copy lost a closing quote: the string runs on to line 4,
    // where the quote closes it and unquoted text follows.
    let err = Policy::load(data("symlink_stage_verbatim.paf")).unwrap_err();
    match &err {
        PolicyError::Syntax {
            file, line, text, ..
        } => {
            assert!(file.ends_with("symlink_stage_verbatim.paf"));
            assert_eq!(*line, 4);
            assert!(text.starts_with("destPath: \"/share/lsst9"), "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("expecting quoted string value"));
}

#[test]
fn pipeline_policy_appstages_and_includes() {
    let p = Policy::load(data("pipeline_policy.paf")).unwrap();
    assert!(p.get::<bool>("shareDataOn").unwrap());
    let stages = p.get_policy_array("appStage").unwrap();
    let names: Vec<String> = stages
        .iter()
        .map(|s| s.get::<String>("name").unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "SymLinkStage",
            "InputStage",
            "SampleStage",
            "SampleStage",
            "OutputStage"
        ]
    );
    // Includes became sub-policies.
    assert_eq!(
        stages[1]
            .get::<String>("stagePolicy.parameters.inputItems.Exposure.datasetType")
            .unwrap(),
        "raw"
    );
    assert_eq!(
        stages[2].get::<String>("stagePolicy.RunMode").unwrap(),
        "preprocess"
    );
    assert_eq!(stages[2].get::<f64>("stagePolicy.width").unwrap(), 1.0);
    assert_eq!(stages[2].get::<i32>("stagePolicy.iterations").unwrap(), 3);
    assert!(stages[2].get::<bool>("shareData").unwrap());
    assert_eq!(
        stages[0]
            .get::<String>("stagePolicy.Links.sourcePath")
            .unwrap(),
        "/lsst/images/becker/D4/%(filterName)s/output/%(ccdId)s/"
    );
    assert_eq!(
        stages[4]
            .get_array::<String>("stagePolicy.parameters.outputItems.ps.datasetId.fromClipboard")
            .unwrap(),
        vec!["visit", "ccd", "amp"]
    );
    // "None" is a string, quoted or not.
    assert_eq!(stages[3].get::<String>("eventTopic").unwrap(), "None");
}

#[test]
fn property_set_round_trip() {
    let p = Policy::load(data("pipeline_policy.paf")).unwrap();
    let ps: PropertySet = p.clone().into_property_set();
    assert_eq!(ps.value_count("appStage"), 5);
    assert_eq!(
        ps.get_property_set("appStage")
            .unwrap()
            .get::<String>("name")
            .unwrap(),
        "OutputStage"
    );
    let back = Policy::from_property_set(ps.clone());
    assert_eq!(back, p);
    let via_from: Policy = ps.into();
    assert_eq!(via_from, p);
    let ps2: PropertySet = via_from.into();
    assert_eq!(ps2.param_names(), p.param_names());
}
