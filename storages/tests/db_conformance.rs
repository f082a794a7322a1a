//! One conformance suite for the database storages, run against every
//! backend: SQLite always, PostgreSQL when `DAF_TEST_POSTGRES_URL` is set and
//! MariaDB/MySQL when `DAF_TEST_MYSQL_URL` is set (a missing variable skips
//! with a `SKIPPED:` line locally and fails in CI).

use std::sync::Arc;

use daf_base::testing::{test_servers, unique_name};

use daf_base::{DateTime, Timescale};
use daf_storages::db::{DbAuth, DbError, DbKind, DbStorage, DbTsvStorage};
use daf_storages::{LogicalLocation, Storage, StorageError};

struct Target {
    url: String,
    auth: Arc<DbAuth>,
    _dir: tempfile::TempDir,
}

impl Target {
    fn db(&self) -> DbStorage {
        DbStorage::open_url(&self.url, Some(self.auth.clone())).unwrap()
    }
    fn tsv(&self) -> DbTsvStorage {
        DbTsvStorage::open_url(&self.url, Some(self.auth.clone())).unwrap()
    }
}

/// Writes a private auth file (0600 in a 0700 folder) and loads it back, as
/// a user would.
fn auth_for(url: &str, user: &str) -> (Arc<DbAuth>, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let u = daf_storages::db::DbUrl::parse(url).unwrap();
    let p = dir.path().join("db-auth.yaml");
    std::fs::write(
        &p,
        format!(
            "database:\n  authInfo:\n    - host: {}\n      port: {}\n      user: {user}\n      password: \"\"\n",
            u.host, u.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    (Arc::new(DbAuth::load(&p).unwrap()), dir)
}

fn targets() -> Vec<Target> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conf.sqlite3").display());
    let mut out = vec![Target {
        url,
        auth: Arc::new(DbAuth::new()),
        _dir: dir,
    }];
    eprintln!("testing backend: {}", out[0].url);
    for server in test_servers() {
        eprintln!("testing backend: {}", server.url);
        let (auth, dir) = auth_for(&server.url, server.user);
        out.push(Target {
            url: server.url,
            auth,
            _dir: dir,
        });
    }
    out
}

/// Drops the table when the test ends, even on panic.
struct Dropper<'a>(&'a Target, String);
impl Drop for Dropper<'_> {
    fn drop(&mut self) {
        if let Ok(mut db) = DbStorage::open_url(&self.0.url, Some(self.0.auth.clone())) {
            let _ = db.drop_table(&self.1);
        }
    }
}

const ALL_COLS: [(&str, DbKind); 9] = [
    ("b", DbKind::Bool),
    ("i8c", DbKind::I8),
    ("i16c", DbKind::I16),
    ("i32c", DbKind::I32),
    ("i64c", DbKind::I64),
    ("f32c", DbKind::F32),
    ("f64c", DbKind::F64),
    ("s", DbKind::String),
    ("t", DbKind::DateTime),
];

fn create(db: &mut DbStorage, name: &str, cols: &[(&str, DbKind)], extra: &str) {
    let b = db.backend().unwrap();
    let body: Vec<String> = cols
        .iter()
        .map(|(c, k)| {
            format!(
                "{} {}",
                daf_storages::db::quote_ident(b, c).unwrap(),
                b.column_type(*k)
            )
        })
        .collect();
    let sql = format!(
        "CREATE TABLE {} ({}{extra})",
        daf_storages::db::quote_ident(b, name).unwrap(),
        body.join(", ")
    );
    db.execute_sql(&sql).unwrap();
}

fn count(db: &mut DbStorage, table: &str) -> i64 {
    db.set_table_for_query(table).unwrap();
    db.query().unwrap();
    let mut n = 0;
    while db.next().unwrap() {
        n += 1;
    }
    db.finish_query();
    n
}

