//! [`PropertySetFormatter`]: PropertySets in Boost (binary, text) and XML
//! archives, with the layout LSST's `PropertySetFormatter` wrote, and as
//! table rows through `DbStorage` / `DbTsvStorage` (see [`crate::db`]).

use daf_base::{Policy, PropertySet};
use daf_storages::boost::property_set::{load_property_set, save_property_set, PropertySetLayout};
use daf_storages::boost::ArchiveKind;
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::{Storage, StorageError};

use crate::error::FormatterError;
use crate::formatter::{expect_object, unsupported, Formatter};
use crate::persistable::Persistable;
use crate::Result;

/// The NVP name of the PropertySet in LSST's archives (the XML root element).
pub const ROOT_NAME: &str = "propertySet";

/// Writes, reads and updates [`PropertySet`]s through `BoostStorage` and
/// `XmlStorage`.
///
/// The layout (see [`daf_storages::boost::property_set`]) is LSST's by
/// default: a `size_t` item count and a tracked `Persistable` base, byte for
/// byte what LSST's C++ wrote. The formatter policy may change it:
/// `nitems: int` (a 4-byte count) and `persistable_tracked: false`. Reading
/// obeys the tracking flag found in the archive, and for binary archives
/// falls back to the other count width if the configured one does not parse.
/// `update` merges what it reads into the object (values read replace
/// values of the same name).
#[derive(Debug, Clone, Default)]
pub struct PropertySetFormatter {
    layout: PropertySetLayout,
    /// The sub-policy, for the database path (`TableName`, `KeyList`; see [`crate::db`]).
    db_policy: Option<Policy>,
}

impl PropertySetFormatter {
    /// A formatter with LSST's layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// A formatter configured by its `Formatter.PropertySet` sub-policy.
    pub fn from_policy(policy: Option<&Policy>) -> Self {
        let mut layout = PropertySetLayout::default();
        if let Some(p) = policy {
            let ps = p.as_property_set();
            if let Some(v) = ps.values("nitems").and_then(|v| v.text_at(0)) {
                layout.nitems_size_t = v != "int";
            }
            if let Some(v) = ps.values("persistable_tracked").and_then(|v| v.text_at(0)) {
                layout.persistable_tracked = matches!(v.as_str(), "true" | "1" | "yes");
            }
        }
        PropertySetFormatter {
            layout,
            db_policy: policy.cloned(),
        }
    }

    /// The layout written.
    pub fn layout(&self) -> PropertySetLayout {
        self.layout
    }

    fn storage<'a>(&self, storage: &'a mut dyn Storage) -> Result<&'a mut ArchiveStorage> {
        let name = storage.storage_name().to_string();
        match storage.as_any_mut().downcast_mut::<ArchiveStorage>() {
            Some(s) => Ok(s),
            None => Err(FormatterError::UnsupportedStorage {
                persistable: "PropertySet".into(),
                storage: name,
            }),
        }
    }

    fn read_ps(&self, storage: &mut dyn Storage) -> Result<PropertySet> {
        let s = self.storage(storage)?;
        let layout = self.layout;
        match s.read_archive(|ar| load_property_set(ar, ROOT_NAME, &layout)) {
            Ok(ps) => Ok(ps),
            Err(first @ StorageError::Format { .. }) => {
                if s.last_read().is_some_and(|r| r.kind != ArchiveKind::Binary) {
                    return Err(first.into());
                }
                let other = PropertySetLayout {
                    nitems_size_t: !layout.nitems_size_t,
                    ..layout
                };
                s.read_archive(|ar| load_property_set(ar, ROOT_NAME, &other))
                    .map_err(|_| first.into())
            }
            Err(e) => Err(e.into()),
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
        let ps: &PropertySet = expect_object(self, obj)?;
        if crate::db::is_db_storage(storage) {
            // DbStorage / DbTsvStorage: one row of a table.
            return crate::db::write_property_set(
                ps,
                storage,
                additional_data,
                self.db_policy.as_ref(),
            );
        }
        if storage.as_any().downcast_ref::<ArchiveStorage>().is_none() {
            return Err(unsupported(self, storage));
        }
        let layout = self.layout;
        self.storage(storage)?
            .write_archive(|ar| save_property_set(ar, ROOT_NAME, ps, &layout))?;
        Ok(())
    }

    fn read(
        &self,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>> {
        Ok(Box::new(self.read_ps(storage)?))
    }

    fn update(
        &self,
        obj: &mut dyn Persistable,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<()> {
        let read = self.read_ps(storage)?;
        let actual = obj.persistable_name().to_string();
        let ps = obj
            .downcast_mut::<PropertySet>()
            .ok_or(FormatterError::WrongObject {
                expected: "PropertySet".into(),
                actual,
            })?;
        ps.merge_replace(&read)?;
        Ok(())
    }
}
