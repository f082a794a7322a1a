//! Path safety: the one check every place that turns input (a run name, a
//! data-id value, a template, an event value, an ingest target) into a path
//! goes through, so that nothing is written outside the root it belongs to.
//!
//! [`check_relative`] refuses an input-derived relative path that is
//! absolute, has a `..` component, or holds NUL, a newline or a carriage
//! return. [`join_under`] does that check, joins the piece to its root and
//! checks that the lexically normalised result still lies under the
//! normalised root.
//!
//! ```
//! use std::path::Path;
//! use daf_base::path_safety::{join_under, check_relative, UnsafeReason};
//! assert_eq!(join_under(Path::new("/repo"), "run", "r1/raw/v1.fits").unwrap(),
//!            Path::new("/repo/r1/raw/v1.fits"));
//! let e = join_under(Path::new("/repo"), "run", "../../tmp/x").unwrap_err();
//! assert_eq!(e.reason, UnsafeReason::ParentComponent);
//! assert_eq!(check_relative("run", "/abs").unwrap_err().reason, UnsafeReason::Absolute);
//! assert!(check_relative("run", "a\nb").is_err());
//! ```

use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Why a path piece was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// It is absolute (or has a drive / root prefix).
    Absolute,
    /// It has a `..` component.
    ParentComponent,
    /// It holds a NUL byte.
    Nul,
    /// It holds a newline or carriage return.
    Newline,
    /// After normalisation it lies outside its root.
    OutsideRoot,
}

impl std::fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnsafeReason::Absolute => "an absolute path is not allowed here",
            UnsafeReason::ParentComponent => "a '..' component is not allowed",
            UnsafeReason::Nul => "a NUL byte is not allowed",
            UnsafeReason::Newline => "a newline is not allowed",
            UnsafeReason::OutsideRoot => "the path would lie outside its root",
        })
    }
}

/// An input-derived path piece that would escape its root.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unsafe {what} {path:?}: {reason}{}", root.as_ref().map(|r| format!(" (root {})", r.display())).unwrap_or_default())]
pub struct UnsafePath {
    /// What the piece is (`run`, `template`, `data id value`, `event value` …).
    pub what: String,
    /// The piece as given.
    pub path: String,
    /// Why it was refused.
    pub reason: UnsafeReason,
    /// The root it had to stay under, when known.
    pub root: Option<PathBuf>,
}

fn unsafe_path(what: &str, path: &str, reason: UnsafeReason, root: Option<&Path>) -> UnsafePath {
    UnsafePath {
        what: what.to_string(),
        path: path.to_string(),
        reason,
        root: root.map(Path::to_path_buf),
    }
}

/// Checks that `piece` (a relative path made from input; `what` names it in
/// the error) is safe to join to a root: not absolute, no `..` component, no
/// NUL, newline or carriage return. An empty piece is safe (it adds
/// nothing).
pub fn check_relative(what: &str, piece: &str) -> Result<(), UnsafePath> {
    if piece.contains('\0') {
        return Err(unsafe_path(what, piece, UnsafeReason::Nul, None));
    }
    if piece.contains('\n') || piece.contains('\r') {
        return Err(unsafe_path(what, piece, UnsafeReason::Newline, None));
    }
    let p = Path::new(piece);
    if p.is_absolute() || p.has_root() || piece.starts_with('/') || piece.starts_with('\\') {
        return Err(unsafe_path(what, piece, UnsafeReason::Absolute, None));
    }
    for c in p.components() {
        match c {
            Component::ParentDir => {
                return Err(unsafe_path(
                    what,
                    piece,
                    UnsafeReason::ParentComponent,
                    None,
                ))
            }
            Component::Prefix(_) | Component::RootDir => {
                return Err(unsafe_path(what, piece, UnsafeReason::Absolute, None))
            }
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    // `a\..\b` is one component on Unix but a parent step on Windows.
    if piece.split(['/', '\\']).any(|c| c == "..") {
        return Err(unsafe_path(
            what,
            piece,
            UnsafeReason::ParentComponent,
            None,
        ));
    }
    Ok(())
}

/// `path` with `.` removed and `..` applied lexically (no file system
/// access, symbolic links are not followed).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Checks `rel` with [`check_relative`], joins it to `root` and checks that
/// the normalised result lies under the normalised `root`; returns the
/// joined path.
pub fn join_under(root: &Path, what: &str, rel: &str) -> Result<PathBuf, UnsafePath> {
    check_relative(what, rel).map_err(|mut e| {
        e.root = Some(root.to_path_buf());
        e
    })?;
    let joined = root.join(rel);
    check_under(root, what, &joined)?;
    Ok(joined)
}

/// Checks that `path` (absolute, or relative to the same base as `root`)
/// lies under `root` after lexical normalisation of both.
pub fn check_under(root: &Path, what: &str, path: &Path) -> Result<(), UnsafePath> {
    let text = path.to_string_lossy();
    if text.contains('\0') {
        return Err(unsafe_path(what, &text, UnsafeReason::Nul, Some(root)));
    }
    if text.contains('\n') || text.contains('\r') {
        return Err(unsafe_path(what, &text, UnsafeReason::Newline, Some(root)));
    }
    let r = normalize(root);
    let p = normalize(path);
    if !p.starts_with(&r) || p.components().any(|c| c == Component::ParentDir) {
        return Err(unsafe_path(
            what,
            &text,
            UnsafeReason::OutsideRoot,
            Some(root),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_each_case() {
        let cases = [
            ("../escaped", UnsafeReason::ParentComponent),
            ("a/../../b", UnsafeReason::ParentComponent),
            ("a/..", UnsafeReason::ParentComponent),
            ("/abs", UnsafeReason::Absolute),
            ("\\abs", UnsafeReason::Absolute),
            ("a\\..\\b", UnsafeReason::ParentComponent),
            ("a\0b", UnsafeReason::Nul),
            ("a\nb", UnsafeReason::Newline),
            ("a\rb", UnsafeReason::Newline),
        ];
        for (piece, reason) in cases {
            let e = check_relative("run", piece).unwrap_err();
            assert_eq!(e.reason, reason, "{piece:?}");
            assert_eq!(e.path, piece);
            assert!(e.to_string().starts_with("unsafe run"), "{e}");
            assert!(join_under(Path::new("/r"), "run", piece).is_err());
        }
        for ok in [
            "",
            "a",
            "a/b/c.fits",
            "./a",
            "a..b/c",
            "..a",
            "r1/v..1.fits",
        ] {
            check_relative("run", ok).unwrap();
        }
        assert_eq!(
            join_under(Path::new("/r/./x"), "run", "a/./b").unwrap(),
            Path::new("/r/./x/a/./b")
        );
    }

    #[test]
    fn under_root_after_normalisation() {
        let root = Path::new("/repo");
        check_under(root, "p", Path::new("/repo/a/../b")).unwrap();
        let e = check_under(root, "p", Path::new("/repo/a/../../etc")).unwrap_err();
        assert_eq!(e.reason, UnsafeReason::OutsideRoot);
        assert!(check_under(root, "p", Path::new("/repository/x")).is_err());
        assert!(check_under(Path::new("rel"), "p", Path::new("rel/x")).is_ok());
        assert!(check_under(Path::new("rel"), "p", Path::new("x")).is_err());
        assert_eq!(normalize(Path::new("a/./b/../c")), Path::new("a/c"));
    }
}
