//! # daf-mappers
//!
//! Resolves (dataset type, data id) to storage locations: mapper policies in
//! the Gen2 CameraMapper layout (YAML and legacy PAF), Python-`%`-style path
//! templates, and dataset registries (SQLite, PostgreSQL, filesystem scan).
//!
//! Depends on `daf-base` and `daf-storages`.

pub mod camera_mapper;
pub mod fits_header;
mod fmtspec;
pub mod ingest;
pub mod mapper;
pub mod paf;
pub mod policy;
pub mod registry;
pub mod template;

pub use camera_mapper::{CameraMapper, CameraMapperOptions};
pub use mapper::{ButlerLocation, KeyType, Mapper, MapperError};
pub use policy::{DatasetKind, DatasetPolicy, MapperPolicy, PolicyDefaults};
pub use registry::{open_registry, PgRegistry, PosixRegistry, Registry, SqliteRegistry};
pub use template::{KeyRewrites, PathTemplate};
