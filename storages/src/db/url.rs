//! [`DbUrl`]: parsing database locations.

use std::fmt;
use std::time::Duration;

use super::error::DbError;

/// TLS for server connections, as libpq's `sslmode` (MariaDB/MySQL map the
/// same names onto their `ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plain (the default, as libpq's).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS with a certificate signed by a trusted root (`sslrootcert`).
    VerifyCa,
    /// As `verify-ca`, and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// The `sslmode=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Connection settings carried by a server location's query string:
/// `?connect_timeout=SECONDS&statement_timeout=SECONDS&sslmode=MODE&sslrootcert=PATH`.
///
/// ```
/// use daf_storages::db::{DbUrl, SslMode};
/// use std::time::Duration;
/// let u = DbUrl::parse("postgresql://h:5432/db?sslmode=require&statement_timeout=2.5").unwrap();
/// assert_eq!(u.options.sslmode, SslMode::Require);
/// assert_eq!(u.options.statement_timeout, Some(Duration::from_millis(2500)));
/// assert_eq!(u.options.connect_timeout, Duration::from_secs(30));
/// assert_eq!(u.to_string(), "postgresql://h:5432/db?sslmode=require&statement_timeout=2.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnOptions {
    /// Longest wait for a connection, TLS and login included (default 30 s;
    /// `connect_timeout=0` waits forever).
    pub connect_timeout: Duration,
    /// Longest wait for one statement's answer (default none). A statement
    /// that times out closes the connection (its transaction is rolled back
    /// by the server); the next transaction reconnects.
    pub statement_timeout: Option<Duration>,
    /// TLS mode (default `prefer`).
    pub sslmode: SslMode,
    /// PEM file of the roots trusted for `verify-ca` / `verify-full`
    /// (default: the system's roots).
    pub sslrootcert: Option<String>,
}

/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: None,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
        }
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", d.as_secs())
    } else {
        format!("{s}")
    }
}

