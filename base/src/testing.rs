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

/// Reports a missing prerequisite: panics in CI, prints `SKIPPED: ...` otherwise.
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
