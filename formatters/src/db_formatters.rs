//! The registered `SourceCatalog` formatter, [`SourceCatalogFormatter`]: it
//! dispatches on the storage — `DbStorage` / `DbTsvStorage` through the
//! database path in [`crate::db`], FITS files through
//! [`crate::fits::SourceCatalogFitsFormatter`]. (The `PropertySet` formatter
//! does the same in [`crate::property_set_formatter`].)

use daf_base::{Policy, PropertySet};
use daf_storages::Storage;

use crate::catalog::SourceCatalog;
use crate::db;
use crate::formatter::{expect_object, Formatter};
use crate::persistable::Persistable;
use crate::Result;

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
        crate::fits::SourceCatalogFitsFormatter.write(obj, storage, additional_data)
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
        crate::fits::SourceCatalogFitsFormatter.read(storage, additional_data)
    }
}
