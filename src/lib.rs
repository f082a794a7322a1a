//! # daf
//!
//! A data-access framework for astronomical survey pipelines: a persistence
//! library (storages and formatters, byte-compatible with the archives and
//! FITS files LSST's C++ wrote), a data butler, and an adapter that plugs both
//! into a minimal pipeline harness.
//!
//! This crate is the facade: it re-exports the workspace crates and holds the
//! `daf` command line. Start with [`base::PropertySet`] and [`base::Policy`],
//! then [`formatters::Persistence`].

pub use daf_base as base;
pub use daf_butler as butler;
pub use daf_formatters as formatters;
pub use daf_harness as harness;
pub use daf_mappers as mappers;
pub use daf_storages as storages;

pub mod bench;
pub mod cli;
pub mod demo;
pub mod harness_butler;
