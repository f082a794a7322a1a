//! Errors keep their cause: a butler-level error's `source()` chain reaches
//! the driver's error; an unknown dataset type is an error, not "absent"; a
//! corrupt registry row is a typed error naming the row (SQLite always,
//! PostgreSQL when `DAF_TEST_POSTGRES_URL` is set).

use std::error::Error as _;
use std::path::Path;

use daf_base::data_id;
use daf_butler::file_registry::{
    DatasetRegistry as _, PgFileRegistry, PgLocation, SqliteFileRegistry, REGISTRY_FILE,
};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{ButlerError, Repository};
use daf_mappers::MapperError;
use daf_storages::db::{DbAuth, DbError};

mod common;
use common::{out_butler, ps};

fn make_repo(root: &Path) {
    let m = SimpleMapper::new([(
        "meta",
        SimpleDataset::new(
            "meta/v%(visit)04d_f%(filter)s.json",
            "PropertySet",
            "JsonStorage",
        ),
    )])
    .unwrap();
    Repository::create(root, Some("SimpleMapper"), m.to_args(), &[]).unwrap();
}

/// The first error in `e`'s `source()` chain (itself included) of type `T`.
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

#[test]
fn sqlite_registry_error_reaches_the_rusqlite_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(REGISTRY_FILE), vec![b'x'; 4096]).unwrap();
    let e = SqliteFileRegistry::open(d.path(), true).unwrap_err();
    let ButlerError::Registry { registry, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(registry.ends_with(REGISTRY_FILE), "{registry}");
    let driver = find_in_chain::<rusqlite::Error>(&e).expect("a rusqlite::Error in the chain");
    assert_eq!(
        driver.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase),
        "{driver:?}"
    );
    // The message still says what and where.
    assert!(e.to_string().contains(REGISTRY_FILE), "{e}");
}

#[test]
fn sqlite_busy_is_told_apart_from_a_refused_connection() {
    // SQLITE_BUSY: another connection holds the write lock; the registry's
    // write gives up after its busy timeout... which is long, so provoke
    // BUSY on a plain rusqlite connection with no timeout instead and check
    // the registry error type carries exactly such an error. What matters
    // here is that the two causes below are distinguishable by downcasting.
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("x.sqlite3");
    let a = rusqlite::Connection::open(&db).unwrap();
    a.execute_batch("CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
        .unwrap();
    let b = rusqlite::Connection::open(&db).unwrap();
    let busy = b.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    let e = ButlerError::registry_source(db.display().to_string(), "insert", busy);
    let driver = find_in_chain::<rusqlite::Error>(&e).unwrap();
    assert_eq!(
        driver.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy)
    );
    assert!(find_in_chain::<sqlx::Error>(&e).is_none());

    // A refused PostgreSQL connection: Registry -> DbError::Connect ->
    // sqlx::Error::Io(ConnectionRefused), and no password anywhere.
    let loc = PgLocation::parse(
        "postgresql://nobody@127.0.0.1:1/test?sslmode=disable",
        Some("s"),
    )
    .unwrap();
    let mut auth = DbAuth::new();
    auth.add("127.0.0.1", 1, "nobody", "t0psecret");
    let e = PgFileRegistry::connect(&loc, d.path(), &auth, false).unwrap_err();
    assert!(matches!(e, ButlerError::Registry { .. }), "{e:?}");
    let db_err = find_in_chain::<DbError>(&e).expect("a DbError in the chain");
    assert!(
        matches!(db_err, DbError::Connect { port: 1, .. }),
        "{db_err:?}"
    );
    let sqlx_err = find_in_chain::<sqlx::Error>(&e).expect("a sqlx::Error in the chain");
    let sqlx::Error::Io(io) = sqlx_err else {
        panic!("{sqlx_err:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(find_in_chain::<rusqlite::Error>(&e).is_none());
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        text.push_str(&c.to_string());
        cur = c.source();
    }
    assert!(!text.contains("t0psecret"), "{text}");
}

/// A local server that accepts connections and never answers.
fn silent_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    port
}

#[test]
fn connect_timeout_in_the_location_reaches_the_registry_connection() {
    // Without the location's connect_timeout the attempt would wait for
    // the default 30 s.
    let port = silent_server();
    let loc = PgLocation::parse(
        &format!("postgresql://nobody@127.0.0.1:{port}/test?connect_timeout=0.3&sslmode=disable"),
        Some("s"),
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let e = PgFileRegistry::connect(&loc, d.path(), &DbAuth::new(), false).unwrap_err();
    let waited = t.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no answer within 0.3 s (connect_timeout)"),
        "{msg}"
    );
    assert!(
        matches!(find_in_chain::<DbError>(&e), Some(DbError::Connect { .. })),
        "{e:?}"
    );

    // The mapper's PostgreSQL registry goes through the same layer.
    let t = std::time::Instant::now();
    let e = daf_mappers::PgRegistry::connect(
        &format!("postgresql://nobody@127.0.0.1:{port}/test?connect_timeout=0.3&sslmode=disable"),
        None,
        &DbAuth::new(),
    )
    .unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert!(matches!(e, MapperError::Registry { .. }), "{e:?}");
    assert!(e.to_string().contains("(connect_timeout)"), "{e}");
    assert!(find_in_chain::<sqlx::Error>(&e).is_some(), "{e:?}");

    // A TLS mode the server cannot meet: sslmode=require against a server
    // that answers the TLS request with garbage fails (it does not fall
    // back to plain text as `prefer` would).
    let loc = PgLocation::parse(
        &format!("postgresql://nobody@127.0.0.1:{port}/test?connect_timeout=0.3&sslmode=require"),
        Some("s"),
    )
    .unwrap();
    assert!(PgFileRegistry::connect(&loc, d.path(), &DbAuth::new(), false).is_err());

    // And a bad option is refused when the location is parsed.
    let e = PgLocation::parse("postgresql://h:5432/test?sslmode=sometimes", Some("s")).unwrap_err();
    assert!(e.contains("sslmode"), "{e}");
}

