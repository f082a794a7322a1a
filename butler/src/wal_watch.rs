//! [`WalWatch`]: notices commits to an SQLite database in WAL mode without a
//! system call, by watching the WAL-index header in its `-shm` file.
//!
//! `PRAGMA data_version` answers "did another connection commit?", but it
//! starts a read transaction, which takes and drops a shared lock (two
//! `fcntl` calls) and steps a statement: about 2 µs, as much as the rest of a
//! cached registry lookup. Every SQLite connection in WAL mode maps the
//! `-shm` file, and every commit rewrites the header at its start (its
//! `iChange` counter, frame count, salts and checksums; the layout is in
//! SQLite's "WAL-mode File Format" document and is shared by every SQLite
//! version since 3.7.0, as concurrent processes of different versions
//! require). Reading those 96 bytes from a read-only mapping is a few
//! nanoseconds. A registry compares them with the previous lookup's and asks
//! `data_version` only when they differ.
//!
//! When the header cannot be watched (no `-shm` file, a different layout, a
//! header being rewritten at that instant) the answer is "changed", so the
//! caller falls back to `data_version`: a watch can cost a query, never
//! correctness.

use std::fs::File;
use std::path::Path;

/// Bytes watched: the two copies of the 48-byte WAL-index header.
const HEADER_BYTES: usize = 96;
/// `iVersion` of the WAL-index format (the first field of each copy).
const WAL_INDEX_VERSION: u32 = 3_007_000;

/// A read-only view of the WAL-index header of one database.
///
/// Keep it only while an SQLite connection to the same database stays open:
/// that connection holds the lock that stops any process from truncating the
/// `-shm` file, so the mapping stays valid.
#[derive(Debug)]
pub(crate) struct WalWatch {
    map: memmap2::Mmap,
}

/// What the header said at one moment.
pub(crate) type Stamp = [u8; HEADER_BYTES];

impl WalWatch {
    /// Maps the header of `db`'s `-shm` file, if there is one with the
    /// expected layout. Call it after the connection has read the database
    /// (SQLite creates and maps the file on the first read in WAL mode).
    pub(crate) fn open(db: &Path) -> Option<WalWatch> {
        let mut shm = db.as_os_str().to_owned();
        shm.push("-shm");
        let file = File::open(shm).ok()?;
        if file.metadata().ok()?.len() < HEADER_BYTES as u64 {
            return None;
        }
        // SAFETY: a read-only shared mapping of the header. SQLite changes
        // these bytes concurrently, so they are only ever read with volatile
        // loads through a raw pointer (never as a `&[u8]`); the file is not
        // truncated while the caller's connection is open (see the type's
        // doc).
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(HEADER_BYTES)
                .map(&file)
                .ok()?
        };
        let watch = WalWatch { map };
        let s = watch.read();
        (version(&s[..48]) == WAL_INDEX_VERSION).then_some(watch)
    }

    fn read(&self) -> Stamp {
        let mut out = [0u8; HEADER_BYTES];
        let p = self.map.as_ptr();
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `i` < HEADER_BYTES, the mapped length.
            *b = unsafe { std::ptr::read_volatile(p.add(i)) };
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
    use rusqlite::Connection;

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
        let w = WalWatch::open(&db).expect("a -shm file in WAL mode");
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
    fn no_shm_file_means_no_watch() {
        let d = tempfile::tempdir().unwrap();
        assert!(WalWatch::open(&d.path().join("none.sqlite3")).is_none());
        let db = d.path().join("rollback.sqlite3");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        assert!(WalWatch::open(&db).is_none());
    }
}
