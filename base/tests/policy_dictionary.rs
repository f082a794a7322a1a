//! Dictionaries: definitions, defaults, validation collecting every problem.

use std::path::PathBuf;

use daf_base::policy::{Dictionary, PolicyError, ProblemCode, ValueKind};
use daf_base::Policy;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/policy")
        .join(name)
}

fn io_dict() -> Dictionary {
    Dictionary::load(data("io_stage_dict.paf")).unwrap()
}

fn dict(text: &str) -> Result<Dictionary, PolicyError> {
    Dictionary::from_policy(&Policy::from_paf_str(text, "dict.paf").unwrap())
}

fn problems(p: &Policy, d: &Dictionary) -> Vec<(ProblemCode, String)> {
    match p.validate(d) {
        Ok(()) => vec![],
        Err(e) => e.problems.into_iter().map(|x| (x.code, x.name)).collect(),
    }
}

#[test]
fn io_dictionary_loads_from_paf_and_yaml_alike() {
    let d = io_dict();
    assert_eq!(d, Dictionary::load(data("io_stage_dict.yaml")).unwrap());
    assert_eq!(
        Policy::load(data("io_stage_dict.paf")).unwrap(),
        Policy::load(data("io_stage_dict.yaml")).unwrap()
    );
    assert_eq!(d.target.as_deref(), Some("IOStage"));
    let params = d.definition("parameters").unwrap();
    assert_eq!(params.kind, ValueKind::Policy);
    assert_eq!((params.min_occurs, params.max_occurs), (1, Some(1)));
    let nested = params.dictionary.as_ref().unwrap();
    let run_mode = nested.definition("runMode").unwrap();
    assert_eq!(
        run_mode.allowed_values(),
        vec!["\"preprocess\"", "\"postprocess\"", "\"process\""]
    );
    assert_eq!(
        d.definition("inputKeys")
            .unwrap()
            .dictionary
            .as_ref()
            .unwrap()
            .definition("jobIdentity")
            .unwrap()
            .description
            .as_deref(),
        Some("Key of the job identity dictionary from the JobOffice")
    );
}

#[test]
fn seed_io_stage_policies_validate() {
    let d = io_dict();
    for f in [
        "input_stage_butler.paf",
        "output_stage_datasetid.paf",
        "output_stage_butler.paf",
        "input_stage_butler.yaml",
    ] {
        let p = Policy::load(data(f)).unwrap();
        assert_eq!(problems(&p, &d), vec![], "{f}");
    }
    // The wiki's storagePolicy example puts outputKeys under parameters.
    let p = Policy::load(data("io_storage_policy.paf")).unwrap();
    assert_eq!(
        problems(&p, &d),
        vec![(
            ProblemCode::UnknownName,
            "parameters.outputKeys".to_string()
        )]
    );
}

