//! The SQLite registry (rusqlite): the embedded default.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use daf_base::DataIdValue;
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::{build_select, validate_identifier, ColumnType, Lookup, Registry, Row};
use crate::MapperError;

/// Bytes of the registry file SQLite may memory-map.
const MMAP_SIZE: i64 = 1 << 30;

/// How long a writer waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A registry in an SQLite file (`registry.sqlite3`).
///
/// Opened read-only by [`SqliteRegistry::open`] (a legacy registry is never
/// modified by lookups), read-write in WAL mode by [`SqliteRegistry::create`].
///
/// ```
/// use daf_mappers::registry::{Registry, SqliteRegistry, ColumnType};
/// use daf_base::data_id;
/// let reg = SqliteRegistry::in_memory().unwrap();
/// reg.create_table("raw", &[("visit".into(), ColumnType::Int), ("filter".into(), ColumnType::Text)], &["visit".into()]).unwrap();
/// reg.insert_rows("raw", &["visit".into(), "filter".into()], &[vec![1.into(), "g".into()]]).unwrap();
/// let rows = reg.lookup(&["filter".into()], &["raw".into()], &data_id!{visit: 1}).unwrap();
/// assert_eq!(rows, vec![vec!["g".into()]]);
/// ```
pub struct SqliteRegistry {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRegistry")
            .field("path", &self.path)
            .finish()
    }
}

