//! [`DbTsvStorage`]: rows buffered to TSV files, bulk-loaded at commit.

use std::any::Any;
use std::io::{BufRead, BufWriter, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf_base::Policy;

use super::auth::DbAuth;
use super::error::DbError;
use super::ident::{quote_ident, validate_ident};
use super::storage::{AuthSource, DbStorage, RowBuilder};
use super::url::Backend;
use super::value::{DbValue, ToDbValue};
use crate::error::StorageError;
use crate::location::LogicalLocation;
use crate::storage::Storage;
use crate::Result;

/// How a TSV column is parsed back for backends that bind typed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cat {
    Bool,
    Int,
    F32,
    F64,
    Str,
}

fn cat_of(v: &DbValue) -> Option<Cat> {
    Some(match v {
        DbValue::Null => return None,
        DbValue::Bool(_) => Cat::Bool,
        DbValue::I8(_) | DbValue::I16(_) | DbValue::I32(_) | DbValue::I64(_) => Cat::Int,
        DbValue::DateTime(_) => Cat::Int,
        DbValue::F32(_) => Cat::F32,
        DbValue::F64(_) => Cat::F64,
        DbValue::String(_) => Cat::Str,
    })
}

struct TsvTable {
    row: RowBuilder,
    /// Write NaN and infinities as NULL (MariaDB/MySQL).
    finite_only: bool,
    cats: Vec<Option<Cat>>,
    file: tempfile::NamedTempFile,
    out: BufWriter<std::fs::File>,
    line: Vec<u8>,
    vals: Vec<DbValue>,
    rows: u64,
}

/// A database storage whose inserts go to a temporary TSV file per table
/// (policy `TempPath`: its folder; `SaveTemp: true` keeps it), loaded in
/// bulk when the transaction is prepared for commit:
/// PostgreSQL `COPY ... FROM STDIN`; MySQL/MariaDB
/// `LOAD DATA LOCAL INFILE '<tsv>' REPLACE INTO TABLE ...` (duplicate keys
/// replace the old row); SQLite one cached prepared insert run for every
/// row. The load runs inside a database transaction that `end_transaction`
/// commits and `abort_transaction` rolls back, so a failed load leaves the
/// table as it was. [`DbTsvStorage::last_loads`] tells which path ran.
///
/// MySQL/MariaDB details: sqlx (used for everything else) cannot answer the
/// server's request for the local file, so the loads go through a second
/// connection (the `mysql` crate) opened on first use with the same
/// credentials; the load transaction lives on that connection. It therefore
/// cannot see `TEMPORARY` tables made through the storage. Only the TSV file
/// this storage wrote is ever sent, whatever file name the server asks for.
/// `LOCAL` loads turn bad values (NULL into `NOT NULL`, text into numbers)
/// into warnings; a load with any warning is an error and rolls back. The
/// server must allow it (`local_infile = ON`, the MariaDB default).
///
/// Everything else (queries, table management) is [`DbStorage`]'s, reached
/// through `Deref`.
///
/// ```
/// use daf_storages::db::DbTsvStorage;
/// use daf_storages::{LogicalLocation, Storage};
/// let mut s = DbTsvStorage::new();
/// s.set_persist_location(&LogicalLocation::literal("sqlite::memory:")).unwrap();
/// s.execute_sql("CREATE TABLE t (id BIGINT, name TEXT)").unwrap();
/// s.start_transaction().unwrap();
/// s.set_table_for_insert("t").unwrap();
/// s.set_column("id", 7_i64).unwrap();
/// s.set_column("name", "tab\there").unwrap();
/// s.insert_row().unwrap();
/// s.prepare_commit().unwrap();
/// s.end_transaction().unwrap();
/// s.set_table_for_query("t").unwrap();
/// s.out_column("name").unwrap();
/// s.query().unwrap();
/// assert!(s.next().unwrap());
/// assert_eq!(s.get_column_by_pos::<String>(0).unwrap(), "tab\there");
/// ```
pub struct DbTsvStorage {
    db: DbStorage,
    temp_dir: Option<PathBuf>,
    save_temp: bool,
    tables: Vec<TsvTable>,
    current: Option<usize>,
    loaded: bool,
    saved: Vec<PathBuf>,
    /// A transaction is open on the MySQL bulk-load connection.
    mysql_tx: bool,
    /// Temp folders already swept of orphaned TSV files.
    swept: Vec<PathBuf>,
    loads: Vec<BulkLoad>,
}

