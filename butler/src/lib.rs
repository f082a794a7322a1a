//! # daf-butler
//!
//! The data butler: repositories chained to their parents, `get` / `put` /
//! `query_metadata` / `subset` / `data_ref` over them, a file registry with
//! checksums, and ingest.
//!
//! Depends on `daf-base`, `daf-storages`, `daf-formatters` and `daf-mappers`.
//! Start reading at [`repository`] (where data lives) and
//! [`file_registry::FileRegistry`] (what was written).

pub mod error;
pub mod export;
pub mod file_registry;
pub mod ingest;
pub mod query;
pub mod repository;

pub use error::ButlerError;
pub use file_registry::FileRegistry;
pub use repository::{Repository, RepositoryArgs, RepositoryCfg, RepositorySet};
pub mod butler;
pub mod simple_mapper;
#[doc(hidden)]
pub mod testing;

pub use butler::{
    camera_mapper_factory, default_mapper_factory, Butler, ButlerBuilder, DataRef, GetOptions,
    MapperFactory, Origin, PutOptions,
};
