//! # daf-formatters
//!
//! How objects become bytes in a storage and back. A [`Persistable`] is any
//! object daf can store; a [`Formatter`] writes, reads and updates one
//! persistable type through the storages it supports; a [`FormatterRegistry`]
//! finds formatters by persistable name or by Rust type; [`Persistence`] drives
//! formatters over a list of storages inside one all-or-nothing transaction.
//!
//! Depends on `daf-base` and `daf-storages`. Start reading at [`Persistence`].
//! The image persistables (`ImageF`, `ExposureU`, `MaskedImageF`,
//! `DecoratedImageU`, ...) are in [`image`], their FITS formatters in [`fits`].

pub mod catalog;
pub mod db;
pub mod db_formatters;
mod defaults;
pub mod error;
pub mod fits;
pub mod formatter;
pub mod image;
pub mod persistable;
pub mod persistence;
pub mod property_set_formatter;
pub mod registry;

pub use catalog::SourceCatalog;
pub use db_formatters::SourceCatalogFormatter;
pub use error::FormatterError;
pub use formatter::Formatter;
pub use persistable::Persistable;
pub use persistence::Persistence;
pub use property_set_formatter::PropertySetFormatter;
pub use registry::FormatterRegistry;

/// Result alias for formatter operations.
pub type Result<T, E = FormatterError> = std::result::Result<T, E>;
