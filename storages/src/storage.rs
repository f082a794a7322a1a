//! The [`Storage`] trait every backend implements.

use std::any::Any;

use daf_base::Policy;

use crate::location::LogicalLocation;
use crate::Result;

/// Whether a storage was opened for writing or reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Objects will be written.
    Persist,
    /// Objects will be read.
    Retrieve,
}

/// One persistence backend bound to one location.
///
/// The protocol, driven by `daf_formatters::Persistence`:
/// 1. [`Storage::set_policy`] with the storage's sub-policy (if any);
/// 2. [`Storage::set_persist_location`] or [`Storage::set_retrieve_location`]
///    (exclusive; this is where files are checked or connections opened);
/// 3. [`Storage::start_transaction`]; formatters write or read through the
///    concrete storage (found with [`Storage::as_any_mut`]);
/// 4. [`Storage::prepare_commit`] on every storage in the list, then
///    [`Storage::end_transaction`] on each — or [`Storage::abort_transaction`]
///    on every one if anything failed, which must leave no trace (no file at
///    its final path, no row in a table).
///
/// File storages write to a temporary name in the target folder, fsync it in
/// `prepare_commit` and rename it in `end_transaction`
/// (see [`crate::atomic::AtomicFile`]).
pub trait Storage: Any + Send {
    /// The registered name (`"BoostStorage"`, `"FitsStorage"`, ...).
    fn storage_name(&self) -> &str;

    /// Takes the storage's sub-policy (the `<StorageName>` entry of the
    /// persistence policy), if there is one. The default ignores it.
    fn set_policy(&mut self, _policy: Option<&Policy>) -> Result<()> {
        Ok(())
    }

    /// Prepares to write at `location`.
    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()>;

    /// Prepares to read from `location`; a missing object is
    /// [`crate::StorageError::NotFound`] naming it.
    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()>;

    /// Begins a transaction.
    fn start_transaction(&mut self) -> Result<()>;

    /// Makes everything written durable but not yet visible (fsync of
    /// temporary files, flushing of row buffers). Default: nothing to do.
    fn prepare_commit(&mut self) -> Result<()> {
        Ok(())
    }

    /// Asks the storage to skip its own fsyncs (of temporary files and their
    /// folders) because the caller makes this write durable itself, with
    /// one barrier for many writes ([`crate::atomic::sync_barrier`]: the
    /// butler's group-committed `put_many`). Call it before
    /// [`Storage::end_transaction`]. `true` when the storage honours it;
    /// `false` (the default) when it syncs anyway.
    fn defer_sync(&mut self) -> bool {
        false
    }

    /// Commits: makes what was written visible at its final location.
    fn end_transaction(&mut self) -> Result<()>;

    /// Rolls back: removes every trace of what was written in this transaction.
    fn abort_transaction(&mut self) -> Result<()>;

    /// Undoes a commit ([`Storage::end_transaction`]) because a later
    /// storage of the same transaction failed to commit: puts back what its
    /// final location held before. `Ok(true)` when undone; `Ok(false)` when
    /// this storage cannot undo commits (the default), so the caller
    /// reports it as committed.
    fn undo_commit(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// Makes a commit final once every storage of the transaction committed
    /// (drops whatever was kept for [`Storage::undo_commit`]). Default: nothing.
    fn finish_commit(&mut self) {}

    /// The storage and where it writes, for messages (`BoostStorage
    /// /data/x.boost`). Default: the storage name.
    fn describe(&self) -> String {
        self.storage_name().to_string()
    }

    /// For formatters: downcast to the concrete storage.
    fn as_any(&self) -> &dyn Any;

    /// For formatters: downcast to the concrete storage, mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl std::fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.storage_name())
    }
}
