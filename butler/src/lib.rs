//! # daf-butler
//!
//! The data butler: repositories chained to their parents, `get` / `put` /
//! `query_metadata` / `subset` / `data_ref` over them, a file registry with
//! checksums, and ingest.
//!
//! Depends on `daf-base`, `daf-storages`, `daf-formatters` and `daf-mappers`.
//! Start reading at [`Butler`] (the API), then [`repository`] (where data
//! lives and in which order it is searched), [`file_registry::FileRegistry`]
//! (what was written, with checksums), [`ingest`] and [`export`]. The `daf`
//! command line over all of it is in the root crate (`src/cli/butler.rs`).

pub mod butler;
pub mod error;
pub mod export;
pub mod file_registry;
pub mod ingest;
pub mod query;
pub mod repository;
pub mod simple_mapper;
#[doc(hidden)]
pub mod testing;

pub use butler::{
    camera_mapper_factory, default_mapper_factory, Butler, ButlerBuilder, DataRef, GetOptions,
    MapperFactory, Origin, PutOptions,
};
pub use error::ButlerError;
pub use file_registry::FileRegistry;
pub use repository::{Repository, RepositoryArgs, RepositoryCfg, RepositorySet};
