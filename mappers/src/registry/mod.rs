//! Dataset registries: one small [`Registry`] trait, three backends.
//!
//! * [`SqliteRegistry`] — the embedded default (`registry.sqlite3`), WAL and a
//!   busy timeout when written.
//! * [`PgRegistry`] — PostgreSQL through sqlx, for repositories shared by many
//!   nodes.
//! * [`PosixRegistry`] — no database: globs a path template and parses the
//!   paths back into data ids (filling keys from FITS headers when the
//!   template ends in `[%(hdu)d]`).
//!
//! Every backend passes the same `conformance` suite (with the `testing`
//! feature). SQL is only ever built from identifiers that pass [`validate_identifier`]; values are bound.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod posix;
mod postgres;
mod sqlite;

use std::path::Path;

use daf_base::{DataId, DataIdValue};

pub use posix::PosixRegistry;
pub use postgres::PgRegistry;
pub use sqlite::{open_sqlite_read_only, ReadOnlyOpenError, SqliteRegistry};

use crate::MapperError;

/// `url` without its password, for messages: `scheme://user:secret@host/db`
/// becomes `scheme://user@host/db`. Shared by every component that connects
/// to a database server by URL (this crate's [`PgRegistry`], the butler's
/// PostgreSQL file registry).
///
/// ```
/// use daf_mappers::registry::redact_url;
/// assert_eq!(redact_url("postgresql://bob:s3cret@db:5432/x"), "postgresql://bob@db:5432/x");
/// assert_eq!(redact_url("postgresql://bob:a/b@c@db/x"), "postgresql://bob@db/x");
/// assert_eq!(redact_url("postgresql://db:5432/x"), "postgresql://db:5432/x");
/// ```
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        // The last '@' anywhere: a password may hold '/' or '@' unencoded,
        // and cutting too much is safer than echoing a secret.
        if let Some((cred, host)) = rest.rsplit_once('@') {
            let user = cred.split([':', '/']).next().unwrap_or("");
            return format!("{scheme}://{user}@{host}");
        }
    }
    url.to_string()
}

/// One result row: values in the order of the requested properties.
pub type Row = Vec<DataIdValue>;

/// The column type of a registry table created by daf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit integer.
    Int,
    /// Double-precision float.
    Float,
    /// Text.
    Text,
}

/// The calibration validity constraint `obs_time BETWEEN start AND end`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRange {
    /// The observation time (usually the `taiObs` text of the exposure).
    pub obs_time: DataIdValue,
    /// Column holding the start of validity (`validStart`).
    pub start_column: String,
    /// Column holding the end of validity (`validEnd`).
    pub end_column: String,
}

/// A registry query: `SELECT DISTINCT properties FROM tables (natural join)
/// WHERE key = value AND ... [AND obs_time BETWEEN start AND end]`.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// Columns to return, in this order.
    pub properties: &'a [String],
    /// Tables, joined with `NATURAL JOIN` (the first is the main table).
    pub tables: &'a [String],
    /// Equality constraints: every entry is used.
    pub data_id: &'a DataId,
    /// Optional calibration validity range.
    pub valid_range: Option<&'a ValidRange>,
    /// The dataset's path template (only the filesystem registry uses it).
    pub template: Option<&'a str>,
}

/// A source of dataset metadata: answers lookups of data-id keys.
///
/// Rows come back distinct and sorted by the requested properties (a stable
/// order on every backend).
pub trait Registry: Send + Sync {
    /// A short description (path or URL without password) for messages.
    fn describe(&self) -> String;

    /// Runs a lookup.
    fn lookup_query(&self, query: &Lookup<'_>) -> Result<Vec<Row>, MapperError>;

    /// `lookup(properties, tables, partial data id)`: the distinct rows.
    fn lookup(
        &self,
        properties: &[String],
        tables: &[String],
        data_id: &DataId,
    ) -> Result<Vec<Row>, MapperError> {
        self.lookup_query(&Lookup {
            properties,
            tables,
            data_id,
            valid_range: None,
            template: None,
        })
    }

    /// Whether the registry has SQL tables ([`Registry::columns`] answers);
    /// false for the filesystem registry, whose template is its schema.
    fn has_tables(&self) -> bool {
        true
    }

    /// The column names of `table` (error if there is no such table).
    fn columns(&self, table: &str) -> Result<Vec<String>, MapperError>;

    /// Creates `table` with `columns` if absent; `unique` columns get a
    /// unique index and every column an ordinary index.
    fn create_table(
        &self,
        table: &str,
        columns: &[(String, ColumnType)],
        unique: &[String],
    ) -> Result<(), MapperError> {
        let _ = (table, columns, unique);
        Err(self.error("this registry is read-only"))
    }

    /// Inserts `rows` (values in `columns` order) in one transaction.
    fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: &[Row],
    ) -> Result<(), MapperError> {
        let _ = (table, columns, rows);
        Err(self.error("this registry is read-only"))
    }

    /// A [`MapperError::Registry`] naming this registry.
    fn error(&self, message: &str) -> MapperError {
        MapperError::Registry {
            registry: self.describe(),
            message: message.to_string(),
            source: None,
        }
    }
}

/// Checks that `name` is a plain SQL identifier (`[A-Za-z_][A-Za-z0-9_]*`,
/// at most 63 bytes), the only thing daf ever splices into SQL.
///
/// ```
/// use daf_mappers::registry::validate_identifier;
/// assert!(validate_identifier("taiObs").is_ok());
/// assert!(validate_identifier("visit; DROP TABLE raw").is_err());
/// ```
pub fn validate_identifier(name: &str) -> Result<&str, MapperError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(MapperError::Registry {
            registry: "sql".into(),
            message: format!("invalid SQL identifier {name:?}"),
            source: None,
        })
    }
}

