//! [`DbStorage`]: row-by-row inserts, queries and table management.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use daf_base::Policy;

use super::auth::DbAuth;
use super::conn::{Conn, ResultSet};
use super::error::DbError;
use super::ident::{quote_column_list, quote_ident, validate_ident};
use super::url::{Backend, DbUrl};
use super::value::{DbValue, FromDbValue, ToDbValue};
use crate::error::StorageError;
use crate::location::LogicalLocation;
use crate::storage::Storage;
use crate::Result;

/// Where a storage gets its credentials.
#[derive(Debug, Clone)]
pub(crate) enum AuthSource {
    /// `~/.daf/db-auth.yaml`, loaded when a server connection is opened.
    Default,
    /// An explicit value.
    Given(Arc<DbAuth>),
}

impl AuthSource {
    pub(crate) fn resolve(&self, url: &DbUrl) -> Result<Arc<DbAuth>> {
        match self {
            AuthSource::Given(a) => Ok(a.clone()),
            AuthSource::Default if url.backend == Backend::Sqlite => Ok(Arc::new(DbAuth::new())),
            AuthSource::Default => Ok(Arc::new(DbAuth::load_default()?)),
        }
    }
}

type Check = fn(&DbValue, &str) -> std::result::Result<(), DbError>;

fn check_as<T: FromDbValue>(v: &DbValue, col: &str) -> std::result::Result<(), DbError> {
    T::convert(v, col).map(|_| ())
}

/// The row being built for `insert_row`, shared with [`super::DbTsvStorage`].
#[derive(Debug, Default)]
pub(crate) struct RowBuilder {
    pub table: String,
    pub cols: Vec<String>,
    pub vals: Vec<Option<DbValue>>,
    /// Column set fixed by the first inserted row.
    pub fixed: bool,
    hint: usize,
}

impl RowBuilder {
    pub fn new(table: &str) -> RowBuilder {
        RowBuilder {
            table: table.to_string(),
            ..Default::default()
        }
    }

    pub fn set(&mut self, name: &str, v: DbValue) -> std::result::Result<(), DbError> {
        let idx = if self.hint < self.cols.len() && self.cols[self.hint] == name {
            self.hint
        } else if let Some(i) = self.cols.iter().position(|c| c == name) {
            i
        } else if self.fixed {
            return Err(DbError::UnexpectedColumn {
                table: self.table.clone(),
                column: name.to_string(),
            });
        } else {
            validate_ident(name)?;
            self.cols.push(name.to_string());
            self.vals.push(None);
            self.cols.len() - 1
        };
        self.vals[idx] = Some(v);
        self.hint = idx + 1;
        Ok(())
    }

    /// Moves the row's values into `out` (clearing them); a column not set is an error.
    pub fn take_row(&mut self, out: &mut Vec<DbValue>) -> std::result::Result<(), DbError> {
        out.clear();
        self.hint = 0;
        if self.cols.is_empty() {
            return Err(DbError::State(format!(
                "insert_row on table {}: no column was set",
                self.table
            )));
        }
        let mut missing = None;
        for (c, v) in self.cols.iter().zip(self.vals.iter_mut()) {
            match v.take() {
                Some(v) => out.push(v),
                None if missing.is_none() => missing = Some(c.clone()),
                None => {}
            }
        }
        if let Some(column) = missing {
            out.clear();
            return Err(DbError::MissingColumn {
                table: self.table.clone(),
                column,
            });
        }
        self.fixed = true;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct QueryState {
    tables: Vec<String>,
    /// `(table, is_expr)` as given.
    table_exprs: Vec<bool>,
    out: Vec<String>,
    out_names: Vec<String>,
    checks: Vec<Option<Check>>,
    where_clause: Option<String>,
    params: HashMap<String, DbValue>,
    order_by: Option<String>,
    group_by: Option<String>,
    result: Option<ResultSet>,
    row: Option<usize>,
}

/// A database storage: the LSST `DbStorage` API over SQLite, PostgreSQL and MySQL.
///
/// ```
/// use daf_storages::db::DbStorage;
/// use daf_storages::Storage;
/// let mut db = DbStorage::open_url("sqlite::memory:", None).unwrap();
/// db.execute_sql("CREATE TABLE src (id BIGINT, flux DOUBLE PRECISION, name TEXT)").unwrap();
/// db.start_transaction().unwrap();
/// db.set_table_for_insert("src").unwrap();
/// for (i, f) in [(1_i64, 2.5), (2, 4.0)] {
///     db.set_column("id", i).unwrap();
///     db.set_column("flux", f).unwrap();
///     db.set_column_to_null("name").unwrap();
///     db.insert_row().unwrap();
/// }
/// db.end_transaction().unwrap();
///
/// db.set_table_for_query("src").unwrap();
/// db.out_column("flux").unwrap();
/// db.cond_param("lo", 2_i64).unwrap();
/// db.set_query_where("id >= :lo").unwrap();
/// db.query().unwrap();
/// assert!(db.next().unwrap());
/// assert_eq!(db.get_column_by_pos::<f64>(0).unwrap(), 4.0);
/// assert!(!db.next().unwrap());
/// db.finish_query();
/// ```
pub struct DbStorage {
    storage_name: &'static str,
    auth: AuthSource,
    /// The credentials the connection was opened with (for reconnects).
    resolved_auth: Option<Arc<DbAuth>>,
    url: Option<DbUrl>,
    conn: Option<Conn>,
    in_tx: bool,
    /// The connection broke; reopened at the next transaction.
    lost: bool,
    /// The first statement that failed in the open transaction.
    tx_failed: Option<String>,
    /// MariaDB/MySQL: the DATETIME/TIMESTAMP columns of insert tables
    /// (lower case), looked up when a DateTime is first inserted.
    my_datetime_cols: HashMap<String, Vec<String>>,
    row: Option<RowBuilder>,
    insert_sql: Option<(Vec<bool>, Arc<str>)>,
    params: Vec<DbValue>,
    q: QueryState,
}

impl std::fmt::Debug for DbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbStorage")
            .field("location", &self.url.as_ref().map(ToString::to_string))
            .field("in_transaction", &self.in_tx)
            .finish()
    }
}

