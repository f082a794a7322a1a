//! The one connection layer of daf's server databases: [`PgLink`].
//!
//! Every PostgreSQL connection daf opens goes through a [`PgLink`]: the
//! database storages ([`super::DbStorage`], [`super::DbTsvStorage`]), the
//! mapper's PostgreSQL registry and the butler's PostgreSQL file registry.
//! A link holds what a connection needs and nothing global:
//!
//! - its own current-thread tokio runtime (created with the link, dropped
//!   with it; no process-wide runtime, no global state),
//! - the credentials ([`DbAuth`], a user in the location, or libpq's
//!   environment `PGUSER` / `PGPASSWORD` / `~/.pgpass`),
//! - the location's options ([`ConnOptions`]): `connect_timeout`,
//!   `statement_timeout`, `sslmode`, `sslrootcert`,
//! - how to name the server in messages without its password, and how to
//!   scrub the password out of a driver's message.
//!
//! Errors keep the driver's error as their `source()`.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::ConnectOptions as _;
use tokio::runtime::Runtime;

use super::auth::DbAuth;
use super::error::DbError;
use super::url::{redact, Backend, ConnOptions, DbUrl, SslMode};

/// Starts a current-thread runtime for one connection object.
pub(crate) fn runtime() -> Result<Runtime, DbError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::State(format!("cannot start the database I/O runtime: {e}")))
}

/// Removes `secret` from a driver message (defence in depth: drivers do not
/// normally echo passwords).
pub(crate) fn scrub(msg: String, secret: &str) -> String {
    if secret.len() >= 3 && msg.contains(secret) {
        msg.replace(secret, "***")
    } else {
        msg
    }
}

/// Waits for `fut` on `rt`, at most `timeout` (then the connection is in an
/// unknown protocol state and is reported lost: an I/O `TimedOut` error).
pub(crate) fn block<T>(
    rt: &Runtime,
    timeout: Option<Duration>,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match timeout {
        None => rt.block_on(fut),
        Some(d) => rt.block_on(async {
            match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {} s (statement_timeout); the connection was closed",
                        d.as_secs_f64()
                    ),
                ))),
            }
        }),
    }
}

/// How to reach one PostgreSQL database: server, credentials, TLS and
/// timeouts, with the runtime that drives its connections.
///
/// ```no_run
/// use daf_storages::db::{DbAuth, PgLink};
/// let mut auth = DbAuth::new();
/// auth.add("db.example.org", 5432, "butler", "s3cret");
/// let link = PgLink::new(
///     "postgresql://db.example.org:5432/survey?sslmode=verify-full&statement_timeout=60",
///     &auth,
/// )
/// .unwrap();
/// assert_eq!(link.url().options.statement_timeout.unwrap().as_secs(), 60);
/// let mut conn = link.connect().unwrap();
/// let one: i32 = link
///     .block_on(sqlx::query_scalar("SELECT 1").fetch_one(&mut conn))
///     .unwrap();
/// ```
pub struct PgLink {
    pub(crate) rt: Runtime,
    opts: PgConnectOptions,
    url: DbUrl,
    user: Option<String>,
    secret: Option<String>,
}