impl ConnOptions {
    fn parse(query: &str) -> Result<ConnOptions, String> {
        let mut o = ConnOptions::default();
        let secs = |k: &str, v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{k}={v:?} is not a number of seconds"))
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("option {pair:?} is not name=value"))?;
            match k {
                "connect_timeout" => o.connect_timeout = secs(k, v)?,
                "statement_timeout" => {
                    let d = secs(k, v)?;
                    o.statement_timeout = (!d.is_zero()).then_some(d);
                }
                "sslmode" => {
                    o.sslmode = match v {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        _ => {
                            return Err(format!(
                                "sslmode={v:?}: use disable, prefer, require, verify-ca or verify-full"
                            ))
                        }
                    }
                }
                "sslrootcert" if !v.is_empty() => o.sslrootcert = Some(v.to_string()),
                _ => {
                    return Err(format!(
                        "unknown option {k:?} (known: connect_timeout, statement_timeout, sslmode, sslrootcert)"
                    ))
                }
            }
        }
        Ok(o)
    }

    fn query_string(&self) -> String {
        let mut parts = Vec::new();
        if self.sslmode != SslMode::Prefer {
            parts.push(format!("sslmode={}", self.sslmode.as_str()));
        }
        if let Some(c) = &self.sslrootcert {
            parts.push(format!("sslrootcert={c}"));
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            parts.push(format!(
                "connect_timeout={}",
                fmt_secs(self.connect_timeout)
            ));
        }
        if let Some(t) = self.statement_timeout {
            parts.push(format!("statement_timeout={}", fmt_secs(t)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// The database server kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite (rusqlite).
    Sqlite,
    /// PostgreSQL (sqlx).
    Postgres,
    /// MySQL or MariaDB (sqlx).
    Mysql,
}

impl Backend {
    /// A display name (`SQLite`, `PostgreSQL`, `MySQL`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MySQL",
        }
    }

    /// The column type this backend uses for a [`super::DbKind`] (for
    /// `CREATE TABLE` statements written by tools and tests).
    pub fn column_type(self, kind: super::DbKind) -> &'static str {
        use super::DbKind as K;
        match (self, kind) {
            (_, K::Bool) => "BOOLEAN",
            (Backend::Postgres, K::I8) => "SMALLINT",
            (_, K::I8) => "TINYINT",
            (_, K::I16) => "SMALLINT",
            (_, K::I32) => "INT",
            (_, K::I64) | (_, K::DateTime) => "BIGINT",
            (Backend::Postgres, K::F32) => "REAL",
            (Backend::Mysql, K::F32) => "FLOAT",
            (Backend::Sqlite, K::F32) => "REAL",
            (_, K::F64) => "DOUBLE PRECISION",
            (_, K::String) => "TEXT",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed database location.
///
/// ```
/// use daf_storages::db::{Backend, DbUrl};
/// let u = DbUrl::parse("postgresql://db.example.org:5433/survey").unwrap();
/// assert_eq!((u.backend, u.host.as_str(), u.port, u.database.as_str()),
///            (Backend::Postgres, "db.example.org", 5433, "survey"));
/// let s = DbUrl::parse("sqlite:///tmp/reg.sqlite3").unwrap();
/// assert_eq!(s.database, "/tmp/reg.sqlite3");
/// assert!(DbUrl::parse("oracle://x/y").unwrap_err().to_string().contains("oracle://x/y"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrl {
    /// The server kind.
    pub backend: Backend,
    /// Host (empty for SQLite).
    pub host: String,
    /// Port (0 for SQLite).
    pub port: u16,
    /// Database name, or for SQLite the file path (`:memory:` for an in-memory database).
    pub database: String,
    /// Timeouts and TLS (servers; SQLite takes none).
    pub options: ConnOptions,
}

pub(crate) fn redact(loc: &str) -> String {
    // Never echo user information (which could hold a password).
    if let Some((scheme, rest)) = loc.split_once("://") {
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    loc.to_string()
}

impl DbUrl {
    /// Parses a location; anything else is [`DbError::BadLocation`] quoting it.
    pub fn parse(loc: &str) -> Result<DbUrl, DbError> {
        let bad = |reason: &str| DbError::BadLocation {
            location: redact(loc),
            reason: reason.to_string(),
        };
        if loc == "sqlite::memory:" || loc == "sqlite://:memory:" {
            return Ok(DbUrl {
                backend: Backend::Sqlite,
                host: String::new(),
                port: 0,
                database: ":memory:".into(),
                options: ConnOptions::default(),
            });
        }
        let (scheme, rest) = loc.split_once("://").ok_or_else(|| {
            bad("expected sqlite:///path, postgresql://host:port/db or mysql://host:port/db")
        })?;
        let backend = match scheme {
            "sqlite" => Backend::Sqlite,
            "postgresql" | "postgres" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::Mysql,
            _ => {
                return Err(bad(&format!(
                    "unsupported scheme {scheme:?} (use sqlite, postgresql or mysql)"
                )))
            }
        };
        if backend == Backend::Sqlite {
            if !rest.starts_with('/') || rest.len() < 2 {
                return Err(bad("SQLite locations are sqlite:///absolute/path"));
            }
            return Ok(DbUrl {
                backend,
                host: String::new(),
                port: 0,
                database: rest.to_string(),
                options: ConnOptions::default(),
            });
        }
        let (authority, db) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing /database after host:port"))?;
        let (db, options) = match db.split_once('?') {
            Some((d, q)) => (d, ConnOptions::parse(q).map_err(|m| bad(&m))?),
            None => (db, ConnOptions::default()),
        };
        if authority.contains('@') {
            return Err(bad(
                "credentials do not belong in the location; put them in the auth file",
            ));
        }
        if db.is_empty() || db.contains(['/', '?', '#']) {
            return Err(bad("missing or malformed database name"));
        }
        let default_port = if backend == Backend::Postgres {
            5432
        } else {
            3306
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad(&format!("port {p:?} is not a number in 1..65535")))?,
            ),
            None => (authority, default_port),
        };
        if host.is_empty() || port == 0 {
            return Err(bad("missing host or port"));
        }
        Ok(DbUrl {
            backend,
            host: host.to_string(),
            port,
            database: db.to_string(),
            options,
        })
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Sqlite if self.database == ":memory:" => f.write_str("sqlite::memory:"),
            Backend::Sqlite => write!(f, "sqlite://{}", self.database),
            Backend::Postgres => write!(
                f,
                "postgresql://{}:{}/{}{}",
                self.host,
                self.port,
                self.database,
                self.options.query_string()
            ),
            Backend::Mysql => write!(
                f,
                "mysql://{}:{}/{}{}",
                self.host,
                self.port,
                self.database,
                self.options.query_string()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let u = DbUrl::parse("mysql://127.0.0.1/test").unwrap();
        assert_eq!(u.port, 3306);
        assert_eq!(u.to_string(), "mysql://127.0.0.1:3306/test");
        for bad in [
            "",
            "sqlite://rel.db",
            "postgresql://h:99999/db",
            "postgresql://h:5432",
            "foo",
        ] {
            let e = DbUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        let e = DbUrl::parse("postgresql://bob:s3cret@h:5432/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