#[test]
fn all_types_round_trip_with_nulls() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_types");
        let _d = Dropper(&t, table.clone());
        create(&mut db, &table, &ALL_COLS, "");
        let when: DateTime = "2020-02-29T12:34:56.123456789Z".parse().unwrap();
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("b", true).unwrap();
        db.set_column("i8c", -8_i8).unwrap();
        db.set_column("i16c", -1600_i16).unwrap();
        db.set_column("i32c", 2_000_000_000_i32).unwrap();
        db.set_column("i64c", -9_000_000_000_000_i64).unwrap();
        db.set_column("f32c", 1.5e-3_f32).unwrap();
        db.set_column("f64c", std::f64::consts::PI).unwrap();
        db.set_column("s", "naïve 'quoted' \"text\"").unwrap();
        db.set_column("t", when).unwrap();
        db.insert_row().unwrap();
        // Second row: all NULL except the key.
        db.set_column("b", false).unwrap();
        for (c, _) in &ALL_COLS[1..] {
            db.set_column_to_null(c).unwrap();
        }
        db.set_column("i64c", 5_i64).unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();

        db.set_table_for_query(&table).unwrap();
        for (c, _) in &ALL_COLS {
            db.out_column(c).unwrap();
        }
        db.order_by("i64c ASC").unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap(), "{}", t.url);
        assert!(db.get_column_by_pos::<bool>(0).unwrap());
        assert_eq!(db.get_column_by_pos::<i8>(1).unwrap(), -8);
        assert_eq!(db.get_column_by_pos::<i16>(2).unwrap(), -1600);
        assert_eq!(db.get_column_by_pos::<i32>(3).unwrap(), 2_000_000_000);
        assert_eq!(db.get_column_by_pos::<i64>(4).unwrap(), -9_000_000_000_000);
        assert_eq!(db.get_column_by_pos::<f32>(5).unwrap(), 1.5e-3);
        assert_eq!(
            db.get_column_by_pos::<f64>(6).unwrap(),
            std::f64::consts::PI
        );
        assert_eq!(
            db.get_column_by_pos::<String>(7).unwrap(),
            "naïve 'quoted' \"text\""
        );
        let got: DateTime = db.get_column_by_pos(8).unwrap();
        assert_eq!(got.nsecs(Timescale::Tai), when.nsecs(Timescale::Tai));
        assert!(!db.column_is_null(7).unwrap());
        assert!(db.next().unwrap());
        assert!(!db.get_column_by_pos::<bool>(0).unwrap());
        assert_eq!(db.get_column_by_pos::<i64>(4).unwrap(), 5);
        for pos in [1, 2, 3, 5, 6, 7, 8] {
            assert!(db.column_is_null(pos).unwrap(), "{} pos {pos}", t.url);
        }
        assert!(!db.next().unwrap());
        db.finish_query();
    }
}

#[test]
fn where_params_group_and_order() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_q");
        let _d = Dropper(&t, table.clone());
        create(
            &mut db,
            &table,
            &[
                ("id", DbKind::I64),
                ("band", DbKind::String),
                ("flux", DbKind::F64),
            ],
            "",
        );
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        for i in 0..10_i64 {
            db.set_column("id", i).unwrap();
            db.set_column("band", if i % 2 == 0 { "g" } else { "r" })
                .unwrap();
            db.set_column("flux", i as f64 * 1.5).unwrap();
            db.insert_row().unwrap();
        }
        db.end_transaction().unwrap();

        db.set_table_for_query(&table).unwrap();
        let id = db.out_param::<i64>("id").unwrap();
        db.cond_param("lo", 3_i64).unwrap();
        db.cond_param("band", "r").unwrap();
        db.set_query_where("id >= :lo AND band = :band").unwrap();
        db.order_by("id DESC").unwrap();
        db.query().unwrap();
        let mut ids = Vec::new();
        while db.next().unwrap() {
            ids.push(db.get_column_by_pos::<i64>(id).unwrap());
        }
        assert_eq!(ids, vec![9, 7, 5, 3], "{}", t.url);
        db.finish_query();

        db.set_table_for_query(&table).unwrap();
        db.out_column("band").unwrap();
        db.group_by("band").unwrap();
        db.order_by("band").unwrap();
        db.query().unwrap();
        let mut bands = Vec::new();
        while db.next().unwrap() {
            bands.push(db.get_column_by_pos::<String>(0).unwrap());
        }
        assert_eq!(bands, vec!["g", "r"]);
        db.finish_query();

        // A parameter bound but not used, or used but not bound, is an error.
        db.set_table_for_query(&table).unwrap();
        db.cond_param("x", 1_i64).unwrap();
        db.set_query_where("id = :y").unwrap();
        assert!(matches!(
            db.query(),
            Err(StorageError::Db(DbError::Param { .. }))
        ));
        db.finish_query();

        // Joins through a table list with qualified columns.
        db.set_table_list_for_query(&[&table]).unwrap();
        db.out_column(&format!("{table}.flux")).unwrap();
        db.cond_param("id", 4_i64).unwrap();
        db.set_query_where(&format!("{} = :id", "id")).unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap());
        assert_eq!(db.get_column_by_pos::<f64>(0).unwrap(), 6.0);
        db.finish_query();
    }
}

