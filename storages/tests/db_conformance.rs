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

// ----- issue 18: outcomes, floats, deployable connections ---------------

fn backend_of(t: &Target) -> daf_storages::db::Backend {
    daf_storages::db::DbUrl::parse(&t.url).unwrap().backend
}

/// Ends the server session `id` from a second connection (the test's own
/// "operator"): `pg_terminate_backend` on PostgreSQL, `KILL` on MariaDB.
fn kill_session(t: &Target, id: i64) {
    use daf_storages::db::Backend;
    let mut op = t.db();
    match backend_of(t) {
        Backend::Postgres => {
            op.execute_sql(&format!("SELECT pg_terminate_backend({id})"))
                .unwrap();
            // Wait until the backend is really gone.
            for _ in 0..50 {
                op.set_table_for_query("pg_stat_activity").unwrap();
                op.out_column("pid").unwrap();
                op.cond_param("id", id as i32).unwrap();
                op.set_query_where("pid = :id").unwrap();
                op.query().unwrap();
                let alive = op.next().unwrap();
                op.finish_query();
                if !alive {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Backend::Mysql => {
            op.execute_sql(&format!("KILL {id}")).unwrap();
        }
        Backend::Sqlite => unreachable!("SQLite has no server session"),
    }
}

fn keyed_table(db: &mut DbStorage, table: &str) {
    let b = db.backend().unwrap();
    create(
        db,
        table,
        &[("id", DbKind::I64), ("x", DbKind::F64)],
        &format!(
            ", PRIMARY KEY ({})",
            daf_storages::db::quote_ident(b, "id").unwrap()
        ),
    );
}

fn ids(db: &mut DbStorage, table: &str) -> Vec<i64> {
    db.set_table_for_query(table).unwrap();
    db.out_column("id").unwrap();
    db.order_by("id").unwrap();
    db.query().unwrap();
    let mut out = Vec::new();
    while db.next().unwrap() {
        out.push(db.get_column_by_pos::<i64>(0).unwrap());
    }
    db.finish_query();
    out
}

/// One meaning of a failed statement on every backend: the transaction is
/// doomed — later statements are refused, `end_transaction` is an error and
/// commits nothing (PostgreSQL's own rule, now SQLite's and MariaDB's too).
#[test]
fn failed_statement_dooms_the_transaction_on_every_backend() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_doom");
        let _d = Dropper(&t, table.clone());
        keyed_table(&mut db, &table);
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        db.insert_row().unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("x", 2.0).unwrap();
        let dup = db.insert_row().unwrap_err();
        assert!(
            matches!(dup, StorageError::Db(DbError::Sql { .. })),
            "{}: {dup}",
            t.url
        );
        db.set_column("id", 2_i64).unwrap();
        db.set_column("x", 3.0).unwrap();
        let refused = db.insert_row().unwrap_err();
        assert!(
            matches!(
                refused,
                StorageError::Db(DbError::TransactionAborted { .. })
            ),
            "{}: {refused}",
            t.url
        );
        let end = db.end_transaction().unwrap_err();
        assert!(
            matches!(end, StorageError::Db(DbError::TransactionAborted { .. })),
            "{}: {end}",
            t.url
        );
        assert!(end.to_string().contains("not committed"), "{end}");
        // Nothing of it was committed: the row before the failure is gone.
        assert_eq!(ids(&mut db, &table), Vec::<i64>::new(), "{}", t.url);
        // The storage is usable again.
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 7_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();
        assert_eq!(ids(&mut db, &table), vec![7], "{}", t.url);
        // A failed query dooms it too; abort_transaction clears it.
        db.start_transaction().unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("no_such_column").unwrap();
        assert!(db.query().is_err());
        db.finish_query();
        assert!(db.execute_sql("SELECT 1").is_err(), "{}", t.url);
        db.abort_transaction().unwrap();
        assert_eq!(ids(&mut db, &table), vec![7], "{}", t.url);
    }
}

/// MariaDB DbTsv used to commit the load on one connection and then fail the
/// COMMIT of another (rows committed, error returned). A killed storage
/// session now changes nothing on any backend: one transaction, one outcome.
#[test]
fn tsv_commit_has_one_outcome_even_after_the_session_was_killed() {
    for t in targets() {
        let mut s = t.tsv();
        let table = unique_name("daf_one");
        let _d = Dropper(&t, table.clone());
        keyed_table(&mut s, &table);
        s.start_transaction().unwrap();
        s.set_table_for_insert(&table).unwrap();
        for i in 0..100_i64 {
            s.set_column("id", i).unwrap();
            s.set_column("x", i as f64).unwrap();
            s.insert_row().unwrap();
        }
        if let Some(id) = s.session_id().unwrap() {
            kill_session(&t, id);
        }
        s.end_transaction()
            .unwrap_or_else(|e| panic!("{}: {e}", t.url));
        assert_eq!(ids(&mut t.db(), &table).len(), 100, "{}", t.url);
        // A duplicate key in the load: nothing is committed (MariaDB's
        // REPLACE load replaces instead; that is its documented meaning).
        s.start_transaction().unwrap();
        s.set_table_for_insert(&table).unwrap();
        for i in [500_i64, 500] {
            s.set_column("id", i).unwrap();
            s.set_column("x", 0.5).unwrap();
            s.insert_row().unwrap();
        }
        let r = s.end_transaction();
        let n = ids(&mut t.db(), &table).len();
        if backend_of(&t) == daf_storages::db::Backend::Mysql {
            r.unwrap();
            assert_eq!(n, 101);
        } else {
            assert!(r.is_err(), "{}", t.url);
            assert_eq!(n, 100, "{}", t.url);
        }
    }
}

/// A killed connection: between transactions the next transaction
/// reconnects; inside one, a clear "connection lost" error, nothing
/// committed, and the next transaction works.
#[test]
fn killed_connections_reconnect_at_the_next_transaction() {
    for t in targets() {
        if backend_of(&t) == daf_storages::db::Backend::Sqlite {
            continue; // embedded: no connection to lose
        }
        let mut db = t.db();
        let table = unique_name("daf_kill");
        let _d = Dropper(&t, table.clone());
        keyed_table(&mut db, &table);
        let first = db.session_id().unwrap().unwrap();
        kill_session(&t, first);
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();
        let second = db.session_id().unwrap().unwrap();
        assert_ne!(first, second, "{}: a new session", t.url);
        assert_eq!(ids(&mut db, &table), vec![1]);

        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 2_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        db.insert_row().unwrap();
        kill_session(&t, second);
        db.set_column("id", 3_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        let lost = db.insert_row().unwrap_err();
        assert!(
            matches!(lost, StorageError::Db(DbError::ConnectionLost { .. })),
            "{}: {lost}",
            t.url
        );
        assert!(lost.to_string().contains("reconnects"), "{lost}");
        assert!(db.end_transaction().is_err());
        assert_eq!(ids(&mut db, &table), vec![1], "{}", t.url);
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 4_i64).unwrap();
        db.set_column("x", 1.0).unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();
        assert_eq!(ids(&mut db, &table), vec![1, 4], "{}", t.url);
    }
}

/// A server that accepts TCP and never answers: `connect_timeout` (in the
/// location) ends the wait with a clear error; statement timeouts end a
/// statement that takes too long, and the storage reconnects afterwards.
#[test]
fn timeouts_from_the_location() {
    use std::time::{Duration, Instant};
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for s in silent.incoming().flatten() {
                held.lock().unwrap().push(s); // accept, never answer
            }
        });
    }
    let mut auth = DbAuth::new();
    auth.add("127.0.0.1", port, "nobody", "pw-not-shown");
    let auth = Arc::new(auth);
    for scheme in ["postgresql", "mysql"] {
        let url = format!("{scheme}://127.0.0.1:{port}/db?connect_timeout=1");
        let t0 = Instant::now();
        let e = DbStorage::open_url(&url, Some(auth.clone())).unwrap_err();
        let waited = t0.elapsed();
        assert!(waited < Duration::from_secs(10), "{url}: {waited:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("connect_timeout") && msg.contains(&port.to_string()),
            "{msg}"
        );
        assert!(!msg.contains("pw-not-shown"));
    }
    assert!(
        held.lock().unwrap().len() >= 2,
        "the silent server saw both"
    );

    for t in targets() {
        let sleep = match backend_of(&t) {
            daf_storages::db::Backend::Postgres => "SELECT pg_sleep(5)",
            daf_storages::db::Backend::Mysql => "SELECT SLEEP(5)",
            daf_storages::db::Backend::Sqlite => continue, // embedded: no server to wait for
        };
        let url = format!("{}?statement_timeout=0.5", t.url);
        let mut db = DbStorage::open_url(&url, Some(t.auth.clone())).unwrap();
        let t0 = Instant::now();
        let e = db.execute_sql(sleep).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(4), "{url}");
        assert!(
            matches!(&e, StorageError::Db(DbError::ConnectionLost { message, .. }) if message.contains("statement_timeout")),
            "{url}: {e}"
        );
        // The next statement reconnects.
        db.execute_sql("SELECT 1")
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

