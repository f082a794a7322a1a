//! PropertySet and SourceCatalog formatters over DbStorage and DbTsvStorage,
//! on every backend (SQLite always; PostgreSQL / MariaDB when
//! `DAF_TEST_POSTGRES_URL` / `DAF_TEST_MYSQL_URL` are set).

use std::sync::Arc;

use daf_base::testing::{test_servers, unique_name};

use daf_base::{Policy, PropertySet};
use daf_formatters::catalog::{Cell, Field, FieldType};
use daf_formatters::{FormatterRegistry, Persistence, SourceCatalog};
use daf_storages::db::{quote_ident, DbAuth, DbKind, DbStorage};
use daf_storages::{LogicalLocation, StorageRegistry};

struct Target {
    url: String,
    auth: DbAuth,
    _dir: tempfile::TempDir,
}

fn targets() -> Vec<Target> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fmt.sqlite3").display());
    let mut out = vec![Target {
        url,
        auth: DbAuth::new(),
        _dir: dir,
    }];
    for server in test_servers() {
        let u = daf_storages::db::DbUrl::parse(&server.url).unwrap();
        let mut auth = DbAuth::new();
        auth.add(&u.host, u.port, server.user, "");
        out.push(Target {
            url: server.url,
            auth,
            _dir: tempfile::tempdir().unwrap(),
        });
    }
    out
}

struct Dropper(String, DbAuth, Vec<String>);
impl Drop for Dropper {
    fn drop(&mut self) {
        if let Ok(mut db) = DbStorage::open_url(&self.0, Some(Arc::new(self.1.clone()))) {
            for t in &self.2 {
                let _ = db.drop_table(t);
            }
        }
    }
}

fn open(t: &Target) -> DbStorage {
    DbStorage::open_url(&t.url, Some(Arc::new(t.auth.clone()))).unwrap()
}