#[test]
fn statement_timeout_in_the_location_reaches_the_registry_connection() {
    let Some(url) = daf_base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    // The registry answers its lookups well within 5 s; the link of the
    // same location runs a statement past it and is cut off.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}statement_timeout=0.5");
    let link = daf_storages::db::PgLink::new(&url, &DbAuth::new()).unwrap();
    assert_eq!(
        link.options().statement_timeout,
        Some(std::time::Duration::from_millis(500))
    );
    let mut conn = link.connect().unwrap();
    let t = std::time::Instant::now();
    let e = link
        .block_on(sqlx::query("SELECT pg_sleep(5)").execute(&mut conn))
        .unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
    assert!(e.to_string().contains("statement_timeout"), "{e}");
    // The file registry accepts the same location and works under it.
    let schema = format!("daf_t_stmt_{}", std::process::id());
    let loc = PgLocation::parse(&url, Some(&schema)).unwrap();
    let d = tempfile::tempdir().unwrap();
    let reg = PgFileRegistry::connect(&loc, d.path(), &DbAuth::new(), true)
        .unwrap()
        .unwrap();
    assert_eq!(reg.count().unwrap(), 0);
    reg.drop_schema().unwrap();
}

#[test]
fn unknown_dataset_type_is_an_error_not_absent() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root);
    let b = out_butler(&root);
    let id = data_id! {visit: 1, filter: "g"};
    b.put(&ps(1), "meta", &id).unwrap();
    assert!(b.dataset_exists("meta", &id).unwrap());
    assert!(!b
        .dataset_exists("meta", &data_id! {visit: 9, filter: "g"})
        .unwrap());
    let e = b.dataset_exists("nosuchtype", &id).unwrap_err();
    assert!(
        matches!(&e, ButlerError::Mapper(MapperError::UnknownDatasetType { dataset_type }) if dataset_type == "nosuchtype"),
        "{e:?}"
    );
    let e = b
        .query_metadata("nosuchtype", &["visit"], &data_id! {})
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ButlerError::Mapper(MapperError::UnknownDatasetType { .. })
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "unknown dataset type \"nosuchtype\"");
    // A known type with nothing matching is still an empty answer.
    assert!(b
        .query_metadata("meta", &["visit"], &data_id! {visit: 42})
        .unwrap()
        .is_empty());
}

#[test]
fn corrupt_data_id_row_is_a_typed_error_sqlite() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root);
    let b = out_butler(&root);
    b.put(&ps(1), "meta", &data_id! {visit: 1, filter: "g"})
        .unwrap();
    b.put(&ps(2), "meta", &data_id! {visit: 2, filter: "g"})
        .unwrap();
    drop(b);
    let c = rusqlite::Connection::open(root.join(REGISTRY_FILE)).unwrap();
    let id: i64 = c
        .query_row(
            "SELECT id FROM datasets WHERE data_id LIKE '%\"visit\":2%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "UPDATE datasets SET data_id = '{not json' WHERE id = ?1",
        [id],
    )
    .unwrap();
    drop(c);
    let reg = SqliteFileRegistry::open(&root, false).unwrap().unwrap();
    let e = reg
        .find_matching(Some("meta"), &data_id! {}, None)
        .unwrap_err();
    let ButlerError::CorruptRow { row, message, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(row, &format!("datasets id {id} (meta run \"\")"), "{e}");
    assert!(message.contains("{not json"), "{message}");
    assert!(e.to_string().contains("corrupt row"), "{e}");
}

#[test]
fn corrupt_data_id_row_is_a_typed_error_postgres() {
    let Some(url) = daf_base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!(
        "daf_t_corrupt_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let loc = PgLocation::parse(&url, Some(&schema)).unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut reg = PgFileRegistry::connect(&loc, d.path(), &DbAuth::new(), true)
        .unwrap()
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rec = daf_butler::file_registry::DatasetRecord {
            id: 0,
            dataset_type: "meta".into(),
            data_id: data_id! {visit: 3},
            run: "r1".into(),
            path: "meta/3.json".into(),
            size: 1,
            checksum: "00".into(),
            time_ns: 1,
            source: Some("raw/3.fits".into()),
        };
        let id = reg.insert(&rec).unwrap();
        // Corrupt the row through a plain connection of the shared layer.
        let link = daf_storages::db::PgLink::new(&loc.url, &DbAuth::new()).unwrap();
        let mut conn = link.connect().unwrap();
        let sql = format!("UPDATE \"{schema}\".datasets SET data_id = '[1,2]' WHERE id = $1");
        link.block_on(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .execute(&mut conn),
        )
        .unwrap();
        // (a lookup that does not cast data_id on the server)
        let e = reg.find_by_source("raw/3.fits").unwrap_err();
        let ButlerError::CorruptRow { row, message, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(row, &format!("datasets id {id} (meta run \"r1\")"));
        assert!(message.contains("[1,2]"), "{message}");
    }));
    reg.drop_schema().unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
