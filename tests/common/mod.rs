//! Helpers shared by the root end-to-end tests: running the `daf` binary and
//! a JSON-persistence butler over a scratch repository.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output};

use daf::butler::{testing, Butler};

/// Runs the `daf` binary built for these tests.
pub fn daf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .expect("daf runs")
}

/// Runs `daf`, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = daf(args);
    assert!(
        o.status.success(),
        "daf {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs `daf` (with `--json` among `args`) and parses its stdout.
pub fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// `--dataset` definitions of the raw and metadata datasets.
pub const RAW: &str = "raw:raw/raw_v%(visit)d_f%(filter)s.fits:DecoratedImageU:FitsStorage";
/// See [`RAW`].
pub const META: &str = "meta:meta/v%(visit)04d_f%(filter)s.json:PropertySet:JsonStorage";

/// A butler writing to `root` with the JSON test persistence.
pub fn butler(root: &Path) -> Butler {
    Butler::builder()
        .output(root)
        .persistence(testing::json_persistence())
        .build()
        .unwrap()
}
