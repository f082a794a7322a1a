//! One open connection to SQLite, PostgreSQL or MySQL, behind one small API.

use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use daf_base::{DateTime, Timescale};
use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Executor, Row, Statement, TypeInfo};
use tokio::runtime::Runtime;

use super::auth::DbAuth;
use super::error::DbError;
use super::pool::{block, runtime, scrub, PgLink};
use super::url::{Backend, DbUrl, SslMode};
use super::value::DbValue;

/// A materialised query result.
#[derive(Debug, Default)]
pub(crate) struct ResultSet {
    pub columns: Vec<String>,
    /// Declared or reported type names, upper case (`BIGINT`, `INT8`, `DOUBLE` ...).
    pub types: Vec<String>,
    pub rows: Vec<Vec<DbValue>>,
}

/// Writes row `i`'s parameters into the buffer.
pub(crate) type RowFill<'a> = dyn FnMut(usize, &mut Vec<DbValue>) -> Result<(), DbError> + 'a;

pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg {
        /// The server, credentials, options and runtime.
        link: Box<PgLink>,
        conn: sqlx::PgConnection,
        /// `statement_timeout` of the location.
        timeout: Option<Duration>,
    },
    My {
        rt: Runtime,
        conn: sqlx::MySqlConnection,
        /// `statement_timeout` of the location.
        timeout: Option<Duration>,
        /// How to open the bulk-load connection (same server, credentials
        /// and database as `conn`).
        load_opts: Box<mysql::Opts>,
        /// The `LOAD DATA LOCAL INFILE` connection, opened on first use.
        load: Option<Box<mysql::Conn>>,
    },
}

/// What the server said about one `LOAD DATA LOCAL INFILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MysqlLoad {
    /// Rows affected (a replaced row counts twice, as MySQL reports it).
    pub affected_rows: u64,
    /// The server's summary, `Records: N  Deleted: D  Skipped: S  Warnings: W`.
    pub info: String,
}