impl Default for DbStorage {
    fn default() -> Self {
        Self::new()
    }
}

fn db<T>(r: std::result::Result<T, DbError>) -> Result<T> {
    r.map_err(StorageError::from)
}

impl DbStorage {
    /// A storage that loads credentials from `~/.daf/db-auth.yaml` when it
    /// connects to a server (SQLite needs none).
    pub fn new() -> Self {
        Self::with_source("DbStorage", AuthSource::Default)
    }

    /// A storage using the credentials `auth`.
    pub fn with_auth(auth: Arc<DbAuth>) -> Self {
        Self::with_source("DbStorage", AuthSource::Given(auth))
    }

    pub(crate) fn with_source(storage_name: &'static str, auth: AuthSource) -> Self {
        DbStorage {
            storage_name,
            auth,
            resolved_auth: None,
            url: None,
            conn: None,
            in_tx: false,
            lost: false,
            tx_failed: None,
            my_datetime_cols: HashMap::new(),
            row: None,
            insert_sql: None,
            params: Vec::new(),
            q: QueryState::default(),
        }
    }

    /// Convenience: a storage connected to `url` (credentials from `auth`,
    /// or the default auth file when `None`).
    pub fn open_url(url: &str, auth: Option<Arc<DbAuth>>) -> Result<Self> {
        let mut s = match auth {
            Some(a) => Self::with_auth(a),
            None => Self::new(),
        };
        s.connect(url)?;
        Ok(s)
    }

    pub(crate) fn connect(&mut self, loc: &str) -> Result<()> {
        let url = db(DbUrl::parse(loc))?;
        let auth = self.auth.resolve(&url)?;
        if url.backend == Backend::Sqlite && url.database != ":memory:" {
            let p = std::path::Path::new(&url.database);
            if let Some(dir) = p.parent() {
                if !dir.is_dir() {
                    return Err(StorageError::NotFound {
                        what: format!(
                            "folder {} of SQLite database {}",
                            dir.display(),
                            url.database
                        ),
                    });
                }
            }
        }
        let conn = db(Conn::open(&url, &auth))?;
        if let Some(old) = self.conn.replace(conn) {
            old.close();
        }
        self.url = Some(url);
        self.resolved_auth = Some(auth);
        self.in_tx = false;
        self.lost = false;
        self.tx_failed = None;
        self.my_datetime_cols.clear();
        Ok(())
    }

    /// Replaces a lost connection with a new one to the same location.
    fn reopen(&mut self) -> Result<()> {
        let (Some(url), Some(auth)) = (self.url.clone(), self.resolved_auth.clone()) else {
            return Err(StorageError::state(self.storage_name, "no location set"));
        };
        if let Some(old) = self.conn.take() {
            old.close();
        }
        tracing::info!(location = %url, "reconnecting after a lost database connection");
        self.conn = Some(db(Conn::open(&url, &auth))?);
        self.lost = false;
        Ok(())
    }