#[test]
fn row_values_are_cleared_and_missing_columns_named() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_leak");
        let _d = Dropper(&t, table.clone());
        create(
            &mut db,
            &table,
            &[("a", DbKind::I64), ("b", DbKind::I64)],
            "",
        );
        db.set_table_for_insert(&table).unwrap();
        db.set_column("a", 1_i64).unwrap();
        db.set_column("b", 2_i64).unwrap();
        db.insert_row().unwrap();
        db.set_column("a", 3_i64).unwrap();
        match db.insert_row() {
            Err(StorageError::Db(DbError::MissingColumn { table: tb, column })) => {
                assert_eq!((tb.as_str(), column.as_str()), (table.as_str(), "b"));
            }
            other => panic!("{}: expected MissingColumn, got {other:?}", t.url),
        }
        // The failed row was cleared as well: only b set now → a is missing.
        db.set_column("b", 4_i64).unwrap();
        let e = db.insert_row().unwrap_err().to_string();
        assert!(e.contains("column a"), "{e}");
        db.set_column("a", 5_i64).unwrap();
        db.set_column_to_null("b").unwrap();
        db.insert_row().unwrap();
        assert!(matches!(
            db.set_column("c", 1_i64),
            Err(StorageError::Db(DbError::UnexpectedColumn { .. }))
        ));
        assert_eq!(count(&mut db, &table), 2);
    }
}

#[test]
fn abort_rolls_back_and_tables_are_managed() {
    for t in targets() {
        let mut db = t.db();
        let template = unique_name("daf_tmpl");
        let table = unique_name("daf_made");
        let _d1 = Dropper(&t, template.clone());
        let _d2 = Dropper(&t, table.clone());
        create(
            &mut db,
            &template,
            &[("id", DbKind::I64), ("flux", DbKind::F32)],
            "",
        );
        assert!(db.table_exists(&template).unwrap());
        assert!(!db.table_exists(&table).unwrap());
        db.create_table_from_template(&table, &template, false)
            .unwrap();
        assert!(db.table_exists(&table).unwrap());
        db.create_table_from_template(&table, &template, true)
            .unwrap();
        assert!(matches!(
            db.create_table_from_template(&table, &template, false),
            Err(StorageError::Db(DbError::Table { .. }))
        ));
        assert!(matches!(
            db.create_table_from_template(&unique_name("daf_x"), &unique_name("daf_nosuch"), true),
            Err(StorageError::NotFound { .. })
        ));

        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("flux", 2.0_f32).unwrap();
        db.insert_row().unwrap();
        db.abort_transaction().unwrap();
        assert_eq!(count(&mut db, &table), 0, "{}", t.url);

        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("flux", 2.0_f32).unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();
        assert_eq!(count(&mut db, &table), 1);
        db.truncate_table(&table).unwrap();
        assert_eq!(count(&mut db, &table), 0);
        db.drop_table(&table).unwrap();
        assert!(!db.table_exists(&table).unwrap());
    }
}

