//! [`SqliteFileRegistry`]: the file registry in `daf_registry.sqlite3` in
//! the repository root (the default backend).
//!
//! WAL mode with a busy timeout, so that many processes can put into one
//! repository at once; each write is one `BEGIN IMMEDIATE` transaction.
//! Lookups are answered from an in-memory copy of the rows while SQLite's
//! `data_version` (which changes when another connection commits) stays the
//! same. Asking `data_version` takes a lock and a statement (~2 µs), so a
//! lookup first compares the WAL-index header (which every commit rewrites,
//! read through the connection's own shared-memory mapping) with the one it
//! saw when the copy was last validated: unchanged means no commit since,
//! and the copy is used without any system call.
//!
//! This connection's own commits do not change `data_version`, so a write
//! keeps the copy: the rows it upserts are applied to the copy (when the
//! copy was current at the start of the write transaction), and a query by
//! a partial data id is answered from an index by (key, value) built on
//! first use, so neither a put nor a query costs time growing with the
//! number of rows.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daf_base::{DataId, DataIdValue};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    canonical_data_id, data_id_of, matches_partial, parse_data_id, Claim, CorruptDataId,
    DatasetRecord, DatasetRegistry, Intent, IntentMode,
};
use crate::error::ButlerError;
#[cfg(feature = "wal-watch")]
use crate::wal_watch::{Stamp as WalStamp, WalWatch};
/// Without the `wal-watch` feature nothing is watched: every cached lookup
/// asks `PRAGMA data_version`.
#[cfg(not(feature = "wal-watch"))]
type WalStamp = ();

/// The registry's file name inside a repository root.
pub const REGISTRY_FILE: &str = "daf_registry.sqlite3";

/// How long a writer waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Rows by dataset type, then canonical data id (nested, so a lookup by
/// `&str` allocates no key).
type RowMap = HashMap<String, HashMap<String, Vec<Arc<DatasetRecord>>>>;

/// One data-id value as an index key: numbers by their `f64` value (so an
/// integer and an equal float meet, as [`super::value_eq`] has it), strings
/// as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ValueKey {
    Num(u64),
    Str(String),
}

impl ValueKey {
    fn of(v: &DataIdValue) -> ValueKey {
        match v {
            DataIdValue::Str(s) => ValueKey::Str(s.clone()),
            other => {
                let x = other.as_f64().unwrap_or(f64::NAN);
                // 0.0 == -0.0: one key for both.
                ValueKey::Num(if x == 0.0 { 0 } else { x.to_bits() })
            }
        }
    }
}

/// Rows by dataset type, then data-id key, then value: the candidates of a
/// query by a partial data id (a superset; each is still checked with
/// [`matches_partial`]).
type PartialIndex = HashMap<String, HashMap<String, HashMap<ValueKey, Vec<Arc<DatasetRecord>>>>>;

fn index_add(index: &mut PartialIndex, rec: &Arc<DatasetRecord>) {
    let by_key = index.entry(rec.dataset_type.clone()).or_default();
    for (k, v) in rec.data_id.iter() {
        let list = by_key
            .entry(k.to_string())
            .or_default()
            .entry(ValueKey::of(v))
            .or_default();
        match list.iter_mut().find(|r| r.id == rec.id) {
            Some(slot) => *slot = rec.clone(),
            None => list.push(rec.clone()),
        }
    }
}

/// The in-memory copy of the rows, and its partial-data-id index (built at
/// the first query that needs it).
#[derive(Debug, Default)]
struct Cache {
    rows: RowMap,
    index: OnceCell<PartialIndex>,
}

impl Cache {
    fn index(&self) -> &PartialIndex {
        self.index.get_or_init(|| {
            let mut index = PartialIndex::new();
            for by_id in self.rows.values() {
                for recs in by_id.values() {
                    for r in recs {
                        index_add(&mut index, r);
                    }
                }
            }
            index
        })
    }

    /// Applies rows this connection has just upserted (`recs`, given the
    /// ids the database returned).
    fn upsert(&mut self, recs: &[DatasetRecord], ids: &[i64]) {
        for (rec, &id) in recs.iter().zip(ids) {
            let key = canonical_data_id(&rec.data_id);
            // As a reload would read it back.
            let data_id = parse_data_id(&key).unwrap_or_default();
            let new = Arc::new(DatasetRecord {
                id,
                data_id,
                ..rec.clone()
            });
            let list = self
                .rows
                .entry(rec.dataset_type.clone())
                .or_default()
                .entry(key)
                .or_default();
            match list.iter_mut().find(|r| r.run == rec.run) {
                Some(slot) => *slot = new.clone(),
                None => list.push(new.clone()),
            }
            if let Some(index) = self.index.get_mut() {
                index_add(index, &new);
            }
        }
    }
}

/// An in-memory copy of the rows, valid while SQLite's `data_version`
/// (which changes when another connection commits) stays the same.
#[derive(Debug, Default)]
struct CacheState {
    /// The data version seen at the previous lookup.
    version_seen: Option<i64>,
    /// Rows by (dataset type, canonical data id), built when two lookups in
    /// a row saw the same version (so constant concurrent writes do not
    /// cause a reload per lookup).
    cache: Option<(i64, Cache)>,
    /// The WAL-index header read just before the `data_version` that
    /// validated `cache`.
    stamp: Option<WalStamp>,
}

