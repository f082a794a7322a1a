//! The CLI reports typed errors the library keeps: an unknown dataset type
//! and a corrupt registry row each give exit status 1 and a message naming
//! what is wrong (and where).

mod common;
use common::{daf, ok, put_three_metas, META};

#[test]
fn corrupt_registry_row_is_reported_by_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    ok(&["create", r, "--dataset", META]);
    drop(put_three_metas(&repo));
    let c = rusqlite::Connection::open(repo.join("daf_registry.sqlite3")).unwrap();
    let id: i64 = c
        .query_row(
            "SELECT id FROM datasets WHERE data_id LIKE '%\"visit\":2%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "UPDATE datasets SET data_id = 'garbage' WHERE id = ?1",
        [id],
    )
    .unwrap();
    drop(c);
    let o = daf(&["query", r, "--dataset-type", "meta", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("corrupt row datasets id {id} (meta run")),
        "{err}"
    );
    assert!(err.contains("\"garbage\""), "{err}");
    assert!(o.stdout.is_empty(), "{o:?}");
}

#[test]
fn unknown_dataset_type_is_reported_by_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    ok(&["create", r, "--dataset", META]);
    drop(put_three_metas(&repo));
    for args in [
        vec![
            "query",
            r,
            "--dataset-type",
            "nosuchtype",
            "--keys",
            "visit",
        ],
        vec!["get", r, "nosuchtype", "visit=1"],
    ] {
        let o = daf(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("nosuchtype"), "{args:?}: {err}");
        assert!(err.contains("unknown dataset type"), "{args:?}: {err}");
        assert!(!err.contains("no nosuchtype dataset"), "{args:?}: {err}");
    }
}