impl rusqlite::ToSql for DbValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as V;
        Ok(match self {
            DbValue::Null => ToSqlOutput::Owned(V::Null),
            DbValue::Bool(b) => ToSqlOutput::Owned(V::Integer(i64::from(*b))),
            DbValue::I8(v) => ToSqlOutput::Owned(V::Integer((*v).into())),
            DbValue::I16(v) => ToSqlOutput::Owned(V::Integer((*v).into())),
            DbValue::I32(v) => ToSqlOutput::Owned(V::Integer((*v).into())),
            DbValue::I64(v) => ToSqlOutput::Owned(V::Integer(*v)),
            DbValue::F32(v) => ToSqlOutput::Owned(V::Real((*v).into())),
            DbValue::F64(v) => ToSqlOutput::Owned(V::Real(*v)),
            DbValue::DateTime(d) => ToSqlOutput::Owned(V::Integer(d.nsecs(Timescale::Tai))),
            DbValue::String(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn sqlite_err(sql: &str, e: rusqlite::Error) -> DbError {
    DbError::Sql {
        backend: "SQLite",
        sql: sql.to_string(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

/// Binds `params`; `$finite_only`: non-finite floats are bound as NULL
/// (MySQL has no NaN or infinities — the float policy in `super`).
macro_rules! bind_all {
    ($q:expr, $params:expr, $null:ty, $finite_only:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                DbValue::Null => q.bind(None::<$null>),
                DbValue::Bool(v) => q.bind(*v),
                DbValue::I8(v) => q.bind(i16::from(*v)),
                DbValue::I16(v) => q.bind(*v),
                DbValue::I32(v) => q.bind(*v),
                DbValue::I64(v) => q.bind(*v),
                DbValue::F32(v) if $finite_only && !v.is_finite() => q.bind(None::<f32>),
                DbValue::F64(v) if $finite_only && !v.is_finite() => q.bind(None::<f64>),
                DbValue::F32(v) => q.bind(*v),
                DbValue::F64(v) => q.bind(*v),
                DbValue::DateTime(d) => q.bind(d.nsecs(Timescale::Tai)),
                DbValue::String(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}

use super::pool::is_connection_lost as is_lost;

/// Prepares `sql` on a sqlx connection (for the column names and types),
/// runs it with `params` bound and collects a [`ResultSet`];
/// `|row, i, type| value` decodes one cell (type: the statement's, upper case).
macro_rules! sqlx_result_set {
    ($rt:expr, $timeout:expr, $conn:expr, $sql:expr, $params:expr, $finite_only:expr, |$r:ident, $i:ident, $t:ident| $value:expr) => {
        block($rt, $timeout, async {
            let st = (&mut *$conn)
                .prepare(AssertSqlSafe($sql.to_string()).into_sql())
                .await?;
            let columns: Vec<String> = st.columns().iter().map(|c| c.name().to_string()).collect();
            let types: Vec<String> = st
                .columns()
                .iter()
                .map(|c| c.type_info().name().to_ascii_uppercase())
                .collect();
            let q = bind_all!(
                sqlx::query(AssertSqlSafe($sql.to_string())),
                $params,
                String,
                $finite_only
            );
            let rows = q.fetch_all(&mut *$conn).await?;
            let mut out = Vec::with_capacity(rows.len());
            for $r in &rows {
                let mut v = Vec::with_capacity(types.len());
                for ($i, $t) in types.iter().enumerate() {
                    v.push($value?);
                }
                out.push(v);
            }
            Ok::<ResultSet, sqlx::Error>(ResultSet {
                columns,
                types,
                rows: out,
            })
        })
    };
}

impl Conn {
    /// Opens a connection; servers take credentials from `auth`.
    pub fn open(url: &DbUrl, auth: &DbAuth) -> Result<Conn, DbError> {
        match url.backend {
            Backend::Sqlite => {
                let c = if url.database == ":memory:" {
                    rusqlite::Connection::open_in_memory()
                } else {
                    rusqlite::Connection::open(&url.database)
                }
                .map_err(|e| DbError::Open {
                    path: url.database.clone(),
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                })?;
                c.set_prepared_statement_cache_capacity(64);
                // A double-quoted name is an identifier, never a string
                // literal: a misspelled column is an error.
                for cfg in [
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DML,
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DDL,
                ] {
                    c.set_db_config(cfg, false)
                        .map_err(|e| sqlite_err("sqlite3_db_config(DQS)", e))?;
                }
                c.busy_timeout(std::time::Duration::from_secs(30))
                    .map_err(|e| sqlite_err("busy_timeout", e))?;
                Ok(Conn::Sqlite(c))
            }
            Backend::Postgres => {
                let link = PgLink::with_auth(url, auth)?;
                let conn = link.connect()?;
                Ok(Conn::Pg {
                    timeout: url.options.statement_timeout,
                    link: Box::new(link),
                    conn,
                })
            }
            Backend::Mysql => {
                let entry = auth.lookup(&url.host, url.port)?;
                let rt = runtime()?;
                let o = &url.options;
                let connect_err = |e: sqlx::Error| DbError::Connect {
                    backend: url.backend.name().into(),
                    host: url.host.clone(),
                    port: url.port,
                    message: scrub(e.to_string(), &entry.password),
                    source: Some(Box::new(e)),
                };
                let ct = o.connect_timeout;
                let connect_timeout = (!ct.is_zero()).then_some(ct);
                type ConnectFuture = std::pin::Pin<
                    Box<dyn Future<Output = Result<sqlx::MySqlConnection, sqlx::Error>>>,
                >;
                let connect = |fut: ConnectFuture| {
                    block(&rt, connect_timeout, fut).map_err(|e| match e {
                        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                            connect_err(sqlx::Error::Configuration(
                                format!(
                                    "no answer within {} s (connect_timeout)",
                                    ct.as_secs_f64()
                                )
                                .into(),
                            ))
                        }
                        other => connect_err(other),
                    })
                };
                {
                    use sqlx::mysql::MySqlSslMode as M;
                    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
                        .host(&url.host)
                        .port(url.port)
                        .username(&entry.user)
                        .database(&url.database)
                        .ssl_mode(match o.sslmode {
                            SslMode::Disable => M::Disabled,
                            SslMode::Prefer => M::Preferred,
                            SslMode::Require => M::Required,
                            SslMode::VerifyCa => M::VerifyCa,
                            SslMode::VerifyFull => M::VerifyIdentity,
                        })
                        .disable_statement_logging();
                    if let Some(c) = &o.sslrootcert {
                        opts = opts.ssl_ca(c);
                    }
                    if !entry.password.is_empty() {
                        opts = opts.password(&entry.password);
                    }
                    let mut conn = connect(Box::pin(async move { opts.connect().await }))?;
                    // The bulk-load connection uses TLS when this one does
                    // (`prefer`: when the server offers it).
                    let tls = match o.sslmode {
                        SslMode::Disable => false,
                        SslMode::Prefer => {
                            let have: Result<Option<String>, _> = block(
                                &rt,
                                connect_timeout,
                                sqlx::query_scalar("SELECT @@have_ssl").fetch_one(&mut conn),
                            );
                            matches!(have.ok().flatten().as_deref(), Some("YES"))
                        }
                        _ => true,
                    };
                    let ssl = tls.then(|| {
                        let mut s = mysql::SslOpts::default();
                        if let Some(c) = &o.sslrootcert {
                            s = s.with_root_cert_path(Some(std::path::PathBuf::from(c)));
                        }
                        match o.sslmode {
                            SslMode::Prefer | SslMode::Require => s
                                .with_danger_accept_invalid_certs(true)
                                .with_danger_skip_domain_validation(true),
                            SslMode::VerifyCa => s.with_danger_skip_domain_validation(true),
                            _ => s,
                        }
                    });
                    let load_opts = mysql::OptsBuilder::new()
                        .ssl_opts(ssl)
                        .tcp_connect_timeout(connect_timeout)
                        .read_timeout(o.statement_timeout.or(connect_timeout))
                        .write_timeout(o.statement_timeout.or(connect_timeout))
                        .ip_or_hostname(Some(url.host.clone()))
                        .tcp_port(url.port)
                        .prefer_socket(false)
                        .user(Some(entry.user.clone()))
                        .pass((!entry.password.is_empty()).then(|| entry.password.clone()))
                        .db_name(Some(url.database.clone()))
                        // The TSV file is UTF-8 and written with backslash
                        // escapes, whatever the server's defaults.
                        .init(vec![
                            "SET NAMES utf8mb4",
                            "SET time_zone = '+00:00'",
                            "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
                        ]);
                    Ok(Conn::My {
                        rt,
                        conn,
                        timeout: o.statement_timeout,
                        load_opts: Box::new(load_opts.into()),
                        load: None,
                    })
                }
            }
        }
    }

    /// Closes the connection politely (the server sees a logout, not an
    /// aborted connection); waits at most a second on a server that does
    /// not answer.
    pub fn close(self) {
        use sqlx::Connection;
        let grace = Some(Duration::from_secs(1));
        match self {
            Conn::Sqlite(_) => {}
            Conn::Pg { link, conn, .. } => {
                let _ = block(&link.rt, grace, conn.close());
            }
            Conn::My { rt, conn, load, .. } => {
                drop(load); // the mysql crate sends COM_QUIT on drop
                let _ = block(&rt, grace, conn.close());
            }
        }
    }

    /// The server's id of this session (PostgreSQL `pg_backend_pid()`,
    /// MariaDB `CONNECTION_ID()`); `None` for SQLite.
    pub fn session_id(&mut self) -> Result<Option<i64>, DbError> {
        let sql = match self.backend() {
            Backend::Sqlite => return Ok(None),
            Backend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT)",
            Backend::Mysql => "SELECT CAST(CONNECTION_ID() AS SIGNED)",
        };
        let rs = self.query(sql, &[])?;
        Ok(rs.rows.first().and_then(|r| match r.first() {
            Some(DbValue::I64(v)) => Some(*v),
            _ => None,
        }))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Pg { .. } => Backend::Postgres,
            Conn::My { .. } => Backend::Mysql,
        }
    }

    fn sql_err(&self, sql: &str, e: sqlx::Error) -> DbError {
        let message = match &e {
            sqlx::Error::Database(d) => d.message().to_string(),
            other => other.to_string(),
        };
        if is_lost(&e) {
            return DbError::ConnectionLost {
                backend: self.backend().name(),
                message: format!("{message} (in `{sql}`)"),
                source: Some(Box::new(e)),
            };
        }
        DbError::Sql {
            backend: self.backend().name(),
            sql: sql.to_string(),
            message,
            source: Some(Box::new(e)),
        }
    }

    /// Runs SQL with no parameters (may hold several statements on SQLite).
    pub fn execute_raw(&mut self, sql: &str) -> Result<u64, DbError> {
        let r = match self {
            Conn::Sqlite(c) => {
                return c
                    .execute_batch(sql)
                    .map(|_| c.changes())
                    .map_err(|e| sqlite_err(sql, e))
            }
            Conn::Pg {
                link,
                conn,
                timeout,
            } => block(
                &link.rt,
                *timeout,
                conn.execute(sqlx::raw_sql(AssertSqlSafe(sql.to_string()))),
            )
            .map(|r| r.rows_affected()),
            Conn::My {
                rt, conn, timeout, ..
            } => block(
                rt,
                *timeout,
                conn.execute(sqlx::raw_sql(AssertSqlSafe(sql.to_string()))),
            )
            .map(|r| r.rows_affected()),
        };
        r.map_err(|e| self.sql_err(sql, e))
    }

    /// Runs one statement with bound parameters; returns the rows affected.
    pub fn execute(&mut self, sql: &Arc<str>, params: &[DbValue]) -> Result<u64, DbError> {
        let r = match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(|e| sqlite_err(sql, e))?;
                return st
                    .execute(rusqlite::params_from_iter(params.iter()))
                    .map(|n| n as u64)
                    .map_err(|e| sqlite_err(sql, e));
            }
            Conn::Pg {
                link,
                conn,
                timeout,
            } => {
                let q = bind_all!(
                    sqlx::query(AssertSqlSafe(sql.clone())),
                    params,
                    String,
                    false
                );
                block(&link.rt, *timeout, q.execute(&mut *conn)).map(|r| r.rows_affected())
            }
            Conn::My {
                rt, conn, timeout, ..
            } => {
                let q = bind_all!(
                    sqlx::query(AssertSqlSafe(sql.clone())),
                    params,
                    String,
                    true
                );
                block(rt, *timeout, q.execute(&mut *conn)).map(|r| r.rows_affected())
            }
        };
        r.map_err(|e| self.sql_err(sql, e))
    }

    /// Runs one statement many times (same SQL) — the SQLite bulk path.
    pub fn execute_many(
        &mut self,
        sql: &Arc<str>,
        rows: impl Iterator<Item = Result<Vec<DbValue>, DbError>>,
    ) -> Result<u64, DbError> {
        let mut n = 0;
        if let Conn::Sqlite(c) = self {
            let mut st = c.prepare_cached(sql).map_err(|e| sqlite_err(sql, e))?;
            for row in rows {
                let row = row?;
                n += st
                    .execute(rusqlite::params_from_iter(row.iter()))
                    .map_err(|e| sqlite_err(sql, e))? as u64;
            }
            return Ok(n);
        }
        for row in rows {
            n += self.execute(sql, &row?)?;
        }
        Ok(n)
    }

    /// SQLite: runs one prepared statement `n` times, `fill(i, row)` writing
    /// row `i`'s parameters into a reused buffer. `None` for other backends.
    pub fn sqlite_execute_each(
        &mut self,
        sql: &str,
        n: usize,
        fill: &mut RowFill<'_>,
    ) -> Option<Result<u64, DbError>> {
        let Conn::Sqlite(c) = self else {
            return None;
        };
        let mut run = || -> Result<u64, DbError> {
            let mut st = c.prepare_cached(sql).map_err(|e| sqlite_err(sql, e))?;
            let mut row = Vec::new();
            let mut total = 0;
            for i in 0..n {
                row.clear();
                fill(i, &mut row)?;
                total += st
                    .execute(rusqlite::params_from_iter(row.iter()))
                    .map_err(|e| sqlite_err(sql, e))? as u64;
            }
            Ok(total)
        };
        Some(run())
    }

    /// Runs a query with bound parameters and returns every row.
    pub fn query(&mut self, sql: &str, params: &[DbValue]) -> Result<ResultSet, DbError> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(|e| sqlite_err(sql, e))?;
                let cols = st.columns();
                let columns: Vec<String> = cols.iter().map(|c| c.name().to_string()).collect();
                let types: Vec<String> = cols
                    .iter()
                    .map(|c| c.decl_type().unwrap_or("").to_ascii_uppercase())
                    .collect();
                let n = columns.len();
                let mut rows_out = Vec::new();
                let mut rows = st
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(|e| sqlite_err(sql, e))?;
                while let Some(r) = rows.next().map_err(|e| sqlite_err(sql, e))? {
                    let mut out = Vec::with_capacity(n);
                    #[allow(clippy::needless_range_loop)]
                    for i in 0..n {
                        out.push(match r.get_ref(i).map_err(|e| sqlite_err(sql, e))? {
                            ValueRef::Null => DbValue::Null,
                            ValueRef::Integer(v) => DbValue::I64(v),
                            ValueRef::Real(v) => DbValue::F64(v),
                            ValueRef::Text(t) => DbValue::String(
                                std::str::from_utf8(t)
                                    .map_err(|_| DbError::Sql {
                                        backend: "SQLite",
                                        sql: sql.into(),
                                        message: format!(
                                            "column {} holds text that is not UTF-8",
                                            columns[i]
                                        ),
                                        source: None,
                                    })?
                                    .to_string(),
                            ),
                            ValueRef::Blob(_) => {
                                return Err(DbError::Sql {
                                    backend: "SQLite",
                                    sql: sql.into(),
                                    message: format!(
                                        "column {} holds a BLOB, which daf does not read",
                                        columns[i]
                                    ),
                                    source: None,
                                })
                            }
                        });
                    }
                    rows_out.push(out);
                }
                Ok(ResultSet {
                    columns,
                    types,
                    rows: rows_out,
                })
            }
            Conn::Pg {
                link,
                conn,
                timeout,
            } => {
                let res =
                    sqlx_result_set!(&link.rt, *timeout, conn, sql, params, false, |r, i, t| {
                        pg_value(r, i, t)
                    });
                res.map_err(|e| self.sql_err(sql, e))
            }
            Conn::My {
                rt, conn, timeout, ..
            } => {
                // MariaDB: the row's own column types (the statement's may be vaguer).
                let res = sqlx_result_set!(rt, *timeout, conn, sql, params, true, |r, i, _t| {
                    my_value(r, i, &r.column(i).type_info().name().to_ascii_uppercase())
                });
                res.map_err(|e| self.sql_err(sql, e))
            }
        }
    }

    /// PostgreSQL `COPY ... FROM STDIN` of a file's bytes.
    pub fn copy_in_file(&mut self, sql: &str, path: &Path) -> Result<u64, DbError> {
        let Conn::Pg {
            link,
            conn,
            timeout,
        } = self
        else {
            return Err(DbError::State("COPY is a PostgreSQL feature".into()));
        };
        let mut f = std::fs::File::open(path).map_err(|e| DbError::Tsv {
            path: path.into(),
            message: e.to_string(),
            source: Some(e),
        })?;
        let res: Result<u64, sqlx::Error> = block(&link.rt, *timeout, async {
            let mut copy = conn.copy_in_raw(sql).await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        copy.abort(format!("reading the TSV file failed: {e}"))
                            .await?;
                        return Err(sqlx::Error::Io(e));
                    }
                };
                copy.send(&buf[..n]).await?;
            }
            copy.finish().await
        });
        res.map_err(|e| self.sql_err(sql, e))
    }

    /// MySQL: opens (on first use) the bulk-load connection and starts a
    /// transaction on it. `None` for other backends.
    pub fn mysql_load_begin(&mut self) -> Option<Result<(), DbError>> {
        let Conn::My {
            load_opts, load, ..
        } = self
        else {
            return None;
        };
        let mut r = Ok(());
        for attempt in 0..2 {
            r = (|| {
                let c = mysql_load_conn(load_opts, load)?;
                mysql::prelude::Queryable::query_drop(c, "START TRANSACTION")
                    .map_err(|e| my_err("START TRANSACTION", e))
            })();
            match &r {
                Ok(()) => break,
                // A kept connection the server dropped meanwhile: open a
                // new one once (nothing was in a transaction on it).
                Err(DbError::ConnectionLost { .. }) if attempt == 0 => *load = None,
                Err(_) => {
                    *load = None;
                    break;
                }
            }
        }
        Some(r)
    }

    /// The TLS cipher of this session (`SHOW SESSION STATUS LIKE
    /// 'Ssl_cipher'` on MariaDB/MySQL, `pg_stat_ssl` on PostgreSQL); `None`
    /// when the session is not encrypted, and for SQLite.
    pub fn tls_cipher(&mut self) -> Result<Option<String>, DbError> {
        let sql = match self.backend() {
            Backend::Sqlite => return Ok(None),
            Backend::Postgres => "SELECT cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            Backend::Mysql => "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
        };
        let rs = self.query(sql, &[])?;
        Ok(rs
            .rows
            .first()
            .and_then(|r| r.last())
            .and_then(|v| match v {
                DbValue::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            }))
    }

    /// MySQL: the TLS cipher of the bulk-load connection (opened if it is
    /// not yet), as [`Conn::tls_cipher`]. `None` for other backends.
    pub fn mysql_load_tls_cipher(&mut self) -> Option<Result<Option<String>, DbError>> {
        let Conn::My {
            load_opts, load, ..
        } = self
        else {
            return None;
        };
        let sql = "SHOW SESSION STATUS LIKE 'Ssl_cipher'";
        Some(mysql_load_conn(load_opts, load).and_then(|c| {
            let row: Option<(String, String)> =
                mysql::prelude::Queryable::query_first(c, sql).map_err(|e| my_err(sql, e))?;
            Ok(row.map(|(_, v)| v).filter(|v| !v.is_empty()))
        }))
    }

    /// MySQL: runs `sql`, a `LOAD DATA LOCAL INFILE '<name>' ...` statement,
    /// on the bulk-load connection, serving the bytes of `path` when the
    /// server asks for `name` — and nothing for any other name (a server
    /// may ask for any file; only the one we wrote is ever sent). A load
    /// with warnings (LOCAL loads turn bad values into warnings) is an
    /// error. Call between [`Conn::mysql_load_begin`] and
    /// [`Conn::mysql_load_end`].
    pub fn mysql_load_file(
        &mut self,
        sql: &str,
        name: &str,
        path: &Path,
    ) -> Result<MysqlLoad, DbError> {
        use mysql::prelude::Queryable;
        use std::sync::atomic::{AtomicBool, Ordering};
        let Conn::My { load, .. } = self else {
            return Err(DbError::State(
                "LOAD DATA LOCAL INFILE is a MySQL feature".into(),
            ));
        };
        let Some(c) = load.as_mut() else {
            return Err(DbError::State(
                "no bulk-load transaction is open on the MySQL connection".into(),
            ));
        };
        let refused = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicBool::new(false));
        let handler = {
            let want = name.as_bytes().to_vec();
            let path = path.to_path_buf();
            let (refused, served) = (refused.clone(), served.clone());
            mysql::LocalInfileHandler::new(move |asked, out| {
                if asked != want.as_slice() {
                    // Send an empty file: the load succeeds with no rows,
                    // and the flag turns it into an error below.
                    refused.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                served.store(true, Ordering::SeqCst);
                let mut f = std::fs::File::open(&path)?;
                std::io::copy(&mut f, out)?;
                Ok(())
            })
        };
        c.set_local_infile_handler(Some(handler));
        let r = c.query_drop(sql);
        c.set_local_infile_handler(None);
        if let Err(e) = r {
            let broken = !matches!(e, mysql::Error::MySqlError(_));
            // 1148 (MariaDB) / 3948 (MySQL 8): local_infile is off.
            let refused_by_server =
                matches!(&e, mysql::Error::MySqlError(m) if m.code == 1148 || m.code == 3948);
            let mut err = my_err(sql, e);
            if refused_by_server {
                if let DbError::Sql { message, .. } = &mut err {
                    message.push_str(
                        "; the server must allow LOCAL loads: SET GLOBAL local_infile = 1 \
                         (or local_infile = ON in its configuration)",
                    );
                }
            }
            if broken {
                // The protocol may be out of step: drop the connection (the
                // server rolls its transaction back).
                *load = None;
            }
            return Err(err);
        }
        if refused.load(Ordering::SeqCst) || !served.load(Ordering::SeqCst) {
            return Err(DbError::Sql {
                backend: "MySQL",
                sql: sql.into(),
                message: "the server asked for a file other than the TSV file being loaded; nothing was sent".into(),
                source: None,
            });
        }
        let out = MysqlLoad {
            affected_rows: c.affected_rows(),
            info: c.info_str().into_owned(),
        };
        if c.warnings() > 0 {
            let w: Vec<(String, u32, String)> = c
                .query("SHOW WARNINGS LIMIT 5")
                .map_err(|e| my_err("SHOW WARNINGS", e))?;
            let list = w
                .into_iter()
                .map(|(level, code, msg)| format!("{level} {code}: {msg}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(DbError::Sql {
                backend: "MySQL",
                sql: sql.into(),
                message: format!("the load gave warnings ({}): {list}", out.info),
                source: None,
            });
        }
        Ok(out)
    }

    /// MySQL: commits (`commit`) or rolls back the bulk-load transaction,
    /// if one is open.
    pub fn mysql_load_end(&mut self, commit: bool) -> Result<(), DbError> {
        let Conn::My { load, .. } = self else {
            return Ok(());
        };
        let Some(c) = load.as_mut() else {
            return Ok(());
        };
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let r = mysql::prelude::Queryable::query_drop(&mut **c, sql).map_err(|e| my_err(sql, e));
        if r.is_err() {
            *load = None;
        }
        r.map_err(|e| match e {
            DbError::ConnectionLost {
                backend,
                message,
                source,
            } if commit => DbError::ConnectionLost {
                backend,
                message: format!(
                    "{message}; the COMMIT got no answer, so whether the load took effect is unknown"
                ),
                source,
            },
            other => other,
        })
    }

    /// Does the (possibly `schema.`-qualified) table exist?
    pub fn table_exists(&mut self, name: &str) -> Result<bool, DbError> {
        let (schema, table) = match name.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, name),
        };
        let t = DbValue::String(table.to_string());
        let (sql, params) = match (self.backend(), schema) {
            (Backend::Sqlite, None) => (
                "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?".to_string(),
                vec![t],
            ),
            (Backend::Sqlite, Some(s)) => (
                format!(
                    "SELECT 1 FROM {}.sqlite_master WHERE type IN ('table','view') AND name = ?",
                    super::ident::quote_ident(Backend::Sqlite, s)?
                ),
                vec![t],
            ),
            (Backend::Postgres, None) => (
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ANY(current_schemas(false)) AND table_name = $1".into(),
                vec![t],
            ),
            (Backend::Postgres, Some(s)) => (
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2".into(),
                vec![DbValue::String(s.into()), t],
            ),
            (Backend::Mysql, None) => (
                "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?".into(),
                vec![t],
            ),
            (Backend::Mysql, Some(s)) => (
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?".into(),
                vec![DbValue::String(s.into()), t],
            ),
        };
        Ok(!self.query(&sql, &params)?.rows.is_empty())
    }

    /// The `CREATE TABLE` text of an SQLite table.
    pub fn sqlite_table_sql(&mut self, name: &str) -> Result<Option<String>, DbError> {
        let rs = self.query(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            &[DbValue::String(name.into())],
        )?;
        Ok(rs.rows.into_iter().next().and_then(|mut r| match r.pop() {
            Some(DbValue::String(s)) => Some(s),
            _ => None,
        }))
    }
}