/// The SQLite file registry of one repository.
#[derive(Debug)]
pub struct SqliteFileRegistry {
    conn: Connection,
    path: PathBuf,
    root: PathBuf,
    state: RefCell<CacheState>,
    /// The WAL-index header watch over `conn`'s mapping (feature
    /// `wal-watch`), made again after every `data_version` query (`None` when
    /// there is none to watch). Its pointer is read only while
    /// `state.stamp` is set, which only the lookup that just made the watch
    /// sets and every other statement on `conn` clears ([`Self::reader`],
    /// `write_txn`): a statement may close the connection's WAL (another
    /// process changed the journal mode) and unmap the header.
    #[cfg(feature = "wal-watch")]
    watch: RefCell<Option<WalWatch>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_type TEXT NOT NULL,
    data_id TEXT NOT NULL,
    run TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    source TEXT,
    UNIQUE (dataset_type, data_id, run)
);
CREATE INDEX IF NOT EXISTS ix_datasets_source ON datasets (source);
CREATE INDEX IF NOT EXISTS ix_datasets_path ON datasets (path);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_type TEXT NOT NULL,
    data_id TEXT NOT NULL,
    run TEXT NOT NULL,
    mode TEXT NOT NULL,
    files TEXT NOT NULL,
    checksum TEXT NOT NULL,
    size INTEGER NOT NULL,
    owner TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    UNIQUE (dataset_type, data_id, run)
);
CREATE TABLE IF NOT EXISTS provenance (
    dataset_type TEXT NOT NULL,
    data_id TEXT NOT NULL,
    input_type TEXT NOT NULL,
    input_id TEXT NOT NULL,
    PRIMARY KEY (dataset_type, data_id, input_type, input_id)
);
";

const COLS: &str = "id, dataset_type, data_id, run, path, size, checksum, time_ns, source";

/// The row's data id (column 2), or a conversion error carrying
/// [`CorruptDataId`] (made a [`ButlerError::CorruptRow`] by [`sqlite_err`]).
fn row_data_id(r: &rusqlite::Row<'_>, table: &'static str) -> rusqlite::Result<DataId> {
    let id_text: String = r.get(2)?;
    let (id, dataset_type, run): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(3)?);
    data_id_of(table, id, &dataset_type, &run, &id_text).map_err(|c| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(c))
    })
}

