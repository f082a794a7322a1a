//! Measurement helpers shared by `daf bench` and the criterion benches.
//!
//! Every performance target is a ratio against a reference measured in the
//! same run (a plain `std::fs::read`, a hand-written SQL loop ...), never an
//! absolute time, so figures stay meaningful on any machine.

pub mod boost;
pub mod butler;
pub mod db;
pub mod fits;
pub mod foundation;
pub mod harness;
pub mod objectstore;
pub mod peers;
pub mod policy;
pub mod python;
pub mod registry;
pub mod scale;

use std::time::{Duration, Instant};

/// Runs `f` `runs` times (after one warm-up) and returns the median duration.
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// How a measured ratio is judged against its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio must be at least this (e.g. bandwidth ≥ 0.8× the reference).
    AtLeast(f64),
    /// The ratio must be at most this (e.g. time ≤ 2× the reference).
    AtMost(f64),
    /// Reported only.
    None,
}

/// One row of a benchmark table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The measured figure, already in `unit`.
    pub value: f64,
    /// Its unit (`MiB/s`, `µs`, `rows/s` ...).
    pub unit: String,
    /// The reference figure in the same unit, if any.
    pub reference: Option<f64>,
    /// What the reference is.
    pub reference_name: String,
    /// Target on `value / reference`.
    pub target: Target,
}

impl Row {
    /// value / reference, if there is a reference.
    pub fn ratio(&self) -> Option<f64> {
        self.reference.map(|r| self.value / r)
    }
    /// Whether the target is met (`None` when there is no target).
    pub fn met(&self) -> Option<bool> {
        let r = self.ratio()?;
        match self.target {
            Target::AtLeast(t) => Some(r >= t),
            Target::AtMost(t) => Some(r <= t),
            Target::None => None,
        }
    }
}

/// Formats rows as an aligned text table.
pub fn format_table(title: &str, rows: &[Row]) -> String {
    let mut out = format!("{title}\n");
    out.push_str(&format!(
        "{:<44} {:>14} {:<8} {:>14} {:<28} {:>8} {:>10}\n",
        "measurement", "value", "unit", "reference", "reference is", "ratio", "target"
    ));
    for r in rows {
        let reference = r.reference.map_or("-".to_string(), |v| format!("{v:.3}"));
        let ratio = r.ratio().map_or("-".to_string(), |v| format!("{v:.3}"));
        let target = match r.target {
            Target::AtLeast(t) => format!(">={t}"),
            Target::AtMost(t) => format!("<={t}"),
            Target::None => "-".into(),
        };
        let verdict = match r.met() {
            Some(true) => " ok",
            Some(false) => " MISSED",
            None => "",
        };
        out.push_str(&format!(
            "{:<44} {:>14.3} {:<8} {:>14} {:<28} {:>8} {:>10}{}\n",
            r.name, r.value, r.unit, reference, r.reference_name, ratio, target, verdict
        ));
    }
    out
}

impl Row {
    /// The row as one JSON object: `name`, `value`, `unit`, `reference`,
    /// `reference_name`, `ratio`, `target` (`">=1"`, `"<=0.5"` or null) and
    /// `pass` (null without a target), plus `area`.
    pub fn to_json(&self, area: &str) -> serde_json::Value {
        let finite = |v: f64| v.is_finite().then_some(v);
        serde_json::json!({
            "area": area,
            "name": self.name.trim(),
            "value": finite(self.value),
            "unit": self.unit,
            "reference": self.reference.and_then(finite),
            "reference_name": self.reference_name,
            "ratio": self.ratio().and_then(finite),
            "target": match self.target {
                Target::AtLeast(t) => Some(format!(">={t}")),
                Target::AtMost(t) => Some(format!("<={t}")),
                Target::None => None,
            },
            "pass": self.met(),
        })
    }
}

/// The rows as JSON Lines: one object per measurement ([`Row::to_json`]).
pub fn format_json(area: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&r.to_json(area).to_string());
        out.push('\n');
    }
    out
}

/// Mebibytes per second for `bytes` moved in `d`.
pub fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}
