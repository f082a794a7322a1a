//! [`Persistence`]: formatters over a list of storages, all or nothing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use daf_base::{Policy, PropertySet, Values};
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
/// database commits). File targets are checked in the first phase (a
/// folder where the file should go fails there, before anything is
/// renamed). If a commit still fails in the second phase, the storages that
/// already committed undo it where they can ([`Storage::undo_commit`]:
/// Boost storages put back the file they replaced, or remove the new one),
/// and the error is [`FormatterError::RolledBack`] only when nothing of the
/// transaction remains; otherwise it is [`FormatterError::PartiallyCommitted`],
/// naming every storage (and path) whose commit stands.
#[derive(Debug, Clone)]
pub struct Persistence {
    policy: Policy,
    formatters: FormatterRegistry,
    storages: StorageRegistry,
    subs: Arc<SubPolicies>,
}

/// The sub-policies of a [`Persistence`] policy, split out once so that
/// storage and formatter creation does not copy them on every call.
#[derive(Debug, Default)]
struct SubPolicies {
    /// `<StorageName>` (every top-level PropertySet entry).
    top: HashMap<String, Policy>,
    /// `Formatter.<persistableName>`.
    formatter: HashMap<String, Policy>,
}

impl SubPolicies {
    fn of(policy: &Policy) -> Self {
        fn split(ps: &PropertySet) -> HashMap<String, Policy> {
            ps.iter()
                .filter_map(|(k, v)| match v {
                    Values::PropertySet(v) => v
                        .last()
                        .map(|last| (k.to_string(), Policy::from_property_set(last.clone()))),
                    _ => None,
                })
                .collect()
        }
        let top = split(policy.as_property_set());
        let formatter = top
            .get("Formatter")
            .map(|f| split(f.as_property_set()))
            .unwrap_or_default();
        SubPolicies { top, formatter }
    }
}

/// A sub-policy by name: from the split-out map for plain names, copied out
/// of `policy` for dotted ones.
fn sub_policy<'a>(
    map: &'a HashMap<String, Policy>,
    policy: Option<&Policy>,
    name: &str,
) -> Option<Cow<'a, Policy>> {
    if name.contains('.') {
        policy.and_then(|p| p.get_policy(name).ok()).map(Cow::Owned)
    } else {
        map.get(name).map(Cow::Borrowed)
    }
}

impl Persistence {
    /// A persistence with a policy (sub-policies `<StorageName>` and
    /// `Formatter.<persistableName>`), a formatter registry and a storage registry.
    pub fn new(policy: Policy, formatters: FormatterRegistry, storages: StorageRegistry) -> Self {
        let subs = Arc::new(SubPolicies::of(&policy));
        Persistence {
            policy,
            formatters,
            storages,
            subs,
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
        let sub = sub_policy(&self.subs.top, Some(&self.policy), name);
        s.set_policy(sub.as_deref())?;
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

    /// A new formatter for persistable `name` with its `Formatter.<name>` sub-policy.
    fn formatter(&self, name: &str) -> Result<Box<dyn crate::formatter::Formatter>> {
        let formatter_policy = self.subs.top.get("Formatter");
        let sub = sub_policy(&self.subs.formatter, formatter_policy, name);
        self.formatters.create(name, sub.as_deref())
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
        let fmt = self.formatter(self.formatters.name_for(obj))?;
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
        let fmt = self.formatter(type_name)?;
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
        let fmt = self.formatter(self.formatters.name_for(obj))?;
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
            return Err(undo_commits(storages, i, e.into()));
        }
    }
    for s in storages.iter_mut() {
        s.finish_commit();
    }
    Ok(())
}

/// Storage `failed` failed to commit after `storages[..failed]` committed:
/// undoes those commits where the storages can, rolls back the rest, and
/// says exactly what stayed committed.
fn undo_commits(
    storages: &mut [Box<dyn Storage>],
    failed: usize,
    cause: FormatterError,
) -> FormatterError {
    let (done, rest) = storages.split_at_mut(failed);
    let mut committed = Vec::new();
    let mut problems = Vec::new();
    for s in done.iter_mut().rev() {
        match s.undo_commit() {
            Ok(true) => {}
            Ok(false) => committed.push(s.describe()),
            Err(e) => {
                committed.push(s.describe());
                problems.push(format!("{}: {e}", s.describe()));
            }
        }
    }
    // The failed storage itself and the ones after it never committed.
    let rolled = rollback(rest, cause);
    if committed.is_empty() {
        return rolled;
    }
    let FormatterError::RolledBack {
        source,
        rollback_errors,
    } = rolled
    else {
        unreachable!("rollback returns RolledBack")
    };
    problems.extend(rollback_errors);
    committed.reverse();
    FormatterError::PartiallyCommitted {
        source,
        committed,
        problems,
    }
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
