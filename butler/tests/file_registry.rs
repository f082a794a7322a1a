//! The file-registry conformance suite on both backends (PostgreSQL when
//! `DAF_TEST_POSTGRES_URL` is set: each test in a fresh schema, dropped
//! afterwards), and many processes putting into one repository whose
//! registry is in PostgreSQL.

use daf_base::{data_id, PropertySet};
use daf_butler::file_registry::{
    conformance, DatasetRegistry as _, FileRegistry, PgFileRegistry, PgLocation, SqliteFileRegistry,
};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, ButlerError, Repository};
use daf_storages::db::DbAuth;

mod common;
use common::{out_butler, ps, put_child, run_put_children};

fn pg_url() -> Option<String> {
    daf_base::testing::server_url("DAF_TEST_POSTGRES_URL")
}

/// A schema name no other test (or test run) uses.
fn fresh_schema(tag: &str) -> String {
    format!(
        "daf_t_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// Runs `f` with a PostgreSQL location in a fresh schema, then drops the
/// schema (also when `f` panics).
fn with_pg_schema(tag: &str, f: impl FnOnce(&PgLocation)) {
    let Some(url) = pg_url() else { return };
    let loc = PgLocation::parse(&url, Some(&fresh_schema(tag))).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&loc)));
    let dir = tempfile::tempdir().unwrap();
    if let Some(reg) = PgFileRegistry::connect(&loc, dir.path(), &DbAuth::new(), false).unwrap() {
        reg.drop_schema().unwrap();
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    conformance::run(&root, &|| {
        FileRegistry::new(SqliteFileRegistry::open(&root, true).unwrap().unwrap())
    });
}

#[test]
fn postgres_conformance() {
    with_pg_schema("conf", |loc| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        // not there yet: none without create
        assert!(PgFileRegistry::connect(loc, &root, &DbAuth::new(), false)
            .unwrap()
            .is_none());
        conformance::run(&root, &|| {
            FileRegistry::new(
                PgFileRegistry::connect(loc, &root, &DbAuth::new(), true)
                    .unwrap()
                    .unwrap(),
            )
        });
    });
}

#[test]
fn postgres_repositories_share_a_database_apart() {
    with_pg_schema("share_a", |a| {
        with_pg_schema("share_b", |b| {
            let dir = tempfile::tempdir().unwrap();
            let mut regs = Vec::new();
            for (name, loc) in [("a", a), ("b", b)] {
                let root = dir.path().join(name);
                Repository::create_with_registry(
                    &root,
                    Some("SimpleMapper"),
                    mapper().to_args(),
                    &[],
                    Some(loc),
                    None,
                )
                .unwrap();
                let text = std::fs::read_to_string(root.join("repositoryCfg.yaml")).unwrap();
                assert!(
                    text.contains(&format!("registry: {}", loc.url))
                        && text.contains(&format!(
                            "registrySchema: {}",
                            loc.schema.as_deref().unwrap()
                        )),
                    "{text}"
                );
                assert!(!root.join("daf_registry.sqlite3").exists());
                regs.push((root.clone(), out_butler(&root)));
            }
            regs[0]
                .1
                .put(&ps(1), "meta", &data_id! {visit: 1, filter: "g"})
                .unwrap();
            assert_eq!(regs[0].1.registry(0).unwrap().count().unwrap(), 1);
            assert_eq!(regs[1].1.registry(0).unwrap().count().unwrap(), 0);
            assert!(!regs[1]
                .1
                .dataset_exists("meta", &data_id! {visit: 1})
                .unwrap());
            // the registry names its URL and schema, never the SQLite file
            let d = regs[0].1.registry(0).unwrap().describe();
            assert!(d.contains(a.schema.as_deref().unwrap()), "{d}");
            assert!(regs[0].1.registry(0).unwrap().local_file().is_none());
            // nothing written: no SQLite file appeared
            assert!(!regs[0].0.join("daf_registry.sqlite3").exists());
        });
    });
}

