//! [`PgFileRegistry`]: the file registry in a PostgreSQL database, for
//! repositories shared by many nodes.
//!
//! One table, `datasets`, in a schema of the repository's own (so several
//! repositories share one database without seeing each other's rows). Every
//! lookup is one indexed `SELECT`, so a `find` sees every row another node
//! has committed; every write is one statement (an `INSERT ... SELECT FROM
//! UNNEST(...) ON CONFLICT DO UPDATE` upsert), or one transaction when a
//! batch is split into several statements. A deadlock or serialization
//! failure between concurrent writers is retried.
//!
//! The connection comes from a [`PgLink`] (daf's one database connection
//! layer: credentials, TLS, connect and statement timeouts from the URL, a
//! private current-thread tokio runtime), so the API stays synchronous like
//! the SQLite backend's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daf_base::DataId;
use daf_mappers::registry::{redact_url, validate_identifier};
use daf_storages::db::{DbAuth, PgLink};
use std::cell::RefCell;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

use super::{
    canonical_data_id, data_id_of, matches_partial, parse_data_id, Claim, CorruptDataId,
    DatasetRecord, DatasetRegistry, Intent, IntentMode,
};
use crate::error::ButlerError;

/// Rows per upsert statement (each row binds eight array elements).
const CHUNK: usize = 5000;

/// How often a write that lost a deadlock or serialization race is retried.
const WRITE_TRIES: usize = 8;

/// The advisory-lock key that serialises table creation across processes
/// (`CREATE ... IF NOT EXISTS` is not safe against a concurrent twin).
const DDL_LOCK: i64 = 0x6461_665f_7265_6731; // "daf_reg1"

/// Where a PostgreSQL file registry lives: a URL without password and the
/// schema holding the repository's table.
///
/// ```
/// use daf_butler::file_registry::PgLocation;
/// let l = PgLocation::parse("postgresql://butler@db:5432/survey?schema=repo_a", None).unwrap();
/// assert_eq!(l.url, "postgresql://butler@db:5432/survey");
/// assert_eq!(l.schema.as_deref(), Some("repo_a"));
/// let e = PgLocation::parse("postgresql://butler:s3cret@db/survey", None).unwrap_err();
/// assert!(e.contains("password") && !e.contains("s3cret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// `postgresql://[user@]host[:port]/database[?sslmode=...]`: never a
    /// password, never `schema=`.
    pub url: String,
    /// The schema of the repository's table (letters, digits, `_`; at most
    /// 63 bytes), if known.
    pub schema: Option<String>,
}

impl PgLocation {
    /// Parses a registry URL. A `?schema=NAME` parameter is taken out of the
    /// URL into [`PgLocation::schema`] (it must agree with `schema` when both
    /// are given). A password in the URL is refused: it would end up in
    /// `repositoryCfg.yaml` in clear.
    pub fn parse(url: &str, schema: Option<&str>) -> Result<PgLocation, String> {
        let shown = redact_url(url);
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("registry {shown:?}: expected postgresql://host:port/database")
        })?;
        if scheme != "postgresql" && scheme != "postgres" {
            return Err(format!(
                "registry {shown:?}: unsupported scheme {scheme:?}; the shared registry is \
                 PostgreSQL (postgresql://host:port/database); leave `registry` out for SQLite"
            ));
        }
        if let Some((cred, _)) = rest.rsplit_once('@') {
            if cred.contains(':') {
                return Err(format!(
                    "registry {shown:?}: the URL holds a password, which would be written into \
                     repositoryCfg.yaml in clear; drop it and put it in ~/.daf/db-auth.yaml \
                     (database.authInfo) or PGPASSWORD / ~/.pgpass"
                ));
            }
        }
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut url_schema = None;
        let mut params = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("schema", v)) => url_schema = Some(v.to_string()),
                _ if pair.is_empty() => {}
                _ => params.push(pair),
            }
        }
        let schema = match (url_schema, schema) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "registry {shown:?}: schema {a:?} in the URL but {b:?} given separately"
                ))
            }
            (Some(a), _) => Some(a),
            (None, b) => b.map(str::to_string),
        };
        if let Some(s) = &schema {
            validate_identifier(s).map_err(|_| {
                format!(
                    "registry schema {s:?}: use letters, digits and '_' (not first), at most 63 bytes"
                )
            })?;
        }
        let db = base.split_once('/').map(|(_, d)| d).unwrap_or("");
        if db.is_empty() || db.contains('/') {
            return Err(format!(
                "registry {shown:?}: name the database: postgresql://host:5432/DATABASE"
            ));
        }
        let mut clean = format!("{scheme}://{base}");
        if !params.is_empty() {
            clean.push('?');
            clean.push_str(&params.join("&"));
        }
        PgLink::check_location(&clean).map_err(|e| format!("registry {shown:?}: {e}"))?;
        Ok(PgLocation { url: clean, schema })
    }

    /// A fresh schema name for the repository at `root`: `daf_` and 12 hex
    /// digits of a hash of the root, the time and the process.
    pub fn generated_schema(root: &Path) -> String {
        let mut h = blake3::Hasher::new();
        h.update(root.to_string_lossy().as_bytes());
        h.update(&super::now_ns().to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
        format!("daf_{}", &h.finalize().to_hex()[..12])
    }
}

