//! # daf-butler
//!
//! The data butler: repositories chained to their parents, `get` / `put` /
//! `query_metadata` / `subset` / `data_ref` over them, a file registry with
//! checksums, and ingest.
//!
//! Depends on `daf-base`, `daf-storages`, `daf-formatters` and `daf-mappers`.
//! Start reading at [`Butler`] (the API), then [`repository`] (where data
//! lives and in which order it is searched), [`file_registry`] (what was
//! written, with checksums), [`ingest`] and [`export`]. The `daf` command
//! line over all of it is in the `daf-cli` crate (`cli/src/cli/butler.rs`).
//!
//! ## The file registry: SQLite or PostgreSQL
//! Each repository records its files in a registry behind one trait,
//! [`file_registry::DatasetRegistry`], with two backends that pass one
//! conformance suite. By default it is the SQLite file
//! `daf_registry.sqlite3` in the repository root. For a repository shared by
//! many nodes, put it in PostgreSQL: `daf create REPO --registry
//! postgresql://host:5432/db` (or [`Repository::create_with_registry`])
//! records `registry:` and `registrySchema:` in `repositoryCfg.yaml`; every
//! command and every butler opening the repository then uses that database
//! (one schema per repository, so repositories can share a database). The
//! URL holds no password: it comes from `~/.daf/db-auth.yaml`
//! ([`daf_storages::db::DbAuth`], or [`ButlerBuilder::db_auth`]) or from
//! `PGPASSWORD` / `~/.pgpass`.

pub mod butler;
pub mod error;
pub mod export;
pub mod file_registry;
pub mod ingest;
pub mod lifecycle;
pub mod query;
pub mod recovery;
pub mod repository;
pub mod simple_mapper;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(feature = "wal-watch")]
mod wal_watch;

pub use butler::{
    camera_mapper_factory, default_mapper_factory, Butler, ButlerBuilder, DataRef,
    DeferredDatasetHandle, Derived, GetOptions, MapperFactory, Origin, PutOptions, ResolvedDataset,
};
pub use error::ButlerError;
pub use file_registry::FileRegistry;
pub use repository::{Repository, RepositoryArgs, RepositoryCfg, RepositorySet};
