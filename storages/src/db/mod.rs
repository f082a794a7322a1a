//! Database storages: [`DbStorage`] (row-by-row inserts and queries) and
//! [`DbTsvStorage`] (rows buffered to a TSV file, bulk-loaded at commit),
//! on SQLite (embedded, through rusqlite), PostgreSQL and MariaDB/MySQL
//! (through sqlx, each storage owning a private current-thread tokio runtime;
//! [`DbTsvStorage`]'s MariaDB/MySQL bulk loads go through the `mysql` crate,
//! which speaks the `LOAD DATA LOCAL INFILE` protocol sqlx lacks).
//!
//! Locations are URLs without credentials:
//! `sqlite:///absolute/path.db`, `sqlite::memory:`,
//! `postgresql://host:port/db` and `mysql://host:port/db`. Credentials for the
//! servers come from a [`DbAuth`] value (an auth file, by default
//! `~/.daf/db-auth.yaml`).
//!
//! Identifiers (table and column names) are validated and quoted for the
//! backend before any SQL is built; values are always bound parameters.
//! `DateTime` values are stored as `BIGINT` nanoseconds since 1970 TAI (exact
//! and portable across the three backends).

mod auth;
mod conn;
mod error;
mod ident;
mod storage;
mod tsv;
mod url;
mod value;

pub use auth::{AuthEntry, DbAuth};
pub use error::DbError;
pub use ident::{quote_ident, validate_ident};
pub use storage::DbStorage;
pub use tsv::{BulkLoad, BulkMethod, DbTsvStorage};
pub use url::{Backend, ConnOptions, DbUrl, SslMode, DEFAULT_CONNECT_TIMEOUT};
pub use value::{DbKind, DbValue, FromDbValue, ToDbValue};