#[test]
fn wrong_type_reads_are_typed_errors() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_wt");
        let _d = Dropper(&t, table.clone());
        create(
            &mut db,
            &table,
            &[
                ("id", DbKind::I64),
                ("s", DbKind::String),
                ("big", DbKind::I64),
            ],
            "",
        );
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("s", "hello").unwrap();
        db.set_column("big", 100_000_i64).unwrap();
        db.insert_row().unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("id").unwrap();
        db.out_column("s").unwrap();
        db.out_column("big").unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap());
        for r in [
            db.get_column_by_pos::<String>(0).map(|_| ()),
            db.get_column_by_pos::<i64>(1).map(|_| ()),
            db.get_column_by_pos::<f64>(1).map(|_| ()),
            db.get_column_by_pos::<i8>(2).map(|_| ()),
        ] {
            assert!(
                matches!(r, Err(StorageError::Db(DbError::WrongType { .. }))),
                "{}: {r:?}",
                t.url
            );
        }
        assert!(matches!(
            db.get_column_by_pos::<i64>(9),
            Err(StorageError::Db(DbError::NoSuchColumn { pos: 9, count: 3 }))
        ));
        db.finish_query();
        // out_param checks the type on next().
        db.set_table_for_query(&table).unwrap();
        db.out_param::<i32>("s").unwrap();
        db.query().unwrap();
        assert!(matches!(
            db.next(),
            Err(StorageError::Db(DbError::WrongType { .. }))
        ));
        db.finish_query();
    }
}

#[test]
fn sql_in_identifiers_is_refused_before_the_server() {
    let bad = [
        "x; DROP TABLE y",
        "a\"b",
        "a`b",
        "a'b",
        "t --",
        "1t",
        "a.b.c",
    ];
    for t in targets() {
        let mut db = t.db();
        let mut tsv = t.tsv();
        for name in bad {
            let is_bad = |r: Result<(), StorageError>| {
                matches!(r, Err(StorageError::Db(DbError::BadIdentifier { .. })))
            };
            assert!(is_bad(db.set_table_for_insert(name)), "{name}");
            assert!(is_bad(tsv.set_table_for_insert(name)), "{name}");
            assert!(is_bad(db.set_table_for_query(name)), "{name}");
            assert!(is_bad(db.drop_table(name)), "{name}");
            assert!(is_bad(db.truncate_table(name)), "{name}");
            assert!(is_bad(db.table_exists(name).map(|_| ())), "{name}");
            assert!(
                is_bad(db.create_table_from_template(name, "tmpl", true)),
                "{name}"
            );
            assert!(is_bad(db.out_column(name).map(|_| ())), "{name}");
            assert!(is_bad(db.order_by(name)), "{name}");
            assert!(is_bad(db.group_by(name)), "{name}");
            db.set_table_for_insert("ok_table").unwrap();
            assert!(is_bad(db.set_column(name, 1_i64)), "{name}");
            tsv.set_table_for_insert("ok_table").unwrap();
            assert!(is_bad(tsv.set_column(name, 1_i64)), "{name}");
            assert!(is_bad(db.cond_param(name, 1_i64)), "{name}");
        }
    }
}

const NASTY: [&str; 12] = [
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\\\N\\",
    "'single' \"double\" `back`",
    "unicode: ñ ß 東京 🚀 ∑",
    "",
    " leading and trailing ",
    "\\t literal backslash-t",
    "end with backslash\\",
];

#[test]
fn tsv_round_trips_hostile_strings_and_nulls() {
    for t in targets() {
        let mut tsv = t.tsv();
        let table = unique_name("daf_tsv");
        let _d = Dropper(&t, table.clone());
        create(
            &mut tsv,
            &table,
            &[
                ("id", DbKind::I64),
                ("s", DbKind::String),
                ("x", DbKind::F64),
                ("f", DbKind::Bool),
            ],
            "",
        );
        let keep = tempfile::tempdir().unwrap();
        tsv.set_temp_path(keep.path());
        tsv.set_save_temp(true);
        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        for (i, s) in NASTY.iter().enumerate() {
            tsv.set_column("id", i as i64).unwrap();
            tsv.set_column("s", *s).unwrap();
            tsv.set_column("x", 0.1 + i as f64).unwrap();
            tsv.set_column("f", i % 2 == 0).unwrap();
            tsv.insert_row().unwrap();
        }
        tsv.set_column("id", 100_i64).unwrap();
        tsv.set_column_to_null("s").unwrap();
        tsv.set_column_to_null("x").unwrap();
        tsv.set_column_to_null("f").unwrap();
        tsv.insert_row().unwrap();
        tsv.prepare_commit().unwrap();
        tsv.end_transaction().unwrap();
        assert_eq!(tsv.saved_files().len(), 1);
        let text = std::fs::read_to_string(&tsv.saved_files()[0]).unwrap();
        assert_eq!(text.lines().count(), NASTY.len() + 1, "one line per row");
        assert!(
            text.contains("tab\\there") && text.ends_with("100\t\\N\t\\N\t\\N\n"),
            "{text}"
        );

        tsv.set_table_for_query(&table).unwrap();
        tsv.out_column("id").unwrap();
        tsv.out_column("s").unwrap();
        tsv.out_column("x").unwrap();
        tsv.out_column("f").unwrap();
        tsv.order_by("id").unwrap();
        tsv.query().unwrap();
        for (i, s) in NASTY.iter().enumerate() {
            assert!(tsv.next().unwrap());
            assert_eq!(tsv.get_column_by_pos::<i64>(0).unwrap(), i as i64);
            assert_eq!(tsv.get_column_by_pos::<String>(1).unwrap(), *s, "{}", t.url);
            assert_eq!(tsv.get_column_by_pos::<f64>(2).unwrap(), 0.1 + i as f64);
            assert_eq!(tsv.get_column_by_pos::<bool>(3).unwrap(), i % 2 == 0);
        }
        assert!(tsv.next().unwrap());
        assert!(
            tsv.column_is_null(1).unwrap()
                && tsv.column_is_null(2).unwrap()
                && tsv.column_is_null(3).unwrap()
        );
        assert!(!tsv.next().unwrap());
        tsv.finish_query();
    }
}

