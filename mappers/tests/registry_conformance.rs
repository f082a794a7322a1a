//! Every registry backend passes the same conformance suite.

use daf_mappers::registry::conformance::{self, FILESYSTEM, SQL};
use daf_mappers::registry::open_registry;
use daf_mappers::{PgRegistry, PosixRegistry, SqliteRegistry};

#[test]
fn sqlite_in_memory() {
    let reg = SqliteRegistry::in_memory().unwrap();
    conformance::populate(&reg);
    conformance::run(&reg, SQL);
}

#[test]
fn sqlite_file_reopened_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite3");
    {
        let reg = SqliteRegistry::create(&path).unwrap();
        conformance::populate(&reg);
    }
    let reg = open_registry(&path).unwrap();
    conformance::run(reg.as_ref(), SQL);
    // Read-only: writes are refused.
    assert!(reg
        .insert_rows("raw", &["visit".into()], &[vec![9.into()]])
        .is_err());
}

#[test]
fn sqlite_missing_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sqlite3");
    let e = SqliteRegistry::open(&missing).unwrap_err().to_string();
    assert!(e.contains("no such registry file"), "{e}");
    let corrupt = dir.path().join("bad.sqlite3");
    std::fs::write(&corrupt, vec![b'x'; 4096]).unwrap();
    let e = SqliteRegistry::open(&corrupt).unwrap_err().to_string();
    assert!(e.contains("not a readable SQLite registry"), "{e}");
    assert!(e.contains("bad.sqlite3"), "{e}");
}

#[test]
fn filesystem() {
    let dir = tempfile::tempdir().unwrap();
    conformance::populate_files(dir.path());
    let reg = PosixRegistry::new(dir.path());
    conformance::run(&reg, FILESYSTEM);
    let via_open = open_registry(dir.path()).unwrap();
    conformance::run(via_open.as_ref(), FILESYSTEM);
}

#[test]
fn postgres() {
    let url = std::env::var("DAF_TEST_POSTGRES_URL").ok();
    if !daf_base::testing::available(url.is_some(), "DAF_TEST_POSTGRES_URL not set") {
        return;
    }
    let url = url.unwrap_or_default();
    let schema = format!(
        "daf_conf_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let reg = PgRegistry::connect(&url, Some(&schema)).unwrap();
    reg.create_schema().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conformance::populate(&reg);
        conformance::run(&reg, SQL);
    }));
    reg.drop_schema().unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