    /// Runs `f` on the connection, keeping the transaction's books: after a
    /// failed statement the open transaction is doomed (later statements
    /// are refused, and `end_transaction` rolls back) — on every backend,
    /// as PostgreSQL does natively. A lost connection is reopened first
    /// when no transaction is open.
    pub(crate) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> std::result::Result<T, DbError>,
    ) -> Result<T> {
        if self.in_tx {
            if let Some(cause) = &self.tx_failed {
                return Err(DbError::TransactionAborted {
                    backend: self.backend().unwrap_or(Backend::Sqlite).name(),
                    cause: format!("{cause}; statements are refused until abort_transaction"),
                }
                .into());
            }
        } else if self.lost {
            self.reopen()?;
        }
        let r = f(self.conn()?);
        if let Err(e) = &r {
            let server_side = matches!(e, DbError::Sql { .. } | DbError::ConnectionLost { .. });
            if matches!(e, DbError::ConnectionLost { .. }) {
                self.lost = true;
            }
            if self.in_tx && server_side && self.tx_failed.is_none() {
                self.tx_failed = Some(e.to_string());
            }
        }
        db(r)
    }

    /// The server's id of this storage's session: PostgreSQL
    /// `pg_backend_pid()`, MariaDB/MySQL `CONNECTION_ID()` (what an operator
    /// passes to `pg_terminate_backend` or `KILL`); `None` for SQLite.
    pub fn session_id(&mut self) -> Result<Option<i64>> {
        self.run(|c| c.session_id())
    }

    /// The TLS cipher of this storage's session, as the server reports it
    /// (MariaDB/MySQL `Ssl_cipher`, PostgreSQL `pg_stat_ssl.cipher`);
    /// `None` when the session is not encrypted, and for SQLite.
    pub fn tls_cipher(&mut self) -> Result<Option<String>> {
        self.run(|c| c.tls_cipher())
    }

    /// The connected backend.
    pub fn backend(&self) -> Option<Backend> {
        self.url.as_ref().map(|u| u.backend)
    }

    /// The location connected to.
    pub fn url(&self) -> Option<&DbUrl> {
        self.url.as_ref()
    }

    pub(crate) fn conn(&mut self) -> Result<&mut Conn> {
        let name = self.storage_name;
        self.conn.as_mut().ok_or_else(|| {
            StorageError::state(
                name,
                "no location set: call set_persist_location or set_retrieve_location first",
            )
        })
    }

    pub(crate) fn quote(&self, name: &str) -> Result<String> {
        let b = self.backend().unwrap_or(Backend::Sqlite);
        db(quote_ident(b, name))
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_tx
    }

    pub(crate) fn begin(&mut self) -> Result<()> {
        if self.in_tx {
            return Err(StorageError::state(
                self.storage_name,
                "a transaction is already open",
            ));
        }
        let sql = if self.backend() == Some(Backend::Mysql) {
            "START TRANSACTION"
        } else {
            "BEGIN"
        };
        self.tx_failed = None;
        match self.run(|c| c.execute_raw(sql)) {
            Ok(_) => {}
            // The connection died since its last use (killed, server
            // restarted): nothing was pending on it, so reconnect once.
            Err(StorageError::Db(DbError::ConnectionLost { .. })) => {
                self.reopen()?;
                self.run(|c| c.execute_raw(sql))?;
            }
            Err(e) => return Err(e),
        }
        self.in_tx = true;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<()> {
        if !self.in_tx {
            return Err(StorageError::state(
                self.storage_name,
                "no open transaction to commit",
            ));
        }
        let backend = self.backend().unwrap_or(Backend::Sqlite);
        if self.tx_failed.is_none() && backend == Backend::Postgres {
            // PostgreSQL turns the COMMIT of an aborted transaction into a
            // ROLLBACK without an error: ask it first (an aborted
            // transaction refuses every statement).
            let _ = self.run(|c| c.execute_raw("SELECT 1"));
        }
        if let Some(cause) = self.tx_failed.take() {
            let _ = self.rollback();
            return Err(DbError::TransactionAborted {
                backend: backend.name(),
                cause,
            }
            .into());
        }
        self.in_tx = false;
        match self.run(|c| c.execute_raw("COMMIT")) {
            Ok(_) => Ok(()),
            Err(StorageError::Db(DbError::ConnectionLost {
                message, source, ..
            })) => Err(DbError::ConnectionLost {
                backend: backend.name(),
                message: format!(
                    "{message}; the COMMIT got no answer, so whether it took effect is unknown"
                ),
                source,
            }
            .into()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn rollback(&mut self) -> Result<()> {
        self.row = None;
        self.tx_failed = None;
        if !self.in_tx {
            return Ok(());
        }
        self.in_tx = false;
        if self.lost {
            // The server rolled the transaction back when the connection died.
            return Ok(());
        }
        match self.run(|c| c.execute_raw("ROLLBACK")) {
            Err(StorageError::Db(DbError::ConnectionLost { .. })) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    // ----- inserts -------------------------------------------------------

    /// Starts rows for table `name` (validated; rows of one table share the
    /// column set of the first row).
    pub fn set_table_for_insert(&mut self, name: &str) -> Result<()> {
        db(validate_ident(name))?;
        self.row = Some(RowBuilder::new(name));
        self.insert_sql = None;
        Ok(())
    }

    fn row_mut(&mut self) -> Result<&mut RowBuilder> {
        let name = self.storage_name;
        self.row
            .as_mut()
            .ok_or_else(|| StorageError::state(name, "set_table_for_insert has not been called"))
    }

    /// Sets column `name` of the current row.
    pub fn set_column<T: ToDbValue>(&mut self, name: &str, value: T) -> Result<()> {
        let v = value.to_db_value();
        db(self.row_mut()?.set(name, v))
    }

    /// Sets column `name` of the current row to an already-built value.
    pub fn set_value(&mut self, name: &str, value: DbValue) -> Result<()> {
        db(self.row_mut()?.set(name, value))
    }

    /// Sets column `name` of the current row to NULL.
    pub fn set_column_to_null(&mut self, name: &str) -> Result<()> {
        db(self.row_mut()?.set(name, DbValue::Null))
    }

    /// Inserts the current row and clears its values. Every column set in the
    /// table's first row must be set again (or set to NULL).
    pub fn insert_row(&mut self) -> Result<()> {
        let backend = self.backend();
        let mut params = std::mem::take(&mut self.params);
        let row = self.row_mut()?;
        if let Err(e) = row.take_row(&mut params) {
            self.params = params;
            return Err(e.into());
        }
        // PostgreSQL types parameters strictly, so NULLs are written as the
        // NULL keyword rather than bound (the statement is cached per NULL pattern).
        let pg = backend == Some(Backend::Postgres);
        let mask: Vec<bool> = if pg {
            params.iter().map(|v| matches!(v, DbValue::Null)).collect()
        } else {
            Vec::new()
        };
        let sql = match &self.insert_sql {
            Some((m, s)) if *m == mask => s.clone(),
            _ => {
                let s: Arc<str> = self.build_insert_sql(&mask)?.into();
                self.insert_sql = Some((mask.clone(), s.clone()));
                s
            }
        };
        if pg {
            params.retain(|v| !matches!(v, DbValue::Null));
        }
        if backend == Some(Backend::Mysql)
            && params.iter().any(|v| matches!(v, DbValue::DateTime(_)))
        {
            if let Err(e) = self.mysql_datetimes(&mut params) {
                params.clear();
                self.params = params;
                return Err(e);
            }
        }
        let r = self.run(|c| c.execute(&sql, &params));
        params.clear();
        self.params = params;
        r.map(|_| ())
    }

    /// Inserts `n` rows into `table` in one go: `columns` names the
    /// columns and `fill(i, row)` pushes row `i`'s values, in column order,
    /// into `row`. On SQLite one prepared statement serves every row; on
    /// servers each row is inserted as by [`DbStorage::insert_row`]. The
    /// first failing row stops the call with its error (rows before it stay
    /// in the open transaction, to be committed or rolled back).
    ///
    /// ```
    /// use daf_storages::db::{DbStorage, DbValue};
    /// let mut db = DbStorage::open_url("sqlite::memory:", None).unwrap();
    /// db.execute_sql("CREATE TABLE t (id BIGINT, x DOUBLE PRECISION)").unwrap();
    /// db.insert_rows("t", &["id", "x"], 3, |i, row| {
    ///     row.push(DbValue::I64(i as i64));
    ///     row.push(DbValue::F64(i as f64 / 2.0));
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        n: usize,
        mut fill: impl FnMut(usize, &mut Vec<DbValue>) -> Result<()>,
    ) -> Result<u64> {
        self.set_table_for_insert(table)?;
        if self.backend() == Some(Backend::Sqlite) {
            let b = Backend::Sqlite;
            let cols = columns
                .iter()
                .map(|c| db(quote_ident(b, c)))
                .collect::<Result<Vec<_>>>()?;
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                db(quote_ident(b, table))?,
                cols.join(", "),
                vec!["?"; cols.len()].join(", ")
            );
            let ncols = columns.len();
            let table_name = table.to_string();
            let mut outer_err: Option<StorageError> = None;
            let mut adapter =
                |i: usize, row: &mut Vec<DbValue>| -> std::result::Result<(), DbError> {
                    if let Err(e) = fill(i, row) {
                        outer_err = Some(e);
                        return Err(DbError::State("row fill failed".into()));
                    }
                    super::error::check_row_len(&table_name, i, row, ncols)
                };
            let r = self.run(|c| {
                c.sqlite_execute_each(&sql, n, &mut adapter)
                    .expect("SQLite connection")
            });
            return match r {
                Ok(k) => Ok(k),
                Err(e) => Err(outer_err.take().unwrap_or(e)),
            };
        }
        let mut row = Vec::with_capacity(columns.len());
        for i in 0..n {
            row.clear();
            fill(i, &mut row)?;
            super::error::check_row_len(table, i, &row, columns.len())?;
            for (c, v) in columns.iter().zip(row.drain(..)) {
                self.set_value(c, v)?;
            }
            self.insert_row()?;
        }
        Ok(n as u64)
    }

    /// MariaDB/MySQL: DateTime values bound for DATETIME/TIMESTAMP columns
    /// become UTC `YYYY-MM-DD HH:MM:SS.ffffff` text (the column's own
    /// precision applies: whole seconds for `DATETIME`, µs for `DATETIME(6)`).
    fn mysql_datetimes(&mut self, params: &mut [DbValue]) -> Result<()> {
        let row = self.row.as_ref().expect("checked by caller");
        let table = row.table.clone();
        let cols = row.cols.clone();
        if !self.my_datetime_cols.contains_key(&table) {
            let (schema, name) = match table.split_once('.') {
                Some((s, t)) => (Some(s.to_string()), t.to_string()),
                None => (None, table.clone()),
            };
            let sql = "SELECT LOWER(column_name) FROM information_schema.columns \
                       WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                       AND data_type IN ('datetime', 'timestamp', 'date')";
            let p = [
                schema.map_or(DbValue::Null, DbValue::String),
                DbValue::String(name),
            ];
            let rs = self.run(|c| c.query(sql, &p))?;
            let found = rs
                .rows
                .into_iter()
                .filter_map(|mut r| match r.pop() {
                    Some(DbValue::String(s)) => Some(s),
                    _ => None,
                })
                .collect();
            self.my_datetime_cols.insert(table.clone(), found);
        }
        let dt_cols = &self.my_datetime_cols[&table];
        for (c, v) in cols.iter().zip(params.iter_mut()) {
            if let DbValue::DateTime(d) = v {
                if dt_cols.contains(&c.to_ascii_lowercase()) {
                    let iso = d.to_iso(daf_base::Timescale::Utc);
                    // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ -> YYYY-MM-DD HH:MM:SS.ffffff
                    let text = format!("{} {}", &iso[..10], &iso[11..26]);
                    *v = DbValue::String(text);
                }
            }
        }
        Ok(())
    }

    fn build_insert_sql(&self, null_mask: &[bool]) -> Result<String> {
        let row = self.row.as_ref().expect("checked by caller");
        let b = self.backend().unwrap_or(Backend::Sqlite);
        let mut cols = Vec::with_capacity(row.cols.len());
        let mut ph = Vec::with_capacity(row.cols.len());
        let mut n = 0;
        for (i, c) in row.cols.iter().enumerate() {
            cols.push(db(quote_ident(b, c))?);
            if null_mask.get(i).copied().unwrap_or(false) {
                ph.push("NULL".to_string());
            } else {
                n += 1;
                ph.push(placeholder(b, n));
            }
        }
        Ok(format!(
            "INSERT INTO {} ({}) VALUES ({})",
            db(quote_ident(b, &row.table))?,
            cols.join(", "),
            ph.join(", ")
        ))
    }

    // ----- queries -------------------------------------------------------

    /// Queries table `name` (clears any previous query).
    pub fn set_table_for_query(&mut self, name: &str) -> Result<()> {
        self.set_table_list_for_query(&[name])
    }

    /// Queries the join of `names` (clears any previous query).
    pub fn set_table_list_for_query(&mut self, names: &[&str]) -> Result<()> {
        for n in names {
            db(validate_ident(n))?;
        }
        self.q = QueryState {
            tables: names.iter().map(|s| s.to_string()).collect(),
            table_exprs: vec![false; names.len()],
            ..Default::default()
        };
        Ok(())
    }

    /// LSST's `setTableForQuery(expr, isExpr=true)`: queries `expr`, SQL
    /// written by the caller and used verbatim (a join, a subquery with an
    /// alias, `DUAL` ...). Clears any previous query.
    pub fn set_table_expr_for_query(&mut self, expr: &str) -> Result<()> {
        self.q = QueryState {
            tables: vec![expr.to_string()],
            table_exprs: vec![true],
            ..Default::default()
        };
        Ok(())
    }

    /// Adds column `name` (`col` or `table.col`) to the result; returns its position.
    pub fn out_column(&mut self, name: &str) -> Result<usize> {
        let mut q = self.quote(name)?;
        // The case policy: PostgreSQL folds the name to lower case; the
        // result column keeps the caller's spelling, as on the other backends.
        let last = name.rsplit('.').next().unwrap_or(name);
        if self.backend() == Some(Backend::Postgres) && last.bytes().any(|b| b.is_ascii_uppercase())
        {
            q = format!("{q} AS \"{last}\"");
        }
        self.q.out.push(q);
        self.q.out_names.push(name.to_string());
        self.q.checks.push(None);
        Ok(self.q.out.len() - 1)
    }

    /// Adds column `name` to the result, checked on each `next()` to be
    /// readable as `T` (NULL allowed); returns its position.
    pub fn out_param<T: FromDbValue>(&mut self, name: &str) -> Result<usize> {
        let pos = self.out_column(name)?;
        self.q.checks[pos] = Some(check_as::<T>);
        Ok(pos)
    }

    /// LSST's `outColumn(expr, isExpr=true)`: adds an SQL expression
    /// (`count(*)`, `flux * 2`, `1 + 1`), written by the caller and used
    /// verbatim, to the result; returns its position.
    ///
    /// ```
    /// use daf_storages::db::DbStorage;
    /// let mut db = DbStorage::open_url("sqlite::memory:", None).unwrap();
    /// db.execute_sql("CREATE TABLE t (x BIGINT)").unwrap();
    /// db.execute_sql("INSERT INTO t VALUES (2), (3)").unwrap();
    /// db.set_table_for_query("t").unwrap();
    /// db.out_expr("sum(x) * 10").unwrap();
    /// db.query().unwrap();
    /// assert!(db.next().unwrap());
    /// assert_eq!(db.get_column_by_pos::<i64>(0).unwrap(), 50);
    /// ```
    pub fn out_expr(&mut self, expr: &str) -> Result<usize> {
        if expr.trim().is_empty() {
            return Err(StorageError::state(
                self.storage_name,
                "empty output expression",
            ));
        }
        self.q.out.push(expr.to_string());
        self.q.out_names.push(expr.to_string());
        self.q.checks.push(None);
        Ok(self.q.out.len() - 1)
    }

    /// [`DbStorage::out_expr`] checked on each `next()` to be readable as
    /// `T` (LSST's `outParam(expr, dest, isExpr=true)`).
    pub fn out_param_expr<T: FromDbValue>(&mut self, expr: &str) -> Result<usize> {
        let pos = self.out_expr(expr)?;
        self.q.checks[pos] = Some(check_as::<T>);
        Ok(pos)
    }

    /// Binds `value` to the `:name` placeholder of the where clause.
    pub fn cond_param<T: ToDbValue>(&mut self, name: &str, value: T) -> Result<()> {
        db(validate_ident(name))?;
        self.q.params.insert(name.to_string(), value.to_db_value());
        Ok(())
    }

    /// The where clause (SQL written by the caller; values go through
    /// `:name` placeholders bound with [`DbStorage::cond_param`]).
    pub fn set_query_where(&mut self, clause: &str) -> Result<()> {
        self.q.where_clause = Some(clause.to_string());
        Ok(())
    }

    /// `ORDER BY` columns: `"a, b DESC"` (names validated). A second call
    /// appends (`ORDER BY a, b DESC, c`), as LSST's `orderBy` did.
    pub fn order_by(&mut self, list: &str) -> Result<()> {
        let b = self.backend().unwrap_or(Backend::Sqlite);
        let q = db(quote_column_list(b, list, true))?;
        append_list(&mut self.q.order_by, q);
        Ok(())
    }

    /// `GROUP BY` columns: `"a, b"` (names validated); a second call appends.
    pub fn group_by(&mut self, list: &str) -> Result<()> {
        let b = self.backend().unwrap_or(Backend::Sqlite);
        let q = db(quote_column_list(b, list, false))?;
        append_list(&mut self.q.group_by, q);
        Ok(())
    }

    /// Appends an SQL expression, used verbatim, to `ORDER BY`
    /// (`"abs(flux) DESC"`).
    pub fn order_by_expr(&mut self, expr: &str) -> Result<()> {
        append_list(&mut self.q.order_by, expr.to_string());
        Ok(())
    }

    /// Appends an SQL expression, used verbatim, to `GROUP BY`.
    pub fn group_by_expr(&mut self, expr: &str) -> Result<()> {
        append_list(&mut self.q.group_by, expr.to_string());
        Ok(())
    }

    /// Runs the query built so far. With no `out_column`, every column is returned.
    pub fn query(&mut self) -> Result<()> {
        if self.q.tables.is_empty() {
            return Err(StorageError::state(
                self.storage_name,
                "set_table_for_query has not been called",
            ));
        }
        let b = self.backend().unwrap_or(Backend::Sqlite);
        let tables = self
            .q
            .tables
            .iter()
            .zip(&self.q.table_exprs)
            .map(|(t, is_expr)| {
                if *is_expr {
                    Ok(t.clone())
                } else {
                    db(quote_ident(b, t))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let cols = if self.q.out.is_empty() {
            "*".to_string()
        } else {
            self.q.out.join(", ")
        };
        let mut sql = format!("SELECT {cols} FROM {}", tables.join(", "));
        let mut params = Vec::new();
        if let Some(w) = &self.q.where_clause {
            let (clause, p) = db(bind_placeholders(b, w, &self.q.params))?;
            sql.push_str(" WHERE ");
            sql.push_str(&clause);
            params = p;
        } else if let Some(name) = self.q.params.keys().next() {
            return Err(DbError::Param {
                name: name.clone(),
                reason: "bound with cond_param but there is no where clause".into(),
            }
            .into());
        }
        if let Some(g) = &self.q.group_by {
            sql.push_str(" GROUP BY ");
            sql.push_str(g);
        }
        if let Some(o) = &self.q.order_by {
            sql.push_str(" ORDER BY ");
            sql.push_str(o);
        }
        let rs = self.run(|c| c.query(&sql, &params))?;
        self.q.result = Some(rs);
        self.q.row = None;
        Ok(())
    }

    /// Moves to the next result row; false when there are no more.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<bool> {
        let name = self.storage_name;
        let rs = self
            .q
            .result
            .as_ref()
            .ok_or_else(|| StorageError::state(name, "next() without query()"))?;
        let i = self.q.row.map_or(0, |r| r + 1);
        if i >= rs.rows.len() {
            self.q.row = Some(rs.rows.len());
            return Ok(false);
        }
        self.q.row = Some(i);
        for (pos, check) in self.q.checks.iter().enumerate() {
            if let (Some(check), Some(v)) = (check, rs.rows[i].get(pos)) {
                if *v != DbValue::Null {
                    db(check(v, &self.q.out_names[pos]))?;
                }
            }
        }
        Ok(true)
    }

    fn current(&self, pos: usize) -> Result<(&DbValue, String)> {
        let rs = self
            .q
            .result
            .as_ref()
            .ok_or_else(|| StorageError::state(self.storage_name, "no query result"))?;
        let row = self.q.row.and_then(|r| rs.rows.get(r)).ok_or_else(|| {
            StorageError::state(self.storage_name, "no current row: call next() first")
        })?;
        let v = row.get(pos).ok_or(DbError::NoSuchColumn {
            pos,
            count: rs.columns.len(),
        })?;
        Ok((v, format!("{pos} ({})", rs.columns[pos])))
    }

    /// The value at `pos` in the current row, as `T`; NULL or an
    /// unconvertible value is [`DbError::WrongType`].
    pub fn get_column_by_pos<T: FromDbValue>(&self, pos: usize) -> Result<T> {
        let (v, name) = self.current(pos)?;
        db(T::convert(v, &name))
    }

    /// The raw value at `pos` in the current row.
    pub fn value_by_pos(&self, pos: usize) -> Result<&DbValue> {
        Ok(self.current(pos)?.0)
    }

    /// Is the value at `pos` in the current row NULL?
    pub fn column_is_null(&self, pos: usize) -> Result<bool> {
        Ok(matches!(self.current(pos)?.0, DbValue::Null))
    }

    /// The result's column names.
    pub fn result_columns(&self) -> &[String] {
        self.q.result.as_ref().map_or(&[], |r| &r.columns)
    }

    /// The result's column type names as the backend reports them (upper
    /// case: `BIGINT`, `INT8`, `DOUBLE PRECISION`, `FLOAT4`, `TEXT` ...).
    pub fn result_types(&self) -> &[String] {
        self.q.result.as_ref().map_or(&[], |r| &r.types)
    }

    /// Ends the query and forgets its rows and parameters.
    pub fn finish_query(&mut self) {
        self.q = QueryState::default();
    }

    // ----- tables --------------------------------------------------------

    /// Runs caller-written SQL (no parameters); returns the rows affected.
    pub fn execute_sql(&mut self, sql: &str) -> Result<u64> {
        self.run(|c| c.execute_raw(sql))
    }

    /// Does table `name` exist? (Names follow the case policy: on
    /// PostgreSQL the lower-case name is looked up.)
    pub fn table_exists(&mut self, name: &str) -> Result<bool> {
        db(validate_ident(name))?;
        let name = if self.backend() == Some(Backend::Postgres) {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        };
        self.run(|c| c.table_exists(&name))
    }

    /// Creates table `name` with the columns of `template`. With
    /// `may_already_exist` an existing table is kept; without, it is an error.
    /// On MySQL, DDL commits the open transaction; a new one is started.
    pub fn create_table_from_template(
        &mut self,
        name: &str,
        template: &str,
        may_already_exist: bool,
    ) -> Result<()> {
        let qn = self.quote(name)?;
        let qt = self.quote(template)?;
        if self.table_exists(name)? {
            if may_already_exist {
                return Ok(());
            }
            return Err(DbError::Table {
                table: name.into(),
                reason: "already exists".into(),
            }
            .into());
        }
        if !self.table_exists(template)? {
            return Err(StorageError::NotFound {
                what: format!("template table {template}"),
            });
        }
        let sql = match self.backend().unwrap_or(Backend::Sqlite) {
            Backend::Sqlite => {
                let create = self.run(|c| c.sqlite_table_sql(template))?.ok_or_else(|| {
                    StorageError::NotFound {
                        what: format!("template table {template}"),
                    }
                })?;
                let paren = create.find('(').ok_or_else(|| DbError::Table {
                    table: template.into(),
                    reason: "has no column list in its CREATE statement".into(),
                })?;
                format!("CREATE TABLE {qn} {}", &create[paren..])
            }
            Backend::Postgres => format!("CREATE TABLE {qn} (LIKE {qt} INCLUDING ALL)"),
            Backend::Mysql => format!("CREATE TABLE {qn} LIKE {qt}"),
        };
        self.ddl(&sql)
    }

    fn ddl(&mut self, sql: &str) -> Result<()> {
        self.run(|c| c.execute_raw(sql))?;
        if self.in_tx && self.backend() == Some(Backend::Mysql) {
            self.run(|c| c.execute_raw("START TRANSACTION"))?;
        }
        Ok(())
    }

    /// Drops table `name`.
    pub fn drop_table(&mut self, name: &str) -> Result<()> {
        let q = self.quote(name)?;
        self.ddl(&format!("DROP TABLE {q}"))
    }

    /// Removes every row of table `name`.
    pub fn truncate_table(&mut self, name: &str) -> Result<()> {
        let q = self.quote(name)?;
        match self.backend() {
            Some(Backend::Sqlite) => self
                .run(|c| c.execute_raw(&format!("DELETE FROM {q}")))
                .map(|_| ()),
            _ => self.ddl(&format!("TRUNCATE TABLE {q}")),
        }
    }
}

fn append_list(to: &mut Option<String>, item: String) {
    match to {
        Some(s) => {
            s.push_str(", ");
            s.push_str(&item);
        }
        None => *to = Some(item),
    }
}

impl Drop for DbStorage {
    /// Closes the connection politely (no "aborted connection" on the
    /// server); an open transaction is rolled back by the server.
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}

pub(crate) fn placeholder(b: Backend, n: usize) -> String {
    match b {
        Backend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}

/// Replaces `:name` placeholders (outside quotes, not `::`) with backend
/// placeholders and collects their values in order.
fn bind_placeholders(
    b: Backend,
    clause: &str,
    params: &HashMap<String, DbValue>,
) -> std::result::Result<(String, Vec<DbValue>), DbError> {
    let chars: Vec<char> = clause.chars().collect();
    let mut out = String::with_capacity(clause.len());
    let mut vals = Vec::new();
    let mut used = std::collections::HashSet::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                out.push(c);
                i += 1;
            }
            ':' if i + 1 < chars.len() && chars[i + 1] == ':' => {
                out.push_str("::");
                i += 2;
            }
            ':' if i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphabetic() || chars[i + 1] == '_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let v = params.get(&name).ok_or_else(|| DbError::Param {
                    name: name.clone(),
                    reason: "used in the where clause but not bound with cond_param".into(),
                })?;
                vals.push(v.clone());
                out.push_str(&placeholder(b, vals.len()));
                used.insert(name);
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if let Some(name) = params.keys().find(|k| !used.contains(*k)) {
        return Err(DbError::Param {
            name: name.clone(),
            reason: "bound with cond_param but not used in the where clause".into(),
        });
    }
    Ok((out, vals))
}

impl Storage for DbStorage {
    fn storage_name(&self) -> &str {
        self.storage_name
    }

    fn set_policy(&mut self, _policy: Option<&Policy>) -> Result<()> {
        Ok(())
    }

    fn set_persist_location(&mut self, location: &LogicalLocation) -> Result<()> {
        self.connect(location.loc_str())
    }

    /// `DbStorage <location>` (locations never hold credentials).
    fn describe(&self) -> String {
        match &self.url {
            Some(u) => format!("{} {u}", self.storage_name),
            None => self.storage_name.to_string(),
        }
    }

    fn set_retrieve_location(&mut self, location: &LogicalLocation) -> Result<()> {
        if let Ok(u) = DbUrl::parse(location.loc_str()) {
            if u.backend == Backend::Sqlite
                && u.database != ":memory:"
                && !std::path::Path::new(&u.database).exists()
            {
                return Err(StorageError::NotFound {
                    what: format!("SQLite database {}", u.database),
                });
            }
        }
        self.connect(location.loc_str())
    }

    fn start_transaction(&mut self) -> Result<()> {
        self.begin()
    }

    fn end_transaction(&mut self) -> Result<()> {
        self.commit()
    }

    fn abort_transaction(&mut self) -> Result<()> {
        self.rollback()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let mut p = HashMap::new();
        p.insert("a".to_string(), DbValue::I64(1));
        p.insert("b".to_string(), DbValue::String("x".into()));
        let (s, v) = bind_placeholders(
            Backend::Postgres,
            "x = :a AND y = ':a' AND z::text = :b OR w = :a",
            &p,
        )
        .unwrap();
        assert_eq!(s, "x = $1 AND y = ':a' AND z::text = $2 OR w = $3");
        assert_eq!(v.len(), 3);
        assert!(bind_placeholders(Backend::Sqlite, "x = :c", &p).is_err());
        assert!(bind_placeholders(Backend::Sqlite, "x = :a", &p).is_err());
    }
}