#[test]
fn failed_tsv_load_leaves_table_as_it_was() {
    for t in targets() {
        let mut tsv = t.tsv();
        let table = unique_name("daf_fail");
        let _d = Dropper(&t, table.clone());
        create(
            &mut tsv,
            &table,
            &[("id", DbKind::I64), ("v", DbKind::F64)],
            "",
        );
        // v NOT NULL: recreate with the constraint.
        tsv.drop_table(&table).unwrap();
        let b = tsv.backend().unwrap();
        let q = |n: &str| daf_storages::db::quote_ident(b, n).unwrap();
        tsv.execute_sql(&format!(
            "CREATE TABLE {} ({} BIGINT NOT NULL, {} DOUBLE PRECISION NOT NULL)",
            q(&table),
            q("id"),
            q("v")
        ))
        .unwrap();
        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        tsv.set_column("id", 1_i64).unwrap();
        tsv.set_column("v", 1.0).unwrap();
        tsv.insert_row().unwrap();
        tsv.end_transaction().unwrap();

        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        for i in 2..5000_i64 {
            tsv.set_column("id", i).unwrap();
            if i == 4000 {
                tsv.set_column_to_null("v").unwrap();
            } else {
                tsv.set_column("v", i as f64).unwrap();
            }
            tsv.insert_row().unwrap();
        }
        let err = tsv
            .prepare_commit()
            .expect_err("NULL in a NOT NULL column must fail the load");
        if b == daf_storages::db::Backend::Mysql {
            // LOCAL loads downgrade this to a warning; daf refuses it.
            assert!(err.to_string().contains("NOT NULL"), "{err}");
        }
        tsv.abort_transaction().unwrap();
        let mut db = t.db();
        assert_eq!(count(&mut db, &table), 1, "{}", t.url);
    }
}

/// Duplicate keys: MariaDB's bulk path replaces the row (as `LOAD DATA ...
/// REPLACE`); PostgreSQL `COPY` and SQLite inserts refuse the whole load.
#[test]
fn tsv_duplicate_keys_replace_on_mysql_and_fail_elsewhere() {
    for t in targets() {
        let mut tsv = t.tsv();
        let table = unique_name("daf_dup");
        let _d = Dropper(&t, table.clone());
        let b = tsv.backend().unwrap();
        let q = |n: &str| daf_storages::db::quote_ident(b, n).unwrap();
        tsv.execute_sql(&format!(
            "CREATE TABLE {} ({} BIGINT PRIMARY KEY, {} VARCHAR(20))",
            q(&table),
            q("id"),
            q("s")
        ))
        .unwrap();
        for (rows, label) in [
            (vec![(1_i64, "old"), (2, "two")], "first"),
            (vec![(1, "new"), (3, "three")], "second"),
        ] {
            tsv.start_transaction().unwrap();
            tsv.set_table_for_insert(&table).unwrap();
            for (id, s) in rows {
                tsv.set_column("id", id).unwrap();
                tsv.set_column("s", s).unwrap();
                tsv.insert_row().unwrap();
            }
            let r = tsv.prepare_commit();
            if label == "second" && b != daf_storages::db::Backend::Mysql {
                assert!(r.is_err(), "{}: duplicate key must fail the load", t.url);
                tsv.abort_transaction().unwrap();
            } else {
                r.unwrap();
                tsv.end_transaction().unwrap();
            }
        }
        tsv.set_table_for_query(&table).unwrap();
        tsv.out_column("s").unwrap();
        tsv.order_by("id").unwrap();
        tsv.query().unwrap();
        let mut got = Vec::new();
        while tsv.next().unwrap() {
            got.push(tsv.get_column_by_pos::<String>(0).unwrap());
        }
        tsv.finish_query();
        if b == daf_storages::db::Backend::Mysql {
            assert_eq!(got, ["new", "two", "three"]);
        } else {
            assert_eq!(got, ["old", "two"], "{}", t.url);
        }
    }
}

