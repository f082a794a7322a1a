//! `daf policy check` and `daf policy dump` on every seed policy, run through
//! the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use daf::base::Policy;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy")
}

fn daf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .current_dir(data_dir())
        .output()
        .expect("run daf")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The seed policies (PAF and their YAML translations).
fn seed_policies() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".paf") || n.ends_with(".yaml"))
        // The wiki copy with a lost quote is a syntax-error test case.
        .filter(|n| n != "symlink_stage_verbatim.paf")
        .collect();
    v.sort();
    v
}

#[test]
fn check_accepts_every_seed_policy() {
    let files = seed_policies();
    assert!(files.len() == 17, "{files:?}");
    for f in &files {
        let o = daf(&["policy", "check", f]);
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout(&o).starts_with(&format!("{f}: OK (")),
            "{}",
            stdout(&o)
        );
    }
    let o = daf(&["policy", "check", "pipeline_policy.paf"]);
    // shareDataOn, the stages' own keys (3 + 3 + 5 + 3 + 3) and their
    // included stage policies (3 + 8 + 4 + 4 + 8).
    assert_eq!(stdout(&o), "pipeline_policy.paf: OK (45 parameters)\n");
}

#[test]
fn dump_round_trips_every_seed_policy_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    for f in seed_policies() {
        let original = Policy::load(data_dir().join(&f)).unwrap();
        for (format, ext) in [("yaml", "yaml"), ("paf", "paf")] {
            let o = daf(&["policy", "dump", &f, "--format", format]);
            assert!(
                o.status.success(),
                "{f} {format}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let out = tmp.path().join(format!("dumped.{ext}"));
            std::fs::write(&out, &o.stdout).unwrap();
            let back = Policy::load(&out).unwrap_or_else(|e| panic!("{f} as {format}: {e}"));
            assert_eq!(back, original, "{f} as {format}");
        }
    }
    // YAML is the default format.
    let o = daf(&["policy", "dump", "symlink_stage.paf"]);
    assert_eq!(
        stdout(&o),
        concat!(
            "AdditionalData:\n",
            "- exposureId=triggerVisitEvent.exposureId\n",
            "- filterName=triggerVisitEvent.filterName\n",
            "Links:\n",
            "  sourcePath: /lsst/images/becker/D4/%(filterName)s/output/%(ccdId)s/\n",
            "  destPath: /share/lsst9/DC2root/%(runId)s/ipd/input/%(exposureId)d/%(ccdId)s\n",
        )
    );
}

#[test]
fn dump_resolves_includes_and_merges_dictionary_defaults() {
    let o = daf(&[
        "policy",
        "dump",
        "app_stage_verbatim.paf",
        "--format",
        "paf",
    ]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("    stagePolicy: {\n        RunMode: \"preprocess\"\n"),
        "{text}"
    );
    assert!(!text.contains('@'));
    let o = daf(&[
        "policy",
        "dump",
        "output_stage_butler.paf",
        "--dictionary",
        "io_stage_dict.paf",
    ]);
    assert!(o.status.success());
    let merged = Policy::from_yaml_str(&stdout(&o), "out").unwrap();
    assert_eq!(
        merged.get::<String>("parameters.runMode").unwrap(),
        "process"
    );
    assert_eq!(
        merged.get::<String>("inputKeys.jobIdentity").unwrap(),
        "jobIdentity"
    );
}

#[test]
fn check_with_dictionary_lists_every_problem_and_exits_1() {
    for f in [
        "input_stage_butler.paf",
        "output_stage_datasetid.paf",
        "output_stage_butler.yaml",
    ] {
        let o = daf(&["policy", "check", f, "--dictionary", "io_stage_dict.paf"]);
        assert!(o.status.success(), "{f}: {}", stdout(&o));
        assert!(stdout(&o).contains("valid against io_stage_dict.paf"));
    }
    let o = daf(&[
        "policy",
        "check",
        "io_stage_bad.paf",
        "--dictionary",
        "io_stage_dict.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "io_stage_bad.paf: inputKeys.jobIdentity: WRONG_TYPE expected string, found int",
            "io_stage_bad.paf: parameters: TOO_MANY_VALUES 2 values, at most 1 allowed",
            "io_stage_bad.paf: parameters[0].runMode: VALUE_DISALLOWED \"sometimes\" is not one of \"preprocess\", \"postprocess\", \"process\"",
            "io_stage_bad.paf: parameters[0].butler.mapperName: MISSING_REQUIRED required (minOccurs = 1) but absent",
            "io_stage_bad.paf: parameters[0].inputItems: TOO_MANY_VALUES 2 values, at most 1 allowed",
            "io_stage_bad.paf: extraKey: UNKNOWN_NAME not defined in the dictionary",
        ]
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("6 problem(s)"));
}

#[test]
fn syntax_errors_give_file_line_text_and_status_1() {
    let o = daf(&["policy", "check", "symlink_stage_verbatim.paf"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.starts_with("symlink_stage_verbatim.paf:4: expecting quoted string value"),
        "{out}"
    );
    assert!(out.contains("destPath: \\\"/share/lsst9/"), "{out}");
    let o = daf(&["policy", "check", "no_such_file.paf"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no_such_file.paf"));
    let o = daf(&[
        "policy",
        "check",
        "input_stage_butler.paf",
        "--dictionary",
        "input_stage_butler.paf",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a dictionary"));
}

#[test]
fn dump_reports_what_paf_cannot_spell() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("big.yaml");
    std::fs::write(&f, "n: 5000000000\n").unwrap();
    let o = daf(&["policy", "dump", path_str(&f), "--format", "paf"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write n as PAF"));
    let o = daf(&["policy", "dump", path_str(&f)]);
    assert_eq!(stdout(&o), "n: 5000000000\n");
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn lsst_mapper_policy_checks_against_lsst_dictionary() {
    let o = daf(&[
        "policy",
        "check",
        "lsst/testMapper.paf",
        "--dictionary",
        "lsst/MapperDictionary.paf",
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid against lsst/MapperDictionary.paf"));
    let original = Policy::load(data_dir().join("lsst/testMapper.paf")).unwrap();
    let o = daf(&["policy", "dump", "lsst/testMapper.paf", "--format", "paf"]);
    assert_eq!(Policy::from_paf_str(&stdout(&o), "dump").unwrap(), original);
    let o = daf(&["policy", "dump", "lsst/testMapper.paf"]);
    assert_eq!(
        Policy::from_yaml_str(&stdout(&o), "dump").unwrap(),
        original
    );
}
