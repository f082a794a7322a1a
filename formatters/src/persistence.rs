//! [`Persistence`]: formatters over a list of storages, all or nothing.

use daf_base::{Policy, PropertySet};
use daf_storages::{LogicalLocation, Storage, StorageRegistry};

use crate::error::FormatterError;
use crate::persistable::Persistable;
use crate::registry::FormatterRegistry;
use crate::Result;

/// Persists and retrieves objects through storages.
///
/// Unlike LSST's `Persistence`, transactions are real: if any storage in the
/// list fails while writing, preparing or committing, every storage that has
/// not committed is rolled back, so no file appears at its final path and no
/// database row stays. Commit runs in two phases: every storage first makes
/// its data durable ([`Storage::prepare_commit`]: fsync of temporary files,
/// database loads inside the open transaction), and only when all have
/// succeeded does each one commit ([`Storage::end_transaction`]: renames,
/// database commits). A failure during that last step (a rename failing after
/// another storage committed) cannot be undone for the storages already
/// committed; it is reported with the error.
#[derive(Debug, Clone)]
pub struct Persistence {
    policy: Policy,
    formatters: FormatterRegistry,
    storages: StorageRegistry,
}

impl Persistence {
    /// A persistence with a policy (sub-policies `<StorageName>` and
    /// `Formatter.<persistableName>`), a formatter registry and a storage registry.
    pub fn new(policy: Policy, formatters: FormatterRegistry, storages: StorageRegistry) -> Self {
        Persistence {
            policy,
            formatters,
            storages,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The formatter registry.
    pub fn formatters(&self) -> &FormatterRegistry {
        &self.formatters
    }

    /// The storage registry.
    pub fn storages(&self) -> &StorageRegistry {
        &self.storages
    }

    fn make_storage(&self, name: &str) -> Result<Box<dyn Storage>> {
        let mut s = self.storages.create(name)?;
        let sub = self.policy.get_policy(name).ok();
        s.set_policy(sub.as_ref())?;
        Ok(s)
    }

    /// A storage of type `name` ready to write at `location`.
    pub fn persist_storage(
        &self,
        name: &str,
        location: &LogicalLocation,
    ) -> Result<Box<dyn Storage>> {
        let mut s = self.make_storage(name)?;
        s.set_persist_location(location)?;
        Ok(s)
    }

    /// A storage of type `name` ready to read from `location`.
    pub fn retrieve_storage(
        &self,
        name: &str,
        location: &LogicalLocation,
    ) -> Result<Box<dyn Storage>> {
        let mut s = self.make_storage(name)?;
        s.set_retrieve_location(location)?;
        Ok(s)
    }

    fn formatter_policy(&self) -> Option<Policy> {
        self.policy.get_policy("Formatter").ok()
    }

    /// Writes `obj` to every storage in `storages`, all or nothing.
    pub fn persist(
        &self,
        obj: &dyn Persistable,
        storages: &mut [Box<dyn Storage>],
        additional_data: &PropertySet,
    ) -> Result<()> {
        if storages.is_empty() {
            return Err(FormatterError::NoStorages);
        }
        let fmt = self
            .formatters
            .lookup_for(obj, self.formatter_policy().as_ref())?;
        run_transaction(storages, |s| fmt.write(obj, s, additional_data))
    }

    /// Reads a `type_name` object: the first storage reads, later ones update.
    pub fn retrieve(
        &self,
        type_name: &str,
        storages: &mut [Box<dyn Storage>],
        additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>> {
        if storages.is_empty() {
            return Err(FormatterError::NoStorages);
        }
        let fmt = self
            .formatters
            .lookup_by_name(type_name, self.formatter_policy().as_ref())?;
        let mut obj: Option<Box<dyn Persistable>> = None;
        run_transaction(storages, |s| {
            match obj.as_mut() {
                None => obj = Some(fmt.read(s, additional_data)?),
                Some(o) => fmt.update(o.as_mut(), s, additional_data)?,
            }
            Ok(())
        })?;
        Ok(obj.expect("at least one storage read"))
    }

    /// Typed retrieve: reads the object registered for `T` and downcasts it.
    pub fn retrieve_as<T: Persistable>(
        &self,
        storages: &mut [Box<dyn Storage>],
        additional_data: &PropertySet,
    ) -> Result<T> {
        let name = self
            .formatters
            .name_of::<T>()
            .ok_or_else(|| FormatterError::UnknownType {
                type_name: std::any::type_name::<T>().into(),
            })?
            .to_string();
        let obj = self.retrieve(&name, storages, additional_data)?;
        let actual = obj.persistable_name().to_string();
        obj.into_any()
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| FormatterError::WrongObject {
                expected: name,
                actual,
            })
    }

    /// Updates `obj` from every storage in order.
    pub fn update(
        &self,
        obj: &mut dyn Persistable,
        storages: &mut [Box<dyn Storage>],
        additional_data: &PropertySet,
    ) -> Result<()> {
        if storages.is_empty() {
            return Err(FormatterError::NoStorages);
        }
        let fmt = self
            .formatters
            .lookup_for(obj, self.formatter_policy().as_ref())?;
        run_transaction(storages, |s| fmt.update(obj, s, additional_data))
    }
}

/// Runs `work` on each storage inside one transaction over all of them.
fn run_transaction(
    storages: &mut [Box<dyn Storage>],
    mut work: impl FnMut(&mut dyn Storage) -> Result<()>,
) -> Result<()> {
    let mut started = 0;
    let mut outcome: Result<()> = Ok(());
    for s in storages.iter_mut() {
        if let Err(e) = s.start_transaction() {
            outcome = Err(e.into());
            break;
        }
        started += 1;
        if let Err(e) = work(s.as_mut()) {
            outcome = Err(e);
            break;
        }
    }
    if outcome.is_ok() {
        for s in storages.iter_mut() {
            if let Err(e) = s.prepare_commit() {
                outcome = Err(e.into());
                break;
            }
        }
    }
    if let Err(e) = outcome {
        return Err(rollback(&mut storages[..started], e));
    }
    for i in 0..storages.len() {
        if let Err(e) = storages[i].end_transaction() {
            return Err(rollback(&mut storages[i + 1..], e.into()));
        }
    }
    Ok(())
}

fn rollback(storages: &mut [Box<dyn Storage>], cause: FormatterError) -> FormatterError {
    let mut problems = Vec::new();
    for s in storages.iter_mut() {
        if let Err(e) = s.abort_transaction() {
            problems.push(format!("{}: {e}", s.storage_name()));
        }
    }
    FormatterError::RolledBack {
        source: Box::new(cause),
        rollback_errors: problems,
    }
}