/// The server's count of `LOAD DATA` statements run (all sessions).
fn mysql_com_load(db: &mut DbStorage) -> i64 {
    db.set_table_for_query("information_schema.GLOBAL_STATUS")
        .unwrap();
    db.out_column("VARIABLE_VALUE").unwrap();
    db.set_query_where("VARIABLE_NAME = :n").unwrap();
    db.cond_param("n", "COM_LOAD").unwrap();
    db.query().unwrap();
    assert!(db.next().unwrap(), "Com_load status missing");
    let v: String = db.get_column_by_pos(0).unwrap();
    db.finish_query();
    v.parse().unwrap()
}

/// Each backend's native bulk path really runs: on MariaDB the server counts
/// a `LOAD DATA` statement (`Com_load`) and reports its `Skipped:` summary,
/// which only `LOAD DATA` produces.
#[test]
fn tsv_loads_through_each_native_bulk_path() {
    use daf_storages::db::{Backend, BulkMethod};
    for t in targets() {
        let mut tsv = t.tsv();
        let table = unique_name("daf_path");
        let _d = Dropper(&t, table.clone());
        create(
            &mut tsv,
            &table,
            &[("id", DbKind::I64), ("s", DbKind::String)],
            "",
        );
        let b = tsv.backend().unwrap();
        let mut db = t.db();
        let before = (b == Backend::Mysql).then(|| mysql_com_load(&mut db));
        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        for i in 0..3_i64 {
            tsv.set_column("id", i).unwrap();
            tsv.set_column("s", format!("row\t{i}\\N")).unwrap();
            tsv.insert_row().unwrap();
        }
        tsv.prepare_commit().unwrap();
        // Not visible before the commit.
        assert_eq!(count(&mut db, &table), 0, "{}", t.url);
        tsv.end_transaction().unwrap();
        assert_eq!(count(&mut db, &table), 3, "{}", t.url);
        let loads = tsv.last_loads();
        assert_eq!(loads.len(), 1);
        assert_eq!(loads[0].table, table);
        assert_eq!(loads[0].rows, 3);
        let want = match b {
            Backend::Mysql => BulkMethod::MysqlLoadDataLocalInfile,
            Backend::Postgres => BulkMethod::PostgresCopy,
            _ => BulkMethod::SqliteInserts,
        };
        assert_eq!(loads[0].method, want, "{}", t.url);
        if let Some(before) = before {
            assert!(
                loads[0].server_info.contains("Records: 3")
                    && loads[0].server_info.contains("Skipped: 0")
                    && loads[0].server_info.contains("Warnings: 0"),
                "{}",
                loads[0].server_info
            );
            let after = mysql_com_load(&mut db);
            assert!(after > before, "Com_load {before} -> {after}");
        }
        // An aborted load leaves nothing behind.
        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        tsv.set_column("id", 9_i64).unwrap();
        tsv.set_column("s", "gone").unwrap();
        tsv.insert_row().unwrap();
        tsv.prepare_commit().unwrap();
        tsv.abort_transaction().unwrap();
        assert_eq!(count(&mut db, &table), 3, "{}", t.url);
    }
}

