//! End to end with a repository whose file registry is in PostgreSQL
//! (`daf create --registry`): create → ingest → put → get → query → verify →
//! export → import, through the `daf` binary and the library. Needs
//! `DAF_TEST_POSTGRES_URL` (skipped locally without it, required in CI).

use daf::butler::file_registry::{PgFileRegistry, PgLocation};
use daf::storages::db::DbAuth;

mod common;
use common::*;

fn schema(tag: &str) -> String {
    format!(
        "daf_e2e_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// Drops the schemas when the test ends, passed or not.
struct DropSchemas(String, Vec<String>);

impl Drop for DropSchemas {
    fn drop(&mut self) {
        let dir = std::env::temp_dir();
        for s in &self.1 {
            let loc = PgLocation::parse(&self.0, Some(s)).unwrap();
            if let Ok(Some(reg)) = PgFileRegistry::connect(&loc, &dir, &DbAuth::new(), false) {
                let _ = reg.drop_schema();
            }
        }
    }
}

#[test]
fn pg_registry_create_ingest_put_get_query_verify_export_import() {
    let Some(url) = daf::base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    let (s1, s2) = (schema("a"), schema("b"));
    let _cleanup = DropSchemas(url.clone(), vec![s1.clone(), s2.clone()]);
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();

    // create: the registry location goes into the cfg, no SQLite file
    let out = ok(&[
        "create",
        repo_s,
        "--dataset",
        RAW,
        "--dataset",
        META,
        "--registry",
        &url,
        "--registry-schema",
        &s1,
    ]);
    assert!(
        out.contains("created repository") && out.contains(&s1),
        "{out}"
    );
    let cfg = std::fs::read_to_string(repo.join("repositoryCfg.yaml")).unwrap();
    assert!(cfg.contains(&format!("registrySchema: {s1}")), "{cfg}");
    assert!(cfg.contains("registry: postgres"), "{cfg}");
    // a password on the command line is refused, and not echoed
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let with_pw = format!("{scheme}://someone:pw-XYZZY@{rest}");
    let o = daf(&["create", &format!("{repo_s}-pw"), "--registry", &with_pw]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("password") && !err.contains("pw-XYZZY"),
        "{err}"
    );
    assert!(!d.path().join("repo-pw").exists());

    // ingest three FITS files with arbitrary names
    ingest_three_raws(d.path(), &repo);

    // put (library) and get back
    {
        let b = put_three_metas(&repo);
        let reg = b.registry(0).unwrap();
        assert_eq!(reg.count().unwrap(), 6);
        assert!(reg.describe().contains(&s1), "{}", reg.describe());
    }
    assert!(!repo.join("daf_registry.sqlite3").exists());

    // get (CLI)
    let g = json(&["get", repo_s, "raw", "visit=2", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["data_id"]["filter"], "r", "{g}");
    assert_eq!(g["header"]["EXPTIME"], 15.0, "{g}");
    assert_eq!(g["size"], 2880, "{g}");

    // query
    query_three(repo_s);
    assert_eq!(
        json(&["query", repo_s, "--json"]).as_array().unwrap().len(),
        6
    );

    // verify
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 6);
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 0);

    // export, and import into a second repository in the same database
    // (its own schema)
    let yaml = d.path().join("export.yaml");
    ok(&["export", repo_s, "-o", yaml.to_str().unwrap()]);
    let repo2 = d.path().join("repo2");
    let repo2_s = repo2.to_str().unwrap();
    ok(&[
        "create",
        repo2_s,
        "--dataset",
        RAW,
        "--dataset",
        META,
        "--registry",
        &format!("{url}?schema={s2}"),
    ]);
    let b2 = import_six(&repo, &repo2, &yaml);
    assert!(b2.registry(0).unwrap().describe().contains(&s2));

    // a file changed after ingest is caught by verify
    verify_catches_damage(&repo);
}
