//! The shared [`Storage`] conformance suite (with the `testing` feature): the
//! transaction protocol every storage must honour, whatever it writes.
//!
//! A backend's test implements [`Fixture`] (how to write one value, how a
//! separate reader sees what is committed, how to make a commit fail) and
//! calls [`run`]. The cases:
//!
//! 1. a committed write is visible to a new reader;
//! 2. an aborted write, and an aborted empty transaction, leave what was
//!    committed before;
//! 3. nothing is visible between `prepare_commit` and `end_transaction`;
//! 4. a write or commit that fails, followed by `abort_transaction`, leaves
//!    nothing half-written: the reader sees what was committed before and no
//!    temporary file is left behind.

use crate::{Storage, StorageError};

/// One backend under test.
pub trait Fixture {
    /// The storage type.
    type S: Storage;

    /// A new storage, not yet in a transaction.
    fn storage(&mut self) -> Self::S;

    /// Sets the persist location on `s` (called before `start_transaction`).
    fn persist_here(&mut self, s: &mut Self::S) -> Result<(), StorageError>;

    /// Writes `value` inside the open persist transaction.
    fn write(&mut self, s: &mut Self::S, value: i64) -> Result<(), StorageError>;

    /// Writes `value` and arranges that the write itself, `prepare_commit`
    /// or `end_transaction` fails (a constraint violation, a destination
    /// that cannot be replaced, ...).
    fn write_doomed(&mut self, s: &mut Self::S, value: i64) -> Result<(), StorageError>;

    /// Undoes what [`Fixture::write_doomed`] did to the world outside the
    /// storage, checking first that the storage left it untouched.
    fn after_doomed(&mut self) {}

    /// What a separate reader sees, sorted: a file location holds at most
    /// one value, a table every committed row.
    fn read(&mut self) -> Vec<i64>;

    /// Whether commits add to what is there (tables) rather than replace it
    /// (files).
    fn accumulates(&self) -> bool;

    /// Temporary files left behind (none may be).
    fn leftovers(&mut self) -> Vec<String> {
        Vec::new()
    }
}

fn commit<F: Fixture>(f: &mut F, value: i64) -> Vec<i64> {
    let mut s = f.storage();
    f.persist_here(&mut s).expect("set_persist_location");
    s.start_transaction().expect("start_transaction");
    f.write(&mut s, value).expect("write");
    s.prepare_commit().expect("prepare_commit");
    s.end_transaction().expect("end_transaction");
    s.finish_commit();
    f.read()
}

fn after_commit<F: Fixture>(f: &F, before: &[i64], value: i64) -> Vec<i64> {
    let mut v = if f.accumulates() {
        before.to_vec()
    } else {
        Vec::new()
    };
    v.push(value);
    v.sort_unstable();
    v
}

/// Runs every case on `f` (which starts empty); panics naming the case that
/// failed.
pub fn run<F: Fixture>(f: &mut F) {
    assert_eq!(f.read(), Vec::<i64>::new(), "the fixture starts empty");

    // 1. Commit.
    let base = commit(f, 1);
    assert_eq!(base, vec![1], "a committed write is visible");
    assert_eq!(
        f.leftovers(),
        Vec::<String>::new(),
        "commit leaves no temporary file"
    );

    // 2. Abort after a write; abort of an empty transaction.
    let mut s = f.storage();
    f.persist_here(&mut s).unwrap();
    s.start_transaction().unwrap();
    f.write(&mut s, 2).unwrap();
    s.abort_transaction().expect("abort_transaction");
    assert_eq!(
        f.read(),
        base,
        "an aborted write leaves the committed state"
    );
    assert_eq!(
        f.leftovers(),
        Vec::<String>::new(),
        "abort leaves no temporary file"
    );
    let mut s = f.storage();
    f.persist_here(&mut s).unwrap();
    s.start_transaction().unwrap();
    s.abort_transaction()
        .expect("abort of an empty transaction");
    assert_eq!(
        f.read(),
        base,
        "an empty aborted transaction changes nothing"
    );

    // 3. Nothing visible before end_transaction.
    let mut s = f.storage();
    f.persist_here(&mut s).unwrap();
    s.start_transaction().unwrap();
    f.write(&mut s, 3).unwrap();
    s.prepare_commit().expect("prepare_commit");
    assert_eq!(
        f.read(),
        base,
        "a prepared write is not visible before end_transaction"
    );
    s.end_transaction().expect("end_transaction");
    s.finish_commit();
    let base = {
        let want = after_commit(f, &base, 3);
        assert_eq!(f.read(), want, "end_transaction makes the write visible");
        want
    };

    // 4. A failed write or commit leaves nothing half-written.
    let mut s = f.storage();
    f.persist_here(&mut s).unwrap();
    s.start_transaction().unwrap();
    let failed = match f.write_doomed(&mut s, 4) {
        Err(_) => true,
        Ok(()) => s.prepare_commit().is_err() || s.end_transaction().is_err(),
    };
    assert!(failed, "the doomed transaction fails");
    // The protocol after a failure is abort; a storage whose failed commit
    // already cleaned up may call that a state error.
    let _ = s.abort_transaction();
    drop(s);
    f.after_doomed();
    assert_eq!(
        f.read(),
        base,
        "a failed transaction leaves the committed state"
    );
    assert_eq!(
        f.leftovers(),
        Vec::<String>::new(),
        "a failed transaction leaves no temporary file"
    );

    // The storage still works afterwards.
    let want = after_commit(f, &base, 5);
    assert_eq!(commit(f, 5), want, "a commit after a failure succeeds");
}
