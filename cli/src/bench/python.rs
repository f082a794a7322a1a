//! `daf bench python`: the Python package `daf` against what a Python user
//! would otherwise pick, in one run — the Gen3 butler (`lsst-daf-butler`)
//! for small gets and queries, astropy for a 4096² image read, plus zero
//! copy and peak memory of that read. The measurement itself is Python
//! (`python -m daf.bench`, in the package): this runs it with `DAF_PYTHON`
//! (default `python3`) and turns its rows into a [`Row`] table.
//!
//! Build the package in release mode for meaningful figures
//! (`pip install ./python`; `./test.sh` installs a dev build).

use std::process::Command;

use super::{Row, Target};

/// Runs `python -m daf.bench --json` with `python`; returns its rows.
pub fn run(python: &str, quick: bool) -> Result<Vec<Row>, String> {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "daf.bench", "--json"]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().map_err(|e| {
        format!(
            "{python}: {e} (set DAF_PYTHON to a Python with the daf package: pip install ./python)"
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "{python} -m daf.bench failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Parses the JSON rows `python -m daf.bench --json` prints.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("python -m daf.bench printed no JSON rows: {e}"))?;
    let rows = v
        .as_array()
        .ok_or("python -m daf.bench: expected a JSON array")?;
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let target = match (r["target_kind"].as_str(), r["target"].as_f64()) {
                (Some("at_least"), Some(t)) => Target::AtLeast(t),
                (Some("at_most"), Some(t)) => Target::AtMost(t),
                _ => Target::None,
            };
            Ok(Row {
                name: s("name"),
                value: r["value"].as_f64().ok_or("a row without a value")?,
                unit: s("unit"),
                reference: r["reference"].as_f64(),
                reference_name: s("reference_name"),
                target,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows() {
        let rows = parse(
            r#"[{"name": "g", "value": 200.0, "unit": "gets/s", "reference": 1.0,
                 "reference_name": "Gen3", "target_kind": "at_least", "target": 100.0},
                {"name": "q", "value": 5.0, "unit": "q/s", "reference": null,
                 "reference_name": "none", "target_kind": "none", "target": null}]"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].met(), Some(true));
        assert_eq!(rows[1].ratio(), None);
        assert!(parse("Traceback").is_err());
    }
}