/// A [`MapperError::Registry`] keeping the driver's (or I/O) error as its
/// source; the message is the error's text.
fn err_src<E: std::error::Error + Send + Sync + 'static>(path: &Path, e: E) -> MapperError {
    MapperError::Registry {
        registry: path.display().to_string(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

fn err(path: &Path, message: impl std::fmt::Display) -> MapperError {
    MapperError::Registry {
        registry: path.display().to_string(),
        message: message.to_string(),
        source: None,
    }
}

/// A `file:` URI for `path` (every byte but unreserved ones %-escaped, so
/// `?`, `#` and `%` in a folder name stay part of the path).
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Opens the SQLite file at `path` for reading only, writing nothing in it
/// or beside it: `mode=ro`, so a user without write access to a shared
/// repository can read it. A WAL-mode file whose folder the user cannot
/// write (so SQLite cannot make its `-shm` file) and that no writer has
/// open (no `-wal` frames) is read as `immutable=1`, a snapshot of the file
/// as it is. A file the user may not read is an I/O error saying
/// "Permission denied", never SQLite's "unable to open database file".
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("r.sqlite3");
/// rusqlite::Connection::open(&p).unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (7)").unwrap();
/// let c = daf_mappers::registry::open_sqlite_read_only(&p).unwrap();
/// assert_eq!(c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 7);
/// assert!(c.execute_batch("INSERT INTO t VALUES (8)").is_err());
/// ```
pub fn open_sqlite_read_only(path: &Path) -> Result<Connection, ReadOnlyOpenError> {
    // Permission problems in plain words before SQLite blurs them.
    std::fs::File::open(path).map_err(ReadOnlyOpenError::Io)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let uri = file_uri(path);
    let conn = Connection::open_with_flags(format!("{uri}?mode=ro"), flags)?;
    let probe = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    });
    let no_shm = matches!(
        &probe,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
    );
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_frames = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    match probe {
        Ok(_) => Ok(conn),
        Err(_) if no_shm && !wal_frames => {
            drop(conn);
            Ok(Connection::open_with_flags(
                format!("{uri}?mode=ro&immutable=1"),
                flags,
            )?)
        }
        Err(e) if no_shm => Err(ReadOnlyOpenError::Sqlite(format!(
            "{e}: another process is writing it (its -wal file has data) and this \
             user cannot create its shared-memory file; read it when that writer is \
             done, or get write access to the folder"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Why [`open_sqlite_read_only`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadOnlyOpenError {
    /// The file could not be opened at all (permission denied, no such
    /// file).
    #[error("{0}")]
    Io(std::io::Error),
    /// SQLite refused it.
    #[error("{0}")]
    Sqlite(String),
}

impl From<rusqlite::Error> for ReadOnlyOpenError {
    fn from(e: rusqlite::Error) -> Self {
        ReadOnlyOpenError::Sqlite(e.to_string())
    }
}

impl SqliteRegistry {
    /// Opens an existing registry read-only ([`open_sqlite_read_only`]:
    /// it works for users who cannot write the repository). A missing file,
    /// one that cannot be read, or one that is not an SQLite database, is an
    /// error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MapperError> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(err(path, "not a file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(err(path, "no such registry file"))
            }
            Err(e) => return Err(err_src(path, e)),
        }
        let conn = open_sqlite_read_only(path).map_err(|e| match e {
            ReadOnlyOpenError::Io(e) => err_src(path, e),
            e => MapperError::registry_source(
                path.display().to_string(),
                "not a readable SQLite registry",
                e,
            ),
        })?;
        Self::finish(conn, path)
    }

    /// Opens (creating if absent) a writable registry in WAL mode.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, MapperError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| err_src(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err_src(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err_src(path, e))?;
        Self::finish(conn, path)
    }

    /// Opens (creating if absent) a registry for a one-shot bulk build: no
    /// journal and no syncs until [`SqliteRegistry::finish_bulk`]. Only for a
    /// file nobody else sees yet (registry creation writes a temp file and
    /// renames it when complete).
    pub fn create_bulk(path: impl AsRef<Path>) -> Result<Self, MapperError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| err_src(path, e))?;
        conn.pragma_update(None, "journal_mode", "OFF")
            .map_err(|e| err_src(path, e))?;
        conn.pragma_update(None, "synchronous", "OFF")
            .map_err(|e| err_src(path, e))?;
        Self::finish(conn, path)
    }

    /// Ends a bulk build: analyzes the tables, switches to WAL mode and
    /// syncs the file.
    pub fn finish_bulk(&self) -> Result<(), MapperError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute_batch("ANALYZE;").map_err(|e| self.es(e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.es(e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.es(e))?;
        Ok(())
    }

    /// A private in-memory registry (tests, examples).
    pub fn in_memory() -> Result<Self, MapperError> {
        let conn = Connection::open_in_memory().map_err(|e| err_src(Path::new(":memory:"), e))?;
        Self::finish(conn, Path::new(":memory:"))
    }

    fn finish(conn: Connection, path: &Path) -> Result<Self, MapperError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err_src(path, e))?;
        // Touch the schema now so that a corrupt file fails at open time.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| {
            MapperError::registry_source(
                path.display().to_string(),
                "not a readable SQLite registry",
                e,
            )
        })?;
        // A double-quoted unknown name must be an error, not a string literal.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, false)
            .map_err(|e| err_src(path, e))?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DDL, false)
            .map_err(|e| err_src(path, e))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Lookups are random reads of a file that fits in memory: map it
        // (no read syscall per page) and keep a larger page cache.
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)
            .map_err(|e| err_src(path, e))?;
        conn.pragma_update(None, "cache_size", -16_384)
            .map_err(|e| err_src(path, e))?;
        Ok(SqliteRegistry {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection (for callers that need raw SQL, such as
    /// benchmarks comparing against a hand-written statement).
    pub fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    fn e(&self, message: impl std::fmt::Display) -> MapperError {
        err(&self.path, message)
    }

    fn es<E: std::error::Error + Send + Sync + 'static>(&self, e: E) -> MapperError {
        err_src(&self.path, e)
    }
}

pub(crate) struct Bind<'a>(pub &'a DataIdValue);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            DataIdValue::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            DataIdValue::Float(f) => ToSqlOutput::Owned(Value::Real(*f)),
            DataIdValue::Str(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn to_value(v: ValueRef<'_>, column: &str) -> Result<DataIdValue, String> {
    match v {
        ValueRef::Integer(i) => Ok(DataIdValue::Int(i)),
        ValueRef::Real(f) => Ok(DataIdValue::Float(f)),
        ValueRef::Text(t) => Ok(DataIdValue::Str(String::from_utf8_lossy(t).into_owned())),
        ValueRef::Null => Err(format!("NULL in column {column:?}")),
        ValueRef::Blob(_) => Err(format!("BLOB in column {column:?}")),
    }
}

impl Registry for SqliteRegistry {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn lookup_query(&self, query: &Lookup<'_>) -> Result<Vec<Row>, MapperError> {
        let sql = build_select(query, &|t| format!("\"{t}\""), &|_, _| "?".to_string())
            .map_err(|e| self.es(e))?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.es(e))?;
        let mut params: Vec<Bind<'_>> = query.data_id.iter().map(|(_, v)| Bind(v)).collect();
        if let Some(r) = query.valid_range {
            params.push(Bind(&r.obs_time));
        }
        let n = query.properties.len();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| self.es(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.es(e))? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                let v = row.get_ref(i).map_err(|e| self.es(e))?;
                r.push(to_value(v, &query.properties[i]).map_err(|m| self.e(m))?);
            }
            out.push(r);
        }
        super::sort_rows(&mut out);
        Ok(out)
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, MapperError> {
        let table = validate_identifier(table)?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))
            .map_err(|e| self.es(e))?;
        let cols = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .map_err(|e| self.es(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.es(e))?;
        if cols.is_empty() {
            return Err(self.e(format!("no such table: {table}")));
        }
        Ok(cols)
    }

    fn create_table(
        &self,
        table: &str,
        columns: &[(String, ColumnType)],
        unique: &[String],
    ) -> Result<(), MapperError> {
        let table = validate_identifier(table)?;
        let sql = super::create_table_sql(
            table,
            &format!("\"{table}\""),
            columns,
            unique,
            "id INTEGER PRIMARY KEY",
            |ty| match ty {
                ColumnType::Int => "INTEGER",
                ColumnType::Float => "DOUBLE",
                ColumnType::Text => "TEXT",
            },
        )?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute_batch(&sql).map_err(|e| self.es(e))
    }

    fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: &[Row],
    ) -> Result<(), MapperError> {
        let table = validate_identifier(table)?;
        let cols = super::quoted_columns(columns)?;
        let marks = vec!["?"; cols.len()].join(", ");
        let sql = format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({marks})",
            cols.join(", ")
        );
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(|e| self.es(e))?;
        {
            let mut stmt = tx.prepare(&sql).map_err(|e| self.es(e))?;
            for row in rows {
                super::check_row_len(row, cols.len()).map_err(|m| self.e(m))?;
                stmt.execute(rusqlite::params_from_iter(row.iter().map(Bind)))
                    .map_err(|e| self.es(e))?;
            }
        }
        tx.commit().map_err(|e| self.es(e))
    }
}