/// NaN and ±inf catalogs are writable and readable on every backend (the
/// float policy in README and `daf_storages::db`): NaN reads back as NaN
/// everywhere; ±inf reads back as ±inf on PostgreSQL and SQLite and as NaN
/// on MariaDB/MySQL (no infinities there); f32::MAX is exact through both
/// storages; −0.0 keeps its sign on PostgreSQL and reads back as +0.0 on
/// SQLite and MariaDB/MySQL.
#[test]
fn nan_and_infinity_catalogs_on_every_backend() {
    use daf_storages::db::Backend;
    let values: [(f64, f32); 6] = [
        (f64::NAN, f32::NAN),
        (f64::INFINITY, f32::INFINITY),
        (f64::NEG_INFINITY, f32::NEG_INFINITY),
        (-0.0, -0.0),
        (f64::MAX, f32::MAX),
        (f64::MIN_POSITIVE, f32::MIN),
    ];
    for t in targets() {
        let b = backend_of(&t);
        for tsv in [false, true] {
            let table = unique_name("daf_nan");
            let _d = Dropper(&t, table.clone());
            let mut db = t.db();
            create(
                &mut db,
                &table,
                &[("id", DbKind::I64), ("d", DbKind::F64), ("f", DbKind::F32)],
                "",
            );
            let write = |s: &mut dyn Storage| {
                s.start_transaction().unwrap();
                for (i, (d, f)) in values.iter().enumerate() {
                    if let Some(db) = s.as_any_mut().downcast_mut::<DbStorage>() {
                        db.set_table_for_insert(&table).unwrap();
                        db.set_column("id", i as i64).unwrap();
                        db.set_column("d", *d).unwrap();
                        db.set_column("f", *f).unwrap();
                        db.insert_row().unwrap();
                    } else {
                        let db = s.as_any_mut().downcast_mut::<DbTsvStorage>().unwrap();
                        db.set_table_for_insert(&table).unwrap();
                        db.set_column("id", i as i64).unwrap();
                        db.set_column("d", *d).unwrap();
                        db.set_column("f", *f).unwrap();
                        db.insert_row().unwrap();
                    }
                }
                s.end_transaction()
            };
            let r = if tsv {
                write(&mut t.tsv())
            } else {
                write(&mut t.db())
            };
            r.unwrap_or_else(|e| panic!("{} tsv={tsv}: {e}", t.url));
            db.set_table_for_query(&table).unwrap();
            for c in ["d", "f"] {
                db.out_column(c).unwrap();
            }
            db.order_by("id").unwrap();
            db.query().unwrap();
            let mut got = Vec::new();
            while db.next().unwrap() {
                got.push((
                    db.get_column_by_pos::<f64>(0).unwrap(),
                    db.get_column_by_pos::<f32>(1).unwrap(),
                ));
            }
            db.finish_query();
            let ctx = format!("{} tsv={tsv}", t.url);
            assert_eq!(got.len(), 6, "{ctx}");
            assert!(got[0].0.is_nan() && got[0].1.is_nan(), "{ctx}: {got:?}");
            if b == Backend::Mysql {
                assert!(got[1].0.is_nan() && got[2].1.is_nan(), "{ctx}: {got:?}");
            } else {
                assert_eq!(got[1], (f64::INFINITY, f32::INFINITY), "{ctx}");
                assert_eq!(got[2], (f64::NEG_INFINITY, f32::NEG_INFINITY), "{ctx}");
            }
            assert_eq!(got[3].0, 0.0, "{ctx}");
            let neg_zero_kept = got[3].0.is_sign_negative();
            assert_eq!(neg_zero_kept, b == Backend::Postgres, "{ctx}: −0.0 {got:?}");
            assert_eq!(got[4], (f64::MAX, f32::MAX), "{ctx}");
            assert_eq!(got[5], (f64::MIN_POSITIVE, f32::MIN), "{ctx}");
        }
    }
}

