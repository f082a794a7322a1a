//! Identifier validation and quoting.

use super::error::DbError;
use super::url::Backend;

/// Checks that `name` is a plain identifier or a qualified `schema.name`:
/// each part starts with a letter or `_`, continues with letters, digits,
/// `_` or `$`, and is at most 63 bytes. Anything else (spaces, quotes,
/// backticks, semicolons ...) is refused before any SQL is built.
pub fn validate_ident(name: &str) -> Result<(), DbError> {
    let bad = |reason: &str| DbError::BadIdentifier {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(bad("at most one '.' (schema.table) is allowed"));
    }
    for p in parts {
        let mut chars = p.chars();
        match chars.next() {
            None => return Err(bad("empty part around '.'")),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            Some(c) => {
                return Err(bad(&format!(
                    "starts with {c:?}; names start with a letter or '_'"
                )))
            }
        }
        if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$')) {
            return Err(bad(&format!(
                "contains {c:?}; only letters, digits, '_' and '$' are allowed"
            )));
        }
        if p.len() > 63 {
            return Err(bad("longer than 63 characters"));
        }
    }
    Ok(())
}

/// Validates `name` and quotes it for `backend` (`"a"."b"` or `` `a`.`b` ``).
///
/// The case policy: names are case-insensitive, as unquoted SQL names are.
/// PostgreSQL folds unquoted names to lower case, so for it the quoted name
/// is lower case too (`sourceId` reaches the column `sourceid` that
/// `CREATE TABLE t (sourceId BIGINT)` made); SQLite and MariaDB/MySQL
/// compare column names without regard to case and keep the spelling given.
///
/// ```
/// use daf_storages::db::{quote_ident, Backend};
/// assert_eq!(quote_ident(Backend::Postgres, "s.Source").unwrap(), r#""s"."source""#);
/// assert_eq!(quote_ident(Backend::Sqlite, "psfFlux").unwrap(), r#""psfFlux""#);
/// assert_eq!(quote_ident(Backend::Mysql, "Source").unwrap(), "`Source`");
/// assert!(quote_ident(Backend::Sqlite, "x; DROP TABLE y").is_err());
/// ```
pub fn quote_ident(backend: Backend, name: &str) -> Result<String, DbError> {
    validate_ident(name)?;
    let q = if backend == Backend::Mysql { '`' } else { '"' };
    let mut out = String::with_capacity(name.len() + 4);
    for (i, p) in name.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push(q);
        if backend == Backend::Postgres {
            out.push_str(&p.to_ascii_lowercase());
        } else {
            out.push_str(p);
        }
        out.push(q);
    }
    Ok(out)
}

/// Validates a comma-separated list of columns with optional `ASC`/`DESC`
/// (for `ORDER BY` / `GROUP BY`) and returns it quoted.
pub(crate) fn quote_column_list(
    backend: Backend,
    list: &str,
    allow_dir: bool,
) -> Result<String, DbError> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        let (col, dir) = match words.as_slice() {
            [c] => (*c, None),
            [c, d]
                if allow_dir
                    && (d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc")) =>
            {
                (*c, Some(d.to_ascii_uppercase()))
            }
            _ => {
                return Err(DbError::BadIdentifier {
                    name: item.trim().to_string(),
                    reason: "expected a column name, optionally followed by ASC or DESC".into(),
                })
            }
        };
        let q = quote_ident(backend, col)?;
        out.push(match dir {
            Some(d) => format!("{q} {d}"),
            None => q,
        });
    }
    Ok(out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sql() {
        for n in [
            "x; DROP TABLE y",
            "a\"b",
            "a`b",
            "a'b",
            "1abc",
            "a.b.c",
            "",
            "a b",
            "a--",
            "é",
        ] {
            assert!(
                matches!(validate_ident(n), Err(DbError::BadIdentifier { .. })),
                "{n}"
            );
        }
        for n in ["a", "_a1", "s.t", "a$b"] {
            validate_ident(n).unwrap();
        }
        assert_eq!(
            quote_column_list(Backend::Sqlite, "a desc, b", true).unwrap(),
            "\"a\" DESC, \"b\""
        );
        assert!(quote_column_list(Backend::Sqlite, "a; drop", true).is_err());
    }
}
