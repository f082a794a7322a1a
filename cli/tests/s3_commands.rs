//! The repository commands on a repository whose datastore is S3
//! (SeaweedFS in CI, started by `.ci/setup/20-seaweedfs.sh`): `daf ingest`
//! (copy and move upload; link modes refused), `daf get --verify`,
//! `daf verify` (checksums of objects, unregistered objects, damage) and
//! `--repair` (an orphan object left between upload and settle),
//! `daf export` / `daf import` in both directions, and chains mixing a
//! local repository with an S3 parent and the other way round.

use std::path::Path;

use daf::base::{data_id, PropertySet};
use daf::butler::{testing, Butler, Repository};
use daf::storages::datastore::{open_datastore, PutMode};

mod common;
use common::*;

/// `s3://bucket/daf-tests/<tag>-<pid>-<ns>`, or None (skipped locally, a
/// failure in CI).
fn s3_prefix(tag: &str) -> Option<String> {
    let ok = std::env::var("DAF_TEST_S3_ENDPOINT").is_ok();
    if !daf::base::testing::available(
        ok,
        "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)",
    ) {
        return None;
    }
    let bucket = std::env::var("DAF_TEST_S3_BUCKET").unwrap_or_else(|_| "daf-test".into());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Some(format!(
        "s3://{bucket}/daf-tests/{tag}-{}-{t}",
        std::process::id()
    ))
}

fn raw_files(dir: &Path, visits: &[(i64, &str)]) -> Vec<String> {
    visits
        .iter()
        .map(|(v, f)| {
            let p = dir.join(format!("incoming/exposure-{v}.fits"));
            testing::write_raw_fits(&p, *v, f).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect()
}

fn ingest_args<'a>(repo: &'a str, files: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ingest", repo];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--key", "visit=VISIT", "--key", "filter=FILTER", "--json"]);
    args.extend(extra);
    args
}