/// SQLite no longer takes a misspelled (double-quoted) column for a string
/// literal: an unknown column is an error on every backend.
#[test]
fn misspelled_columns_are_errors_on_every_backend() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_dqs");
        let _d = Dropper(&t, table.clone());
        keyed_table(&mut db, &table);
        db.execute_sql(&format!("INSERT INTO {table} (id, x) VALUES (1, 2.0)"))
            .unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("flx").unwrap();
        let e = db.query().unwrap_err();
        assert!(
            matches!(e, StorageError::Db(DbError::Sql { .. })),
            "{}: {e}",
            t.url
        );
        db.finish_query();
        db.set_table_for_query(&table).unwrap();
        db.order_by("idd").unwrap();
        assert!(db.query().is_err(), "{}", t.url);
    }
}

/// The case policy: LSST's mixed-case names (`sourceId`, `psfFlux`) work the
/// same on every backend, whether the table was made by daf or by plain
/// unquoted SQL, and results keep the caller's spelling.
#[test]
fn mixed_case_lsst_names_behave_alike() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_Case");
        let _d = Dropper(&t, table.clone());
        let real = if backend_of(&t) == daf_storages::db::Backend::Mysql {
            "DOUBLE"
        } else {
            "DOUBLE PRECISION"
        };
        // Plain SQL, unquoted, as a user or LSST's schema files write it.
        db.execute_sql(&format!(
            "CREATE TABLE {table} (sourceId BIGINT, psfFlux {real})"
        ))
        .unwrap();
        assert!(db.table_exists(&table).unwrap(), "{}", t.url);
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        for i in 0..3_i64 {
            db.set_column("sourceId", i).unwrap();
            db.set_column("psfFlux", i as f64 * 10.0).unwrap();
            db.insert_row().unwrap();
        }
        db.end_transaction().unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("sourceId").unwrap();
        db.out_column(&format!("{table}.psfFlux")).unwrap();
        db.cond_param("lo", 5.0).unwrap();
        db.set_query_where("psfFlux > :lo").unwrap();
        db.order_by("sourceId DESC").unwrap();
        db.query().unwrap();
        assert_eq!(db.result_columns(), ["sourceId", "psfFlux"], "{}", t.url);
        let mut got = Vec::new();
        while db.next().unwrap() {
            got.push((
                db.get_column_by_pos::<i64>(0).unwrap(),
                db.get_column_by_pos::<f64>(1).unwrap(),
            ));
        }
        assert_eq!(got, vec![(2, 20.0), (1, 10.0)], "{}", t.url);
        db.finish_query();
        let mut tsv = t.tsv();
        tsv.start_transaction().unwrap();
        tsv.set_table_for_insert(&table).unwrap();
        tsv.set_column("sourceId", 9_i64).unwrap();
        tsv.set_column("psfFlux", 1.0).unwrap();
        tsv.insert_row().unwrap();
        tsv.end_transaction().unwrap();
        assert_eq!(count(&mut db, &table), 4, "{}", t.url);
    }
}

