//! Helpers shared by the butler's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use daf_base::PropertySet;
use daf_butler::{testing, Butler};

/// A small PropertySet told apart by `v`.
pub fn ps(v: i64) -> PropertySet {
    let mut p = PropertySet::new();
    p.set("value", v).unwrap();
    p.set("name", format!("obj{v}")).unwrap();
    p
}

/// A butler writing to `root` with the JSON test persistence.
pub fn out_butler(root: &Path) -> Butler {
    Butler::builder()
        .output(root)
        .persistence(testing::json_persistence())
        .build()
        .unwrap()
}