/// The statements, qualified with the schema once (no formatting per call).
#[derive(Debug)]
struct Sql {
    upsert: Arc<str>,
    find_run: Arc<str>,
    find_newest: Arc<str>,
    /// Every row of a type and run (both optional).
    matching_all: Arc<str>,
    /// The same, narrowed by JSON containment of a partial data id: an
    /// unconditional `@>` so the GIN index on `data_id::jsonb` serves it
    /// (an `$3 IS NULL OR …` form would keep generic plans off the index).
    matching_contains: Arc<str>,
    count: Arc<str>,
    by_source: Arc<str>,
    types: Arc<str>,
    remove: Arc<str>,
    prov_delete: Arc<str>,
    prov_insert: Arc<str>,
    prov_select: Arc<str>,
}

const COLS: &str = "id, dataset_type, data_id, run, path, size, checksum, time_ns, source";

impl Sql {
    /// `table` is the qualified `datasets` table, `prov` the qualified
    /// `provenance` table.
    fn new(table: &str, prov: &str) -> Sql {
        let a = |s: String| Arc::<str>::from(s);
        Sql {
            upsert: a(format!(
                "INSERT INTO {table} (dataset_type, data_id, run, path, size, checksum, time_ns, source)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[],
                                      $6::text[], $7::int8[], $8::text[])
                 ON CONFLICT (dataset_type, data_id, run) DO UPDATE SET
                   path = excluded.path, size = excluded.size, checksum = excluded.checksum,
                   time_ns = excluded.time_ns, source = excluded.source
                 RETURNING id, dataset_type, data_id, run"
            )),
            find_run: a(format!(
                "SELECT {COLS} FROM {table} WHERE dataset_type = $1 AND data_id = $2 AND run = $3"
            )),
            find_newest: a(format!(
                "SELECT {COLS} FROM {table} WHERE dataset_type = $1 AND data_id = $2
                 ORDER BY time_ns DESC, id DESC LIMIT 1"
            )),
            matching_all: a(format!(
                "SELECT {COLS} FROM {table} WHERE ($1::text IS NULL OR dataset_type = $1)
                 AND ($2::text IS NULL OR run = $2) ORDER BY id"
            )),
            matching_contains: a(format!(
                "SELECT {COLS} FROM {table} WHERE ($1::text IS NULL OR dataset_type = $1)
                 AND ($2::text IS NULL OR run = $2)
                 AND data_id::jsonb @> $3::jsonb ORDER BY id"
            )),
            count: a(format!("SELECT COUNT(*) FROM {table}")),
            by_source: a(format!(
                "SELECT {COLS} FROM {table} WHERE source = $1 ORDER BY id LIMIT 1"
            )),
            types: a(format!(
                "SELECT dataset_type FROM {table} GROUP BY dataset_type
                 ORDER BY dataset_type COLLATE \"C\""
            )),
            remove: a(format!("DELETE FROM {table} WHERE id = $1")),
            prov_delete: a(format!(
                "DELETE FROM {prov} WHERE dataset_type = $1 AND data_id = $2"
            )),
            prov_insert: a(format!(
                "INSERT INTO {prov} (dataset_type, data_id, input_type, input_id)
                 SELECT $1, $2, t, i FROM UNNEST($3::text[], $4::text[]) AS u(t, i)
                 ON CONFLICT DO NOTHING"
            )),
            prov_select: a(format!(
                "SELECT input_type, input_id FROM {prov} WHERE dataset_type = $1 AND data_id = $2
                 ORDER BY input_type COLLATE \"C\", input_id COLLATE \"C\""
            )),
        }
    }
}

/// The PostgreSQL file registry of one repository, for repositories shared
/// by many nodes.
///
/// One table, `datasets`, in the repository's own schema. Every lookup is
/// one indexed `SELECT` (no cache), so a `find` sees every row another node
/// has committed; every write is one upsert statement (a transaction when a
/// large batch takes several), retried after a deadlock or serialization
/// failure.
///
/// It holds one connection (the butler serialises registry calls; a pool's
/// checkout costs more than the query on a current-thread runtime), run on
/// a private current-thread tokio runtime so that the API is synchronous. A
/// connection found dead is reopened once and the operation repeated (every
/// operation is one statement or one transaction, and idempotent).
pub struct PgFileRegistry {
    conn: RefCell<Option<PgConnection>>,
    link: PgLink,
    root: PathBuf,
    schema: String,
    described: String,
    sql: Sql,
}