/// LSST's isExpr forms (`outColumn(expr, true)`, `setTableForQuery(expr,
/// true)`) and `orderBy`/`groupBy` that append.
#[test]
fn expression_columns_and_appending_order_and_group() {
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_expr");
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
        db.insert_rows(&table, &["id", "band", "flux"], 6, |i, row| {
            row.push(daf_storages::db::DbValue::I64(i as i64));
            row.push(daf_storages::db::DbValue::String(
                if i % 2 == 0 { "g" } else { "r" }.into(),
            ));
            row.push(daf_storages::db::DbValue::F64(i as f64));
            Ok(())
        })
        .unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("band").unwrap();
        let n = db.out_param_expr::<i64>("count(*)").unwrap();
        let s = db.out_expr("sum(flux) * 2").unwrap();
        db.group_by("band").unwrap();
        db.order_by("band DESC").unwrap();
        db.query().unwrap();
        let mut got = Vec::new();
        while db.next().unwrap() {
            got.push((
                db.get_column_by_pos::<String>(0).unwrap(),
                db.get_column_by_pos::<i64>(n).unwrap(),
                db.get_column_by_pos::<f64>(s).unwrap(),
            ));
        }
        assert_eq!(
            got,
            vec![("r".to_string(), 3, 18.0), ("g".to_string(), 3, 12.0)],
            "{}",
            t.url
        );
        db.finish_query();
        // order_by twice appends: band, then id descending.
        db.set_table_for_query(&table).unwrap();
        db.out_column("id").unwrap();
        db.order_by("band").unwrap();
        db.order_by("id DESC").unwrap();
        db.query().unwrap();
        let mut order = Vec::new();
        while db.next().unwrap() {
            order.push(db.get_column_by_pos::<i64>(0).unwrap());
        }
        assert_eq!(order, vec![4, 2, 0, 5, 3, 1], "{}", t.url);
        db.finish_query();
        // A table expression (a subquery with an alias), as isExpr.
        db.set_table_expr_for_query(&format!("(SELECT id * 10 AS v FROM {table}) sub"))
            .unwrap();
        db.out_expr("max(v)").unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap());
        assert_eq!(db.get_column_by_pos::<i64>(0).unwrap(), 50, "{}", t.url);
    }
}

