//! [`PropertySetFormatter`]: PropertySets in Boost (binary, text) and XML
//! archives, with the layout LSST's `PropertySetFormatter` wrote, and as
//! table rows through `DbStorage` / `DbTsvStorage` (see [`crate::db`]).

use daf_base::{Policy, PropertySet};
use daf_storages::boost::property_set::{load_property_set, save_property_set, PropertySetLayout};
use daf_storages::boost::ArchiveKind;
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::{Storage, StorageError, YamlStorage};

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
        if let Some(y) = storage.as_any_mut().downcast_mut::<YamlStorage>() {
            return property_set_from_yaml(&y.read_text()?);
        }
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
        if let Some(y) = storage.as_any_mut().downcast_mut::<YamlStorage>() {
            y.write_text(&property_set_to_yaml(ps)?)?;
            return Ok(());
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

/// The tag LSST's YAML representer put in front of a PropertySet.
pub const YAML_TAG: &str = "!<lsst.daf.base.PropertySet>";

/// A PropertySet as the YAML document Gen2's `YamlStorage` kept: LSST's
/// tag, then a mapping (nested for dotted names, sequences for arrays).
///
/// ```
/// use daf_base::PropertySet;
/// use daf_formatters::property_set_formatter::{property_set_from_yaml, property_set_to_yaml};
/// let mut ps = PropertySet::new();
/// ps.set("exptime", 15.0).unwrap();
/// ps.set("calib.zero", 27).unwrap();
/// let text = property_set_to_yaml(&ps).unwrap();
/// assert!(text.starts_with("!<lsst.daf.base.PropertySet>"));
/// let back = property_set_from_yaml(&text).unwrap();
/// assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
/// assert_eq!(back.get_as_i64("calib.zero").unwrap(), 27);
/// ```
pub fn property_set_to_yaml(ps: &PropertySet) -> Result<String> {
    let body = Policy::from_property_set(ps.clone())
        .to_yaml_string()
        .map_err(|e| FormatterError::Invalid {
            persistable: "PropertySet".into(),
            message: e.to_string(),
        })?;
    Ok(format!("{YAML_TAG}\n{body}"))
}

/// Reads the YAML document of [`property_set_to_yaml`] (with or without
/// LSST's tag, or a `!<lsst.daf.base.PropertyList>` one).
pub fn property_set_from_yaml(text: &str) -> Result<PropertySet> {
    let body = text.trim_start();
    let body = [
        "!<lsst.daf.base.PropertySet>",
        "!<lsst.daf.base.PropertyList>",
    ]
    .iter()
    .find_map(|t| body.strip_prefix(t))
    .unwrap_or(body);
    if body.trim().is_empty() {
        return Ok(PropertySet::new());
    }
    let p = Policy::from_yaml_str(body, "YamlStorage").map_err(|e| FormatterError::Invalid {
        persistable: "PropertySet".into(),
        message: e.to_string(),
    })?;
    Ok(p.as_property_set().clone())
}
