//! Property tests of the database storages' bad-input handling:
//! arbitrary NUL-free strings round-trip exactly through DbTsvStorage (the
//! TSV escaping and each backend's bulk path), and arbitrary names are either
//! refused as identifiers or are plain identifiers.

use std::sync::Arc;

use daf_storages::db::{
    quote_ident, validate_ident, Backend, DbAuth, DbStorage, DbTsvStorage, DbUrl,
};
use daf_storages::Storage;
use proptest::prelude::*;

fn targets() -> Vec<(String, Arc<DbAuth>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(
        format!("sqlite://{}", dir.path().join("prop.sqlite3").display()),
        Arc::new(DbAuth::new()),
        Some(dir),
    )];
    for server in daf_base::testing::test_servers() {
        let u = DbUrl::parse(&server.url).unwrap();
        let mut a = DbAuth::new();
        a.add(&u.host, u.port, server.user, "");
        out.push((server.url, Arc::new(a), None));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn identifiers_are_plain_or_refused(name in "\\PC{0,12}") {
        match validate_ident(&name) {
            Ok(()) => {
                prop_assert!(name.split('.').all(|p| !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')));
                let q = quote_ident(Backend::Mysql, &name).unwrap();
                prop_assert!(!q.contains(';') && !q.contains('\''));
            }
            Err(e) => prop_assert!(e.to_string().contains("bad SQL identifier")),
        }
    }
}

#[test]
fn arbitrary_strings_round_trip_through_tsv() {
    let strategy = proptest::collection::vec("[^\\x00]{0,40}", 1..16);
    for (url, auth, _dir) in targets() {
        let mut db = DbStorage::open_url(&url, Some(auth.clone())).unwrap();
        let b = db.backend().unwrap();
        let table = format!(
            "daf_prop_{}_{}",
            std::process::id(),
            b.name().to_ascii_lowercase()
        );
        if db.table_exists(&table).unwrap() {
            db.drop_table(&table).unwrap();
        }
        let text = if b == Backend::Mysql {
            "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        } else {
            "TEXT"
        };
        db.execute_sql(&format!(
            "CREATE TABLE {} ({} BIGINT, {} {text})",
            quote_ident(b, &table).unwrap(),
            quote_ident(b, "id").unwrap(),
            quote_ident(b, "s").unwrap()
        ))
        .unwrap();
        let cases = if b == Backend::Sqlite { 64 } else { 24 };
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
        let cell = std::cell::RefCell::new(db);
        let result = runner.run(&strategy, |strings| {
            let mut db = cell.borrow_mut();
            db.truncate_table(&table).unwrap();
            let mut tsv = DbTsvStorage::open_url(&url, Some(auth.clone())).unwrap();
            tsv.start_transaction().unwrap();
            tsv.set_table_for_insert(&table).unwrap();
            for (i, s) in strings.iter().enumerate() {
                tsv.set_column("id", i as i64).unwrap();
                tsv.set_column("s", s.as_str()).unwrap();
                tsv.insert_row().unwrap();
            }
            tsv.prepare_commit().unwrap();
            tsv.end_transaction().unwrap();
            db.set_table_for_query(&table).unwrap();
            db.out_column("s").unwrap();
            db.order_by("id").unwrap();
            db.query().unwrap();
            let mut back = Vec::new();
            while db.next().unwrap() {
                back.push(db.get_column_by_pos::<String>(0).unwrap());
            }
            db.finish_query();
            prop_assert_eq!(&back, &strings, "{}", url);
            Ok(())
        });
        let _ = cell.borrow_mut().drop_table(&table);
        result.unwrap();
    }
}
