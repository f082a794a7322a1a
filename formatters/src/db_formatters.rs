//! The PropertySet and SourceCatalog formatters' database paths, as
//! formatters: [`PropertySetFormatter`] and [`SourceCatalogFormatter`].
//! Other storages (Boost, FITS) join these formatters by adding their branch
//! before the `db::not_db` fallback.

use daf_base::{Policy, PropertySet};
use daf_storages::Storage;

use crate::catalog::SourceCatalog;
use crate::db;
use crate::formatter::{expect_object, Formatter};
use crate::persistable::Persistable;
use crate::Result;

/// Writes a `PropertySet` (as one row) to `DbStorage` / `DbTsvStorage`.
#[derive(Debug, Clone, Default)]
pub struct PropertySetFormatter {
    policy: Option<Policy>,
}

impl PropertySetFormatter {
    /// A formatter with its sub-policy (`TableName`, `KeyList`).
    pub fn new(policy: Option<&Policy>) -> Self {
        PropertySetFormatter {
            policy: policy.cloned(),
        }
    }
}

impl Formatter for PropertySetFormatter {
    fn persistable_name(&self) -> &str {
        "PropertySet"
    }

    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<()> {
        let ps = expect_object::<PropertySet>(self, obj)?;
        if db::is_db_storage(storage) {
            return db::write_property_set(ps, storage, additional_data, self.policy.as_ref());
        }
        Err(db::not_db("PropertySet", storage))
    }

    fn read(
        &self,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>> {
        Err(db::not_db("PropertySet", storage))
    }
}

/// Writes and reads a `SourceCatalog` through `DbStorage` / `DbTsvStorage`.
#[derive(Debug, Clone, Default)]
pub struct SourceCatalogFormatter {
    policy: Option<Policy>,
}

impl SourceCatalogFormatter {
    /// A formatter with its sub-policy (`TableNamePattern`, `TableName`,
    /// `TemplateTableName`, `OrderBy`).
    pub fn new(policy: Option<&Policy>) -> Self {
        SourceCatalogFormatter {
            policy: policy.cloned(),
        }
    }
}

impl Formatter for SourceCatalogFormatter {
    fn persistable_name(&self) -> &str {
        "SourceCatalog"
    }

    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<()> {
        let cat = expect_object::<SourceCatalog>(self, obj)?;
        if db::is_db_storage(storage) {
            return db::write_catalog(cat, storage, additional_data, self.policy.as_ref());
        }
        Err(db::not_db("SourceCatalog", storage))
    }

    fn read(
        &self,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>> {
        if db::is_db_storage(storage) {
            return Ok(Box::new(db::read_catalog(
                storage,
                additional_data,
                self.policy.as_ref(),
            )?));
        }
        Err(db::not_db("SourceCatalog", storage))
    }
}