fn create(db: &mut DbStorage, name: &str, cols: &[(&str, DbKind)], not_null: bool) {
    let b = db.backend().unwrap();
    let body: Vec<String> = cols
        .iter()
        .map(|(c, k)| {
            format!(
                "{} {}{}",
                quote_ident(b, c).unwrap(),
                b.column_type(*k),
                if not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    db.execute_sql(&format!(
        "CREATE TABLE {} ({})",
        quote_ident(b, name).unwrap(),
        body.join(", ")
    ))
    .unwrap();
}

fn persistence(t: &Target, policy: Policy) -> Persistence {
    let mut storages = StorageRegistry::with_defaults();
    storages.set_db_auth(t.auth.clone());
    Persistence::new(policy, FormatterRegistry::with_defaults(), storages)
}

fn catalog(n: usize) -> SourceCatalog {
    let mut cat = SourceCatalog::new(vec![
        Field::new("id", FieldType::I64),
        Field::new("ra", FieldType::F64),
        Field::new("flux", FieldType::F32),
        Field::new("nchild", FieldType::I32),
        Field::new("blended", FieldType::Flag),
        Field::new("band", FieldType::String),
    ]);
    for i in 0..n {
        cat.push_row(vec![
            Cell::I64(i as i64 * 7 + 1),
            Cell::F64(10.0 + i as f64 / 3.0),
            Cell::F32(i as f32 * 0.25),
            Cell::I32(i as i32 % 3),
            Cell::Flag(i % 2 == 1),
            Cell::String(format!("band\t{i}")),
        ])
        .unwrap();
    }
    cat
}

const CAT_COLS: [(&str, DbKind); 6] = [
    ("id", DbKind::I64),
    ("ra", DbKind::F64),
    ("flux", DbKind::F32),
    ("nchild", DbKind::I32),
    ("blended", DbKind::Bool),
    ("band", DbKind::String),
];

#[test]
fn property_set_rows_through_both_storages() {
    for t in targets() {
        let table = unique_name("daf_ps");
        let _d = Dropper(t.url.clone(), t.auth.clone(), vec![table.clone()]);
        let mut db = open(&t);
        create(
            &mut db,
            &table,
            &[
                ("visit", DbKind::I64),
                ("exp_time", DbKind::F64),
                ("filter", DbKind::String),
                ("note", DbKind::String),
            ],
            false,
        );
        let mut policy = Policy::new();
        policy
            .set(
                "Formatter.PropertySet.KeyList",
                vec![
                    "visit=visit",
                    "exp_time=exposure.time",
                    "filter=filter",
                    "note=missing.key",
                ],
            )
            .unwrap();
        let p = persistence(&t, policy);
        for (i, storage) in ["DbStorage", "DbTsvStorage"].iter().enumerate() {
            let mut ps = PropertySet::new();
            ps.set("visit", 100_i64 + i as i64).unwrap();
            ps.set("exposure.time", 15.5_f64).unwrap();
            ps.set("filter", "r\\tab\t").unwrap();
            let mut extra = PropertySet::new();
            extra.set("itemName", table.as_str()).unwrap();
            let mut ss = vec![p
                .persist_storage(storage, &LogicalLocation::literal(&t.url))
                .unwrap()];
            p.persist(&ps, &mut ss, &extra).unwrap();
        }
        db.set_table_for_query(&table).unwrap();
        for c in ["visit", "exp_time", "filter", "note"] {
            db.out_column(c).unwrap();
        }
        db.order_by("visit").unwrap();
        db.query().unwrap();
        for v in [100_i64, 101] {
            assert!(db.next().unwrap(), "{}", t.url);
            assert_eq!(db.get_column_by_pos::<i64>(0).unwrap(), v);
            assert_eq!(db.get_column_by_pos::<f64>(1).unwrap(), 15.5);
            assert_eq!(db.get_column_by_pos::<String>(2).unwrap(), "r\\tab\t");
            assert!(db.column_is_null(3).unwrap(), "missing key is NULL");
        }
        assert!(!db.next().unwrap());
    }
}

#[test]
fn property_set_all_leaf_names_and_table_name_policy() {
    for t in targets() {
        let table = unique_name("daf_ps2");
        let _d = Dropper(t.url.clone(), t.auth.clone(), vec![table.clone()]);
        let mut db = open(&t);
        create(
            &mut db,
            &table,
            &[("a", DbKind::I32), ("b_c", DbKind::String)],
            false,
        );
        let mut policy = Policy::new();
        policy
            .set("Formatter.PropertySet.TableName", table.as_str())
            .unwrap();
        let p = persistence(&t, policy);
        let mut ps = PropertySet::new();
        ps.set("a", 3_i32).unwrap();
        ps.set("b.c", "nested").unwrap();
        let mut ss = vec![p
            .persist_storage("DbStorage", &LogicalLocation::literal(&t.url))
            .unwrap()];
        p.persist(&ps, &mut ss, &PropertySet::new()).unwrap();
        db.set_table_for_query(&table).unwrap();
        db.out_column("b_c").unwrap();
        db.query().unwrap();
        assert!(db.next().unwrap());
        assert_eq!(db.get_column_by_pos::<String>(0).unwrap(), "nested");
    }
}

#[test]
fn source_catalog_per_visit_tables_round_trip() {
    for t in targets() {
        let template = unique_name("daf_src_tmpl");
        let prefix = unique_name("daf_src");
        let tables: Vec<String> = [42, 43]
            .iter()
            .map(|v| format!("{prefix}_{v:05}"))
            .collect();
        let mut all = tables.clone();
        all.push(template.clone());
        let _d = Dropper(t.url.clone(), t.auth.clone(), all);
        let mut db = open(&t);
        create(&mut db, &template, &CAT_COLS, false);
        let mut policy = Policy::new();
        policy
            .set(
                "Formatter.SourceCatalog.TableNamePattern",
                format!("{prefix}_%05d(visit)"),
            )
            .unwrap();
        policy
            .set(
                "Formatter.SourceCatalog.TemplateTableName",
                template.as_str(),
            )
            .unwrap();
        policy.set("Formatter.SourceCatalog.OrderBy", "id").unwrap();
        let p = persistence(&t, policy);
        for (visit, storage) in [(42_i64, "DbTsvStorage"), (43, "DbStorage")] {
            let cat = catalog(50 + visit as usize);
            let mut extra = PropertySet::new();
            extra.set("visit", visit).unwrap();
            let loc = LogicalLocation::literal(&t.url);
            let mut ss = vec![p.persist_storage(storage, &loc).unwrap()];
            p.persist(&cat, &mut ss, &extra).unwrap();
            assert!(db.table_exists(&format!("{prefix}_{visit:05}")).unwrap());
            for reader in ["DbStorage", "DbTsvStorage"] {
                let mut rs = vec![p.retrieve_storage(reader, &loc).unwrap()];
                let back: SourceCatalog = p.retrieve_as(&mut rs, &extra).unwrap();
                assert_eq!(back.fields(), cat.fields(), "{}", t.url);
                assert_eq!(
                    back.columns(),
                    cat.columns(),
                    "{} via {storage}/{reader}",
                    t.url
                );
            }
        }
    }
}

fn count_rows(db: &mut DbStorage, table: &str) -> usize {
    db.set_table_for_query(table).unwrap();
    db.query().unwrap();
    let mut n = 0;
    while db.next().unwrap() {
        n += 1;
    }
    db.finish_query();
    n
}

/// Persistence over [DbStorage on the backend, DbTsvStorage on a second
/// (SQLite) database]: all or nothing across both.
#[test]
fn rollback_spans_db_storages() {
    for t in targets() {
        let table = unique_name("daf_rb");
        let _d = Dropper(t.url.clone(), t.auth.clone(), vec![table.clone()]);
        let mut db = open(&t);
        create(&mut db, &table, &CAT_COLS, false);
        let side = tempfile::tempdir().unwrap();
        let good_url = format!("sqlite://{}", side.path().join("good.db").display());
        let bad_url = format!("sqlite://{}", side.path().join("bad.db").display());
        let mut good = DbStorage::open_url(&good_url, None).unwrap();
        create(&mut good, &table, &CAT_COLS, false);
        let mut bad = DbStorage::open_url(&bad_url, None).unwrap();
        create(&mut bad, &table, &CAT_COLS, false);
        // The bad side refuses every insert: its TSV load fails at
        // prepare_commit, after the first storage wrote its rows.
        bad.execute_sql(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON \"{table}\" BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        ))
        .unwrap();

        let mut policy = Policy::new();
        policy
            .set("Formatter.SourceCatalog.TableName", table.as_str())
            .unwrap();
        let p = persistence(&t, policy);
        let cat = catalog(20);

        let mut ss = vec![
            p.persist_storage("DbStorage", &LogicalLocation::literal(&t.url))
                .unwrap(),
            p.persist_storage("DbTsvStorage", &LogicalLocation::literal(&bad_url))
                .unwrap(),
        ];
        let err = p
            .persist(&cat, &mut ss, &PropertySet::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rolled back") && err.contains("refused by test"),
            "{err}"
        );
        assert_eq!(
            count_rows(&mut db, &table),
            0,
            "{}: nothing may stay after the rollback",
            t.url
        );
        assert_eq!(count_rows(&mut bad, &table), 0);

        let mut ss = vec![
            p.persist_storage("DbStorage", &LogicalLocation::literal(&t.url))
                .unwrap(),
            p.persist_storage("DbTsvStorage", &LogicalLocation::literal(&good_url))
                .unwrap(),
        ];
        p.persist(&cat, &mut ss, &PropertySet::new()).unwrap();
        assert_eq!(count_rows(&mut db, &table), 20, "{}", t.url);
        assert_eq!(count_rows(&mut good, &table), 20);
    }
}
