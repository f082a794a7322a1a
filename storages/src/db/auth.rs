//! [`DbAuth`]: database credentials, from an auth file or built in code.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::DbError;

/// One credential entry.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthEntry {
    /// Server host, as written in locations.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (never printed: `Debug` shows `***`).
    pub password: String,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthEntry")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Database credentials: a list of (host, port, user, password) entries;
/// the first entry matching a server's host and port wins.
///
/// A value you pass to the storages (no global). Auth files are YAML
/// ```yaml
/// database:
///   authInfo:
///     - {host: db.example.org, port: 5432, user: alice, password: secret}
/// ```
/// or the legacy PAF form (`database: { authInfo: { host: ... port: ... user: ... password: ... } }`,
/// one `authInfo` block per server). Files, and the folder holding them,
/// must not be accessible to group or others.
///
/// ```
/// use daf_storages::db::DbAuth;
/// let auth = DbAuth::from_yaml_str(
///     "database:\n  authInfo:\n    - {host: h, port: 5432, user: u, password: pw}\n").unwrap();
/// assert_eq!(auth.lookup("h", 5432).unwrap().user, "u");
/// let err = auth.lookup("h", 3306).unwrap_err().to_string();
/// assert!(err.contains("h:3306") && !err.contains("pw"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct DbAuth {
    entries: Vec<AuthEntry>,
}

impl DbAuth {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (after the existing ones).
    pub fn add(&mut self, host: &str, port: u16, user: &str, password: &str) -> &mut Self {
        self.entries.push(AuthEntry {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// The entries, in match order.
    pub fn entries(&self) -> &[AuthEntry] {
        &self.entries
    }

    /// The first entry for `host:port`, or [`DbError::NoCredentials`].
    pub fn lookup(&self, host: &str, port: u16) -> Result<&AuthEntry, DbError> {
        self.entries
            .iter()
            .find(|e| e.host == host && e.port == port)
            .ok_or_else(|| DbError::NoCredentials {
                host: host.into(),
                port,
            })
    }

    /// `~/.daf/db-auth.yaml`, if a home folder is known.
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".daf").join("db-auth.yaml"))
    }

    /// Loads [`DbAuth::default_path`].
    pub fn load_default() -> Result<DbAuth, DbError> {
        let p = Self::default_path().ok_or_else(|| DbError::AuthFile {
            path: PathBuf::from("~/.daf/db-auth.yaml"),
            reason: "HOME is not set".into(),
        })?;
        Self::load(&p)
    }

