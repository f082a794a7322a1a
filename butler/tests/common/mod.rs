//! Helpers shared by the butler's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use daf_base::{data_id, PropertySet};
use daf_butler::{testing, Butler};

/// A small PropertySet told apart by `v`.
pub fn ps(v: i64) -> PropertySet {
    let mut p = PropertySet::new();
    p.set("value", v).unwrap();
    p.set("name", format!("obj{v}")).unwrap();
    p
}

/// A butler writing to `root` with the JSON test persistence.
pub fn out_butler(root: &Path) -> Butler {
    Butler::builder()
        .output(root)
        .persistence(testing::json_persistence())
        .build()
        .unwrap()
}

/// The child side of a many-process put test: when `env` is set (to
/// `ROOT|K`, by [`run_put_children`]), puts `puts` `meta` datasets, visits
/// `K*puts ..`, into the repository at ROOT. Does nothing otherwise.
pub fn put_child(env: &str, puts: i64) {
    let Ok(spec) = std::env::var(env) else {
        return;
    };
    let (root, k) = spec.split_once('|').unwrap();
    let k: i64 = k.parse().unwrap();
    let b = out_butler(Path::new(root));
    for v in 0..puts {
        let visit = k * puts + v;
        b.put(&ps(visit), "meta", &data_id! {visit: visit, filter: "g"})
            .unwrap();
    }
}

/// The parent side: runs test `child` of this test binary in `n` processes
/// at once (each told `root` and its number through `env`) and asserts that
/// every one succeeded, naming the exit status of one that did not.
pub fn run_put_children(child: &str, env: &str, root: &Path, n: i64) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|k| {
            std::process::Command::new(&exe)
                .args(["--exact", child, "--test-threads=1"])
                .env(env, format!("{}|{k}", root.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "a child failed: {status:?}");
    }
}

/// The PostgreSQL test server's URL, or `None` (skipping locally, failing
/// in CI) when `DAF_TEST_POSTGRES_URL` is not set.
pub fn pg_url() -> Option<String> {
    daf_base::testing::server_url("DAF_TEST_POSTGRES_URL")
}

/// Runs `f` with a PostgreSQL location in a schema no other test uses,
/// then drops the schema (also when `f` panics).
pub fn with_pg_schema(tag: &str, f: impl FnOnce(&daf_butler::file_registry::PgLocation)) {
    use daf_butler::file_registry::{PgFileRegistry, PgLocation};
    let Some(url) = pg_url() else { return };
    let schema = format!(
        "daf_t_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let loc = PgLocation::parse(&url, Some(&schema)).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&loc)));
    let dir = tempfile::tempdir().unwrap();
    let auth = daf_storages::db::DbAuth::new();
    if let Some(reg) = PgFileRegistry::connect(&loc, dir.path(), &auth, false).unwrap() {
        reg.drop_schema().unwrap();
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