#[test]
fn persistence_protocol_through_the_registry() {
    for t in targets() {
        let mut reg = daf_storages::StorageRegistry::with_defaults();
        reg.set_db_auth((*t.auth).clone());
        let table = unique_name("daf_reg");
        let _d = Dropper(&t, table.clone());
        let mut db = t.db();
        create(&mut db, &table, &[("id", DbKind::I64)], "");
        for name in ["DbStorage", "DbTsvStorage"] {
            let mut s = reg.create(name).unwrap();
            assert_eq!(s.storage_name(), name);
            s.set_persist_location(&LogicalLocation::literal(&t.url))
                .unwrap();
            s.start_transaction().unwrap();
            if let Some(d) = s.as_any_mut().downcast_mut::<DbStorage>() {
                d.set_table_for_insert(&table).unwrap();
                d.set_column("id", 1_i64).unwrap();
                d.insert_row().unwrap();
            } else {
                let d = s.as_any_mut().downcast_mut::<DbTsvStorage>().unwrap();
                d.set_table_for_insert(&table).unwrap();
                d.set_column("id", 2_i64).unwrap();
                d.insert_row().unwrap();
            }
            s.prepare_commit().unwrap();
            s.end_transaction().unwrap();
        }
        assert_eq!(count(&mut db, &table), 2);
    }
}

#[test]
fn tsv_policy_temp_path_and_save_temp() {
    for t in targets() {
        let table = unique_name("daf_pol");
        let _d = Dropper(&t, table.clone());
        let mut db = t.db();
        create(&mut db, &table, &[("id", DbKind::I64)], "");
        let keep = tempfile::tempdir().unwrap();
        let mut policy = daf_base::Policy::new();
        policy
            .set("TempPath", keep.path().display().to_string())
            .unwrap();
        policy.set("SaveTemp", true).unwrap();
        let mut s = DbTsvStorage::with_auth(t.auth.clone());
        s.set_policy(Some(&policy)).unwrap();
        s.set_persist_location(&LogicalLocation::literal(&t.url))
            .unwrap();
        s.start_transaction().unwrap();
        s.set_table_for_insert(&table).unwrap();
        s.set_column("id", 42_i64).unwrap();
        s.insert_row().unwrap();
        s.prepare_commit().unwrap();
        s.end_transaction().unwrap();
        let files: Vec<_> = std::fs::read_dir(keep.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "42\n");
        // Without SaveTemp the file is gone after commit (and after abort).
        let mut policy = daf_base::Policy::new();
        policy
            .set("TempPath", keep.path().display().to_string())
            .unwrap();
        let mut s = DbTsvStorage::with_auth(t.auth.clone());
        s.set_policy(Some(&policy)).unwrap();
        s.set_persist_location(&LogicalLocation::literal(&t.url))
            .unwrap();
        for commit in [true, false] {
            s.start_transaction().unwrap();
            s.set_table_for_insert(&table).unwrap();
            s.set_column("id", 7_i64).unwrap();
            s.insert_row().unwrap();
            if commit {
                s.prepare_commit().unwrap();
                s.end_transaction().unwrap();
            } else {
                s.abort_transaction().unwrap();
            }
            assert_eq!(std::fs::read_dir(keep.path()).unwrap().count(), 1);
        }
        assert_eq!(count(&mut db, &table), 2, "{}", t.url);
    }
}

#[test]
fn connection_errors_name_host_port_and_hide_passwords() {
    let mut auth = DbAuth::new();
    auth.add("127.0.0.1", 1, "someone", "hunter2-secret");
    let auth = Arc::new(auth);
    for url in ["postgresql://127.0.0.1:1/test", "mysql://127.0.0.1:1/test"] {
        let e = DbStorage::open_url(url, Some(auth.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("127.0.0.1:1"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    let e = DbStorage::open_url("postgresql://127.0.0.1:2/test", Some(auth.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no database credentials for 127.0.0.1:2"), "{e}");
    let e = DbStorage::open_url("pg://nowhere", Some(auth))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"pg://nowhere\""), "{e}");
    // Retrieving from an SQLite file that does not exist is NotFound.
    let mut s = DbStorage::new();
    let r = s.set_retrieve_location(&LogicalLocation::literal("sqlite:///nonexistent/dir/x.db"));
    assert!(matches!(r, Err(StorageError::NotFound { .. })), "{r:?}");
}
