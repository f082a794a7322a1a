//! [`WalWatch`]: notices commits to an SQLite database in WAL mode without a
//! system call, by watching the WAL-index header that the connection already
//! has mapped.
//!
//! `PRAGMA data_version` answers "did another connection commit?", but it
//! starts a read transaction, which takes and drops a shared lock (two
//! `fcntl` calls) and steps a statement: about 2 µs, as much as the rest of a
//! cached registry lookup. In WAL mode every connection maps the wal-index
//! (the `-shm` file), and every commit rewrites the header at its start (its
//! `iChange` counter, frame count, salts and checksums; the layout is in
//! SQLite's "WAL-mode File Format" document and is shared by every SQLite
//! version since 3.7.0, as concurrent processes of different versions
//! require). Reading those 96 bytes is a few nanoseconds. A registry
//! compares them with the previous lookup's and asks `data_version` only
//! when they differ.
//!
//! The header is reached through the connection's own mapping (the VFS
//! method `xShmMap` of the database file), never by opening the `-shm` file:
//! SQLite's locks on that file are POSIX `fcntl` locks, which the process
//! loses when it closes *any* descriptor of the file, so a second descriptor
//! would be a hazard to every connection in the process.
//!
//! When the header cannot be watched (not WAL mode, a VFS without shared
//! memory, a different layout, a header being rewritten at that instant) the
//! answer is "changed", so the caller falls back to `data_version`: a watch
//! can cost a query, never correctness.

use std::ffi::{c_int, c_void};

use rusqlite::{ffi, Connection};

/// Bytes watched: the two copies of the 48-byte WAL-index header.
const HEADER_BYTES: usize = 96;
/// `iVersion` of the WAL-index format (the first field of each copy).
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// The size of a wal-index region, as SQLite maps it.
const WAL_INDEX_REGION: c_int = 32_768;

/// The WAL-index header of one connection's database, as that connection
/// maps it.
///
/// It must not be used after the connection is closed (the mapping goes with
/// it): keep it next to the connection. Dropping it does nothing.
#[derive(Debug)]
pub(crate) struct WalWatch {
    header: *const u8,
}

// SAFETY: the pointer is to the connection's shared-memory mapping, which
// stays valid wherever the owning registry (connection and watch together)
// moves; it is only read, with volatile loads.
unsafe impl Send for WalWatch {}

/// What the header said at one moment.
pub(crate) type Stamp = [u8; HEADER_BYTES];

impl WalWatch {
    /// The header of `conn`'s main database, if the connection has its
    /// wal-index mapped (call it after the connection has read the database
    /// in WAL mode).
    ///
    /// # Safety
    /// The returned watch must not be used after `conn` is closed.
    pub(crate) unsafe fn of(conn: &Connection) -> Option<WalWatch> {
        // Only in WAL mode: asking for the wal-index of a database in another
        // journal mode would make SQLite create one.
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        // SAFETY: `handle` is the live connection; the file-control and VFS
        // calls are SQLite's documented interfaces, used as SQLite's own WAL
        // module uses them (same region 0, same region size, no extension).
        unsafe {
            let db = conn.handle();
            let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
            let rc = ffi::sqlite3_file_control(
                db,
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
            );
            if rc != ffi::SQLITE_OK || file.is_null() {
                return None;
            }
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            let shm_map = (*methods).xShmMap?;
            let mut region: *mut c_void = std::ptr::null_mut();
            let rc = shm_map(file, 0, WAL_INDEX_REGION, 0, &mut region);
            if rc != ffi::SQLITE_OK || region.is_null() {
                return None;
            }
            let watch = WalWatch {
                header: region.cast::<u8>(),
            };
            let s = watch.read();
            (version(&s[..48]) == WAL_INDEX_VERSION).then_some(watch)
        }
    }

    fn read(&self) -> Stamp {
        let mut out = [0u8; HEADER_BYTES];
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: region 0 of the wal-index is 32 KiB, mapped while the
            // connection is open (the type's contract); `i` < 96.
            *b = unsafe { std::ptr::read_volatile(self.header.add(i)) };
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        out
    }

    /// The header now, or `None` while it is being rewritten (its two copies
    /// differ) or has an unknown layout: treat `None` as "changed".
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        let s = self.read();
        (s[..48] == s[48..] && version(&s[..48]) == WAL_INDEX_VERSION).then_some(s)
    }
}

fn version(copy: &[u8]) -> u32 {
    // The wal-index is in the machine's native byte order.
    u32::from_ne_bytes([copy[0], copy[1], copy[2], copy[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_changes_with_every_commit_of_any_connection() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("r.sqlite3");
        let a = Connection::open(&db).unwrap();
        a.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        a.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let b = Connection::open(&db).unwrap();
        let n: i64 = a
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // SAFETY: `w` is dropped before `a` (declared after it).
        let w = unsafe { WalWatch::of(&a) }.expect("a wal-index in WAL mode");
        let s0 = w.stamp().unwrap();
        // Reads change nothing.
        for _ in 0..3 {
            let _: i64 = a
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(w.stamp().unwrap(), s0);
        }
        let mut last = s0;
        for i in 0..20 {
            let c = if i % 2 == 0 { &b } else { &a };
            c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            let s = w.stamp().unwrap();
            assert_ne!(s, last, "commit {i} went unnoticed");
            last = s;
        }
        // A checkpoint that restarts the WAL still changes the header.
        b.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            .unwrap();
        a.execute("INSERT INTO t VALUES (99)", []).unwrap();
        assert_ne!(w.stamp().unwrap(), last);
    }

    #[test]
    fn no_wal_means_no_watch() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("rollback.sqlite3");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        // SAFETY: the watch (if any) is dropped at once.
        assert!(unsafe { WalWatch::of(&c) }.is_none());
    }
}