impl std::fmt::Debug for PgLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLink")
            .field("url", &self.described())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl PgLink {
    /// A link to `location`, `postgresql://[user[:password]@]host[:port]/db[?options]`
    /// (options: those of [`ConnOptions`]).
    ///
    /// Credentials, first found wins: a password in the location (legacy
    /// `registry.pgsql` files hold one); the entry of `auth` for the host and
    /// port, when the location names no user or the same user; libpq's
    /// environment (`PGUSER`, `PGPASSWORD`, `~/.pgpass`).
    pub fn new(location: &str, auth: &DbAuth) -> Result<PgLink, DbError> {
        let (url, mut user, mut password) = Self::parse_location(location)?;
        if password.is_none() {
            if let Ok(entry) = auth.lookup(&url.host, url.port) {
                if user.as_deref().is_none_or(|u| u == entry.user) {
                    user = Some(entry.user.clone());
                    password = (!entry.password.is_empty()).then(|| entry.password.clone());
                }
            }
        }
        Self::build(url, user, password)
    }

    /// Checks a location as [`PgLink::new`] takes it, without connecting or
    /// starting anything: the parsed URL (no credentials) and the user named
    /// in it.
    pub fn check_location(location: &str) -> Result<(DbUrl, Option<String>), DbError> {
        Self::parse_location(location).map(|(u, user, _)| (u, user))
    }

    #[allow(clippy::type_complexity)]
    fn parse_location(location: &str) -> Result<(DbUrl, Option<String>, Option<String>), DbError> {
        let bad = |reason: &str| DbError::BadLocation {
            location: redact(location),
            reason: reason.to_string(),
        };
        let (scheme, rest) = location
            .split_once("://")
            .ok_or_else(|| bad("expected postgresql://host:port/database"))?;
        let (authority, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (cred, host) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let url = DbUrl::parse(&format!("{scheme}://{host}{tail}")).map_err(|e| match e {
            DbError::BadLocation { reason, .. } => bad(&reason),
            other => other,
        })?;
        if url.backend != Backend::Postgres {
            return Err(bad("not a PostgreSQL location (postgresql://...)"));
        }
        let (user, password) = match cred.filter(|c| !c.is_empty()) {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(c.to_string()), None),
            },
            None => (None, None),
        };
        Ok((url, user, password))
    }

    /// A link to a parsed `url` with the credentials of `auth` for its server
    /// ([`DbError::NoCredentials`] when it has none): the database storages'
    /// rule.
    pub fn with_auth(url: &DbUrl, auth: &DbAuth) -> Result<PgLink, DbError> {
        let entry = auth.lookup(&url.host, url.port)?;
        Self::build(
            url.clone(),
            Some(entry.user.clone()),
            (!entry.password.is_empty()).then(|| entry.password.clone()),
        )
    }

    fn build(
        url: DbUrl,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<PgLink, DbError> {
        let o = &url.options;
        let mut opts = PgConnectOptions::new()
            .host(&url.host)
            .port(url.port)
            .database(&url.database)
            .ssl_mode(match o.sslmode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            })
            .application_name("daf")
            .disable_statement_logging();
        if let Some(u) = &user {
            opts = opts.username(u);
        }
        if let Some(p) = &password {
            opts = opts.password(p);
        }
        if let Some(c) = &o.sslrootcert {
            opts = opts.ssl_root_cert(c);
        }
        Ok(PgLink {
            rt: runtime()?,
            opts,
            url,
            user,
            secret: password,
        })
    }

    /// The same link, telling the server `name` as the application name.
    pub fn application_name(mut self, name: &str) -> Self {
        self.opts = self.opts.application_name(name);
        self
    }

    /// The location (no credentials), with its options.
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// The location's connection options (timeouts, TLS).
    pub fn options(&self) -> &ConnOptions {
        &self.url.options
    }

    /// The sqlx options every connection of this link is opened with (for a
    /// pool: `PgPoolOptions::connect_with`, run through
    /// [`PgLink::run`]).
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.opts
    }

    /// The user connections log in as, if known before connecting.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The location for messages: never a password.
    pub fn described(&self) -> String {
        self.url.to_string()
    }

    /// `msg` without this link's password.
    pub fn scrub(&self, msg: String) -> String {
        match &self.secret {
            Some(s) => scrub(msg, s),
            None => msg,
        }
    }

    /// The connect timeout, `None` for none.
    fn connect_timeout(&self) -> Option<Duration> {
        let ct = self.url.options.connect_timeout;
        (!ct.is_zero()).then_some(ct)
    }

    /// Opens a connection within `connect_timeout`; a failure is
    /// [`DbError::Connect`] keeping the `sqlx::Error` as its source.
    pub fn connect(&self) -> Result<PgConnection, DbError> {
        let ct = self.connect_timeout();
        block(&self.rt, ct, self.opts.connect()).map_err(|e| self.connect_error(e))
    }

    /// Opens a connection within `connect_timeout`, giving the driver's
    /// error as is (for callers with their own error type; see
    /// [`PgLink::connect_error`]).
    pub fn open(&self) -> Result<PgConnection, sqlx::Error> {
        block(&self.rt, self.connect_timeout(), self.opts.connect())
    }

    /// A connection failure as [`DbError::Connect`] (timeouts say which one
    /// expired), keeping `e` as the source.
    pub fn connect_error(&self, e: sqlx::Error) -> DbError {
        let e = match e {
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                sqlx::Error::Configuration(
                    format!(
                        "no answer within {} s (connect_timeout)",
                        self.url.options.connect_timeout.as_secs_f64()
                    )
                    .into(),
                )
            }
            sqlx::Error::PoolTimedOut => sqlx::Error::Configuration(
                format!(
                    "no connection within {} s (connect_timeout)",
                    self.url.options.connect_timeout.as_secs_f64()
                )
                .into(),
            ),
            other => other,
        };
        DbError::Connect {
            backend: Backend::Postgres.name().into(),
            host: self.url.host.clone(),
            port: self.url.port,
            message: self.scrub(e.to_string()),
            source: Some(Box::new(e)),
        }
    }

    /// Runs one statement's future on the link's runtime, at most
    /// `statement_timeout` (then an I/O `TimedOut` error: the connection is
    /// to be dropped).
    pub fn block_on<T>(
        &self,
        fut: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        block(&self.rt, self.url.options.statement_timeout, fut)
    }

    /// Runs `fut` (several statements, with errors of the caller's type) on
    /// the link's runtime, at most `statement_timeout`: `Err` when that
    /// expired (an I/O `TimedOut` error, as [`PgLink::block_on`] gives).
    pub fn timed<F: Future>(&self, fut: F) -> Result<F::Output, sqlx::Error> {
        block(&self.rt, self.url.options.statement_timeout, async {
            Ok(fut.await)
        })
    }

    /// Runs `fut` on the link's runtime without a timeout (pool set-up,
    /// polite closes).
    pub fn run<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// The connect timeout as a pool's acquire timeout.
    pub fn acquire_timeout(&self) -> Duration {
        self.connect_timeout()
            .unwrap_or(Duration::from_secs(365 * 24 * 3600))
    }
}