/// The bulk-load connection, opened from `opts` if there is none yet.
fn mysql_load_conn<'a>(
    opts: &mysql::Opts,
    load: &'a mut Option<Box<mysql::Conn>>,
) -> Result<&'a mut mysql::Conn, DbError> {
    if load.is_none() {
        let c = mysql::Conn::new(opts.clone()).map_err(|e| {
            let secret = opts.get_pass().unwrap_or_default();
            DbError::Connect {
                backend: "MySQL".into(),
                host: opts.get_ip_or_hostname().to_string(),
                port: opts.get_tcp_port(),
                message: scrub(e.to_string(), secret),
                source: Some(Box::new(e)),
            }
        })?;
        *load = Some(Box::new(c));
    }
    Ok(load.as_mut().expect("opened above"))
}

fn my_err(sql: &str, e: mysql::Error) -> DbError {
    let lost = matches!(
        e,
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_)
    ) || matches!(&e, mysql::Error::MySqlError(m) if m.code == 1927);
    let message = match &e {
        mysql::Error::MySqlError(m) => format!("{} ({})", m.message, m.code),
        other => other.to_string(),
    };
    if lost {
        return DbError::ConnectionLost {
            backend: "MySQL",
            message: format!("{message} (in `{sql}`)"),
            source: Some(Box::new(e)),
        };
    }
    DbError::Sql {
        backend: "MySQL",
        sql: sql.to_string(),
        message,
        source: Some(Box::new(e)),
    }
}