/// DateTime columns: BIGINT nanoseconds TAI on every backend, and on
/// MariaDB/MySQL also `DATETIME(6)` columns (LSST's binding), read and
/// written as `DateTime` (µs precision, UTC).
#[test]
fn datetime_columns_read_and_write() {
    use daf_storages::db::Backend;
    for t in targets() {
        let mut db = t.db();
        let table = unique_name("daf_dt");
        let _d = Dropper(&t, table.clone());
        let ty = match backend_of(&t) {
            Backend::Mysql => "DATETIME(6)",
            _ => "BIGINT",
        };
        db.execute_sql(&format!("CREATE TABLE {table} (id BIGINT, t {ty})"))
            .unwrap();
        let when: DateTime = "2019-05-04T03:02:01.123456Z".parse().unwrap();
        db.start_transaction().unwrap();
        db.set_table_for_insert(&table).unwrap();
        db.set_column("id", 1_i64).unwrap();
        db.set_column("t", when).unwrap();
        db.insert_row().unwrap();
        db.set_column("id", 2_i64).unwrap();
        db.set_column_to_null("t").unwrap();
        db.insert_row().unwrap();
        db.end_transaction().unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_param::<DateTime>("t").unwrap();
        db.order_by("id").unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap());
        let got: DateTime = db.get_column_by_pos(0).unwrap();
        assert_eq!(
            got.to_iso(Timescale::Utc),
            when.to_iso(Timescale::Utc),
            "{}",
            t.url
        );
        assert!(db.next().unwrap());
        assert!(db.column_is_null(0).unwrap());
        db.finish_query();
        if backend_of(&t) == Backend::Mysql {
            // A value written by plain SQL reads back as the same instant.
            db.execute_sql(&format!(
                "INSERT INTO {table} VALUES (3, '2000-01-01 12:00:00')"
            ))
            .unwrap();
            db.set_table_for_query(&table).unwrap();
            db.out_column("t").unwrap();
            db.set_query_where("id = 3").unwrap();
            db.query().unwrap();
            assert!(db.next().unwrap());
            let got: DateTime = db.get_column_by_pos(0).unwrap();
            assert_eq!(got.to_iso(Timescale::Utc), "2000-01-01T12:00:00.000000000Z");
        }
    }
}