#[test]
fn registry_cfg_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    std::fs::create_dir_all(&root).unwrap();
    for (cfg, what) in [
        (
            "registry: postgresql://bob:hunter22@127.0.0.1:5432/test\nregistrySchema: s\n",
            "password",
        ),
        ("registry: sqlite:///x.db\n", "unsupported scheme"),
        (
            "registry: postgresql://127.0.0.1:5432/test\n",
            "registrySchema",
        ),
        (
            "registry: postgresql://127.0.0.1:5432/test\nregistrySchema: \"a b\"\n",
            "letters, digits",
        ),
        ("registrySchema: x\n", "registry is not"),
    ] {
        std::fs::write(root.join("repositoryCfg.yaml"), cfg).unwrap();
        let e = Butler::builder()
            .input(root.as_path())
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{cfg}: {e}");
        assert!(!e.contains("hunter22"), "{e}");
    }
    // an unreachable server: a typed error naming it, no password
    std::fs::write(
        root.join("repositoryCfg.yaml"),
        "registry: postgresql://nobody@127.0.0.1:1/test\nregistrySchema: s\n",
    )
    .unwrap();
    let mut auth = DbAuth::new();
    auth.add("127.0.0.1", 1, "nobody", "t0psecret");
    let e = Butler::builder()
        .input(root.as_path())
        .db_auth(auth)
        .build()
        .unwrap_err();
    assert!(matches!(e, ButlerError::Registry { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("127.0.0.1:1") && e.contains("cannot connect"),
        "{e}"
    );
    assert!(!e.contains("t0psecret"), "{e}");
}

#[test]
fn postgres_credentials_come_from_db_auth() {
    with_pg_schema("auth", |loc| {
        let dir = tempfile::tempdir().unwrap();
        let (scheme, rest) = loc.url.split_once("://").unwrap();
        let (url_user, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, rest),
        };
        let host_port = rest.split('/').next().unwrap();
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().unwrap()),
            None => (host_port, 5432),
        };
        let bare = PgLocation::parse(&format!("{scheme}://{rest}"), loc.schema.as_deref()).unwrap();
        // the auth entry for the host and port is used: a wrong user fails,
        // and the message names neither the password nor anything secret
        let mut auth = DbAuth::new();
        auth.add(host, port, "no_such_role_daf", "s3cr3t-pw");
        let e = PgFileRegistry::connect(&bare, dir.path(), &auth, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_role_daf"), "{e}");
        assert!(!e.contains("s3cr3t-pw"), "{e}");
        // the right user from the auth file connects
        let user = url_user
            .or_else(|| std::env::var("PGUSER").ok())
            .unwrap_or_else(|| "postgres".into());
        let mut auth = DbAuth::new();
        auth.add(host, port, &user, "");
        let reg = PgFileRegistry::connect(&bare, dir.path(), &auth, true)
            .unwrap()
            .unwrap();
        assert_eq!(reg.count().unwrap(), 0);
    });
}

fn mapper() -> SimpleMapper {
    SimpleMapper::new([(
        "meta",
        SimpleDataset::new(
            "meta/v%(visit)04d_f%(filter)s.json",
            "PropertySet",
            "JsonStorage",
        ),
    )])
    .unwrap()
}

const CHILD_ENV: &str = "DAF_BUTLER_PG_STRESS_CHILD";
const PROCESSES: i64 = 8;
const PUTS: i64 = 500;

/// Run by `concurrent_processes_lose_nothing_postgres` in child processes.
#[test]
fn pg_stress_child() {
    put_child(CHILD_ENV, PUTS);
}

#[test]
fn concurrent_processes_lose_nothing_postgres() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    with_pg_schema("stress", |loc| {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        Repository::create_with_registry(
            &root,
            Some("SimpleMapper"),
            mapper().to_args(),
            &[],
            Some(loc),
            None,
        )
        .unwrap();
        let t = std::time::Instant::now();
        run_put_children("pg_stress_child", CHILD_ENV, &root, PROCESSES);
        eprintln!(
            "{PROCESSES} processes x {PUTS} puts into a PostgreSQL-registry repository: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let n = (PROCESSES * PUTS) as usize;
        let b = out_butler(&root);
        let reg = b.registry(0).unwrap();
        assert_eq!(reg.count().unwrap(), n);
        let mut files = 0;
        for e in std::fs::read_dir(root.join("meta")).unwrap() {
            assert!(e.unwrap().path().extension().is_some_and(|x| x == "json"));
            files += 1;
        }
        assert_eq!(files, n);
        assert!(reg.verify().unwrap().is_empty());
        drop(reg);
        for visit in [0, PUTS - 1, PUTS * 3 + 7, PROCESSES * PUTS - 1] {
            assert_eq!(
                b.get::<PropertySet>("meta", &data_id! {visit: visit})
                    .unwrap(),
                ps(visit)
            );
        }
    });
}

/// A query by a partial data id (`visit=…`) is answered from the GIN index
/// on `data_id::jsonb`, not a scan of every row (the scale bench's query by
/// visit at 10⁵ datasets took 150× its time at 10³ before the index), and
/// gives the rows it should.
#[test]
fn postgres_partial_data_id_query_uses_the_data_id_index() {
    with_pg_schema("gin", |loc| {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = PgFileRegistry::connect(loc, dir.path(), &DbAuth::new(), true)
            .unwrap()
            .unwrap();
        for visit in 0..200i64 {
            for ccd in 0..3i64 {
                let rec = daf_butler::file_registry::DatasetRecord {
                    id: 0,
                    dataset_type: "calexp".into(),
                    data_id: data_id! {visit: visit, ccd: ccd},
                    run: String::new(),
                    path: format!("calexp/{visit}-{ccd}.fits"),
                    size: 1,
                    checksum: "00".into(),
                    time_ns: visit,
                    source: None,
                };
                reg.insert(&rec).unwrap();
            }
        }
        let got = reg
            .find_matching(Some("calexp"), &data_id! {visit: 117}, None)
            .unwrap();
        let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "calexp/117-0.fits",
                "calexp/117-1.fits",
                "calexp/117-2.fits"
            ]
        );
        // The plan the server picks for the same statement when scans are
        // made unattractive (a 600-row table is otherwise scanned anyway).
        let link = daf_storages::db::PgLink::new(&loc.url, &DbAuth::new()).unwrap();
        let mut conn = link.connect().unwrap();
        let schema = loc.schema.as_deref().unwrap();
        let plan: Vec<String> = link
            .block_on(async {
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut conn)
                    .await?;
                let sql = format!(
                    "EXPLAIN SELECT id FROM \"{schema}\".datasets \
                     WHERE data_id::jsonb @> '{{\"visit\": 117}}'::jsonb"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await?;
                use sqlx::Row as _;
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("ix_datasets_data_id"), "{plan}");
    });
}