impl std::fmt::Debug for PgFileRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFileRegistry")
            .field("registry", &self.described)
            .field("root", &self.root)
            .finish()
    }
}

impl Drop for PgFileRegistry {
    fn drop(&mut self) {
        // Close the connection politely when we may block here.
        if let Some(c) = self.conn.get_mut().take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = self.link.run(c.close());
            }
        }
    }
}

/// The row's data id (column 2), or a decode error carrying
/// [`CorruptDataId`] (made a [`ButlerError::CorruptRow`] by
/// `PgFileRegistry::err`).
fn row_data_id(r: &PgRow, table: &'static str) -> Result<DataId, sqlx::Error> {
    let id_text: String = r.try_get(2)?;
    let (id, dataset_type, run): (i64, String, String) =
        (r.try_get(0)?, r.try_get(1)?, r.try_get(3)?);
    data_id_of(table, id, &dataset_type, &run, &id_text).map_err(|c| sqlx::Error::ColumnDecode {
        index: "data_id".into(),
        source: Box::new(c),
    })
}

fn row_to_record(r: &PgRow) -> Result<DatasetRecord, sqlx::Error> {
    Ok(DatasetRecord {
        id: r.try_get(0)?,
        dataset_type: r.try_get(1)?,
        data_id: row_data_id(r, "datasets")?,
        run: r.try_get(3)?,
        path: r.try_get(4)?,
        size: r.try_get::<i64, _>(5)? as u64,
        checksum: r.try_get(6)?,
        time_ns: r.try_get(7)?,
        source: r.try_get(8)?,
    })
}

const INTENT_COLS: &str =
    "id, dataset_type, data_id, run, mode, files, checksum, size, owner, time_ns";

fn row_to_intent(r: &PgRow) -> Result<Intent, sqlx::Error> {
    let mode: String = r.try_get(4)?;
    let files: String = r.try_get(5)?;
    Ok(Intent {
        id: r.try_get(0)?,
        dataset_type: r.try_get(1)?,
        data_id: row_data_id(r, "intents")?,
        run: r.try_get(3)?,
        mode: IntentMode::parse(&mode).unwrap_or(IntentMode::New),
        files: Intent::parse_files(&files),
        checksum: r.try_get(6)?,
        size: r.try_get::<i64, _>(7)? as u64,
        owner: r.try_get(8)?,
        time_ns: r.try_get(9)?,
    })
}

/// Does `e` say the connection is gone (worth reconnecting)?
fn connection_lost(e: &sqlx::Error) -> bool {
    daf_storages::db::is_connection_lost(e)
}

/// Is `e` a deadlock or serialization failure (worth retrying)?
fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40P01") | Some("40001")),
        _ => false,
    }
}

/// Row ids by (dataset type, canonical data id, run).
type RowIds = HashMap<(String, String, String), i64>;

/// One batch of unique rows, as the eight bound arrays of the upsert.
#[derive(Default)]
struct Columns<'a> {
    dataset_type: Vec<&'a str>,
    data_id: Vec<&'a str>,
    run: Vec<&'a str>,
    path: Vec<&'a str>,
    size: Vec<i64>,
    checksum: Vec<&'a str>,
    time_ns: Vec<i64>,
    source: Vec<Option<&'a str>>,
}

impl PgFileRegistry {
    /// Connects to the registry at `loc` for the repository at `root`,
    /// creating the schema and table if `create` (without it, a registry
    /// whose table does not exist yet gives `Ok(None)`).
    ///
    /// Credentials: the first entry of `auth` for the URL's host and port
    /// (when the URL names no user or the same user), else what libpq's
    /// environment gives (`PGUSER`, `PGPASSWORD`, `~/.pgpass`).
    pub fn connect(
        loc: &PgLocation,
        root: &Path,
        auth: &DbAuth,
        create: bool,
    ) -> Result<Option<PgFileRegistry>, ButlerError> {
        let schema = loc.schema.clone().ok_or_else(|| {
            ButlerError::registry(
                redact_url(&loc.url),
                "no schema given for the repository's rows (registrySchema)",
            )
        })?;
        let described = format!("{} (schema {schema})", redact_url(&loc.url));
        let link = PgLink::new(&loc.url, auth)
            .map_err(|e| ButlerError::registry_source(&described, "bad registry location", e))?
            .application_name("daf-butler");
        let conn = link
            .connect()
            .map_err(|e| ButlerError::registry_source(&described, "cannot connect", e))?;
        let table = format!("\"{schema}\".\"datasets\"");
        let prov = format!("\"{schema}\".\"provenance\"");
        let reg = PgFileRegistry {
            conn: RefCell::new(Some(conn)),
            link,
            root: root.to_path_buf(),
            sql: Sql::new(&table, &prov),
            schema,
            described,
        };
        if !reg.table_exists()? {
            if !create {
                return Ok(None);
            }
            reg.create_table()?;
        } else if create {
            reg.ensure_intents()?;
        }
        Ok(Some(reg))
    }