    /// Loads an auth file (YAML, or PAF when the file name ends in `.paf`
    /// or the text does not parse as YAML), refusing a file or folder that
    /// group or others can access.
    pub fn load(path: &Path) -> Result<DbAuth, DbError> {
        let err = |p: &Path, reason: String| DbError::AuthFile {
            path: p.to_path_buf(),
            reason,
        };
        check_private(path, false)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            check_private(dir, true)?;
        }
        // A symbolic link: the file's real folder must be private too.
        if let Ok(real) = std::fs::canonicalize(path) {
            if let Some(dir) = real.parent().filter(|d| !d.as_os_str().is_empty()) {
                check_private(dir, true)?;
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
        let is_paf = path.extension().is_some_and(|e| e == "paf");
        let parsed = if is_paf {
            Self::from_paf_str(&text)
        } else {
            Self::from_yaml_str(&text)
                .or_else(|yaml_err| Self::from_paf_str(&text).map_err(|_| yaml_err))
        };
        parsed.map_err(|e| match e {
            DbError::AuthFile { reason, .. } => err(path, reason),
            other => other,
        })
    }

    /// Parses the YAML form.
    pub fn from_yaml_str(text: &str) -> Result<DbAuth, DbError> {
        #[derive(serde::Deserialize)]
        struct Entry {
            host: String,
            port: u16,
            user: String,
            #[serde(default)]
            password: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Db {
            auth_info: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct File {
            database: Db,
        }
        let f: File = serde_norway::from_str(text).map_err(|e| DbError::AuthFile {
            path: PathBuf::from("<yaml>"),
            // Only the position: a parser message may quote a value, and
            // values here can be passwords.
            reason: match e.location() {
                Some(l) => format!(
                    "not a database.authInfo list of host, port, user, password (line {}, column {})",
                    l.line(),
                    l.column()
                ),
                None => "not a database.authInfo list of host, port, user, password".into(),
            },
        })?;
        let mut auth = DbAuth::new();
        for e in f.database.auth_info {
            auth.add(&e.host, e.port, &e.user, &e.password);
        }
        Ok(auth)
    }

    /// Parses the legacy PAF form.
    pub fn from_paf_str(text: &str) -> Result<DbAuth, DbError> {
        let bad = |line: usize, what: &str| DbError::AuthFile {
            path: PathBuf::from("<paf>"),
            reason: format!("line {line}: {what}"),
        };
        let mut stack: Vec<String> = Vec::new();
        let mut current: Option<PafEntry> = None;
        let mut auth = DbAuth::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line == "}" {
                let closed = stack.pop().ok_or_else(|| bad(n, "unbalanced '}'"))?;
                if closed == "authInfo" && stack.last().map(String::as_str) == Some("database") {
                    let (h, p, u, pw) = current.take().unwrap_or_default();
                    match (h, p, u) {
                        (Some(h), Some(p), Some(u)) => {
                            auth.add(&h, p, &u, pw.as_deref().unwrap_or(""));
                        }
                        _ => return Err(bad(n, "authInfo needs host, port and user")),
                    }
                }
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| bad(n, "expected `name: value`"))?;
            let key = key.trim();
            let value = value.trim();
            if value == "{" {
                stack.push(key.to_string());
                if key == "authInfo" {
                    current = Some(Default::default());
                }
                continue;
            }
            if let Some(cur) = current.as_mut() {
                let v = value.trim_matches('"').trim_matches('\'').to_string();
                match key {
                    "host" => cur.0 = Some(v),
                    "port" => cur.1 = Some(v.parse().map_err(|_| bad(n, "port is not a number"))?),
                    "user" => cur.2 = Some(v),
                    "password" => cur.3 = Some(v),
                    _ => {}
                }
            }
        }
        if !stack.is_empty() {
            return Err(bad(text.lines().count(), "unclosed '{'"));
        }
        if auth.entries.is_empty() {
            return Err(bad(1, "no database.authInfo entries"));
        }
        Ok(auth)
    }
}

/// host, port, user, password of a PAF `authInfo` block being read.
type PafEntry = (Option<String>, Option<u16>, Option<String>, Option<String>);

#[cfg(unix)]
fn check_private(path: &Path, is_dir: bool) -> Result<(), DbError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| DbError::AuthFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let what = if is_dir { "folder" } else { "file" };
        let fix = if is_dir { "700" } else { "600" };
        return Err(DbError::AuthFile {
            path: path.to_path_buf(),
            reason: format!(
                "{what} is accessible by group or others (mode {mode:03o}); credentials must be private: chmod {fix} it"
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _is_dir: bool) -> Result<(), DbError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paf_and_yaml() {
        let paf = "database: {\n  authInfo: {\n    host: lsst10\n    port: 3306\n    user: bob\n    password: \"pw1\"\n  }\n  authInfo: {\n    host: lsst10\n    port: 3306\n    user: second\n    password: pw2\n  }\n}\n";
        let a = DbAuth::from_paf_str(paf).unwrap();
        assert_eq!(a.entries().len(), 2);
        let e = a.lookup("lsst10", 3306).unwrap();
        assert_eq!((e.user.as_str(), e.password.as_str()), ("bob", "pw1"));
        assert!(!format!("{a:?}").contains("pw1"));
        assert!(DbAuth::from_yaml_str("database: 3").is_err());
        let e = DbAuth::from_yaml_str(
            "database:\n  authInfo:\n    - {host: h, port: p4ssw0rd, user: u}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("p4ssw0rd") && e.contains("line"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_open_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db-auth.yaml");
        std::fs::write(
            &p,
            "database:\n  authInfo:\n    - {host: h, port: 1, user: u, password: topsecret}\n",
        )
        .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = DbAuth::load(&p).unwrap_err().to_string();
        assert!(e.contains("group or others") && e.contains("644"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = DbAuth::load(&p).unwrap_err().to_string();
        assert!(e.contains("folder"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // A link in a private folder to a file in an open folder: the real
        // folder is checked.
        let open_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let real = open_dir.path().join("real-auth.yaml");
        std::fs::copy(&p, &real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = DbAuth::load(&link).unwrap_err().to_string();
        assert!(e.contains("folder") && e.contains("755"), "{e}");
        std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            DbAuth::load(&link).unwrap().lookup("h", 1).unwrap().user,
            "u"
        );
        let a = DbAuth::load(&p).unwrap();
        assert_eq!(a.lookup("h", 1).unwrap().password, "topsecret");
        let e = a.lookup("h", 2).unwrap_err().to_string();
        assert!(e.contains("h:2") && !e.contains("topsecret"));
    }
}