/// Builds the SQL text of a lookup. `placeholder(n)` renders the n-th (1-based)
/// bound parameter together with its value (for casts on PostgreSQL).
pub(crate) fn build_select(
    query: &Lookup<'_>,
    qualify: &dyn Fn(&str) -> String,
    placeholder: &dyn Fn(usize, &DataIdValue) -> String,
) -> Result<String, MapperError> {
    if query.properties.is_empty() {
        return Err(MapperError::Registry {
            registry: "sql".into(),
            message: "lookup of no properties".into(),
            source: None,
        });
    }
    if query.tables.is_empty() {
        return Err(MapperError::Registry {
            registry: "sql".into(),
            message: "lookup in no tables".into(),
            source: None,
        });
    }
    let mut sql = String::with_capacity(128);
    sql.push_str("SELECT DISTINCT ");
    for (i, p) in query.properties.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('"');
        sql.push_str(validate_identifier(p)?);
        sql.push('"');
    }
    sql.push_str(" FROM ");
    for (i, t) in query.tables.iter().enumerate() {
        if i > 0 {
            sql.push_str(" NATURAL JOIN ");
        }
        sql.push_str(&qualify(validate_identifier(t)?));
    }
    let mut n = 0;
    for (k, v) in query.data_id.iter() {
        sql.push_str(if n == 0 { " WHERE " } else { " AND " });
        n += 1;
        sql.push('"');
        sql.push_str(validate_identifier(k)?);
        sql.push_str("\" = ");
        sql.push_str(&placeholder(n, v));
    }
    if let Some(r) = query.valid_range {
        sql.push_str(if n == 0 { " WHERE " } else { " AND " });
        n += 1;
        sql.push_str(&placeholder(n, &r.obs_time));
        sql.push_str(" BETWEEN \"");
        sql.push_str(validate_identifier(&r.start_column)?);
        sql.push_str("\" AND \"");
        sql.push_str(validate_identifier(&r.end_column)?);
        sql.push('"');
    }
    // No ORDER BY: SQLite would sort through a temporary b-tree even for the
    // single row of a completion; rows are sorted by [`sort_rows`] instead.
    Ok(sql)
}

/// Column names validated and double-quoted for SQL (`"visit"`).
pub(crate) fn quoted_columns(columns: &[String]) -> Result<Vec<String>, MapperError> {
    columns
        .iter()
        .map(|c| validate_identifier(c).map(|c| format!("\"{c}\"")))
        .collect()
}

/// The SQL of [`Registry::create_table`] for the SQL backends: the table
/// (with an `id` primary key declared as `id_column` unless a column is
/// named `id`), a unique index over `unique` and an index on every column.
/// `table` is the bare name (it names the indexes), `qualified` its SQL form
/// (quoted, with a schema where the backend has one); `type_name` gives the
/// backend's name of each column type.
pub(crate) fn create_table_sql(
    table: &str,
    qualified: &str,
    columns: &[(String, ColumnType)],
    unique: &[String],
    id_column: &str,
    type_name: impl Fn(ColumnType) -> &'static str,
) -> Result<String, MapperError> {
    let t = validate_identifier(table)?;
    let has_id = columns.iter().any(|(c, _)| c == "id");
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {qualified} (");
    if !has_id {
        sql.push_str(id_column);
        sql.push_str(", ");
    }
    for (i, (c, ty)) in columns.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        sql.push_str(&format!(
            "{sep}\"{}\" {}",
            validate_identifier(c)?,
            type_name(*ty)
        ));
    }
    sql.push_str(");");
    if !unique.is_empty() {
        sql.push_str(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"uq_{t}\" ON {qualified} ({});",
            quoted_columns(unique)?.join(", ")
        ));
    }
    for (c, _) in columns {
        sql.push_str(&format!(
            "CREATE INDEX IF NOT EXISTS \"ix_{t}_{c}\" ON {qualified} (\"{c}\");"
        ));
    }
    Ok(sql)
}

/// The error message for a row whose length is not the column count, if so.
pub(crate) fn check_row_len(row: &Row, columns: usize) -> Result<(), String> {
    if row.len() == columns {
        Ok(())
    } else {
        Err(format!(
            "row has {} values for {columns} columns",
            row.len()
        ))
    }
}

/// Sorts rows into the stable order every backend returns (integers and
/// floats by value, before strings; strings bytewise).
pub fn sort_rows(rows: &mut [Row]) {
    if rows.len() > 1 {
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
}

/// Opens the registry at `path` the way a Gen2 repository names it:
/// `*.sqlite3` / `*.sqlite` → SQLite; `*.pgsql` → a YAML file with `host`,
/// `port`, `database`, `user` (and optional `password`) for PostgreSQL; a
/// directory → a filesystem registry rooted there.
pub fn open_registry(path: &Path) -> Result<Box<dyn Registry>, MapperError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "sqlite3" | "sqlite" | "db" => Ok(Box::new(SqliteRegistry::open(path)?)),
        "pgsql" => Ok(Box::new(PgRegistry::from_pgsql_file(
            path,
            &daf_storages::db::DbAuth::new(),
        )?)),
        _ if path.is_dir() => Ok(Box::new(PosixRegistry::new(path))),
        _ => Err(MapperError::Registry {
            registry: path.display().to_string(),
            message: "unknown registry kind (expected .sqlite3, .pgsql or a directory)".into(),
            source: None,
        }),
    }
}
