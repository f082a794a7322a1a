//! The [`Formatter`] trait.

use daf_base::PropertySet;
use daf_storages::Storage;

use crate::error::FormatterError;
use crate::persistable::Persistable;
use crate::Result;

/// Writes, reads and updates one persistable type through the storages it
/// supports. Formatters find the concrete storage with
/// `storage.as_any_mut().downcast_mut::<BoostStorage>()` and return
/// [`FormatterError::UnsupportedStorage`] (see [`unsupported`]) for others.
///
/// `additional_data` carries per-call parameters: location substitution
/// values, `itemName`, cut-out boxes (`llcX`, `llcY`, `width`, `height`,
/// `imageOrigin`), `hdu` and the like.
pub trait Formatter: Send + Sync {
    /// The persistable name this formatter handles.
    fn persistable_name(&self) -> &str;

    /// Writes `obj` to `storage`.
    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<()>;

    /// Reads a new object from `storage`.
    fn read(
        &self,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>>;

    /// Updates `obj` from `storage` (used for the second and later storages of
    /// a retrieve). The default refuses.
    fn update(
        &self,
        _obj: &mut dyn Persistable,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<()> {
        Err(FormatterError::UpdateUnsupported {
            persistable: self.persistable_name().to_string(),
            storage: storage.storage_name().to_string(),
        })
    }
}

/// The error a formatter returns for a storage it does not support.
pub fn unsupported(formatter: &dyn Formatter, storage: &dyn Storage) -> FormatterError {
    FormatterError::UnsupportedStorage {
        persistable: formatter.persistable_name().to_string(),
        storage: storage.storage_name().to_string(),
    }
}

/// Downcasts `obj` to `T` or returns [`FormatterError::WrongObject`].
pub fn expect_object<'a, T: Persistable>(
    formatter: &dyn Formatter,
    obj: &'a dyn Persistable,
) -> Result<&'a T> {
    obj.downcast_ref::<T>()
        .ok_or_else(|| FormatterError::WrongObject {
            expected: formatter.persistable_name().to_string(),
            actual: obj.persistable_name().to_string(),
        })
}
