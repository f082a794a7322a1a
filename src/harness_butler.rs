//! The harness's butler method on `daf-butler`'s Butler, and provenance:
//! re-exported from [`daf_harness::repo_butler`], where `daf run` and
//! [`daf_harness::run_with_registry`] use it.

pub use daf_harness::repo_butler::*;