/// The bulk path that loaded one table's TSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BulkMethod {
    /// PostgreSQL `COPY ... FROM STDIN`.
    PostgresCopy,
    /// MySQL/MariaDB `LOAD DATA LOCAL INFILE ... REPLACE`.
    MysqlLoadDataLocalInfile,
    /// SQLite: one prepared `INSERT` run for each row.
    SqliteInserts,
}

/// One table's bulk load (see [`DbTsvStorage::last_loads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkLoad {
    /// The table loaded.
    pub table: String,
    /// How.
    pub method: BulkMethod,
    /// Rows in the TSV file.
    pub rows: u64,
    /// MySQL's summary of the load (`Records: N  Deleted: D  Skipped: S
    /// Warnings: W`); empty for the other backends.
    pub server_info: String,
}

/// The file name put in `LOAD DATA LOCAL INFILE '...'`: the TSV path when it
/// needs no quoting, else a fixed name (the handler serves our file for it
/// either way, so nothing user-controlled is spliced into SQL).
fn infile_name(path: &Path) -> String {
    match path.to_str() {
        Some(p)
            if p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) =>
        {
            p.to_string()
        }
        _ => "daf-bulk-load.tsv".to_string(),
    }
}

impl std::fmt::Debug for DbTsvStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTsvStorage")
            .field("db", &self.db)
            .field("temp_dir", &self.temp_dir)
            .field("save_temp", &self.save_temp)
            .finish()
    }
}

impl Default for DbTsvStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for DbTsvStorage {
    type Target = DbStorage;
    fn deref(&self) -> &DbStorage {
        &self.db
    }
}

impl DerefMut for DbTsvStorage {
    fn deref_mut(&mut self) -> &mut DbStorage {
        &mut self.db
    }
}

fn tsv_err(path: &Path, e: std::io::Error) -> StorageError {
    DbError::Tsv {
        path: path.to_path_buf(),
        message: e.to_string(),
        source: Some(e),
    }
    .into()
}

impl DbTsvStorage {
    /// A storage loading credentials from `~/.daf/db-auth.yaml` when needed.
    pub fn new() -> Self {
        Self::from_db(DbStorage::with_source("DbTsvStorage", AuthSource::Default))
    }

    /// A storage using the credentials `auth`.
    pub fn with_auth(auth: Arc<DbAuth>) -> Self {
        Self::from_db(DbStorage::with_source(
            "DbTsvStorage",
            AuthSource::Given(auth),
        ))
    }

    fn from_db(db: DbStorage) -> Self {
        DbTsvStorage {
            db,
            temp_dir: None,
            save_temp: false,
            tables: Vec::new(),
            current: None,
            loaded: false,
            saved: Vec::new(),
            mysql_tx: false,
            swept: Vec::new(),
            loads: Vec::new(),
        }
    }

    /// Convenience: a storage connected to `url`.
    pub fn open_url(url: &str, auth: Option<Arc<DbAuth>>) -> Result<Self> {
        let mut s = match auth {
            Some(a) => Self::with_auth(a),
            None => Self::new(),
        };
        s.db.connect(url)?;
        Ok(s)
    }

    /// Folder for the temporary TSV files (default: the system temp folder).
    pub fn set_temp_path(&mut self, dir: impl Into<PathBuf>) {
        self.temp_dir = Some(dir.into());
    }

    /// Keep the TSV files after the transaction (their paths: [`DbTsvStorage::saved_files`]).
    pub fn set_save_temp(&mut self, keep: bool) {
        self.save_temp = keep;
    }