/// TLS: `sslmode` in the location, asserted over the very session daf uses
/// (`DbStorage::tls_cipher`: the server's `Ssl_cipher` / `pg_stat_ssl`).
/// PostgreSQL (ssl=on locally): `require` is encrypted, `disable` is plain,
/// `verify-full` against its self-signed certificate fails clearly.
/// MariaDB (given TLS by `.ci/setup/10-mariadb-tls.sh`; without it this
/// skips locally and fails in CI): `require`, and `verify-ca` /
/// `verify-full` against `DAF_TEST_MYSQL_TLS_CA`, encrypt both the storage's
/// own session (sqlx) and the `LOAD DATA` connection (the mysql crate), and a
/// load over them commits; a CA that did not sign the server certificate
/// (`DAF_TEST_MYSQL_TLS_WRONG_CA`) is refused with `DbError::Connect`.
#[test]
fn tls_sslmode_from_the_location() {
    use daf_base::testing::available;
    use daf_storages::db::Backend;
    for t in targets() {
        let b = backend_of(&t);
        if b == Backend::Sqlite {
            continue; // embedded: no connection to encrypt
        }
        let url = |q: &str| format!("{}?{q}", t.url);
        let open = |q: &str| DbStorage::open_url(&url(q), Some(t.auth.clone()));
        let mut plain = open("sslmode=disable").unwrap();
        assert_eq!(plain.tls_cipher().unwrap(), None, "{}", t.url);
        if b == Backend::Postgres {
            let mut db = open("sslmode=require").unwrap();
            let cipher = db.tls_cipher().unwrap().unwrap_or_default();
            assert!(!cipher.is_empty(), "{}: encrypted", t.url);
            let e = open("sslmode=verify-full").unwrap_err().to_string();
            assert!(e.contains("cannot connect"), "{e}");
            continue;
        }
        let server_has_tls = {
            let mut db = t.db();
            db.set_table_expr_for_query("(SELECT @@have_ssl AS h) x")
                .unwrap();
            db.out_column("h").unwrap();
            db.query().unwrap();
            db.next().unwrap();
            db.get_column_by_pos::<String>(0).unwrap() == "YES"
        };
        if !server_has_tls {
            // Without TLS on the server, `require` is a clear refusal.
            let Err(e) = open("sslmode=require") else {
                panic!("{}: no TLS, yet connected", t.url)
            };
            let m = e.to_string().to_lowercase();
            assert!(m.contains("tls") || m.contains("ssl"), "{m}");
        }
        if !available(
            server_has_tls,
            &format!(
                "{} has no TLS (have_ssl is not YES; .ci/setup/10-mariadb-tls.sh gives it one)",
                t.url
            ),
        ) {
            continue;
        }
        let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        let mut modes = vec!["sslmode=require".to_string()];
        let ca = env("DAF_TEST_MYSQL_TLS_CA");
        if available(
            ca.is_some(),
            "DAF_TEST_MYSQL_TLS_CA not set: MariaDB certificate verification not tested",
        ) {
            let ca = ca.unwrap();
            modes.push(format!("sslmode=verify-ca&sslrootcert={ca}"));
            modes.push(format!("sslmode=verify-full&sslrootcert={ca}"));
        }
        for q in &modes {
            let mut db = open(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let cipher = db.tls_cipher().unwrap().unwrap_or_default();
            assert!(!cipher.is_empty(), "{q}: the sqlx session is encrypted");
            let mut tsv = DbTsvStorage::open_url(&url(q), Some(t.auth.clone()))
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let own = tsv.tls_cipher().unwrap().unwrap_or_default();
            assert!(
                !own.is_empty(),
                "{q}: the DbTsvStorage session is encrypted"
            );
            let load = tsv.bulk_load_tls_cipher().unwrap().unwrap_or_default();
            assert!(
                !load.is_empty(),
                "{q}: the LOAD DATA connection is encrypted"
            );
            // A load over that encrypted connection commits.
            let table = unique_name("daf_tls");
            let _d = Dropper(&t, table.clone());
            keyed_table(&mut db, &table);
            tsv.start_transaction().unwrap();
            tsv.set_table_for_insert(&table).unwrap();
            for i in 0..2_i64 {
                tsv.set_column("id", i).unwrap();
                tsv.set_column("x", 0.5).unwrap();
                tsv.insert_row().unwrap();
            }
            tsv.prepare_commit().unwrap();
            tsv.end_transaction().unwrap();
            assert_eq!(count(&mut db, &table), 2, "{q}");
            assert_eq!(
                tsv.last_loads()[0].method,
                daf_storages::db::BulkMethod::MysqlLoadDataLocalInfile
            );
            let after = tsv.bulk_load_tls_cipher().unwrap();
            assert_eq!(
                after.as_deref(),
                Some(load.as_str()),
                "{q}: same connection"
            );
        }
        let wrong = env("DAF_TEST_MYSQL_TLS_WRONG_CA");
        if available(
            wrong.is_some(),
            "DAF_TEST_MYSQL_TLS_WRONG_CA not set: refusal of a wrong MariaDB CA not tested",
        ) {
            let wrong = wrong.unwrap();
            for mode in ["verify-ca", "verify-full"] {
                let q = format!("sslmode={mode}&sslrootcert={wrong}");
                for e in [
                    open(&q).err(),
                    DbTsvStorage::open_url(&url(&q), Some(t.auth.clone())).err(),
                ] {
                    let e = e.unwrap_or_else(|| panic!("{q}: a wrong CA was accepted"));
                    match &e {
                        StorageError::Db(DbError::Connect { message, .. }) => {
                            let m = message.to_lowercase();
                            assert!(
                                m.contains("certificate") || m.contains("issuer"),
                                "{q}: {e}"
                            );
                            eprintln!("{q}: refused as expected: {e}");
                        }
                        other => panic!("{q}: want DbError::Connect, got {other:?}"),
                    }
                }
            }
        }
    }
}

/// The MariaDB server logs no aborted connection when a storage is dropped
/// (counter `Aborted_clients`; tried a few times since other tests share
/// the server).
#[test]
fn dropped_storages_close_their_connections_cleanly() {
    for t in targets() {
        if backend_of(&t) != daf_storages::db::Backend::Mysql {
            continue;
        }
        let aborted = || {
            let mut db = t.db();
            db.set_table_expr_for_query("information_schema.GLOBAL_STATUS")
                .unwrap();
            db.out_expr("VARIABLE_VALUE").unwrap();
            db.set_query_where("VARIABLE_NAME = 'ABORTED_CLIENTS'")
                .unwrap();
            db.query().unwrap();
            db.next().unwrap();
            db.get_column_by_pos::<String>(0)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let mut clean = false;
        for _ in 0..3 {
            let before = aborted();
            for _ in 0..3 {
                let table = unique_name("daf_close");
                let mut s = t.tsv();
                keyed_table(&mut s, &table);
                s.start_transaction().unwrap();
                s.set_table_for_insert(&table).unwrap();
                s.set_column("id", 1_i64).unwrap();
                s.set_column("x", 1.0).unwrap();
                s.insert_row().unwrap();
                s.end_transaction().unwrap();
                s.drop_table(&table).unwrap();
                drop(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            if aborted() == before {
                clean = true;
                break;
            }
        }
        assert!(clean, "Aborted_clients grew on every try");
    }
}

/// A killed process's TSV file is removed by the next run that uses the
/// same temp folder; live processes' files and `SaveTemp` files are kept.
#[test]
fn orphaned_tsv_files_of_killed_processes_are_swept() {
    for t in targets() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let dead = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        let orphan = dir.path().join(format!(".daf-tsv-{dead}-src-AbC123.tsv"));
        let live = dir
            .path()
            .join(format!(".daf-tsv-{}-src-XyZ789.tsv", std::process::id()));
        let other = dir.path().join("daf-src-kept.tsv");
        for p in [&orphan, &live, &other] {
            std::fs::write(p, "1\t2\n").unwrap();
        }
        let table = unique_name("daf_sweep");
        let _d = Dropper(&t, table.clone());
        let mut s = t.tsv();
        keyed_table(&mut s, &table);
        s.set_temp_path(dir.path());
        s.set_save_temp(true);
        s.start_transaction().unwrap();
        s.set_table_for_insert(&table).unwrap();
        s.set_column("id", 1_i64).unwrap();
        s.set_column("x", 1.0).unwrap();
        s.insert_row().unwrap();
        s.end_transaction().unwrap();
        assert!(
            !orphan.exists(),
            "{}: the dead process's file is gone",
            t.url
        );
        assert!(live.exists() && other.exists(), "{}", t.url);
        let saved = s.saved_files().to_vec();
        assert_eq!(saved.len(), 1);
        assert!(saved[0].exists());
        drop(s);
        // The kept file survives the next run's sweep.
        let mut s2 = t.tsv();
        s2.set_temp_path(dir.path());
        s2.start_transaction().unwrap();
        s2.set_table_for_insert(&table).unwrap();
        s2.abort_transaction().unwrap();
        assert!(saved[0].exists(), "{}", t.url);
    }
}
