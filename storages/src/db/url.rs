//! [`DbUrl`]: parsing database locations.

use std::fmt;

use super::error::DbError;

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
}

fn redact(loc: &str) -> String {
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
            });
        }
        let (authority, db) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing /database after host:port"))?;
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
                "postgresql://{}:{}/{}",
                self.host, self.port, self.database
            ),
            Backend::Mysql => write!(f, "mysql://{}:{}/{}", self.host, self.port, self.database),
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