    /// The bulk loads of the last transaction (since `start_transaction`),
    /// one per table with rows, in load order.
    pub fn last_loads(&self) -> &[BulkLoad] {
        &self.loads
    }

    /// The TLS cipher of the MariaDB/MySQL bulk-load connection (the one
    /// `LOAD DATA LOCAL INFILE` runs on, opened here if it is not yet), as
    /// [`DbStorage::tls_cipher`] gives it for the storage's own session;
    /// `None` when it is not encrypted. Other backends load on the
    /// storage's own session: its [`DbStorage::tls_cipher`].
    pub fn bulk_load_tls_cipher(&mut self) -> Result<Option<String>> {
        match self.db.conn()?.mysql_load_tls_cipher() {
            Some(r) => r.map_err(StorageError::from),
            None => self.db.tls_cipher(),
        }
    }

    /// TSV files kept by `SaveTemp`.
    pub fn saved_files(&self) -> &[PathBuf] {
        &self.saved
    }

    /// Starts (or resumes) rows for table `name`.
    pub fn set_table_for_insert(&mut self, name: &str) -> Result<()> {
        validate_ident(name).map_err(StorageError::from)?;
        if let Some(i) = self.tables.iter().position(|t| t.row.table == name) {
            self.current = Some(i);
            return Ok(());
        }
        let dir = self.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        if !self.swept.contains(&dir) {
            sweep_orphans(&dir);
            self.swept.push(dir.clone());
        }
        let file = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-{name}-", std::process::id()))
            .suffix(".tsv")
            .tempfile_in(&dir)
            .map_err(|e| StorageError::io(&dir, e))?;
        let out = BufWriter::with_capacity(
            1 << 20,
            file.as_file()
                .try_clone()
                .map_err(|e| StorageError::io(file.path(), e))?,
        );
        self.tables.push(TsvTable {
            row: RowBuilder::new(name),
            finite_only: self.db.backend() == Some(Backend::Mysql),
            cats: Vec::new(),
            file,
            out,
            line: Vec::with_capacity(256),
            vals: Vec::new(),
            rows: 0,
        });
        self.current = Some(self.tables.len() - 1);
        Ok(())
    }

    fn table_mut(&mut self) -> Result<&mut TsvTable> {
        match self.current {
            Some(i) => Ok(&mut self.tables[i]),
            None => Err(StorageError::state(
                "DbTsvStorage",
                "set_table_for_insert has not been called",
            )),
        }
    }

    /// Sets column `name` of the current row.
    pub fn set_column<T: ToDbValue>(&mut self, name: &str, value: T) -> Result<()> {
        let v = value.to_db_value();
        self.table_mut()?.row.set(name, v).map_err(Into::into)
    }

    /// Sets column `name` of the current row to an already-built value.
    pub fn set_value(&mut self, name: &str, value: DbValue) -> Result<()> {
        self.table_mut()?.row.set(name, value).map_err(Into::into)
    }

    /// Sets column `name` of the current row to NULL.
    pub fn set_column_to_null(&mut self, name: &str) -> Result<()> {
        self.table_mut()?
            .row
            .set(name, DbValue::Null)
            .map_err(Into::into)
    }

    /// Appends the current row to the table's TSV file and clears its values.
    pub fn insert_row(&mut self) -> Result<()> {
        let t = self.table_mut()?;
        let mut vals = std::mem::take(&mut t.vals);
        let r = t.row.take_row(&mut vals);
        if let Err(e) = r {
            t.vals = vals;
            return Err(e.into());
        }
        let r = write_line(t, &vals);
        vals.clear();
        t.vals = vals;
        r
    }

