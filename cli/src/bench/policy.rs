//! `daf bench policy`: loading the seeds' IO-stage policy (the InputStage
//! butler policy of `persistence-io-stages.txt`) from PAF and from YAML.
//!
//! References, measured in the same run:
//! * YAML loading against `serde_norway` parsing the same text into its
//!   generic `Value` tree (the YAML parser alone); the difference is our
//!   conversion into a policy. Target: at most 1.5×.
//! * PAF parsing against the same `serde_norway` parse of the equivalent
//!   YAML, for scale (reported only).
//! * Loading from a file against `std::fs::read` of that file (reported).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use daf_base::Policy;

use super::{Row, Target};

/// The IO-stage policy in PAF.
pub const IO_STAGE_PAF: &str = include_str!("../../tests/data/policy/input_stage_butler.paf");
/// Its YAML translation.
pub const IO_STAGE_YAML: &str = include_str!("../../tests/data/policy/input_stage_butler.yaml");

/// The texts, written to files in a folder of their own.
#[derive(Debug)]
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The PAF file.
    pub paf_path: PathBuf,
    /// The YAML file.
    pub yaml_path: PathBuf,
}

impl Fixture {
    /// Writes the two files into a new temporary folder.
    pub fn new() -> std::io::Result<Fixture> {
        let dir = tempfile::tempdir()?;
        let paf_path = dir.path().join("input_stage.paf");
        let yaml_path = dir.path().join("input_stage.yaml");
        std::fs::write(&paf_path, IO_STAGE_PAF)?;
        std::fs::write(&yaml_path, IO_STAGE_YAML)?;
        Ok(Fixture {
            _dir: dir,
            paf_path,
            yaml_path,
        })
    }
}

/// Parses the PAF text.
pub fn parse_paf() -> Policy {
    Policy::from_paf_str(black_box(IO_STAGE_PAF), "io.paf").expect("the seed parses")
}

/// Parses the YAML text.
pub fn parse_yaml() -> Policy {
    Policy::from_yaml_str(black_box(IO_STAGE_YAML), "io.yaml").expect("the seed parses")
}

/// The reference: serde_norway's generic parse of the YAML text.
pub fn parse_yaml_value() -> serde_norway::Value {
    serde_norway::from_str(black_box(IO_STAGE_YAML)).expect("valid YAML")
}

/// Loads a policy file.
pub fn load(path: &Path) -> Policy {
    Policy::load(black_box(path)).expect("the seed loads")
}

/// Reads a file (the reference for [`load`]).
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(black_box(path)).expect("readable")
}

fn batch_us(iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / iters as f64
}

/// Measures and returns the table rows (`quick` uses fewer rounds). The
/// measurements alternate batch by batch; each figure is the fastest batch.
pub fn run(quick: bool) -> std::io::Result<Vec<Row>> {
    let fx = Fixture::new()?;
    assert_eq!(parse_paf(), parse_yaml(), "PAF and YAML agree");
    let (iters, rounds) = if quick { (20, 10) } else { (100, 60) };
    let names = [
        "paf",
        "yaml",
        "value",
        "load_paf",
        "load_yaml",
        "read_paf",
        "read_yaml",
    ];
    let mut best = [f64::INFINITY; 7];
    for _ in 0..rounds {
        let t = [
            batch_us(iters, || {
                black_box(parse_paf());
            }),
            batch_us(iters, || {
                black_box(parse_yaml());
            }),
            batch_us(iters, || {
                black_box(parse_yaml_value());
            }),
            batch_us(iters, || {
                black_box(load(&fx.paf_path));
            }),
            batch_us(iters, || {
                black_box(load(&fx.yaml_path));
            }),
            batch_us(iters, || {
                black_box(read(&fx.paf_path));
            }),
            batch_us(iters, || {
                black_box(read(&fx.yaml_path));
            }),
        ];
        for (b, x) in best.iter_mut().zip(t) {
            *b = b.min(x);
        }
    }
    debug_assert_eq!(names.len(), best.len());
    let row = |name: &str, value: f64, reference: f64, reference_name: &str, target| Row {
        name: name.into(),
        value,
        unit: "µs/op".into(),
        reference: Some(reference),
        reference_name: reference_name.into(),
        target,
    };
    Ok(vec![
        row(
            "Policy::from_yaml_str, IO-stage policy",
            best[1],
            best[2],
            "serde_norway Value parse",
            Target::AtMost(1.5),
        ),
        row(
            "Policy::from_paf_str, IO-stage policy",
            best[0],
            best[2],
            "serde_norway Value parse",
            Target::None,
        ),
        row(
            "Policy::load, IO-stage .paf file",
            best[3],
            best[5],
            "std::fs::read of the file",
            Target::None,
        ),
        row(
            "Policy::load, IO-stage .yaml file",
            best[4],
            best[6],
            "std::fs::read of the file",
            Target::None,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_loads_equal_everywhere() {
        let fx = Fixture::new().unwrap();
        let p = parse_paf();
        assert_eq!(p, parse_yaml());
        assert_eq!(load(&fx.paf_path), p);
        assert_eq!(load(&fx.yaml_path), p);
        assert!(matches!(
            parse_yaml_value(),
            serde_norway::Value::Mapping(_)
        ));
    }

    #[test]
    fn quick_run_reports_four_rows() {
        let rows = run(true).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows
            .iter()
            .all(|r| r.value > 0.0 && r.reference.is_some_and(|x| x > 0.0)));
        assert_eq!(rows[0].target, Target::AtMost(1.5));
    }
}
