//! Helpers for tests that need external tools or servers.
//!
//! Outside CI a test whose prerequisite is missing prints why and skips; in CI
//! (`CI` set to anything but `false`/`0`) a missing prerequisite fails the test,
//! so that no check is silently skipped there.

/// True when running under CI.
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        Err(_) => false,
    }
}

/// Reports a missing prerequisite: panics in CI, prints `SKIPPED: ...` otherwise
/// (and appends that line to the file `DAF_SKIP_LOG` names, if set: `./test.sh`
/// summarises them).
///
/// Use as `if !daf_base::testing::available(ok, "fitsverify not installed") { return; }`.
pub fn available(ok: bool, what_is_missing: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("required in CI but missing: {what_is_missing}");
    }
    eprintln!("SKIPPED: {what_is_missing}");
    // Captured output of a passing test is not shown, so `./test.sh` names
    // a file here and summarises the skips at the end.
    if let Some(log) = std::env::var_os("DAF_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "SKIPPED: {what_is_missing}");
        }
    }
    false
}

/// Is `program` on the `PATH`?
pub fn have_program(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            p.is_file()
        })
    })
}

/// A database server the tests may use, named by an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestServer {
    /// The variable it came from (`DAF_TEST_POSTGRES_URL`).
    pub var: &'static str,
    /// Its URL.
    pub url: String,
    /// The user to connect as, with an empty password (`postgres`, `root`).
    pub user: &'static str,
}

/// The URL of the test database server named by `var`
/// (`DAF_TEST_POSTGRES_URL` or `DAF_TEST_MYSQL_URL`), or `None` after
/// reporting the skip through [`available`].
///
/// * `var` set and not empty: its value;
/// * `var` set but empty: `None` (the way to skip a server on purpose);
/// * `var` unset: the local server of the test setup if something listens on
///   its port — `postgresql://127.0.0.1:5432/test` (when `PGUSER` names the
///   user, `postgres` in the test setup, as `.ci/run` sets it), or
///   `mysql://127.0.0.1:3306/test` — else `None`.
///
/// URLs carry no user (database storages refuse credentials in a location):
/// tests connect as [`TestServer::user`], registries as `PGUSER`.
pub fn server_url(var: &str) -> Option<String> {
    let default = match var {
        "DAF_TEST_POSTGRES_URL" => Some(("postgresql://127.0.0.1:5432/test", 5432)),
        "DAF_TEST_MYSQL_URL" => Some(("mysql://127.0.0.1:3306/test", 3306)),
        _ => None,
    };
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => return Some(url),
        Ok(_) => {
            available(
                false,
                &format!("{var} is empty: database server backend not tested"),
            );
            return None;
        }
        Err(_) => {}
    }
    let no_user = var == "DAF_TEST_POSTGRES_URL" && std::env::var_os("PGUSER").is_none();
    if let Some((url, port)) = default.filter(|_| !no_user) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300))
            .is_ok()
        {
            return Some(url.to_string());
        }
    }
    available(
        false,
        &if no_user {
            format!(
                "{var} not set and PGUSER not set (export PGUSER=postgres to use the local server)"
            )
        } else {
            format!("{var} not set and no server on its default port: database server backend not tested")
        },
    );
    None
}

/// The database servers of the test setup: PostgreSQL from
/// `DAF_TEST_POSTGRES_URL` (user `postgres`) and MariaDB/MySQL from
/// `DAF_TEST_MYSQL_URL` (user `root`), each defaulting to the local server
/// when it listens ([`server_url`]). One that is missing is reported
/// through [`available`]: a `SKIPPED:` line here, a failure in CI.
pub fn test_servers() -> Vec<TestServer> {
    let mut out = Vec::new();
    for (var, user) in [
        ("DAF_TEST_POSTGRES_URL", "postgres"),
        ("DAF_TEST_MYSQL_URL", "root"),
    ] {
        if let Some(url) = server_url(var) {
            out.push(TestServer { var, url, user });
        }
    }
    out
}

/// A name no other test (in this process or another) uses at the same time:
/// `prefix`, the process id and 48 random bits, for tables on shared test
/// servers.
///
/// ```
/// let a = daf_base::testing::unique_name("t");
/// assert!(a.starts_with("t_") && a.len() <= 40);
/// assert_ne!(a, daf_base::testing::unique_name("t"));
/// ```
pub fn unique_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is keyed afresh (random per thread, then counted up),
    // so two calls never hash alike.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!(
        "{prefix}_{}_{:012x}",
        std::process::id(),
        h.finish() & 0xffff_ffff_ffff
    )
}

/// The `PropertySet` of the `propertyset` and `propertyset_lsst` cases of
/// the Boost goldens (`tests/data/boost/MANIFEST`): a string, an `i32`, an
/// `f64`, a bool array, an `i64`, a nested name and an `i32` array.
pub fn manifest_property_set() -> crate::PropertySet {
    let mut ps = crate::PropertySet::new();
    ps.set("name", "foo").expect("valid name");
    ps.set("num", 42i32).expect("valid name");
    ps.set("ra", 10.5f64).expect("valid name");
    ps.set("flags", vec![true, false]).expect("valid name");
    ps.set("big", 1i64 << 40).expect("valid name");
    ps.set("nested.key", "x").expect("valid name");
    ps.set("arr", vec![1i32, 2, 3]).expect("valid name");
    ps
}
