//! # daf
//!
//! A data-access framework for astronomical survey pipelines: a persistence
//! library (storages and formatters, byte-compatible with the archives and
//! FITS files LSST's C++ wrote), a data butler, and an adapter that plugs both
//! into a minimal pipeline harness.
//!
//! This crate is the facade: it re-exports the workspace crates under short
//! names and adds nothing but [`harness_butler`]. Start with
//! [`base::PropertySet`] and [`base::Policy`], then [`formatters::Persistence`]
//! and [`butler::Butler`]. The `daf` command line, `daf bench` and `daf demo`
//! are the separate crate `daf-cli` (`cli/` in the repository), so depending
//! on `daf` compiles no command-line, progress-bar or allocator crates.
//!
//! Features: `mpi` (the harness's MPI transport), `testing` (the crates'
//! test support) and `wal-watch` (daf-butler's faster cached SQLite registry
//! lookup, which the `daf` binary turns on; see daf-butler's crate docs).

pub use daf_base as base;
pub use daf_butler as butler;
pub use daf_formatters as formatters;
pub use daf_harness as harness;
pub use daf_mappers as mappers;
pub use daf_storages as storages;

pub mod harness_butler;
