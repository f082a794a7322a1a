//! # daf-storages
//!
//! The persistence backends of daf. A [`Storage`] is one place objects are
//! written to or read from — a Boost archive, an XML archive, a FITS file, a
//! database — addressed by a [`LogicalLocation`] and used inside a
//! transaction. A [`StorageRegistry`] creates storages by name.
//!
//! Depends on `daf-base` only. Start reading at [`Storage`], then
//! [`atomic::AtomicFile`] (how file storages make writes atomic) and
//! [`LogicalLocation`] (LSST's `%04d(key)` location templates; parse once
//! with [`LocationTemplate`] to fill many times). Archives byte-compatible
//! with C++ Boost.Serialization live in [`boost`] (the engine) and
//! [`boost_storage`] ([`BoostStorage`], [`XmlStorage`]). FITS lives in
//! [`fits`]: [`fits::FitsStorage`] writes HDUs atomically and reads through
//! [`fits::FitsFile`], a memory-mapped scanner (gzip and tile-compressed
//! files are inflated first; cfitsio handles the tiles). The database
//! storages ([`db::DbStorage`], [`db::DbTsvStorage`], credentials in
//! [`db::DbAuth`]) live in [`db`]. Where a repository's bytes live — a
//! local folder or an S3 bucket — is a [`datastore::Datastore`].

pub mod atomic;
pub mod boost;
pub mod boost_storage;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod datastore;
pub mod db;
pub mod error;
pub mod fits;
pub mod location;
pub mod owner;
pub mod registry;
pub mod storage;
pub mod yaml_storage;

pub use boost_storage::{BoostStorage, XmlStorage};
pub use error::StorageError;
pub use location::{LocationError, LocationTemplate, LogicalLocation};
pub use registry::StorageRegistry;
pub use storage::{Mode, Storage};
pub use yaml_storage::YamlStorage;

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
