//! [`SourceCatalogFormatter`]: the registered `SourceCatalog` formatter —
//! database storages through [`crate::db`], everything else through
//! [`crate::fits::SourceCatalogFitsFormatter`].

use daf_base::{Policy, PropertySet};
use daf_storages::Storage;

use crate::catalog::SourceCatalog;
use crate::db;
use crate::fits::SourceCatalogFitsFormatter;
use crate::formatter::{expect_object, Formatter};
use crate::persistable::Persistable;
use crate::Result;

/// Writes and reads a `SourceCatalog`: `DbStorage` / `DbTsvStorage` as a
/// table (policy keys in [`crate::db`]), FITS as a binary table.
#[derive(Debug, Default)]
pub struct SourceCatalogFormatter {
    policy: Option<Policy>,
    fits: SourceCatalogFitsFormatter,
}

impl SourceCatalogFormatter {
    /// A formatter with its sub-policy (`TableNamePattern`, `TableName`,
    /// `TemplateTableName`, `OrderBy`).
    pub fn new(policy: Option<&Policy>) -> Self {
        SourceCatalogFormatter {
            policy: policy.cloned(),
            fits: SourceCatalogFitsFormatter,
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
        if db::is_db_storage(storage) {
            let cat = expect_object::<SourceCatalog>(self, obj)?;
            return db::write_catalog(cat, storage, additional_data, self.policy.as_ref());
        }
        self.fits.write(obj, storage, additional_data)
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
        self.fits.read(storage, additional_data)
    }

    fn update(
        &self,
        obj: &mut dyn Persistable,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<()> {
        self.fits.update(obj, storage, additional_data)
    }
}