    /// Appends `n` rows for `table` in one go: `columns` names the columns
    /// (the same for every row, and for rows added by `insert_row`), and
    /// `fill(i, row)` pushes row `i`'s values in column order.
    pub fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        n: usize,
        mut fill: impl FnMut(usize, &mut Vec<DbValue>) -> Result<()>,
    ) -> Result<u64> {
        self.set_table_for_insert(table)?;
        let t = self.table_mut()?;
        if t.row.fixed {
            if t.row.cols.len() != columns.len()
                || t.row.cols.iter().zip(columns).any(|(a, b)| a != b)
            {
                return Err(DbError::State(format!(
                    "insert_rows into {table}: columns {columns:?} differ from the table's earlier rows {:?}",
                    t.row.cols
                ))
                .into());
            }
        } else {
            for c in columns {
                validate_ident(c).map_err(StorageError::from)?;
            }
            t.row.cols = columns.iter().map(|c| c.to_string()).collect();
            t.row.vals = vec![None; columns.len()];
            t.row.fixed = true;
        }
        let mut row = Vec::with_capacity(columns.len());
        for i in 0..n {
            row.clear();
            fill(i, &mut row)?;
            super::error::check_row_len(table, i, &row, columns.len())?;
            write_line(t, &row)?;
        }
        Ok(n as u64)
    }

    fn load_all(&mut self) -> Result<()> {
        if self.loaded {
            return Ok(());
        }
        self.loads.clear();
        let backend = self
            .db
            .backend()
            .ok_or_else(|| StorageError::state("DbTsvStorage", "no location set"))?;
        for t in &mut self.tables {
            t.out.flush().map_err(|e| tsv_err(t.file.path(), e))?;
        }
        // MariaDB/MySQL: the load connection's transaction is the only one
        // (one COMMIT, one outcome); the others load on the storage's own.
        if backend != Backend::Mysql && !self.db.in_transaction() {
            self.db.begin()?;
        }
        for i in 0..self.tables.len() {
            if self.tables[i].rows == 0 {
                continue;
            }
            let (table, cols, cats, path) = {
                let t = &self.tables[i];
                (
                    t.row.table.clone(),
                    t.row.cols.clone(),
                    t.cats.clone(),
                    t.file.path().to_path_buf(),
                )
            };
            let qt = quote_ident(backend, &table).map_err(StorageError::from)?;
            let qcols = cols
                .iter()
                .map(|c| quote_ident(backend, c))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(StorageError::from)?
                .join(", ");
            match backend {
                Backend::Postgres => {
                    let sql = format!("COPY {qt} ({qcols}) FROM STDIN");
                    self.db.run(|c| c.copy_in_file(&sql, &path))?;
                }
                Backend::Sqlite => {
                    let ph = vec!["?"; cols.len()].join(", ");
                    let sql: Arc<str> = format!("INSERT INTO {qt} ({qcols}) VALUES ({ph})").into();
                    let reader = TsvReader::open(&path, cats)?;
                    self.db.run(|c| c.execute_many(&sql, reader))?;
                }
                Backend::Mysql => {
                    if !self.mysql_tx {
                        if let Some(r) = self.db.conn()?.mysql_load_begin() {
                            r.map_err(StorageError::from)?;
                        }
                        self.mysql_tx = true;
                    }
                    let name = infile_name(&path);
                    let sql = format!(
                        "LOAD DATA LOCAL INFILE '{name}' REPLACE INTO TABLE {qt} \
                         CHARACTER SET utf8mb4 \
                         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' \
                         LINES TERMINATED BY '\\n' ({qcols})"
                    );
                    let r = self
                        .db
                        .conn()?
                        .mysql_load_file(&sql, &name, &path)
                        .map_err(StorageError::from)?;
                    self.loads.push(BulkLoad {
                        table,
                        method: BulkMethod::MysqlLoadDataLocalInfile,
                        rows: self.tables[i].rows,
                        server_info: r.info,
                    });
                    continue;
                }
            }
            self.loads.push(BulkLoad {
                table,
                method: match backend {
                    Backend::Postgres => BulkMethod::PostgresCopy,
                    _ => BulkMethod::SqliteInserts,
                },
                rows: self.tables[i].rows,
                server_info: String::new(),
            });
        }
        self.loaded = true;
        Ok(())
    }

    fn commit_all(&mut self) -> Result<()> {
        if self.mysql_tx {
            self.mysql_tx = false;
            self.db
                .conn()?
                .mysql_load_end(true)
                .map_err(StorageError::from)?;
        }
        if self.db.in_transaction() {
            self.db.commit()
        } else {
            Ok(())
        }
    }

    fn rollback_all(&mut self) -> Result<()> {
        let mut r = Ok(());
        if self.mysql_tx {
            self.mysql_tx = false;
            r = self
                .db
                .conn()
                .and_then(|c| c.mysql_load_end(false).map_err(StorageError::from));
        }
        let r2 = self.db.rollback();
        r.and(r2)
    }

    fn cleanup(&mut self) {
        self.current = None;
        self.loaded = false;
        for t in self.tables.drain(..) {
            if self.save_temp {
                // Kept files lose the in-progress prefix, so no later sweep
                // takes them for orphans.
                let kept = t.file.path().with_file_name(format!(
                    "daf-{}-{}",
                    t.row.table,
                    t.file
                        .path()
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.rsplit('-').next())
                        .unwrap_or("x.tsv")
                ));
                if let Ok((_, p)) = t.file.keep() {
                    let p = match std::fs::rename(&p, &kept) {
                        Ok(()) => kept,
                        Err(_) => p,
                    };
                    tracing::info!(path = %p.display(), "DbTsvStorage kept TSV file");
                    self.saved.push(p);
                }
            }
        }
    }
}

