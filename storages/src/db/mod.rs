//! Database storages: [`DbStorage`] (row-by-row inserts and queries) and
//! [`DbTsvStorage`] (rows buffered to a TSV file, bulk-loaded at commit),
//! on SQLite (embedded, through rusqlite), PostgreSQL and MariaDB/MySQL
//! (through sqlx, each storage owning a private current-thread tokio runtime
//! — for PostgreSQL inside its [`PgLink`], the one connection layer the
//! registries use too;
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
//! and portable across the three backends); MariaDB/MySQL `DATETIME`
//! columns are read and (by [`DbStorage`]) written as UTC instants too.
//!
//! Server locations take options:
//! `postgresql://host:port/db?sslmode=require&connect_timeout=5&statement_timeout=60`
//! (see [`ConnOptions`]).
//!
//! # Transactions
//! A statement that fails inside a transaction dooms it, on every backend
//! (PostgreSQL's own rule): later statements are refused and
//! `end_transaction` rolls back and returns [`DbError::TransactionAborted`].
//! A lost connection is [`DbError::ConnectionLost`]; the storage reconnects
//! at the next transaction. [`DbTsvStorage`] on MariaDB/MySQL loads and
//! commits in the one transaction of its bulk-load connection.
//!
//! # Float policy
//! Non-finite floats are stored natively where the backend has them
//! (PostgreSQL: NaN, ±inf; SQLite: ±inf) and as NULL where it does not
//! (SQLite: NaN; MariaDB/MySQL: NaN, ±inf); a NULL read as `f32`/`f64` is
//! NaN ([`DbStorage::column_is_null`] still tells NULL). NaN therefore
//! round-trips everywhere, ±inf reads back as NaN on MariaDB/MySQL, and
//! −0.0 keeps its sign on PostgreSQL only (SQLite and MariaDB give +0.0).
//!
//! # Case policy
//! Names are case-insensitive, as unquoted SQL names are: for PostgreSQL
//! daf folds them to lower case (what PostgreSQL does to unquoted names);
//! SQLite and MariaDB/MySQL compare column names regardless of case. Result
//! columns keep the spelling given to [`DbStorage::out_column`]. MariaDB
//! table names remain case-sensitive on Linux.

mod auth;
mod conn;
mod error;
mod ident;
mod pool;
mod storage;
mod tsv;
mod url;
mod value;

pub use auth::{AuthEntry, DbAuth};
pub use error::DbError;
pub use ident::{quote_ident, validate_ident};
pub use pool::{is_connection_lost, PgLink};
pub use storage::DbStorage;
pub use tsv::{BulkLoad, BulkMethod, DbTsvStorage};
pub use url::{Backend, ConnOptions, DbUrl, SslMode, DEFAULT_CONNECT_TIMEOUT};
pub use value::{DbKind, DbValue, FromDbValue, ToDbValue};