#[test]
fn every_problem_is_collected() {
    let p = Policy::load(data("io_stage_bad.paf")).unwrap();
    let err = p.validate(&io_dict()).unwrap_err();
    let got: Vec<(ProblemCode, &str)> = err
        .problems
        .iter()
        .map(|x| (x.code, x.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (ProblemCode::WrongType, "inputKeys.jobIdentity"),
            (ProblemCode::TooManyValues, "parameters"),
            (ProblemCode::ValueDisallowed, "parameters[0].runMode"),
            (
                ProblemCode::MissingRequired,
                "parameters[0].butler.mapperName"
            ),
            (ProblemCode::TooManyValues, "parameters[0].inputItems"),
            (ProblemCode::UnknownName, "extraKey"),
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("policy validation found 6 problem(s):"),
        "{text}"
    );
    assert!(text.contains(
        "\n  VALUE_DISALLOWED parameters[0].runMode: \"sometimes\" is not one of \"preprocess\", \"postprocess\", \"process\""
    ), "{text}");
    assert!(text.contains("WRONG_TYPE inputKeys.jobIdentity: expected string, found int"));
    // It converts into a PolicyError.
    let e: PolicyError = err.into();
    assert!(matches!(e, PolicyError::Validation(_)));
}

#[test]
fn merge_defaults_fills_missing_names_recursively() {
    let d = io_dict();
    let mut p =
        Policy::from_paf_str("parameters: {\n butler: {\n mapperName: M\n}\n}\n", "p").unwrap();
    p.merge_defaults(&d).unwrap();
    assert_eq!(p.get::<String>("parameters.runMode").unwrap(), "process");
    assert_eq!(
        p.get::<String>("parameters.butler.mapperName").unwrap(),
        "M"
    );
    // Absent sub-policies come from their nested dictionaries' defaults.
    assert_eq!(
        p.get::<String>("inputKeys.jobIdentity").unwrap(),
        "jobIdentity"
    );
    assert_eq!(
        p.get::<String>("outputKeys.outputDatasets").unwrap(),
        "outputDatasets"
    );
    // Existing names keep their values and their order.
    assert_eq!(p.names(), vec!["parameters", "inputKeys", "outputKeys"]);
    assert_eq!(p.validate(&d), Ok(()));
    // Defaults alone.
    let defaults = d.defaults();
    assert_eq!(
        defaults.param_names(),
        vec![
            "inputKeys.inputDatasets",
            "inputKeys.jobIdentity",
            "outputKeys.outputDatasets",
            "parameters.runMode"
        ]
    );
}

#[test]
fn ranges_lists_counts_and_wildcards() {
    let d = dict(concat!(
        "definitions: {\n",
        "  n: {\n type: int\n min: 1\n max: 64\n default: 4\n }\n",
        "  x: {\n type: double\n allowed: {\n min: 0.0\n max: 1\n }\n default: 1\n }\n",
        "  f: {\n type: string\n allowed: \"g\" \"r\" \"i\"\n minOccurs: 2\n maxOccurs: 3\n }\n",
        "  flag: {\n type: bool\n }\n",
        "  sub: {\n type: policy\n dictionary: {\n definitions: {\n",
        "    childDefinition: {\n type: int\n max: 9\n }\n",
        "  }\n }\n }\n",
        "}\n",
    ))
    .unwrap();
    // The int default of a double definition became a double.
    let mut empty = Policy::new();
    empty.merge_defaults(&d).unwrap();
    assert_eq!(empty.get::<f64>("x").unwrap(), 1.0);
    let p = Policy::from_paf_str(
        "n: 0 65 3\nx: 2\nf: \"g\" \"z\"\nflag: 1\nsub: {\n a: 1\n b: 10\n c: \"s\"\n}\n",
        "p",
    )
    .unwrap();
    assert_eq!(
        problems(&p, &d),
        vec![
            (ProblemCode::ValueOutOfRange, "n".to_string()),
            (ProblemCode::ValueOutOfRange, "n".to_string()),
            (ProblemCode::ValueOutOfRange, "x".to_string()),
            (ProblemCode::ValueDisallowed, "f".to_string()),
            (ProblemCode::WrongType, "flag".to_string()),
            (ProblemCode::ValueOutOfRange, "sub.b".to_string()),
            (ProblemCode::WrongType, "sub.c".to_string()),
        ]
    );
    let p = Policy::from_paf_str("f: \"g\"\n", "p").unwrap();
    assert_eq!(
        problems(&p, &d),
        vec![(ProblemCode::ArrayTooShort, "f".into())]
    );
    let p = Policy::from_paf_str("f: \"g\" \"r\" \"i\" \"g\"\n", "p").unwrap();
    assert_eq!(
        problems(&p, &d),
        vec![(ProblemCode::TooManyValues, "f".into())]
    );
    let p = Policy::new();
    assert_eq!(
        problems(&p, &d),
        vec![(ProblemCode::MissingRequired, "f".into())]
    );
    // An int is accepted where a double is defined.
    let p = Policy::from_paf_str("x: 1\nf: \"g\" \"r\"\n", "p").unwrap();
    assert_eq!(problems(&p, &d), vec![]);
}

#[test]
fn bad_definitions_are_errors() {
    for (text, want) in [
        ("a: 1", "no definitions"),
        ("definitions: {\n a: {\n type: file\n }\n}", "illegal"),
        (
            "definitions: {\n a: {\n type: complex\n }\n}",
            "unknown type",
        ),
        (
            "definitions: {\n a: {\n typo: int\n }\n}",
            "unknown keyword",
        ),
        (
            "definitions: {\n a: {\n type: int\n default: \"x\"\n }\n}",
            "default is string",
        ),
        (
            "definitions: {\n a: {\n minOccurs: 2\n maxOccurs: 1\n }\n}",
            "below minOccurs",
        ),
        (
            "definitions: {\n a: {\n type: int\n dictionary: {\n definitions: {\n }\n }\n }\n}",
            "needs type policy",
        ),
        ("definitions: {\n a: 1\n}", "one sub-policy"),
    ] {
        let e = dict(text).unwrap_err();
        assert!(
            matches!(e, PolicyError::BadDefinition { .. }),
            "{text}: {e}"
        );
        assert!(e.to_string().contains(want), "{text}: {e}");
    }
}

#[test]
fn dictionary_file_resolves_against_the_dictionary_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("outer.paf"),
        "definitions: {\n butler: {\n type: policy\n dictionaryFile: inner.yaml\n }\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("inner.yaml"),
        "definitions:\n  mapperName: {type: string, minOccurs: 1}\n",
    )
    .unwrap();
    let dict = Dictionary::load(d.join("outer.paf")).unwrap();
    let p = Policy::from_paf_str("butler: {\n root: x\n}\n", "p").unwrap();
    assert_eq!(
        problems(&p, &dict),
        vec![
            (ProblemCode::UnknownName, "butler.root".to_string()),
            (
                ProblemCode::MissingRequired,
                "butler.mapperName".to_string()
            ),
        ]
    );
}
