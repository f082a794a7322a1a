//! [`DbError`]: what can go wrong in the database storages.

use std::path::PathBuf;

use thiserror::Error;

/// Errors of the database storages. No variant ever carries a password.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DbError {
    /// A location that is not a supported database URL.
    #[error("bad database location {location:?}: {reason}")]
    BadLocation {
        /// The location (with any user information redacted).
        location: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A table or column name that is not a plain identifier.
    #[error("bad SQL identifier {name:?}: {reason}")]
    BadIdentifier {
        /// The refused name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// An auth file that could not be used.
    #[error("database auth file {path}: {reason}")]
    AuthFile {
        /// The file or folder.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// No credentials for a server.
    #[error("no database credentials for {host}:{port}")]
    NoCredentials {
        /// The server host.
        host: String,
        /// The server port.
        port: u16,
    },
    /// Connecting to a server failed.
    #[error("cannot connect to {backend} server {host}:{port}: {message}")]
    Connect {
        /// `PostgreSQL`, `MySQL`.
        backend: String,
        /// The server host.
        host: String,
        /// The server port.
        port: u16,
        /// The driver's message.
        message: String,
        /// The driver's error (a `sqlx::Error` or `mysql::Error`).
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// Opening an SQLite database failed.
    #[error("cannot open SQLite database {path}: {message}")]
    Open {
        /// The database file.
        path: String,
        /// The driver's message.
        message: String,
        /// The driver's error (a `rusqlite::Error`).
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// A column read as a type its value cannot be converted to.
    #[error("column {column} holds {actual}, which cannot be read as {expected}")]
    WrongType {
        /// The column (name or position).
        column: String,
        /// The type asked for.
        expected: &'static str,
        /// What the column holds.
        actual: String,
    },
    /// A column position past the end of the result row.
    #[error("column position {pos} out of range: the query returns {count} columns")]
    NoSuchColumn {
        /// The position asked for.
        pos: usize,
        /// The number of columns.
        count: usize,
    },
    /// A row missing a column the table's earlier rows set.
    #[error(
        "row for table {table} does not set column {column} (set it, or call set_column_to_null)"
    )]
    MissingColumn {
        /// The table.
        table: String,
        /// The column not set.
        column: String,
    },
    /// A row setting a column that the table's earlier rows did not set.
    #[error("row for table {table} sets column {column}, which earlier rows did not set")]
    UnexpectedColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A `:name` placeholder without a value, or a value without a placeholder.
    #[error("query parameter :{name}: {reason}")]
    Param {
        /// The parameter name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Calls in the wrong order (insert without a table, read without a row ...).
    #[error("{0}")]
    State(String),
    /// A table that exists although it should not (or the other way round).
    #[error("table {table} {reason}")]
    Table {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// An error reported by the database.
    #[error("{backend} error{}: {message}", if sql.is_empty() { String::new() } else { format!(" in `{sql}`") })]
    Sql {
        /// `SQLite`, `PostgreSQL`, `MySQL`.
        backend: &'static str,
        /// The statement (without values: they are bound, never spliced).
        sql: String,
        /// The database's message.
        message: String,
        /// The driver's error (`rusqlite::Error`, `sqlx::Error` or
        /// `mysql::Error`), when the failure came from the driver.
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// The connection to the server broke (killed, server restarted,
    /// network gone, or no answer within `statement_timeout`). The server
    /// rolls back the transaction that was open on it; the storage
    /// reconnects at its next `start_transaction` (or next statement outside
    /// a transaction).
    #[error("connection to {backend} server lost: {message}; any open transaction was rolled back by the server, and the storage reconnects at the next transaction")]
    ConnectionLost {
        /// `PostgreSQL`, `MySQL`.
        backend: &'static str,
        /// What the driver saw.
        message: String,
        /// The driver's error, when there is one.
        #[source]
        source: Option<daf_base::BoxError>,
    },
    /// A statement failed inside the transaction, so the transaction is
    /// doomed on every backend: later statements are refused and
    /// `end_transaction` rolls it back instead of committing.
    #[error("{backend} transaction not committed: a statement in it failed ({cause}); the whole transaction was rolled back")]
    TransactionAborted {
        /// `SQLite`, `PostgreSQL`, `MySQL`.
        backend: &'static str,
        /// The first failure in the transaction.
        cause: String,
    },
    /// A temporary TSV file could not be written or read.
    #[error("TSV file {path}: {message}")]
    Tsv {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
        /// The I/O error, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
}

/// Checks that row `i` of an `insert_rows` into `table` has `columns` values.
pub(crate) fn check_row_len(
    table: &str,
    i: usize,
    row: &[super::DbValue],
    columns: usize,
) -> Result<(), DbError> {
    if row.len() == columns {
        Ok(())
    } else {
        Err(DbError::State(format!(
            "insert_rows into {table}: row {i} has {} values for {columns} columns",
            row.len()
        )))
    }
}