#[test]
fn ingest_get_verify_export_import_on_s3() {
    let Some(url) = s3_prefix("cmds") else { return };
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    ok(&[
        "create",
        repo_s,
        "--dataset",
        RAW,
        "--dataset",
        META,
        "--datastore",
        &url,
    ]);
    let ds = open_datastore(&url).unwrap();

    // ingest by copy: uploaded, not in the folder; a second ingest skips
    let files = raw_files(d.path(), &[(1, "g"), (2, "r"), (3, "g")]);
    let s = json(&ingest_args(repo_s, &files, &[]));
    assert_eq!(s["ingested"].as_array().unwrap().len(), 3, "{s}");
    let s = json(&ingest_args(repo_s, &files, &[]));
    assert_eq!(s["skipped"].as_array().unwrap().len(), 3, "{s}");
    assert!(!repo.join("raw/raw_v2_fr.fits").exists());
    assert_eq!(
        ds.get("raw/raw_v2_fr.fits", 1 << 20).unwrap(),
        std::fs::read(&files[1]).unwrap()
    );
    assert!(Path::new(&files[1]).exists(), "copy keeps the source");

    // link modes cannot put files into a bucket: refused, nothing done
    let four = raw_files(d.path(), &[(4, "r")]);
    for mode in ["symlink", "hardlink", "relsymlink", "direct"] {
        let o = daf(&ingest_args(repo_s, &four, &["--transfer", mode]));
        assert!(!o.status.success(), "{mode}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(mode) && err.contains("--transfer copy") && err.contains(&url),
            "{err}"
        );
    }
    assert!(ds.head("raw/raw_v4_fr.fits").unwrap().is_none());
    // move: uploaded, then the source goes
    let s = json(&ingest_args(repo_s, &four, &["--transfer", "move"]));
    assert_eq!(s["ingested"].as_array().unwrap().len(), 1, "{s}");
    assert!(!Path::new(&four[0]).exists(), "move removes the source");
    assert_eq!(ds.head("raw/raw_v4_fr.fits").unwrap().unwrap().size, 2880);

    // get, with --verify against the recorded checksum
    let g = json(&["get", repo_s, "raw", "visit=2", "--verify", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["header"]["EXPTIME"], 15.0, "{g}");
    assert_eq!(g["verified"], true, "{g}");

    // put three metas through the library, then query them
    {
        let b = put_three_metas(&repo);
        assert_eq!(b.registry(0).unwrap().count().unwrap(), 7);
    }
    assert!(ds.head("meta/v0002_fr.json").unwrap().is_some());
    let q = json(&["query", repo_s, "--dataset-type", "raw", "--json"]);
    assert_eq!(q.as_array().unwrap().len(), 4, "{q}");

    // verify: every object checksummed; an unregistered object is listed
    // (not an error)
    ds.put_bytes("raw/stray.fits", b"left by hand", PutMode::Create)
        .unwrap();
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 7, "{v}");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(
        v["unregistered_files"],
        serde_json::json!([format!("{url}/raw/stray.fits")]),
        "{v}"
    );
    ds.delete("raw/stray.fits").unwrap();

    // export names the datastore; import into a local repository downloads
    // and checks each object
    let yaml = d.path().join("export.yaml");
    ok(&["export", repo_s, "-o", yaml.to_str().unwrap()]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains(&format!("datastore: {url}")), "{text}");
    let local = d.path().join("local");
    let local_s = local.to_str().unwrap();
    ok(&["create", local_s, "--dataset", RAW, "--dataset", META]);
    let s = json(&["import", local_s, yaml.to_str().unwrap(), "--json"]);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 7, "{s}");
    let s = json(&["import", local_s, yaml.to_str().unwrap(), "--json"]);
    assert_eq!(s["skipped"].as_array().unwrap().len(), 7, "{s}");
    assert_eq!(
        std::fs::read(local.join("raw/raw_v1_fg.fits")).unwrap(),
        std::fs::read(&files[0]).unwrap()
    );
    let v = json(&["verify", local_s, "--json"]);
    assert_eq!(v["checked"], 7, "{v}");
    assert_eq!(v["unregistered_files"].as_array().unwrap().len(), 0, "{v}");
    // only copy can take objects out of a bucket
    let o = daf(&[
        "import",
        local_s,
        yaml.to_str().unwrap(),
        "--transfer",
        "move",
    ]);
    assert!(!o.status.success());

    // and back: the local repository's export imported into a second S3
    // repository uploads every file
    let url2 = format!("{url}-second");
    let yaml2 = d.path().join("export2.yaml");
    ok(&["export", local_s, "-o", yaml2.to_str().unwrap()]);
    assert!(!std::fs::read_to_string(&yaml2)
        .unwrap()
        .contains("datastore:"));
    let s3b = d.path().join("s3b");
    let s3b_s = s3b.to_str().unwrap();
    ok(&[
        "create",
        s3b_s,
        "--dataset",
        RAW,
        "--dataset",
        META,
        "--datastore",
        &url2,
    ]);
    let s = json(&["import", s3b_s, yaml2.to_str().unwrap(), "--json"]);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 7, "{s}");
    let ds2 = open_datastore(&url2).unwrap();
    assert_eq!(ds2.list("").unwrap().len(), 7);
    let v = json(&["verify", s3b_s, "--json"]);
    assert_eq!(v["checked"], 7, "{v}");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 0, "{v}");
    let back: PropertySet = butler(&s3b).get("meta", &data_id! {visit: 3}).unwrap();
    assert_eq!(back.get::<i64>("visit").unwrap(), 3);

    // damage an object behind the registry's back: verify names it, status 3
    let mut bytes = ds.get("raw/raw_v1_fg.fits", 1 << 20).unwrap();
    bytes[2000] = b'!';
    ds.put_bytes("raw/raw_v1_fg.fits", &bytes, PutMode::Overwrite)
        .unwrap();
    let o = daf(&["verify", repo_s]);
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{url}/raw/raw_v1_fg.fits")) && out.contains("checksum changed"),
        "{out}"
    );
    let o = daf(&["get", repo_s, "raw", "visit=1", "--verify"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn prune_and_remove_run_purge_delete_objects_on_s3() {
    let Some(url) = s3_prefix("prune") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    ok(&["create", repo_s, "--dataset", RAW, "--datastore", &url]);
    let ds = open_datastore(&url).unwrap();
    let files = raw_files(d.path(), &[(1, "g"), (2, "r"), (3, "g"), (4, "r")]);
    let s = json(&ingest_args(repo_s, &files, &[]));
    assert_eq!(s["ingested"].as_array().unwrap().len(), 4, "{s}");
    let key2 = "raw/raw_v2_fr.fits";
    assert!(ds.head(key2).unwrap().is_some());

    // a dry run names the object by its URL and deletes nothing
    let p = json(&[
        "prune",
        repo_s,
        "raw",
        "visit=2",
        "--purge",
        "--dry-run",
        "--json",
    ]);
    let removed = p["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{p}");
    assert_eq!(removed[0]["file_action"], "delete", "{p}");
    assert_eq!(removed[0]["file"], format!("{url}/{key2}"), "{p}");
    assert!(ds.head(key2).unwrap().is_some());

    // --purge: the row and the object go
    let p = json(&["prune", repo_s, "raw", "visit=2", "--purge", "--json"]);
    assert_eq!(p["removed"][0]["file_action"], "delete", "{p}");
    assert!(ds.head(key2).unwrap().is_none(), "object deleted");
    let q = json(&["query", repo_s, "--dataset-type", "raw", "--json"]);
    assert_eq!(q.as_array().unwrap().len(), 3, "{q}");

    // without --purge the object stays, unregistered
    let p = json(&["prune", repo_s, "raw", "visit=1", "--json"]);
    assert_eq!(p["removed"][0]["file_action"], "keep", "{p}");
    assert_eq!(ds.head("raw/raw_v1_fg.fits").unwrap().unwrap().size, 2880);

    // an object already gone: the row goes, reported as missing
    ds.delete("raw/raw_v3_fg.fits").unwrap();
    let p = json(&["prune", repo_s, "raw", "visit=3", "--purge", "--json"]);
    assert_eq!(p["removed"][0]["file_action"], "missing", "{p}");

    // remove-run --purge: every dataset of the run, objects too
    let out = ok(&["remove-run", repo_s, "", "--purge"]);
    assert!(
        out.contains("1 dataset(s) removed, 1 file(s) deleted"),
        "{out}"
    );
    assert!(ds.head("raw/raw_v4_fr.fits").unwrap().is_none());
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 0, "{v}");
    // what is left is the unregistered object prune kept
    assert_eq!(
        v["unregistered_files"],
        serde_json::json!([format!("{url}/raw/raw_v1_fg.fits")]),
        "{v}"
    );
    ds.delete("raw/raw_v1_fg.fits").unwrap();
}

/// An intent owned by a process that is gone (this host, a pid that does
/// not exist).
fn dead_owner() -> String {
    format!(
        "p4000000s1@{}",
        daf::storages::owner::token().split('@').nth(1).unwrap()
    )
}

fn orphan_intent(
    root: &Path,
    key: &str,
    id: &daf::base::DataId,
    mode: daf::butler::file_registry::IntentMode,
    checksum: String,
    size: u64,
) {
    let mut reg = daf::butler::FileRegistry::open(root, true)
        .unwrap()
        .unwrap();
    let claims = reg
        .claim(&[daf::butler::file_registry::Intent {
            id: 0,
            dataset_type: "meta".into(),
            data_id: id.clone(),
            run: String::new(),
            mode,
            files: vec![(key.into(), "meta/.daf-tmp.x.0.gone.json".into())],
            checksum,
            size,
            owner: dead_owner(),
            time_ns: 1,
        }])
        .unwrap();
    assert!(matches!(
        claims[0],
        daf::butler::file_registry::Claim::Claimed { .. }
    ));
}

/// The state a crash between upload and settle leaves (the object under
/// its final key, an intent of a dead writer, no row): a new put is rolled
/// back (the object removed, so the retry is not blocked) by the next open
/// for writing; a clobber is rolled forward by `daf verify --repair`.
#[test]
fn an_orphan_object_between_upload_and_settle_is_resolved_by_checksum() {
    let Some(url) = s3_prefix("orphan") else {
        return;
    };
    use daf::butler::file_registry::IntentMode;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    let root_s = root.to_str().unwrap();
    ok(&["create", root_s, "--dataset", META, "--datastore", &url]);
    let ds = open_datastore(&url).unwrap();
    let ps = |v: i64| {
        let mut p = PropertySet::new();
        p.set("visit", v).unwrap();
        p
    };
    // 1. a new put: the object is there, the row is not
    let id = data_id! {visit: 5, filter: "g"};
    let key = "meta/v0005_fg.json";
    {
        let b = butler(&root);
        b.put(&ps(1), "meta", &id).unwrap();
        let mut reg = b.registry(0).unwrap();
        let row = reg.find("meta", &id, Some("")).unwrap().unwrap();
        reg.remove(row.id).unwrap();
    }
    let (sum, size) = ds.checksum(key).unwrap();
    orphan_intent(&root, key, &id, IntentMode::New, sum, size);
    let v = daf(&["verify", root_s, "--json"]);
    assert_eq!(v.status.code(), Some(3), "a dead writer's put is garbage");
    let b = butler(&root);
    assert!(b.registry(0).unwrap().intents().unwrap().is_empty());
    assert!(ds.head(key).unwrap().is_none(), "the orphan object is gone");
    b.put(&ps(2), "meta", &id).unwrap();
    let back: PropertySet = b.get("meta", &id).unwrap();
    assert_eq!(back.get::<i64>("visit").unwrap(), 2);
    drop(b);

    // 2. a clobber whose upload completed: rolled forward by verify --repair
    let id = data_id! {visit: 6, filter: "r"};
    let key = "meta/v0006_fr.json";
    {
        let b = butler(&root);
        b.put(&ps(60), "meta", &id).unwrap();
        let mut reg = b.registry(0).unwrap();
        let row = reg.find("meta", &id, Some("")).unwrap().unwrap();
        reg.remove(row.id).unwrap();
    }
    let new = br#"{"visit": 61}"#;
    ds.put_bytes(key, new, PutMode::Overwrite).unwrap();
    let (sum, size) = ds.checksum(key).unwrap();
    orphan_intent(&root, key, &id, IntentMode::Clobber, sum.clone(), size);
    let o = daf(&["verify", root_s, "--repair", "--json"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["repaired"][0]["resolution"], "rolled_forward", "{v}");
    assert_eq!(v["pending_puts"].as_array().unwrap().len(), 0, "{v}");
    let reg = daf::butler::FileRegistry::open(&root, false)
        .unwrap()
        .unwrap();
    let row = reg.find("meta", &id, Some("")).unwrap().unwrap();
    assert_eq!((row.checksum.clone(), row.size), (sum, size));
    let v = json(&["verify", root_s, "--json"]);
    assert_eq!(v["checked"], 2, "{v}");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 0, "{v}");
}

fn meta_repo(root: &Path, datastore: Option<&str>, parents: &[&Path]) {
    let mapper = daf::butler::simple_mapper::SimpleMapper::new([(
        "meta",
        daf::butler::simple_mapper::SimpleDataset::new(
            "meta/v%(visit)04d_f%(filter)s.json",
            "PropertySet",
            "JsonStorage",
        ),
    )])
    .unwrap();
    let parents: Vec<std::path::PathBuf> = parents.iter().map(|p| p.to_path_buf()).collect();
    let mut r = Repository::create(root, Some("SimpleMapper"), mapper.to_args(), &parents).unwrap();
    if let Some(u) = datastore {
        r.set_datastore(u).unwrap();
    }
}

fn put_meta(b: &Butler, visit: i64, filter: &str, tag: &str) {
    let mut p = PropertySet::new();
    p.set("tag", tag).unwrap();
    b.put(&p, "meta", &data_id! {visit: visit, filter: filter})
        .unwrap();
}

fn tag_of(b: &Butler, visit: i64) -> String {
    let p: PropertySet = b.get("meta", &data_id! {visit: visit}).unwrap();
    p.get::<String>("tag").unwrap()
}

/// A local repository with an S3 parent, and an S3 repository with a local
/// parent: get, put and query through both links of each chain.
#[test]
fn mixed_chains_local_over_s3_and_s3_over_local() {
    let Some(url) = s3_prefix("chain") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let (s3_parent, local_child) = (d.path().join("s3p"), d.path().join("localc"));
    let (local_parent, s3_child) = (d.path().join("localp"), d.path().join("s3c"));
    meta_repo(&s3_parent, Some(&format!("{url}/parent")), &[]);
    meta_repo(&local_parent, None, &[]);
    put_meta(&butler(&s3_parent), 1, "g", "in-s3-parent");
    put_meta(&butler(&local_parent), 1, "g", "in-local-parent");
    meta_repo(&local_child, None, &[&s3_parent]);
    meta_repo(&s3_child, Some(&format!("{url}/child")), &[&local_parent]);

    for (child, parent_tag, child_tag) in [
        (&local_child, "in-s3-parent", "in-local-child"),
        (&s3_child, "in-local-parent", "in-s3-child"),
    ] {
        let b = butler(child);
        assert_eq!(b.repositories().len(), 2);
        // get from the parent through the child
        assert_eq!(tag_of(&b, 1), parent_tag);
        // put lands in the child; the parent's dataset is unchanged
        put_meta(&b, 2, "r", child_tag);
        assert_eq!(tag_of(&b, 2), child_tag);
        let child_has = b.remote_datastore(0).is_some();
        assert_eq!(child_has, child == &s3_child);
        // query sees both repositories' datasets
        let q = json(&[
            "query",
            child.to_str().unwrap(),
            "--dataset-type",
            "meta",
            "--json",
        ]);
        let mut visits: Vec<i64> = q
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data_id"]["visit"].as_i64().unwrap())
            .collect();
        visits.sort();
        assert_eq!(visits, vec![1, 2], "{q}");
        // a second butler (read-only) through the chain
        let r = Butler::builder()
            .input(child.as_path())
            .persistence(testing::json_persistence())
            .build()
            .unwrap();
        assert_eq!(tag_of(&r, 1), parent_tag);
        assert_eq!(tag_of(&r, 2), child_tag);
    }
    // the bytes are where each repository keeps them
    let ds = open_datastore(&url).unwrap();
    assert!(ds.head("parent/meta/v0001_fg.json").unwrap().is_some());
    assert!(ds.head("child/meta/v0002_fr.json").unwrap().is_some());
    assert!(local_child.join("meta/v0002_fr.json").is_file());
    assert!(ds.head("parent/meta/v0002_fr.json").unwrap().is_none());
}