    /// The qualified `intents` table.
    fn intents_table(&self) -> String {
        format!("\"{}\".\"intents\"", self.schema)
    }

    /// The schema holding this repository's table.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the repository's schema and everything in it (its registry
    /// rows; the files stay). For tests and for deleting a repository.
    pub fn drop_schema(&self) -> Result<(), ButlerError> {
        let sql: Arc<str> = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema).into();
        self.run(async |c| {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut *c)
                .await
        })
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Runs `op` on the connection, reopening it (once) if it was lost.
    fn run<T>(
        &self,
        mut op: impl AsyncFnMut(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut slot = self.conn.borrow_mut();
        let mut reconnected = false;
        loop {
            if slot.is_none() {
                *slot = Some(self.link.open()?);
            }
            let conn = slot.as_mut().expect("connection opened above");
            match self.link.block_on(op(conn)) {
                Err(e) if !reconnected && connection_lost(&e) => {
                    tracing::warn!(registry = %self.described, error = %e, "reconnecting");
                    *slot = None;
                    reconnected = true;
                }
                other => return other,
            }
        }
    }

    /// A driver error, kept as the source (the message scrubbed of the
    /// password); a corrupt `data_id` is [`ButlerError::CorruptRow`].
    fn err(&self, e: sqlx::Error) -> ButlerError {
        if let sqlx::Error::ColumnDecode { source, .. } | sqlx::Error::Decode(source) = &e {
            if let Some(c) = source.downcast_ref::<CorruptDataId>() {
                return c.to_error(&self.described);
            }
        }
        ButlerError::Registry {
            registry: self.described.clone(),
            message: self.link.scrub(e.to_string()),
            source: Some(Box::new(e)),
        }
    }

    /// A driver error with what was being done.
    fn err_doing(&self, doing: &str, e: sqlx::Error) -> ButlerError {
        ButlerError::Registry {
            registry: self.described.clone(),
            message: self.link.scrub(format!("{doing}: {e}")),
            source: Some(Box::new(e)),
        }
    }

    /// A registry error without a driver error.
    fn msg(&self, m: impl Into<String>) -> ButlerError {
        ButlerError::registry(self.described.clone(), m)
    }

    fn table_exists(&self) -> Result<bool, ButlerError> {
        let table = format!("\"{}\".\"datasets\"", self.schema);
        self.run(async |c| {
            sqlx::query("SELECT to_regclass($1) IS NOT NULL")
                .bind(&table)
                .fetch_one(&mut *c)
                .await?
                .try_get::<bool, _>(0)
        })
        .map_err(|e| self.err(e))
    }

    /// The DDL of the `intents` table (pending puts).
    fn intents_ddl(&self) -> String {
        let s = &self.schema;
        format!(
            "CREATE TABLE IF NOT EXISTS \"{s}\".\"intents\" (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 dataset_type TEXT NOT NULL,
                 data_id TEXT NOT NULL,
                 run TEXT NOT NULL,
                 mode TEXT NOT NULL,
                 files TEXT NOT NULL,
                 checksum TEXT NOT NULL,
                 size BIGINT NOT NULL,
                 owner TEXT NOT NULL,
                 time_ns BIGINT NOT NULL,
                 UNIQUE (dataset_type, data_id, run)
             );"
        )
    }

    /// Adds the `intents` table to a registry made before it existed.
    fn ensure_intents(&self) -> Result<(), ButlerError> {
        let table = format!("\"{}\".\"intents\"", self.schema);
        let exists = self
            .run(async |c| {
                sqlx::query("SELECT to_regclass($1) IS NOT NULL")
                    .bind(&table)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get::<bool, _>(0)
            })
            .map_err(|e| self.err(e))?;
        if exists {
            return Ok(());
        }
        let ddl: Arc<str> = self.intents_ddl().into();
        self.run(async |c| {
            let mut tx = c.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(DDL_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(AssertSqlSafe(ddl.clone()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .map_err(|e| self.err_doing("cannot create the intents table", e))
    }

    fn create_table(&self) -> Result<(), ButlerError> {
        let s = &self.schema;
        let intents = self.intents_ddl();
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{s}\";
             CREATE TABLE IF NOT EXISTS \"{s}\".\"datasets\" (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 dataset_type TEXT NOT NULL,
                 data_id TEXT NOT NULL,
                 run TEXT NOT NULL DEFAULT '',
                 path TEXT NOT NULL,
                 size BIGINT NOT NULL,
                 checksum TEXT NOT NULL,
                 time_ns BIGINT NOT NULL,
                 source TEXT,
                 UNIQUE (dataset_type, data_id, run)
             );
             CREATE INDEX IF NOT EXISTS \"ix_datasets_source\" ON \"{s}\".\"datasets\" (source);
             CREATE INDEX IF NOT EXISTS \"ix_datasets_path\" ON \"{s}\".\"datasets\" (path);
             CREATE INDEX IF NOT EXISTS \"ix_datasets_data_id\" ON \"{s}\".\"datasets\"
                 USING GIN ((data_id::jsonb) jsonb_path_ops) WITH (fastupdate = off);
             {intents}
             CREATE TABLE IF NOT EXISTS \"{s}\".\"provenance\" (
                 dataset_type TEXT NOT NULL,
                 data_id TEXT NOT NULL,
                 input_type TEXT NOT NULL,
                 input_id TEXT NOT NULL,
                 PRIMARY KEY (dataset_type, data_id, input_type, input_id)
             );"
        );
        let ddl: Arc<str> = ddl.into();
        self.run(async |c| {
            let mut tx = c.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(DDL_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(AssertSqlSafe(ddl.clone()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .map_err(|e| self.err_doing("cannot create the registry table", e))
    }

    /// Upserts `chunks` (unique keys), in one transaction when there are
    /// several; returns (key → row id).
    async fn upsert(
        &self,
        conn: &mut PgConnection,
        chunks: &[Columns<'_>],
    ) -> Result<RowIds, sqlx::Error> {
        let mut ids = RowIds::new();
        if let [one] = chunks {
            self.upsert_chunk(one, conn, &mut ids).await?;
        } else {
            let mut tx = conn.begin().await?;
            for c in chunks {
                self.upsert_chunk(c, &mut tx, &mut ids).await?;
            }
            tx.commit().await?;
        }
        Ok(ids)
    }

    async fn upsert_chunk(
        &self,
        c: &Columns<'_>,
        conn: &mut sqlx::PgConnection,
        ids: &mut RowIds,
    ) -> Result<(), sqlx::Error> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.upsert.clone()))
            .bind(&c.dataset_type)
            .bind(&c.data_id)
            .bind(&c.run)
            .bind(&c.path)
            .bind(&c.size)
            .bind(&c.checksum)
            .bind(&c.time_ns)
            .bind(&c.source)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            ids.insert((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?), r.try_get(0)?);
        }
        Ok(())
    }
}

impl DatasetRegistry for PgFileRegistry {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn insert_many(&mut self, recs: &[DatasetRecord]) -> Result<Vec<i64>, ButlerError> {
        self.settle(recs, &[])
    }

    fn claim(&mut self, intents: &[Intent]) -> Result<Vec<Claim>, ButlerError> {
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = intents
            .iter()
            .map(|i| canonical_data_id(&i.data_id))
            .collect();
        let files: Vec<String> = intents.iter().map(Intent::files_json).collect();
        // Claims go in key order so that concurrent batches wait for each
        // other in one order (no deadlock).
        let mut order: Vec<usize> = (0..intents.len()).collect();
        order.sort_by(|&a, &b| {
            (&intents[a].dataset_type, &keys[a], &intents[a].run).cmp(&(
                &intents[b].dataset_type,
                &keys[b],
                &intents[b].run,
            ))
        });
        let t = &self.intents_table();
        let ins: Arc<str> = format!(
            "INSERT INTO {t} (dataset_type, data_id, run, mode, files, checksum, size, owner, time_ns)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (dataset_type, data_id, run) DO NOTHING RETURNING id"
        )
        .into();
        let holder: Arc<str> = format!(
            "SELECT {INTENT_COLS} FROM {t} WHERE dataset_type = $1 AND data_id = $2 AND run = $3"
        )
        .into();
        let mut tries = 0;
        loop {
            let r = self.run(async |c| {
                let mut tx = c.begin().await?;
                let mut out: Vec<Option<Claim>> = vec![None; intents.len()];
                for &i in &order {
                    let it = &intents[i];
                    // A holder that settles between our insert and our look
                    // at it is gone: try again (a few times).
                    let mut claim = None;
                    for _ in 0..100 {
                        let id: Option<i64> = sqlx::query(AssertSqlSafe(ins.clone()))
                            .bind(&it.dataset_type)
                            .bind(&keys[i])
                            .bind(&it.run)
                            .bind(it.mode.as_str())
                            .bind(&files[i])
                            .bind(&it.checksum)
                            .bind(it.size as i64)
                            .bind(&it.owner)
                            .bind(it.time_ns)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get(0))
                            .transpose()?;
                        if let Some(intent) = id {
                            // A fresh statement: under READ COMMITTED it sees
                            // every row committed before the claim.
                            let existing = sqlx::query(AssertSqlSafe(self.sql.find_run.clone()))
                                .bind(&it.dataset_type)
                                .bind(&keys[i])
                                .bind(&it.run)
                                .fetch_optional(&mut *tx)
                                .await?
                                .map(|r| row_to_record(&r))
                                .transpose()?;
                            claim = Some(Claim::Claimed { intent, existing });
                            break;
                        }
                        let h = sqlx::query(AssertSqlSafe(holder.clone()))
                            .bind(&it.dataset_type)
                            .bind(&keys[i])
                            .bind(&it.run)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if let Some(h) = h {
                            claim = Some(Claim::Busy(row_to_intent(&h)?));
                            break;
                        }
                    }
                    out[i] = Some(claim.ok_or_else(|| {
                        sqlx::Error::Protocol("an intent kept changing hands".into())
                    })?);
                }
                tx.commit().await?;
                Ok(out
                    .into_iter()
                    .map(|c| c.expect("every claim answered"))
                    .collect())
            });
            match r {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && tries + 1 < WRITE_TRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5 << tries.min(6)));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    fn settle(&mut self, recs: &[DatasetRecord], done: &[i64]) -> Result<Vec<i64>, ButlerError> {
        if recs.is_empty() && done.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<(String, String, String)> = recs
            .iter()
            .map(|r| {
                (
                    r.dataset_type.clone(),
                    canonical_data_id(&r.data_id),
                    r.run.clone(),
                )
            })
            .collect();
        // The last row of each key wins (as if inserted one by one); rows go
        // in key order so that concurrent batches lock rows in one order.
        let mut last: HashMap<&(String, String, String), usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            last.insert(k, i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let chunks: Vec<Columns<'_>> = order
            .chunks(CHUNK)
            .map(|part| {
                let mut c = Columns::default();
                for &i in part {
                    let (r, k) = (&recs[i], &keys[i]);
                    c.dataset_type.push(&k.0);
                    c.data_id.push(&k.1);
                    c.run.push(&k.2);
                    c.path.push(&r.path);
                    c.size.push(r.size as i64);
                    c.checksum.push(&r.checksum);
                    c.time_ns.push(r.time_ns);
                    c.source.push(r.source.as_deref());
                }
                c
            })
            .collect();
        let del: Arc<str> =
            format!("DELETE FROM {} WHERE id = ANY($1)", self.intents_table()).into();
        let mut tries = 0;
        let ids = loop {
            let r = if done.is_empty() {
                self.run(async |c| self.upsert(c, &chunks).await)
            } else {
                self.run(async |c| {
                    let mut tx = c.begin().await?;
                    let mut ids = RowIds::new();
                    for ch in &chunks {
                        self.upsert_chunk(ch, &mut tx, &mut ids).await?;
                    }
                    sqlx::query(AssertSqlSafe(del.clone()))
                        .bind(done)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(ids)
                })
            };
            match r {
                Ok(ids) => break ids,
                Err(e) if retryable(&e) && tries + 1 < WRITE_TRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5 << tries.min(6)));
                }
                Err(e) => return Err(self.err(e)),
            }
        };
        keys.iter()
            .map(|k| {
                ids.get(k)
                    .copied()
                    .ok_or_else(|| self.msg(format!("the upsert returned no id for {k:?}")))
            })
            .collect()
    }

    fn discard(&mut self, rows: &[i64], done: &[i64]) -> Result<(), ButlerError> {
        if rows.is_empty() && done.is_empty() {
            return Ok(());
        }
        let del_rows: Arc<str> = self.sql.remove.replace("id = $1", "id = ANY($1)").into();
        let del_intents: Arc<str> =
            format!("DELETE FROM {} WHERE id = ANY($1)", self.intents_table()).into();
        let mut tries = 0;
        loop {
            let r = self.run(async |c| {
                let mut tx = c.begin().await?;
                sqlx::query(AssertSqlSafe(del_rows.clone()))
                    .bind(rows)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(AssertSqlSafe(del_intents.clone()))
                    .bind(done)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            });
            match r {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) && tries + 1 < WRITE_TRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5 << tries.min(6)));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    fn release(&mut self, ids: &[i64]) -> Result<(), ButlerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let del: Arc<str> =
            format!("DELETE FROM {} WHERE id = ANY($1)", self.intents_table()).into();
        self.run(async |c| {
            sqlx::query(AssertSqlSafe(del.clone()))
                .bind(ids)
                .execute(&mut *c)
                .await
        })
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn take_over(&mut self, id: i64, from: &str, to: &str) -> Result<bool, ButlerError> {
        let q: Arc<str> = format!(
            "UPDATE {} SET owner = $3 WHERE id = $1 AND owner = $2",
            self.intents_table()
        )
        .into();
        let n = self
            .run(async |c| {
                sqlx::query(AssertSqlSafe(q.clone()))
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .execute(&mut *c)
                    .await
            })
            .map_err(|e| self.err(e))?;
        Ok(n.rows_affected() == 1)
    }

    fn intents(&self) -> Result<Vec<Intent>, ButlerError> {
        let q: Arc<str> = format!(
            "SELECT {INTENT_COLS} FROM {} ORDER BY id",
            self.intents_table()
        )
        .into();
        self.run(async |c| {
            let rows = sqlx::query(AssertSqlSafe(q.clone()))
                .fetch_all(&mut *c)
                .await?;
            rows.iter()
                .map(row_to_intent)
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| self.err(e))
    }

    fn remove(&mut self, id: i64) -> Result<(), ButlerError> {
        self.run(async |c| {
            sqlx::query(AssertSqlSafe(self.sql.remove.clone()))
                .bind(id)
                .execute(&mut *c)
                .await
        })
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn find(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Option<std::sync::Arc<DatasetRecord>>, ButlerError> {
        let key = canonical_data_id(data_id);
        self.run(async |c| {
            let row = match run {
                Some(run) => {
                    sqlx::query(AssertSqlSafe(self.sql.find_run.clone()))
                        .bind(dataset_type)
                        .bind(&key)
                        .bind(run)
                        .fetch_optional(&mut *c)
                        .await?
                }
                None => {
                    sqlx::query(AssertSqlSafe(self.sql.find_newest.clone()))
                        .bind(dataset_type)
                        .bind(&key)
                        .fetch_optional(&mut *c)
                        .await?
                }
            };
            row.as_ref().map(row_to_record).transpose()
        })
        .map(|r| r.map(std::sync::Arc::new))
        .map_err(|e| self.err(e))
    }

    fn find_matching(
        &self,
        dataset_type: Option<&str>,
        partial: &DataId,
        run: Option<&str>,
    ) -> Result<Vec<DatasetRecord>, ButlerError> {
        // The server narrows by JSON containment (numbers compare
        // numerically, as `matches_partial` does); the exact rule is then
        // applied here.
        let contains = (!partial.is_empty()).then(|| canonical_data_id(partial));
        let rows = self
            // Not cached prepared statements: the server plans each with
            // the values bound and the table's size now (a generic plan
            // made while the table was small would stay a scan).
            .run(async |c| match contains.as_deref() {
                Some(json) => {
                    sqlx::query(AssertSqlSafe(self.sql.matching_contains.clone()))
                        .persistent(false)
                        .bind(dataset_type)
                        .bind(run)
                        .bind(json)
                        .fetch_all(&mut *c)
                        .await
                }
                None => {
                    sqlx::query(AssertSqlSafe(self.sql.matching_all.clone()))
                        .persistent(false)
                        .bind(dataset_type)
                        .bind(run)
                        .fetch_all(&mut *c)
                        .await
                }
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let rec = row_to_record(r).map_err(|e| self.err(e))?;
            if matches_partial(&rec.data_id, partial) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn count(&self) -> Result<usize, ButlerError> {
        self.run(async |c| {
            sqlx::query(AssertSqlSafe(self.sql.count.clone()))
                .fetch_one(&mut *c)
                .await?
                .try_get::<i64, _>(0)
        })
        .map(|n| n as usize)
        .map_err(|e| self.err(e))
    }

    fn find_by_source(&self, source: &str) -> Result<Option<DatasetRecord>, ButlerError> {
        self.run(async |c| {
            let row = sqlx::query(AssertSqlSafe(self.sql.by_source.clone()))
                .bind(source)
                .fetch_optional(&mut *c)
                .await?;
            row.as_ref().map(row_to_record).transpose()
        })
        .map_err(|e| self.err(e))
    }

    fn record_provenance(
        &mut self,
        dataset_type: &str,
        data_id: &DataId,
        inputs: &[(String, DataId)],
    ) -> Result<(), ButlerError> {
        let id = canonical_data_id(data_id);
        let types: Vec<&str> = inputs.iter().map(|(t, _)| t.as_str()).collect();
        let ids: Vec<String> = inputs.iter().map(|(_, i)| canonical_data_id(i)).collect();
        self.run(async |c| {
            let mut tx = c.begin().await?;
            sqlx::query(AssertSqlSafe(self.sql.prov_delete.clone()))
                .bind(dataset_type)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(AssertSqlSafe(self.sql.prov_insert.clone()))
                .bind(dataset_type)
                .bind(&id)
                .bind(&types)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .map_err(|e| self.err(e))
    }

    fn provenance(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<Vec<(String, DataId)>, ButlerError> {
        let id = canonical_data_id(data_id);
        let rows = self
            .run(async |c| {
                sqlx::query(AssertSqlSafe(self.sql.prov_select.clone()))
                    .bind(dataset_type)
                    .bind(&id)
                    .fetch_all(&mut *c)
                    .await
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let t: String = r.try_get(0).map_err(|e| self.err(e))?;
            let text: String = r.try_get(1).map_err(|e| self.err(e))?;
            let id = parse_data_id(&text)
                .ok_or_else(|| self.msg(format!("provenance row has a bad data id {text:?}")))?;
            out.push((t, id));
        }
        Ok(out)
    }

    fn dataset_types(&self) -> Result<Vec<String>, ButlerError> {
        let rows = self
            .run(async |c| {
                sqlx::query(AssertSqlSafe(self.sql.types.clone()))
                    .fetch_all(&mut *c)
                    .await
            })
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_reopened() {
        let url = daf_base::testing::server_url("DAF_TEST_POSTGRES_URL");
        if url.is_none() {
            return;
        }
        let schema = format!("daf_t_reconnect_{}", std::process::id());
        let loc = PgLocation::parse(&url.unwrap_or_default(), Some(&schema)).unwrap();
        let here = std::env::temp_dir();
        let a = PgFileRegistry::connect(&loc, &here, &DbAuth::new(), true)
            .unwrap()
            .unwrap();
        let b = PgFileRegistry::connect(&loc, &here, &DbAuth::new(), true)
            .unwrap()
            .unwrap();
        let pid = |r: &PgFileRegistry| {
            r.run(async |c| {
                sqlx::query("SELECT pg_backend_pid()")
                    .fetch_one(&mut *c)
                    .await?
                    .try_get::<i32, _>(0)
            })
            .unwrap()
        };
        let before = pid(&a);
        let killed = b
            .run(async |c| {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(before)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get::<bool, _>(0)
            })
            .unwrap();
        assert!(killed);
        std::thread::sleep(Duration::from_millis(100));
        let result = a.count();
        let after = pid(&a);
        b.drop_schema().unwrap();
        assert_eq!(result.unwrap(), 0);
        assert_ne!(before, after);
    }

    #[test]
    fn locations_parse_and_refuse() {
        let l = PgLocation::parse("postgresql://127.0.0.1:5432/test", Some("s1")).unwrap();
        assert_eq!(l.url, "postgresql://127.0.0.1:5432/test");
        assert_eq!(l.schema.as_deref(), Some("s1"));
        assert_eq!(PgLink::check_location(&l.url).unwrap().1, None);
        let l = PgLocation::parse("postgres://bob@h/db?sslmode=disable&schema=x_2", None).unwrap();
        assert_eq!(l.url, "postgres://bob@h/db?sslmode=disable");
        assert_eq!(l.schema.as_deref(), Some("x_2"));
        assert_eq!(
            PgLink::check_location(&l.url).unwrap().1.as_deref(),
            Some("bob")
        );
        // Options the connection layer does not know are refused here, not
        // at the first connection.
        let e = PgLocation::parse("postgresql://h/db?application_name=x", Some("s")).unwrap_err();
        assert!(e.contains("unknown option"), "{e}");
        for (bad, what) in [
            ("mysql://h/db", "unsupported scheme"),
            ("postgresql://h:5432", "name the database"),
            ("postgresql://h/db?schema=a", "given separately"),
            ("postgresql://h/db?schema=1x", "letters, digits"),
            ("postgresql://h/db?schema=a;drop", "letters, digits"),
            ("postgresql://bob:pa/ss@h/db", "password"),
            ("nothing", "expected postgresql://"),
        ] {
            let other = bad.ends_with("schema=a").then_some("b");
            let e = PgLocation::parse(bad, other).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
            assert!(!e.contains("pa/ss"), "{e}");
        }
        let g = PgLocation::generated_schema(Path::new("/data/repo"));
        assert!(g.starts_with("daf_") && g.len() == 16, "{g}");
        assert!(validate_identifier(&g).is_ok());
    }
}