/// Did `e` break the connection (rather than fail one statement)?
///
/// I/O, protocol and TLS failures; PostgreSQL class 57P (operator
/// intervention: terminated, shutting down) and 08 (connection exception);
/// MariaDB/MySQL 1927 (connection killed), 2006/2013 (gone away, lost).
pub fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            code.starts_with("57P")
                || code.starts_with("08")
                || matches!(&*code, "1927" | "2006" | "2013")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_credentials_and_options() {
        let mut auth = DbAuth::new();
        auth.add("h", 5432, "alice", "pw-a");
        // Auth entry used when the URL names no user.
        let l = PgLink::new(
            "postgresql://h/db?sslmode=verify-ca&sslrootcert=/ca.pem&connect_timeout=3&statement_timeout=1.5",
            &auth,
        )
        .unwrap();
        assert_eq!(l.user(), Some("alice"));
        assert_eq!(l.options().sslmode, SslMode::VerifyCa);
        assert_eq!(l.options().sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(l.options().connect_timeout, Duration::from_secs(3));
        assert_eq!(
            l.options().statement_timeout,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(l.connect_options().get_port(), 5432);
        assert_eq!(l.connect_options().get_host(), "h");
        assert_eq!(l.connect_options().get_database(), Some("db"));
        assert_eq!(l.scrub("bad pw-a here".into()), "bad *** here");
        // Another user in the URL: the entry is not used.
        let l = PgLink::new("postgresql://bob@h:5432/db", &auth).unwrap();
        assert_eq!(l.user(), Some("bob"));
        assert_eq!(l.scrub("pw-a".into()), "pw-a");
        // A password in the URL (legacy registry.pgsql) is the secret, and
        // never shown.
        let l = PgLink::new("postgres://carol:hunter22@h:6000/db", &auth).unwrap();
        assert_eq!(l.user(), Some("carol"));
        assert_eq!(l.described(), "postgresql://h:6000/db");
        assert!(!format!("{l:?}").contains("hunter22"));
        // Bad options and other backends are typed errors without secrets.
        let e = PgLink::new("postgresql://u:s3cret@h/db?bogus=1", &auth).unwrap_err();
        assert!(matches!(e, DbError::BadLocation { .. }), "{e:?}");
        assert!(e.to_string().contains("bogus") && !e.to_string().contains("s3cret"));
        let e = PgLink::new("mysql://h/db", &auth).unwrap_err();
        assert!(e.to_string().contains("not a PostgreSQL location"), "{e}");
    }

    #[test]
    fn refused_connection_keeps_the_sqlx_error() {
        // Port 1 on localhost: refused at once.
        let l = PgLink::new(
            "postgresql://u:pw-zzz@127.0.0.1:1/db?connect_timeout=5&sslmode=disable",
            &DbAuth::new(),
        )
        .unwrap();
        let e = l.connect().unwrap_err();
        let DbError::Connect { port, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*port, 1);
        let src = std::error::Error::source(&e).expect("a source");
        let sqlx_err = src.downcast_ref::<sqlx::Error>().expect("a sqlx::Error");
        let sqlx::Error::Io(io) = sqlx_err else {
            panic!("{sqlx_err:?}")
        };
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