/// Name prefix of TSV files being written: `.daf-tsv-<pid>-<table>-<random>.tsv`.
const TEMP_PREFIX: &str = ".daf-tsv-";

/// Removes TSV files left in `dir` by processes that no longer run (a
/// killed process cannot remove its own). Linux only (process liveness from
/// `/proc`); elsewhere nothing is removed.
fn sweep_orphans(dir: &Path) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        if !name.ends_with(".tsv") {
            continue;
        }
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => {
                tracing::info!(path = %e.path().display(), "removed a TSV file left by a process that died")
            }
            Err(err) => {
                tracing::debug!(path = %e.path().display(), %err, "could not remove orphaned TSV file")
            }
        }
    }
}

/// Appends one row to the table's TSV file, tracking each column's kind.
fn write_line(t: &mut TsvTable, vals: &[DbValue]) -> Result<()> {
    if t.cats.len() < vals.len() {
        t.cats.resize(vals.len(), None);
    }
    t.line.clear();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            t.line.push(b'\t');
        }
        v.write_tsv_with(&mut t.line, t.finite_only);
        if let Some(c) = cat_of(v) {
            t.cats[i] = match (t.cats[i], c) {
                (None, c) => Some(c),
                (Some(a), b) if a == b => Some(a),
                (Some(Cat::F32 | Cat::F64), Cat::F32 | Cat::F64) => Some(Cat::F64),
                (Some(a), b) => {
                    return Err(DbError::State(format!(
                        "column {} of table {}: a {b:?} value after {a:?} values",
                        t.row.cols[i], t.row.table
                    ))
                    .into());
                }
            };
        }
    }
    t.line.push(b'\n');
    t.rows += 1;
    t.out
        .write_all(&t.line)
        .map_err(|e| tsv_err(t.file.path(), e))
}

/// Reads a TSV file written by [`DbTsvStorage`] back into typed rows.
struct TsvReader {
    path: PathBuf,
    r: std::io::BufReader<std::fs::File>,
    cats: Vec<Option<Cat>>,
    buf: Vec<u8>,
    line_no: u64,
}

impl TsvReader {
    fn open(path: &Path, cats: Vec<Option<Cat>>) -> Result<TsvReader> {
        let f = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
        Ok(TsvReader {
            path: path.to_path_buf(),
            r: std::io::BufReader::with_capacity(1 << 20, f),
            cats,
            buf: Vec::with_capacity(256),
            line_no: 0,
        })
    }