/// A registry error keeping the rusqlite error as its source; a corrupt
/// `data_id` is [`ButlerError::CorruptRow`].
fn sqlite_err(registry: &str, e: rusqlite::Error) -> ButlerError {
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &e {
        if let Some(c) = inner.downcast_ref::<CorruptDataId>() {
            return c.to_error(registry);
        }
    }
    ButlerError::Registry {
        registry: registry.to_string(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<DatasetRecord> {
    Ok(DatasetRecord {
        id: r.get(0)?,
        dataset_type: r.get(1)?,
        data_id: row_data_id(r, "datasets")?,
        run: r.get(3)?,
        path: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        checksum: r.get(6)?,
        time_ns: r.get(7)?,
        source: r.get(8)?,
    })
}

const INTENT_COLS: &str =
    "id, dataset_type, data_id, run, mode, files, checksum, size, owner, time_ns";

fn row_to_intent(r: &rusqlite::Row<'_>) -> rusqlite::Result<Intent> {
    let mode: String = r.get(4)?;
    let files: String = r.get(5)?;
    Ok(Intent {
        id: r.get(0)?,
        dataset_type: r.get(1)?,
        data_id: row_data_id(r, "intents")?,
        run: r.get(3)?,
        mode: IntentMode::parse(&mode).unwrap_or(IntentMode::New),
        files: Intent::parse_files(&files),
        checksum: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        owner: r.get(8)?,
        time_ns: r.get(9)?,
    })
}

fn upsert_rows(
    tx: &rusqlite::Transaction<'_>,
    recs: &[DatasetRecord],
) -> rusqlite::Result<Vec<i64>> {
    let mut st = tx.prepare_cached(
        "INSERT INTO datasets (dataset_type, data_id, run, path, size, checksum, time_ns, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (dataset_type, data_id, run) DO UPDATE SET
           path = excluded.path, size = excluded.size, checksum = excluded.checksum,
           time_ns = excluded.time_ns, source = excluded.source
         RETURNING id",
    )?;
    let mut ids = Vec::with_capacity(recs.len());
    for rec in recs {
        let id: i64 = st.query_row(
            params![
                rec.dataset_type,
                canonical_data_id(&rec.data_id),
                rec.run,
                rec.path,
                rec.size as i64,
                rec.checksum,
                rec.time_ns,
                rec.source
            ],
            |r| r.get(0),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

fn delete_intents(tx: &rusqlite::Transaction<'_>, ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("DELETE FROM intents WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

impl SqliteFileRegistry {
    /// Opens (creating if `create`) the registry of the repository at `root`.
    /// Without `create`, a missing registry gives `Ok(None)`.
    pub fn open(root: &Path, create: bool) -> Result<Option<SqliteFileRegistry>, ButlerError> {
        let path = root.join(REGISTRY_FILE);
        // A folder or file this user may not see is "permission denied",
        // not a repository without a registry.
        match std::fs::metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
            }
            Err(e) => return Err(ButlerError::io(&path, e)),
        }
        let shown = path.display().to_string();
        let err = |m: &str, e: rusqlite::Error| ButlerError::registry_source(&shown, m, e);
        let bare = |e: rusqlite::Error| sqlite_err(&shown, e);
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        // SQLite opens a file this user cannot write read-only; a reader
        // without write access then gets a connection that writes nothing
        // (no WAL switch, no schema, no recovery), `mode=ro` or immutable.
        let conn = match Connection::open_with_flags(&path, flags) {
            Ok(c) if !c.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) => c,
            Ok(_) if create => {
                // A writable repository whose registry this user may not
                // write: say so now, not at the first put.
                let e = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .err()
                    .unwrap_or_else(|| std::io::ErrorKind::PermissionDenied.into());
                return Err(ButlerError::io(&path, e));
            }
            Err(e) if create => return Err(err("cannot create or open it", e)),
            _ => daf_mappers::registry::open_sqlite_read_only(&path).map_err(|e| match e {
                daf_mappers::registry::ReadOnlyOpenError::Io(io) => ButlerError::io(&path, io),
                other => ButlerError::Registry {
                    registry: shown.clone(),
                    message: other.to_string(),
                    source: Some(Box::new(other)),
                },
            })?,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(bare)?;
        if !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            // Switching to WAL takes a lock; another process creating the
            // registry at the same moment may hold it briefly.
            let mut tries = 0;
            loop {
                match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
                    Ok(_) => break,
                    Err(e) if tries < 200 => {
                        tries += 1;
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => return Err(bare(e)),
                }
            }
            conn.execute_batch("PRAGMA synchronous=NORMAL;")
                .map_err(bare)?;
            let mut reg = SqliteFileRegistry {
                conn,
                path: path.clone(),
                root: root.to_path_buf(),
                state: RefCell::default(),
                #[cfg(feature = "wal-watch")]
                watch: RefCell::new(None),
            };
            reg.write_txn(|tx| tx.execute_batch(SCHEMA))?;
            return Ok(Some(reg));
        }
        Ok(Some(SqliteFileRegistry {
            conn,
            path,
            root: root.to_path_buf(),
            state: RefCell::default(),
            #[cfg(feature = "wal-watch")]
            watch: RefCell::new(None),
        }))
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A driver error (kept as the source; a corrupt row is
    /// [`ButlerError::CorruptRow`]).
    fn err(&self, e: rusqlite::Error) -> ButlerError {
        sqlite_err(&self.path.display().to_string(), e)
    }

    /// A registry error without a driver error.
    fn msg(&self, m: impl Into<String>) -> ButlerError {
        ButlerError::registry(self.path.display().to_string(), m)
    }

    /// `PRAGMA data_version`: changes when another connection commits.
    fn data_version(&self) -> Result<i64, ButlerError> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Makes the WAL-index watch again, after the statements of a lookup
    /// that read the database at `version` (which may have closed and
    /// reopened the WAL: a journal-mode change elsewhere), and returns the
    /// header it shows, if that header belongs to `version`: `data_version`
    /// is asked once more, and a commit (or journal-mode change, which
    /// rewrites the database header) in between drops the watch.
    #[cfg(feature = "wal-watch")]
    fn watch_after(&self, version: i64) -> Result<Option<WalStamp>, ButlerError> {
        // SAFETY: the watch lives in `self` beside `conn` and its pointer is
        // read only while `state.stamp` is set, i.e. while no statement ran
        // on `conn` since this check (see the field), so never after the
        // mapping went away.
        let w = unsafe { WalWatch::of(&self.conn) };
        let stamp = w.as_ref().and_then(WalWatch::stamp);
        let same = self.data_version()? == version;
        *self.watch.borrow_mut() = if same { w } else { None };
        Ok(if same { stamp } else { None })
    }

    /// Without the `wal-watch` feature nothing is watched.
    #[cfg(not(feature = "wal-watch"))]
    fn watch_after(&self, _version: i64) -> Result<Option<WalStamp>, ButlerError> {
        Ok(None)
    }

    /// The connection for a statement outside [`Self::with_cache`]: the
    /// statement may unmap the watched header, so the cache's stamp is
    /// dropped first (the next lookup asks `data_version`).
    fn reader(&self) -> &Connection {
        self.state.borrow_mut().stamp = None;
        &self.conn
    }

    /// A write transaction that may change any row: the in-memory copy is
    /// dropped.
    fn write_txn<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, ButlerError> {
        self.write_txn_keeping(f, |_, _| false)
    }

    /// A write transaction after which `keep` brings the in-memory copy up
    /// to date with what `f` did (returning false drops it instead). The
    /// copy is kept only if it was current when the transaction began (its
    /// `data_version`, read inside the transaction, unchanged): then it
    /// plus this transaction's changes is the database as committed, and
    /// since a connection's own commits leave `data_version` as it was, the
    /// next lookup finds it valid. A failed transaction drops it.
    fn write_txn_keeping<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
        keep: impl FnOnce(&T, &mut Cache) -> bool,
    ) -> Result<T, ButlerError> {
        let prior = std::mem::take(&mut *self.state.borrow_mut()).cache;
        let path = self.path.display().to_string();
        let e = |e: rusqlite::Error| sqlite_err(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let current = match &prior {
            Some((version, _)) => {
                tx.prepare_cached("PRAGMA data_version")
                    .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
                    .map_err(e)?
                    == *version
            }
            None => false,
        };
        let out = f(&tx).map_err(e)?;
        tx.commit().map_err(e)?;
        if let (true, Some((version, mut cache))) = (current, prior) {
            if keep(&out, &mut cache) {
                let mut st = self.state.borrow_mut();
                st.cache = Some((version, cache));
                st.version_seen = Some(version);
                // The WAL-index header changed with this commit; the next
                // lookup checks `data_version` and takes a new stamp.
                st.stamp = None;
            }
        }
        Ok(out)
    }

    /// Runs `f` on the in-memory copy of the rows if it is valid (no commit
    /// since it was validated, or `data_version` unchanged), building the
    /// copy when two lookups in a row saw the same version; `None` when
    /// there is no valid copy (the caller asks SQLite).
    fn with_cache<R>(&self, f: impl FnOnce(&Cache) -> R) -> Result<Option<R>, ButlerError> {
        // No commit since the copy was validated: answer from it.
        #[cfg(feature = "wal-watch")]
        {
            let st = self.state.borrow();
            if let (Some(seen), Some((_, map))) = (&st.stamp, &st.cache) {
                // `stamp` is set: no statement ran since the watch was made.
                let now = self.watch.borrow().as_ref().and_then(WalWatch::stamp);
                if now.as_ref() == Some(seen) {
                    return Ok(Some(f(map)));
                }
            }
        }
        let version = self.data_version()?;
        {
            let mut st = self.state.borrow_mut();
            let fresh = matches!(&st.cache, Some((v, _)) if *v == version);
            if !fresh && st.version_seen == Some(version) {
                let mut map = RowMap::new();
                let mut q = self
                    .conn
                    .prepare_cached(&format!("SELECT {COLS} FROM datasets"))
                    .map_err(|e| self.err(e))?;
                let rows = q
                    .query_map([], |r| Ok((r.get::<_, String>(2)?, row_to_record(r)?)))
                    .map_err(|e| self.err(e))?;
                for row in rows {
                    let (id_text, rec) = row.map_err(|e| self.err(e))?;
                    map.entry(rec.dataset_type.clone())
                        .or_default()
                        .entry(id_text)
                        .or_default()
                        .push(Arc::new(rec));
                }
                st.cache = Some((
                    version,
                    Cache {
                        rows: map,
                        index: OnceCell::new(),
                    },
                ));
            } else if !fresh {
                st.cache = None;
            }
            st.version_seen = Some(version);
            st.stamp = match st.cache {
                Some(_) => self.watch_after(version)?,
                None => None,
            };
            if let Some((_, map)) = &st.cache {
                return Ok(Some(f(map)));
            }
        }
        Ok(None)
    }
}

impl DatasetRegistry for SqliteFileRegistry {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn local_file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn insert_many(&mut self, recs: &[DatasetRecord]) -> Result<Vec<i64>, ButlerError> {
        self.write_txn_keeping(
            |tx| upsert_rows(tx, recs),
            |ids, cache| {
                cache.upsert(recs, ids);
                true
            },
        )
    }

    fn claim(&mut self, intents: &[Intent]) -> Result<Vec<Claim>, ButlerError> {
        // Intents only: the rows (and so the in-memory copy) are unchanged.
        self.write_txn_keeping(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT INTO intents (dataset_type, data_id, run, mode, files, checksum, size, owner, time_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (dataset_type, data_id, run) DO NOTHING RETURNING id",
            )?;
            let mut holder = tx.prepare_cached(&format!(
                "SELECT {INTENT_COLS} FROM intents WHERE dataset_type = ?1 AND data_id = ?2 AND run = ?3"
            ))?;
            let mut row = tx.prepare_cached(&format!(
                "SELECT {COLS} FROM datasets WHERE dataset_type = ?1 AND data_id = ?2 AND run = ?3"
            ))?;
            let mut out = Vec::with_capacity(intents.len());
            for it in intents {
                let key = canonical_data_id(&it.data_id);
                let id: Option<i64> = ins
                    .query_row(
                        params![
                            it.dataset_type,
                            key,
                            it.run,
                            it.mode.as_str(),
                            it.files_json(),
                            it.checksum,
                            it.size as i64,
                            it.owner,
                            it.time_ns
                        ],
                        |r| r.get(0),
                    )
                    .optional()?;
                out.push(match id {
                    Some(intent) => Claim::Claimed {
                        intent,
                        existing: row
                            .query_row(params![it.dataset_type, key, it.run], row_to_record)
                            .optional()?,
                    },
                    None => Claim::Busy(holder.query_row(
                        params![it.dataset_type, key, it.run],
                        row_to_intent,
                    )?),
                });
            }
            Ok(out)
        }, |_, _| true)
    }

    fn settle(&mut self, recs: &[DatasetRecord], done: &[i64]) -> Result<Vec<i64>, ButlerError> {
        self.write_txn_keeping(
            |tx| {
                let ids = upsert_rows(tx, recs)?;
                delete_intents(tx, done)?;
                Ok(ids)
            },
            |ids, cache| {
                cache.upsert(recs, ids);
                true
            },
        )
    }

    fn discard(&mut self, rows: &[i64], done: &[i64]) -> Result<(), ButlerError> {
        if rows.is_empty() && done.is_empty() {
            return Ok(());
        }
        let rows_unchanged = rows.is_empty();
        self.write_txn_keeping(
            |tx| {
                let mut st = tx.prepare_cached("DELETE FROM datasets WHERE id = ?1")?;
                for id in rows {
                    st.execute([id])?;
                }
                delete_intents(tx, done)
            },
            |_, _| rows_unchanged,
        )
    }

    fn release(&mut self, ids: &[i64]) -> Result<(), ButlerError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write_txn_keeping(|tx| delete_intents(tx, ids), |_, _| true)
    }

    fn take_over(&mut self, id: i64, from: &str, to: &str) -> Result<bool, ButlerError> {
        self.write_txn_keeping(
            |tx| {
                tx.execute(
                    "UPDATE intents SET owner = ?3 WHERE id = ?1 AND owner = ?2",
                    params![id, from, to],
                )
                .map(|n| n == 1)
            },
            |_, _| true,
        )
    }

    fn intents(&self) -> Result<Vec<Intent>, ButlerError> {
        let mut st = self
            .reader()
            .prepare_cached(&format!("SELECT {INTENT_COLS} FROM intents ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], row_to_intent).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Removes a row.
    fn remove(&mut self, id: i64) -> Result<(), ButlerError> {
        self.write_txn(|tx| {
            tx.execute("DELETE FROM datasets WHERE id = ?1", [id])
                .map(|_| ())
        })
    }

    /// The file of `dataset_type` with exactly `data_id`, from `run` (or the
    /// newest run when `None`).
    fn find(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Option<Arc<DatasetRecord>>, ButlerError> {
        let key = canonical_data_id(data_id);
        let pick = |cache: &Cache| {
            let hits = cache.rows.get(dataset_type).and_then(|m| m.get(&key));
            hits.and_then(|v| match run {
                Some(run) => v.iter().find(|r| r.run == run),
                None => v.iter().max_by_key(|r| (r.time_ns, r.id)),
            })
            .cloned()
        };
        if let Some(hit) = self.with_cache(pick)? {
            return Ok(hit);
        }
        let res = match run {
            Some(run) => self
                .reader()
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM datasets WHERE dataset_type = ?1 AND data_id = ?2 AND run = ?3"
                ))
                .and_then(|mut st| st.query_row(params![dataset_type, key, run], row_to_record).optional()),
            None => self
                .reader()
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM datasets WHERE dataset_type = ?1 AND data_id = ?2
                     ORDER BY time_ns DESC, id DESC LIMIT 1"
                ))
                .and_then(|mut st| st.query_row(params![dataset_type, key], row_to_record).optional()),
        };
        res.map(|r| r.map(Arc::new)).map_err(|e| self.err(e))
    }

    /// Every row of `dataset_type` (all types when `None`) whose data id holds
    /// every item of `partial`, in insertion order; only `run` if given.
    fn find_matching(
        &self,
        dataset_type: Option<&str>,
        partial: &DataId,
        run: Option<&str>,
    ) -> Result<Vec<DatasetRecord>, ButlerError> {
        // From the in-memory copy when it is valid: no SQL, no data-id
        // parsing, only the matching rows copied out.
        let from_cache = self.with_cache(|cache| {
            let mut hits: Vec<&Arc<DatasetRecord>> = Vec::new();
            let keep = |r: &Arc<DatasetRecord>| {
                run.is_none_or(|run| r.run == run) && matches_partial(&r.data_id, partial)
            };
            if partial.is_empty() {
                let types: Vec<&HashMap<String, Vec<Arc<DatasetRecord>>>> = match dataset_type {
                    Some(t) => cache.rows.get(t).into_iter().collect(),
                    None => cache.rows.values().collect(),
                };
                for m in types {
                    hits.extend(m.values().flatten().filter(|r| keep(r)));
                }
            } else {
                // The shortest candidate list among the partial id's items.
                let index = cache.index();
                let types: Vec<_> = match dataset_type {
                    Some(t) => index.get(t).into_iter().collect(),
                    None => index.values().collect(),
                };
                for by_key in types {
                    let mut best: Option<&Vec<Arc<DatasetRecord>>> = None;
                    for (k, v) in partial.iter() {
                        match by_key.get(k).and_then(|m| m.get(&ValueKey::of(v))) {
                            Some(list) if best.is_none_or(|b| list.len() < b.len()) => {
                                best = Some(list)
                            }
                            Some(_) => {}
                            None => {
                                best = None;
                                break;
                            }
                        }
                    }
                    hits.extend(best.into_iter().flatten().filter(|r| keep(r)));
                }
            }
            hits.sort_unstable_by_key(|r| r.id);
            hits.into_iter().map(|r| (**r).clone()).collect::<Vec<_>>()
        })?;
        if let Some(found) = from_cache {
            return Ok(found);
        }
        let mut st = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {COLS} FROM datasets WHERE (?1 IS NULL OR dataset_type = ?1)
                 AND (?2 IS NULL OR run = ?2) ORDER BY id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![dataset_type, run], row_to_record)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(|e| self.err(e))?;
            if matches_partial(&r.data_id, partial) {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn project_matching(
        &self,
        dataset_type: &str,
        partial: &DataId,
        keys: &[&str],
    ) -> Result<Vec<Vec<DataIdValue>>, ButlerError> {
        // From the in-memory copy: only the asked values are copied out.
        let from_cache = self.with_cache(|map| {
            let mut hits: Vec<(i64, Vec<DataIdValue>)> = Vec::new();
            for recs in map
                .rows
                .get(dataset_type)
                .into_iter()
                .flat_map(|m| m.values())
            {
                for r in recs {
                    if matches_partial(&r.data_id, partial) {
                        if let Some(v) = super::project(&r.data_id, keys) {
                            hits.push((r.id, v));
                        }
                    }
                }
            }
            hits.sort_unstable_by_key(|h| h.0);
            hits.into_iter().map(|h| h.1).collect::<Vec<_>>()
        })?;
        match from_cache {
            Some(v) => Ok(v),
            None => Ok(self
                .find_matching(Some(dataset_type), partial, None)?
                .iter()
                .filter_map(|r| super::project(&r.data_id, keys))
                .collect()),
        }
    }

    /// Number of rows.
    fn count(&self) -> Result<usize, ButlerError> {
        self.reader()
            .query_row("SELECT COUNT(*) FROM datasets", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// The row ingested from `source` (an absolute path), if any.
    fn find_by_source(&self, source: &str) -> Result<Option<DatasetRecord>, ButlerError> {
        self.reader()
            .prepare_cached(&format!(
                "SELECT {COLS} FROM datasets WHERE source = ?1 LIMIT 1"
            ))
            .and_then(|mut st| st.query_row([source], row_to_record).optional())
            .map_err(|e| self.err(e))
    }

    /// Distinct dataset types, sorted.
    fn record_provenance(
        &mut self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[(String, DataId)],
    ) -> Result<(), ButlerError> {
        let id = canonical_data_id(data_id);
        self.write_txn(|tx| {
            tx.execute(
                "DELETE FROM provenance WHERE dataset_type = ?1 AND data_id = ?2",
                params![dataset_type, id],
            )?;
            let mut st =
                tx.prepare_cached("INSERT OR IGNORE INTO provenance VALUES (?1, ?2, ?3, ?4)")?;
            for (t, i) in inputs {
                st.execute(params![dataset_type, id, t, canonical_data_id(i)])?;
            }
            Ok(())
        })
    }

    fn provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<Vec<(String, DataId)>, ButlerError> {
        let mut st = self
            .reader()
            .prepare_cached(
                "SELECT input_type, input_id FROM provenance WHERE dataset_type = ?1 AND data_id = ?2
                 ORDER BY input_type, input_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![dataset_type, canonical_data_id(data_id)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (t, id) = row.map_err(|e| self.err(e))?;
            let id = parse_data_id(&id)
                .ok_or_else(|| self.msg(format!("provenance row has a bad data id {id:?}")))?;
            out.push((t, id));
        }
        Ok(out)
    }

    fn dataset_types(&self) -> Result<Vec<String>, ButlerError> {
        let mut st = self
            .reader()
            .prepare("SELECT DISTINCT dataset_type FROM datasets ORDER BY dataset_type")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_registry::{now_ns, Problem};
    use daf_base::data_id;

    fn rec(dt: &str, id: DataId, run: &str, path: &str, root: &Path) -> DatasetRecord {
        crate::file_registry::conformance::record(root, dt, id, run, path, now_ns())
    }

    #[test]
    fn insert_find_runs_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("any name.bin"), b"first").unwrap();
        std::fs::write(root.join("second.bin"), b"second!").unwrap();
        let mut reg = SqliteFileRegistry::open(root, true).unwrap().unwrap();
        let id = data_id! {visit: 1, filter: "g"};
        reg.insert(&rec("calexp", id.clone(), "r1", "any name.bin", root))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
        reg.insert(&rec("calexp", id.clone(), "r2", "second.bin", root))
            .unwrap();
        assert_eq!(reg.count().unwrap(), 2);
        // newest by default, a named run on request
        assert_eq!(reg.find("calexp", &id, None).unwrap().unwrap().run, "r2");
        assert_eq!(
            reg.find("calexp", &id, Some("r1")).unwrap().unwrap().path,
            "any name.bin"
        );
        assert!(reg.find("calexp", &id, Some("r3")).unwrap().is_none());
        assert!(reg
            .find("calexp", &data_id! {visit: 2, filter: "g"}, None)
            .unwrap()
            .is_none());
        // partial matching
        let m = reg
            .find_matching(Some("calexp"), &data_id! {filter: "g"}, None)
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].data_id, id);
        // re-insert same key replaces, not duplicates
        reg.insert(&rec("calexp", id.clone(), "r1", "any name.bin", root))
            .unwrap();
        assert_eq!(reg.count().unwrap(), 2);
        assert!(reg.verify().unwrap().is_empty());

        // damage: change content with same size, change size, delete
        std::fs::write(root.join("any name.bin"), b"FIRST").unwrap();
        std::fs::write(root.join("second.bin"), b"x").unwrap();
        let v = reg.verify().unwrap();
        assert_eq!(v.len(), 2);
        assert!(matches!(v[0].problem, Problem::Checksum { .. }), "{v:?}");
        assert!(
            matches!(
                v[1].problem,
                Problem::Size {
                    expected: 7,
                    actual: 1
                }
            ),
            "{v:?}"
        );
        std::fs::remove_file(root.join("second.bin")).unwrap();
        let v = reg.verify().unwrap();
        assert_eq!(v[1].problem, Problem::Missing);
    }

    #[test]
    fn reopen_and_missing() {
        let d = tempfile::tempdir().unwrap();
        assert!(SqliteFileRegistry::open(d.path(), false).unwrap().is_none());
        std::fs::write(d.path().join("f"), b"abc").unwrap();
        {
            let mut reg = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
            let mut r = rec("raw", data_id! {visit: 3}, "", "f", d.path());
            r.source = Some("/src/f".into());
            reg.insert(&r).unwrap();
        }
        let reg = SqliteFileRegistry::open(d.path(), false).unwrap().unwrap();
        let r = reg.find_by_source("/src/f").unwrap().unwrap();
        assert_eq!(r.data_id, data_id! {visit: 3});
        assert_eq!(r.size, 3);
        assert_eq!(r.checksum, blake3::hash(b"abc").to_hex().to_string());
        assert_eq!(reg.dataset_types().unwrap(), vec!["raw".to_string()]);
    }

    #[test]
    fn cache_sees_other_connections_writes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"abc").unwrap();
        let mut a = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
        let mut b = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
        let id1 = data_id! {visit: 1};
        let id2 = data_id! {visit: 2};
        a.insert(&rec("raw", id1.clone(), "", "f", d.path()))
            .unwrap();
        for _ in 0..3 {
            assert_eq!(a.find("raw", &id1, None).unwrap().unwrap().path, "f");
            assert!(a.find("raw", &id2, None).unwrap().is_none());
        }
        b.insert(&rec("raw", id2.clone(), "", "f", d.path()))
            .unwrap();
        assert!(a.find("raw", &id2, None).unwrap().is_some());
        let mut moved = rec("raw", id1.clone(), "", "f", d.path());
        moved.path = "g".into();
        b.insert(&moved).unwrap();
        assert_eq!(a.find("raw", &id1, None).unwrap().unwrap().path, "g");
        assert_eq!(a.find("raw", &id1, None).unwrap().unwrap().path, "g");
        // own writes are applied to the copy
        a.insert(&rec("raw", id1.clone(), "", "f", d.path()))
            .unwrap();
        assert_eq!(a.find("raw", &id1, None).unwrap().unwrap().path, "f");
    }

    #[test]
    fn cached_lookups_see_every_commit_of_another_process() {
        // The cached path skips `data_version` while the WAL header is
        // unchanged; every commit by another connection must still show at
        // the next lookup, whether the cache was just validated or not.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"abc").unwrap();
        let mut writer = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
        let reader = SqliteFileRegistry::open(d.path(), false).unwrap().unwrap();
        let id = data_id! {visit: 1};
        writer
            .insert(&rec("raw", id.clone(), "", "f", d.path()))
            .unwrap();
        for i in 0..40 {
            for _ in 0..(i % 4) {
                reader.find("raw", &id, None).unwrap();
            }
            let mut r = rec("raw", id.clone(), "", "f", d.path());
            r.path = format!("p{i}");
            writer.insert(&r).unwrap();
            for _ in 0..3 {
                assert_eq!(reader.find("raw", &id, None).unwrap().unwrap().path, r.path);
            }
            let other = data_id! {visit: 1000 + i as i64};
            assert!(reader.find("raw", &other, None).unwrap().is_none());
            writer
                .insert(&rec("raw", other.clone(), "", "f", d.path()))
                .unwrap();
            assert!(reader.find("raw", &other, None).unwrap().is_some(), "{i}");
        }
        #[cfg(feature = "wal-watch")]
        assert!(
            reader
                .watch
                .borrow()
                .as_ref()
                .is_some_and(|w| w.stamp().is_some()),
            "the WAL header is watched"
        );
    }

    /// Another process takes the registry out of WAL mode (its commits then
    /// no longer touch the wal-index) and commits: lookups still see it, and
    /// nothing reads a header whose mapping went away.
    #[test]
    fn journal_mode_changes_elsewhere_are_seen() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"abc").unwrap();
        let reader = SqliteFileRegistry::open(d.path(), false);
        assert!(reader.unwrap().is_none(), "no registry yet");
        let mut writer = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
        let reader = SqliteFileRegistry::open(d.path(), false).unwrap().unwrap();
        let db = d.path().join(REGISTRY_FILE);
        for (i, mode) in ["DELETE", "TRUNCATE", "WAL", "DELETE"]
            .into_iter()
            .enumerate()
        {
            let id = data_id! {visit: i as i64};
            writer
                .insert(&rec("raw", id.clone(), "", "f", d.path()))
                .unwrap();
            for _ in 0..3 {
                assert_eq!(reader.find("raw", &id, None).unwrap().unwrap().path, "f");
            }
            // Only one connection may change the mode: the writer goes.
            drop(writer);
            let other = Connection::open(&db).unwrap();
            other
                .busy_timeout(std::time::Duration::from_secs(2))
                .unwrap();
            // SQLite refuses to leave WAL mode while the reader has the
            // wal-index mapped: the watched header cannot be unmapped or go
            // stale under it that way.
            let r = other.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| {
                r.get::<_, String>(0)
            });
            match r {
                Err(rusqlite::Error::SqliteFailure(e, _)) => {
                    assert_eq!(e.code, rusqlite::ErrorCode::DatabaseBusy, "{mode}")
                }
                Ok(m) => assert_eq!(
                    m.to_ascii_uppercase(),
                    "WAL",
                    "{mode} while a reader is open"
                ),
                Err(e) => panic!("{mode}: {e}"),
            }
            let moved = format!("moved{i}");
            let n = other
                .execute(
                    "UPDATE datasets SET path = ?1 WHERE id = (SELECT MAX(id) FROM datasets)",
                    [&moved],
                )
                .unwrap();
            assert_eq!(n, 1);
            drop(other);
            for _ in 0..3 {
                let got = reader.find("raw", &id, None).unwrap().unwrap();
                assert_eq!(
                    got.path, moved,
                    "a commit after asking for {mode} went unseen"
                );
            }
            writer = SqliteFileRegistry::open(d.path(), true).unwrap().unwrap();
        }
    }

    /// Whether `reg` holds a valid in-memory copy now.
    fn has_copy(reg: &SqliteFileRegistry) -> bool {
        reg.state.borrow().cache.is_some()
    }

    #[test]
    fn own_writes_keep_the_copy_and_queries_use_the_index() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("f"), b"abc").unwrap();
        std::fs::write(root.join("g"), b"abcd").unwrap();
        let mut a = SqliteFileRegistry::open(root, true).unwrap().unwrap();
        let mut b = SqliteFileRegistry::open(root, true).unwrap().unwrap();
        let recs: Vec<DatasetRecord> = (0..6)
            .map(|i| rec("raw", data_id! {visit: i / 2, ccd: i % 2}, "", "f", root))
            .collect();
        a.insert_many(&recs).unwrap();
        // two lookups build the copy
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        assert!(has_copy(&a));
        let visits = |reg: &SqliteFileRegistry, p: DataId| -> Vec<String> {
            reg.find_matching(Some("raw"), &p, None)
                .unwrap()
                .into_iter()
                .map(|r| format!("{}:{}", canonical_data_id(&r.data_id), r.path))
                .collect()
        };
        assert_eq!(
            visits(&a, data_id! {visit: 1}),
            [r#"{"ccd":0,"visit":1}:f"#, r#"{"ccd":1,"visit":1}:f"#]
        );
        // a float finds the integer, a string does not, an unknown key or
        // value finds nothing
        assert_eq!(visits(&a, data_id! {visit: 2.0, ccd: 1}).len(), 1);
        assert!(visits(&a, data_id! {visit: "2"}).is_empty());
        assert!(visits(&a, data_id! {visit: 9}).is_empty());
        assert!(visits(&a, data_id! {filter: "g"}).is_empty());
        assert_eq!(visits(&a, DataId::new()).len(), 6);
        // an own insert and an own update are applied to the copy
        let mut moved = rec("raw", data_id! {visit: 1, ccd: 1}, "", "g", root);
        moved.size = 3;
        a.insert_many(&[
            moved,
            rec("raw", data_id! {visit: 1, ccd: 2}, "", "f", root),
        ])
        .unwrap();
        assert!(has_copy(&a), "own writes keep the copy");
        assert_eq!(
            visits(&a, data_id! {visit: 1}),
            [
                r#"{"ccd":0,"visit":1}:f"#,
                r#"{"ccd":1,"visit":1}:g"#,
                r#"{"ccd":2,"visit":1}:f"#
            ]
        );
        let hit = a
            .find("raw", &data_id! {visit: 1, ccd: 1}, None)
            .unwrap()
            .unwrap();
        assert_eq!(hit.path, "g");
        // the copy's rows equal a fresh read of the database
        let fresh = SqliteFileRegistry::open(root, false).unwrap().unwrap();
        let all = |reg: &SqliteFileRegistry| {
            let mut v = reg.find_matching(None, &DataId::new(), None).unwrap();
            v.sort_by_key(|r| r.id);
            v
        };
        assert_eq!(all(&a), all(&fresh));
        // intents leave the copy; another connection's commit is seen
        b.insert(&rec("raw", data_id! {visit: 1, ccd: 3}, "", "f", root))
            .unwrap();
        assert_eq!(visits(&a, data_id! {visit: 1}).len(), 4);
        // a write after another connection's commit (copy not current when
        // it began) drops the copy instead of patching a stale one
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        assert!(has_copy(&a));
        b.insert(&rec("raw", data_id! {visit: 7, ccd: 0}, "", "f", root))
            .unwrap();
        a.insert(&rec("raw", data_id! {visit: 8, ccd: 0}, "", "f", root))
            .unwrap();
        assert!(!has_copy(&a));
        assert_eq!(visits(&a, data_id! {ccd: 0}).len(), 5);
        // deleting rows drops the copy
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        a.find("raw", &data_id! {visit: 0, ccd: 0}, None).unwrap();
        assert!(has_copy(&a));
        let gone = a
            .find("raw", &data_id! {visit: 8, ccd: 0}, None)
            .unwrap()
            .unwrap();
        a.discard(&[gone.id], &[]).unwrap();
        assert!(!has_copy(&a));
        assert_eq!(visits(&a, data_id! {ccd: 0}).len(), 4);
        assert_eq!(all(&a), all(&fresh));
    }

    #[test]
    fn int_and_float_compare_numerically() {
        assert!(matches_partial(
            &data_id! {visit: 1, filter: "g"},
            &data_id! {visit: 1.0}
        ));
        assert!(!matches_partial(
            &data_id! {visit: 1},
            &data_id! {visit: "1"}
        ));
    }
}
