//! # daf-mappers
//!
//! Resolves (dataset type, data id) to storage locations: mapper policies in
//! the Gen2 CameraMapper layout (YAML and legacy PAF), Python-`%`-style path
//! templates, and dataset registries (SQLite, PostgreSQL, filesystem scan).
//!
//! Depends on `daf-base` (data ids, the printf engine, date-times) and
//! `daf-storages` (atomic file writes).
//!
//! Where to start reading:
//! * [`policy::MapperPolicy`] — the Gen2 CameraMapper policy (YAML or PAF,
//!   merged with obs_base-style defaults), with daf's own `keyRewrites`,
//!   `givenKeys` and `ingest` sections;
//! * [`template::PathTemplate`] — pre-parsed `%(visit)07d` path templates;
//! * [`registry::Registry`] — the registry trait, its SQLite, PostgreSQL and
//!   filesystem backends and their shared `registry::conformance` suite
//!   (`testing` feature);
//! * [`CameraMapper`] — the [`Mapper`] that ties them together (partial
//!   data-id completion, calibration validity lookups, `.gz`/`.fz` reads);
//! * [`ingest`] — `daf registry create`: registries from FITS headers or
//!   metadata tables.
//!
//! ```
//! use daf_base::data_id;
//! use daf_mappers::{CameraMapper, CameraMapperOptions, Mapper, MapperPolicy, PolicyDefaults};
//! use daf_mappers::registry::{ColumnType, Registry, SqliteRegistry};
//!
//! let policy = MapperPolicy::from_yaml_str(
//!     "exposures:\n  raw:\n    template: raw/v%(visit)d_f%(filter)s.fits\n    tables: raw\n",
//!     "example.yaml",
//!     &PolicyDefaults::none(),
//! ).unwrap();
//! let reg = SqliteRegistry::in_memory().unwrap();
//! reg.create_table("raw", &[("visit".into(), ColumnType::Int), ("filter".into(), ColumnType::Text)], &[]).unwrap();
//! reg.insert_rows("raw", &["visit".into(), "filter".into()], &[vec![1.into(), "g".into()]]).unwrap();
//! let opts = CameraMapperOptions { registry: Some(Box::new(reg)), ..Default::default() };
//! let mapper = CameraMapper::open(policy, "/data/repo", opts).unwrap();
//! let loc = mapper.map("raw", &data_id! {visit: 1}, true).unwrap();
//! assert_eq!(loc.locations, vec!["raw/v1_fg.fits"]);
//! ```

pub mod camera_mapper;
pub mod fits_header;
mod fmtspec;
pub mod ingest;
pub mod mapper;
pub mod policy;
pub mod registry;
pub mod template;

pub use camera_mapper::{CameraMapper, CameraMapperOptions};
pub use mapper::{ButlerLocation, KeyType, Mapper, MapperError};
pub use policy::{
    Conversion, DatasetKind, DatasetPolicy, HeaderRule, MapperPolicy, PolicyDefaults,
};
pub use registry::{open_registry, PgRegistry, PosixRegistry, Registry, SqliteRegistry};
pub use template::{KeyRewrites, PathTemplate};