    fn parse_field(&self, raw: &[u8], cat: Option<Cat>) -> std::result::Result<DbValue, DbError> {
        if raw == b"\\N" {
            return Ok(DbValue::Null);
        }
        let bad = |m: &str| DbError::Tsv {
            path: self.path.clone(),
            message: format!("line {}: {m}", self.line_no),
            source: None,
        };
        let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
        Ok(match cat {
            Some(Cat::Bool) => DbValue::Bool(text == "1"),
            Some(Cat::Int) => DbValue::I64(text.parse().map_err(|_| bad("bad integer"))?),
            Some(Cat::F32) => DbValue::F32(text.parse().map_err(|_| bad("bad float"))?),
            Some(Cat::F64) => DbValue::F64(text.parse().map_err(|_| bad("bad float"))?),
            Some(Cat::Str) | None => {
                if !text.contains('\\') {
                    DbValue::String(text.to_string())
                } else {
                    let mut s = String::with_capacity(text.len());
                    let mut it = text.chars();
                    while let Some(c) = it.next() {
                        if c != '\\' {
                            s.push(c);
                            continue;
                        }
                        match it.next() {
                            Some('t') => s.push('\t'),
                            Some('n') => s.push('\n'),
                            Some('r') => s.push('\r'),
                            Some('\\') => s.push('\\'),
                            _ => return Err(bad("bad escape")),
                        }
                    }
                    DbValue::String(s)
                }
            }
        })
    }
}

impl Iterator for TsvReader {
    type Item = std::result::Result<Vec<DbValue>, DbError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.r.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line_no += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                }
                let line = std::mem::take(&mut self.buf);
                let mut row = Vec::with_capacity(self.cats.len());
                for (i, field) in line.split(|&b| b == b'\t').enumerate() {
                    match self.parse_field(field, self.cats.get(i).copied().flatten()) {
                        Ok(v) => row.push(v),
                        Err(e) => return Some(Err(e)),
                    }
                }
                self.buf = line;
                Some(Ok(row))
            }
            Err(e) => Some(Err(DbError::Tsv {
                path: self.path.clone(),
                message: e.to_string(),
                source: Some(e),
            })),
        }
    }
}

impl Storage for DbTsvStorage {
    fn storage_name(&self) -> &str {
        "DbTsvStorage"
    }

    fn set_policy(&mut self, policy: Option<&Policy>) -> Result<()> {
        if let Some(p) = policy {
            if p.exists("TempPath") {
                self.temp_dir = Some(PathBuf::from(p.get::<String>("TempPath")?));
            }
            if p.exists("SaveTemp") {
                self.save_temp = p.get::<bool>("SaveTemp")?;
            }
        }
        Ok(())
    }

    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()> {
        self.db.set_persist_location(location)
    }

    /// `DbTsvStorage <location>` (locations never hold credentials).
    fn describe(&self) -> String {
        match self.db.url() {
            Some(u) => format!("DbTsvStorage {u}"),
            None => "DbTsvStorage".into(),
        }
    }

    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()> {
        self.db.set_retrieve_location(location)
    }

    /// Opens no database transaction yet: rows go to TSV files, and the
    /// database transaction is opened by `prepare_commit` for the load (so
    /// DDL run meanwhile, which MySQL commits implicitly, cannot split it).
    fn start_transaction(&mut self) -> Result<()> {
        self.loads.clear();
        self.tables.clear();
        self.current = None;
        self.loaded = false;
        Ok(())
    }

    fn prepare_commit(&mut self) -> Result<()> {
        self.load_all()
    }

    fn end_transaction(&mut self) -> Result<()> {
        let r = self.load_all().and_then(|_| self.commit_all());
        if r.is_err() {
            let _ = self.rollback_all();
        }
        self.cleanup();
        r
    }

    fn abort_transaction(&mut self) -> Result<()> {
        let r = self.rollback_all();
        self.cleanup();
        r
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