/// Decodes a MariaDB/MySQL `DATETIME`/`TIMESTAMP`/`DATE` cell (binary
/// protocol: length, year, month, day, hour, minute, second, microseconds;
/// or text `YYYY-MM-DD HH:MM:SS[.ffffff]`) as a UTC instant.
fn my_datetime(bytes: &[u8], col: usize) -> Result<DateTime, sqlx::Error> {
    let bad = |why: &str| sqlx::Error::Decode(format!("column {col}: {why}").into());
    if let Some(&len) = bytes.first().filter(|&&b| b < b'0') {
        let b = &bytes[1..];
        if b.len() != usize::from(len) || !matches!(len, 4 | 7 | 11) {
            return Err(bad(
                "zero or malformed date-time (a MariaDB zero date has no instant)",
            ));
        }
        let year = i64::from(u16::from_le_bytes([b[0], b[1]]));
        let (h, mi, s) = if len >= 7 {
            (b[4], b[5], b[6])
        } else {
            (0, 0, 0)
        };
        let micros = if len == 11 {
            u32::from_le_bytes([b[7], b[8], b[9], b[10]])
        } else {
            0
        };
        return DateTime::from_calendar(
            year,
            b[2].into(),
            b[3].into(),
            h.into(),
            mi.into(),
            s.into(),
            micros.saturating_mul(1000),
            Timescale::Utc,
        )
        .ok_or_else(|| bad("date-time out of range"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("date-time is not text"))?;
    DateTime::parse_iso(text, Timescale::Utc).map_err(|e| bad(&e.to_string()))
}

trait IntoSql {
    fn into_sql(self) -> sqlx::SqlStr;
}
impl IntoSql for AssertSqlSafe<String> {
    fn into_sql(self) -> sqlx::SqlStr {
        sqlx::SqlSafeStr::into_sql_str(self)
    }
}

fn pg_value(r: &sqlx::postgres::PgRow, i: usize, t: &str) -> Result<DbValue, sqlx::Error> {
    macro_rules! get {
        ($ty:ty, $var:ident) => {
            r.try_get::<Option<$ty>, _>(i)?
                .map_or(DbValue::Null, DbValue::$var)
        };
    }
    Ok(match t {
        "BOOL" => get!(bool, Bool),
        "INT2" => get!(i16, I16),
        "INT4" => get!(i32, I32),
        "INT8" => get!(i64, I64),
        "FLOAT4" => get!(f32, F32),
        "FLOAT8" => get!(f64, F64),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" => get!(String, String),
        "OID" => r
            .try_get::<Option<sqlx::postgres::types::Oid>, _>(i)?
            .map_or(DbValue::Null, |o| DbValue::I64(o.0.into())),
        "VOID" => DbValue::Null,
        other => {
            return Err(sqlx::Error::Decode(
                format!(
                    "column {i} has type {other}, which daf does not read (cast it in the query)"
                )
                .into(),
            ))
        }
    })
}

fn my_value(r: &sqlx::mysql::MySqlRow, i: usize, t: &str) -> Result<DbValue, sqlx::Error> {
    macro_rules! get {
        ($ty:ty, $var:ident) => {
            r.try_get::<Option<$ty>, _>(i)?
                .map_or(DbValue::Null, DbValue::$var)
        };
    }
    Ok(match t {
        "BOOLEAN" => get!(bool, Bool),
        "TINYINT" => get!(i8, I8),
        "SMALLINT" => get!(i16, I16),
        "INT" | "MEDIUMINT" => get!(i32, I32),
        "BIGINT" => get!(i64, I64),
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" => r
            .try_get::<Option<u32>, _>(i)?
            .map_or(DbValue::Null, |v| DbValue::I64(v.into())),
        "BIGINT UNSIGNED" => match r.try_get::<Option<u64>, _>(i)? {
            None => DbValue::Null,
            Some(v) => DbValue::I64(i64::try_from(v).map_err(|_| {
                sqlx::Error::Decode(format!("column {i}: unsigned value {v} exceeds i64").into())
            })?),
        },
        "FLOAT" => get!(f32, F32),
        "DOUBLE" => get!(f64, F64),
        "DATETIME" | "TIMESTAMP" | "DATE" => match r.try_get_unchecked::<Option<&[u8]>, _>(i)? {
            None => DbValue::Null,
            Some(b) => DbValue::DateTime(my_datetime(b, i)?),
        },
        "VARCHAR" | "CHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" => {
            get!(String, String)
        }
        // Text with a binary collation (`utf8mb4_bin`) is reported as binary.
        "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "VARBINARY" | "BINARY" => {
            match r.try_get::<Option<Vec<u8>>, _>(i)? {
                None => DbValue::Null,
                Some(b) => DbValue::String(String::from_utf8(b).map_err(|_| {
                    sqlx::Error::Decode(
                        format!("column {i} holds binary data that is not UTF-8 text").into(),
                    )
                })?),
            }
        }
        "NULL" => DbValue::Null,
        other => {
            return Err(sqlx::Error::Decode(
                format!(
                    "column {i} has type {other}, which daf does not read (cast it in the query)"
                )
                .into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MariaDB connection from `DAF_TEST_MYSQL_URL` (root, no password),
    /// or `None` (skipped) when it is not set.
    fn mysql() -> Option<Conn> {
        let url = daf_base::testing::server_url("DAF_TEST_MYSQL_URL")?;
        let url = DbUrl::parse(&url).unwrap();
        let mut auth = DbAuth::new();
        auth.add(&url.host, url.port, "root", "");
        Some(Conn::open(&url, &auth).unwrap())
    }

    #[test]
    fn infile_handler_serves_only_the_named_file() {
        let Some(mut c) = mysql() else { return };
        let table = format!("daf_infile_{}", std::process::id());
        c.execute_raw(&format!("CREATE TABLE `{table}` (s VARCHAR(50))"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.tsv");
        std::fs::write(&ours, "a\nb\n").unwrap();
        let load = |c: &mut Conn, asked: &str, served: &str| {
            c.mysql_load_begin().unwrap().unwrap();
            let sql = format!("LOAD DATA LOCAL INFILE '{asked}' INTO TABLE `{table}` (s)");
            let r = c.mysql_load_file(&sql, served, &ours);
            c.mysql_load_end(r.is_ok()).unwrap();
            r
        };
        // The server asks for /etc/passwd (as a hostile server or a spliced
        // statement would): nothing is sent and the load is an error.
        let err = load(&mut c, "/etc/passwd", "ours.tsv").unwrap_err();
        assert!(err.to_string().contains("other than the TSV file"), "{err}");
        let n = |c: &mut Conn| {
            c.query(&format!("SELECT s FROM `{table}`"), &[])
                .unwrap()
                .rows
                .len()
        };
        assert_eq!(n(&mut c), 0);
        // The name we wrote is served.
        let ok = load(&mut c, "ours.tsv", "ours.tsv").unwrap();
        assert_eq!(ok.affected_rows, 2);
        assert!(ok.info.contains("Skipped: 0"), "{}", ok.info);
        assert_eq!(n(&mut c), 2);
        c.execute_raw(&format!("DROP TABLE `{table}`")).unwrap();
    }
}
