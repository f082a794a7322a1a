//! Issue 21 through the `daf` binary: removing datasets (`prune`,
//! `remove-run`), restoring a missing file (`ingest --force`), dataset types
//! after creation, runs, `retrieve`, typos rejected, and the CLI
//! conventions (`-v`/`-q`, `--transfer` choices, `info`, closed pipes).
//! Removal is checked on SQLite and on PostgreSQL, including a removal cut
//! short half-way.

use std::path::Path;
use std::process::Command;

use daf::base::data_id;
use daf::butler::file_registry::{Claim, Intent, IntentMode, PgFileRegistry, PgLocation};
use daf::storages::db::DbAuth;

mod common;
use common::{daf, ingest_three_raws, json, ok, put_three_metas, META, RAW};

fn err(args: &[&str]) -> String {
    let o = daf(args);
    assert!(
        !o.status.success(),
        "daf {args:?} succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn create(repo: &Path, registry: Option<(&str, &str)>) {
    let mut args = vec![
        "create",
        repo.to_str().unwrap(),
        "--dataset",
        RAW,
        "--dataset",
        META,
    ];
    if let Some((url, schema)) = registry {
        args.extend(["--registry", url, "--registry-schema", schema]);
    }
    ok(&args);
}

/// `daf verify --json` finds nothing wrong: no mismatch, pending put,
/// temporary or unregistered file; returns how many files it checked.
fn verify_clean(repo: &str) -> u64 {
    let v = json(&["verify", repo, "--json"]);
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
    assert_eq!(v["pending_puts"], serde_json::json!([]), "{v}");
    assert_eq!(v["temporary_files"], serde_json::json!([]), "{v}");
    v["checked"].as_u64().unwrap()
}

fn count(repo: &str, dataset_type: &str) -> usize {
    json(&["query", repo, "--dataset-type", dataset_type, "--json"])
        .as_array()
        .unwrap()
        .len()
}

/// prune: dry run changes nothing; without --purge the row goes and the
/// file stays; with --purge both go; the data id is free again afterwards.
fn prune_flow(repo: &Path, dir: &Path) {
    let r = repo.to_str().unwrap();
    let files = ingest_three_raws(dir, repo);
    put_three_metas(repo);
    assert_eq!(verify_clean(r), 6);

    // README: daf prune REPO raw visit=2 --purge --dry-run
    let out = ok(&["prune", r, "raw", "visit=2", "--purge", "--dry-run"]);
    assert!(
        out.contains("would remove: raw {filter: \"r\", visit: 2}"),
        "{out}"
    );
    assert!(
        out.contains("1 dataset(s) would remove, 1 file(s) would be deleted"),
        "{out}"
    );
    assert!(repo.join("raw/raw_v2_fr.fits").is_file());
    assert_eq!(count(r, "raw"), 3);

    // README: daf prune REPO raw visit=2 --purge
    let out = ok(&["prune", r, "raw", "visit=2", "--purge"]);
    assert!(
        out.contains("1 dataset(s) removed, 1 file(s) deleted"),
        "{out}"
    );
    assert!(!repo.join("raw/raw_v2_fr.fits").exists());
    assert_eq!(count(r, "raw"), 2);
    assert_eq!(verify_clean(r), 5);
    let v = json(&["verify", r, "--json"]);
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");

    // without --purge: the row goes, the file stays (unregistered)
    let p = json(&["prune", r, "meta", "--where", "visit >= 2", "--json"]);
    let removed = p["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{p}");
    assert!(removed.iter().all(|x| x["file_action"] == "keep"), "{p}");
    assert!(repo.join("meta/v0003_fg.json").is_file());
    assert_eq!(count(r, "meta"), 1);
    let v = json(&["verify", r, "--json"]);
    assert_eq!(v["unregistered_files"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(verify_clean(r), 3);

    // the data id is free again: the same file ingests anew
    let s = json(&[
        "ingest",
        r,
        &files[1],
        "--key",
        "visit=VISIT",
        "--key",
        "filter=FILTER",
        "--json",
    ]);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(count(r, "raw"), 3);

    // nothing matches: nothing removed, success
    let out = ok(&["prune", r, "raw", "visit=99", "--purge"]);
    assert!(out.contains("0 dataset(s) removed"), "{out}");
    // typos are errors
    let e = err(&["prune", r, "rwa", "visit=1"]);
    assert!(
        e.contains("unknown dataset type \"rwa\"; did you mean \"raw\"?"),
        "{e}"
    );
    let e = err(&["prune", r, "raw", "vist=1"]);
    assert!(e.contains("did you mean \"visit\"?"), "{e}");
    assert_eq!(count(r, "raw"), 3);
}

#[test]
fn prune_removes_rows_and_with_purge_files() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    create(&repo, None);
    prune_flow(&repo, d.path());
}

/// runs: listed with counts; a whole run removed with its folder.
fn runs_flow(repo: &Path, dir: &Path) {
    let r = repo.to_str().unwrap();
    let mut files = Vec::new();
    for (v, f) in [(1, "g"), (2, "r")] {
        let p = dir.join(format!("in/e{v}.fits"));
        daf::butler::testing::write_raw_fits(&p, v, f).unwrap();
        files.push(p.to_str().unwrap().to_string());
    }
    for run in ["night1", "night2"] {
        let s = json(&[
            "ingest",
            r,
            &files[0],
            &files[1],
            "--key",
            "visit=VISIT",
            "--key",
            "filter=FILTER",
            "--run",
            run,
            "--transfer",
            "hardlink",
            "--json",
        ]);
        // the same sources go into each run (the skip rule is per run)
        assert_eq!(s["ingested"].as_array().unwrap().len(), 2, "{run}: {s}");
    }
    // into a run that has them: skipped as already ingested
    let s = json(&[
        "ingest",
        r,
        &files[0],
        &files[1],
        "--key",
        "visit=VISIT",
        "--key",
        "filter=FILTER",
        "--run",
        "night1",
        "--transfer",
        "hardlink",
        "--json",
    ]);
    assert_eq!(s["skipped"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s["ingested"].as_array().unwrap().len(), 0, "{s}");
    // one more into night2 by copy
    let p = dir.join("in/e3.fits");
    daf::butler::testing::write_raw_fits(&p, 3, "g").unwrap();
    ok(&[
        "ingest",
        r,
        p.to_str().unwrap(),
        "--key",
        "visit=VISIT",
        "--key",
        "filter=FILTER",
        "--run",
        "night2",
        "-q",
    ]);
    // README: daf query-runs REPO
    let q = json(&["query-runs", r, "--json"]);
    let runs: Vec<(String, u64)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["run"].as_str().unwrap().to_string(),
                x["datasets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        vec![("night1".into(), 2), ("night2".into(), 3)],
        "{q}"
    );
    let out = ok(&["query-runs", r]);
    assert!(
        out.starts_with("run\tdatasets\tdataset_types\trepository\nnight1\t2\traw\t"),
        "{out}"
    );

    // a typo in the run name
    let e = err(&["remove-run", r, "nigth1"]);
    assert!(
        e.contains("unknown run \"nigth1\"; did you mean \"night1\"?"),
        "{e}"
    );
    // README: daf remove-run REPO night1 --purge
    let out = ok(&["remove-run", r, "night1", "--purge", "--dry-run"]);
    assert!(out.contains("2 dataset(s) would remove"), "{out}");
    assert!(repo.join("night1/raw/raw_v1_fg.fits").is_file());
    let out = ok(&["remove-run", r, "night1", "--purge"]);
    assert!(
        out.contains("2 dataset(s) removed, 2 file(s) deleted"),
        "{out}"
    );
    assert!(
        !repo.join("night1").exists(),
        "the emptied run folder goes too"
    );
    // hard links: the sources are untouched
    assert!(Path::new(&files[0]).is_file() && Path::new(&files[1]).is_file());
    let q = json(&["query-runs", r, "--json"]);
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q[0]["run"], "night2");
    assert_eq!(verify_clean(r), 3);
}

#[test]
fn remove_run_and_query_runs() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    create(&repo, None);
    runs_flow(&repo, d.path());
}

/// A removal cut short (its owner died) at each step: after the claim
/// (rolled back: row and file kept), after the rows went (rolled forward:
/// the file is deleted), after the files went (rolled forward: the intent
/// dropped). At no step is a row without its file.
fn interrupted_flow(repo: &Path, dir: &Path) {
    let r = repo.to_str().unwrap();
    ingest_three_raws(dir, repo);
    let dead = format!(
        "p4000000s1@{}",
        daf::storages::owner::token().split('@').nth(1).unwrap()
    );
    // `steps`: 0 claimed, 1 rows dropped, 2 files deleted too
    let cut_short = |visit: i64, filter: &str, steps: u8| {
        let mut reg = daf::butler::FileRegistry::open(repo, true)
            .unwrap()
            .unwrap();
        let id = data_id! {visit: visit, filter: filter};
        let row = reg.find("raw", &id, Some("")).unwrap().unwrap();
        let c = reg
            .claim(&[Intent {
                id: 0,
                dataset_type: "raw".into(),
                data_id: id,
                run: String::new(),
                mode: IntentMode::Remove,
                files: vec![(row.path.clone(), String::new())],
                checksum: row.checksum.clone(),
                size: row.size,
                owner: dead.clone(),
                time_ns: 1,
            }])
            .unwrap();
        assert!(
            matches!(
                c[0],
                Claim::Claimed {
                    existing: Some(_),
                    ..
                }
            ),
            "{c:?}"
        );
        if steps >= 1 {
            reg.discard(&[row.id], &[]).unwrap();
        }
        if steps >= 2 {
            std::fs::remove_file(repo.join(&row.path)).unwrap();
        }
        repo.join(&row.path)
    };
    // cut short after the rows went: verify finds no row without its file,
    // only the pending removal; --repair finishes it (the file goes)
    let f1 = cut_short(1, "g", 1);
    let o = daf(&["verify", r, "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
    assert_eq!(v["pending_puts"][0]["mode"], "remove", "{v}");
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
    let v = json(&["verify", r, "--repair", "--json"]);
    assert_eq!(v["repaired"][0]["resolution"], "rolled_forward", "{v}");
    assert!(!f1.exists());
    assert_eq!(verify_clean(r), 2);
    assert_eq!(count(r, "raw"), 2);
    // cut short before the rows went: rolled back when a writer opens the
    // repository (here a prune of another data id), nothing lost
    let f2 = cut_short(2, "r", 0);
    // cut short after the files went: only the intent is left
    let f3 = cut_short(3, "g", 2);
    let out = ok(&["prune", r, "raw", "visit=2", "--purge", "--dry-run"]);
    assert!(out.contains("1 dataset(s) would remove"), "{out}");
    assert!(f2.is_file() && !f3.exists());
    assert_eq!(count(r, "raw"), 1);
    assert_eq!(verify_clean(r), 1);
    let v = json(&["verify", r, "--json"]);
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
}

#[test]
fn an_interrupted_prune_is_rolled_back_or_forward() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    create(&repo, None);
    interrupted_flow(&repo, d.path());
}

/// The same flows with the file registry in PostgreSQL.
#[test]
fn prune_remove_run_and_interruptions_on_postgresql() {
    let Some(url) = daf::base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    for (tag, flow) in [
        ("prune", prune_flow as fn(&Path, &Path)),
        ("runs", runs_flow),
        ("cut", interrupted_flow),
    ] {
        let schema = daf::base::testing::unique_name(&format!("daf_t21_{tag}"));
        let repo = d.path().join(tag).join("repo");
        create(&repo, Some((&url, &schema)));
        let result = std::panic::catch_unwind(|| flow(&repo, &d.path().join(tag)));
        let loc = PgLocation::parse(&url, Some(&schema)).unwrap();
        if let Ok(Some(reg)) = PgFileRegistry::connect(&loc, d.path(), &DbAuth::new(), false) {
            let _ = reg.drop_schema();
        }
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn ingest_force_restores_a_missing_or_changed_file() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    create(&repo, None);
    let files = ingest_three_raws(d.path(), &repo);
    std::fs::remove_file(repo.join("raw/raw_v2_fr.fits")).unwrap();
    let mut bytes = std::fs::read(repo.join("raw/raw_v3_fg.fits")).unwrap();
    bytes[2000] ^= 1;
    std::fs::write(repo.join("raw/raw_v3_fg.fits"), bytes).unwrap();
    assert_eq!(daf(&["verify", r]).status.code(), Some(3));
    let mut args = vec!["ingest", r];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--key", "visit=VISIT", "--key", "filter=FILTER"]);
    // without --force: skipped, nothing restored
    let out = ok(&args);
    assert!(out.contains("0 ingested, 3 skipped"), "{out}");
    // README: daf ingest REPO FILES… --key … --force
    args.push("--force");
    let out = ok(&args);
    assert!(
        out.contains("restored: raw {filter: \"r\", visit: 2}"),
        "{out}"
    );
    assert!(out.contains("the registered file was missing"), "{out}");
    assert!(
        out.contains("the registered file was checksum changed"),
        "{out}"
    );
    assert!(out.contains("2 restored"), "{out}");
    assert!(out.contains("0 ingested, 1 skipped"), "{out}");
    assert_eq!(verify_clean(r), 3);
    assert_eq!(
        std::fs::read(repo.join("raw/raw_v3_fg.fits")).unwrap(),
        std::fs::read(&files[2]).unwrap()
    );
    // again: nothing to restore
    args.push("--json");
    let s = json(&args);
    assert_eq!(s["restored"], serde_json::json!([]), "{s}");
    assert_eq!(s["skipped"].as_array().unwrap().len(), 3, "{s}");
    // a copy of the file elsewhere restores by data id
    std::fs::remove_file(repo.join("raw/raw_v1_fg.fits")).unwrap();
    let elsewhere = d.path().join("copy-of-1.fits");
    std::fs::copy(&files[0], &elsewhere).unwrap();
    let s = json(&[
        "ingest",
        r,
        elsewhere.to_str().unwrap(),
        "--key",
        "visit=VISIT",
        "--key",
        "filter=FILTER",
        "--force",
        "--json",
    ]);
    assert_eq!(s["restored"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(verify_clean(r), 3);
}

/// A metadata dataset type in a built-in storage (`register-dataset-type`
/// takes only storages daf has).
const META_YAML: &str = "meta:meta/v%(visit)04d_f%(filter)s.yaml:PropertySet:YamlStorage";

#[test]
fn dataset_types_registered_after_creation_and_listed() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    ok(&["create", r, "--dataset", RAW]);
    // README: daf register-dataset-type REPO calexp:calexp/v%(visit)04d_f%(filter)s.fits:ExposureF:FitsStorage
    let o = daf(&[
        "register-dataset-type",
        r,
        "calexp:calexp/v%(visit)04d_f%(filter)s.fits:ExposureF:FitsStorage",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("registered dataset type calexp"),
        "{o:?}"
    );
    // built-in persistable and storage: no warning
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = ok(&["register-dataset-type", r, META_YAML]);
    assert!(out.starts_with("registered dataset type meta"), "{out}");
    let out = ok(&["register-dataset-type", r, META_YAML]);
    assert!(out.starts_with("already registered"), "{out}");
    let e = err(&[
        "register-dataset-type",
        r,
        "meta:other/%(visit)d.yaml:PropertySet:YamlStorage",
    ]);
    assert!(e.contains("cannot be redefined"), "{e}");
    let e = err(&[
        "register-dataset-type",
        r,
        "cat:c/%(visit)d.yaml:PropertySte:YamlStorage",
    ]);
    assert!(
        e.contains("unknown persistable \"PropertySte\"; did you mean \"PropertySet\"?"),
        "{e}"
    );
    let e = err(&[
        "register-dataset-type",
        r,
        "cat:c/%(visit)d.fits:ExposureF:FitStorage",
    ]);
    assert!(e.contains("did you mean \"FitsStorage\"?"), "{e}");
    // a storage daf does not have is an error naming the ones it has
    let e = err(&[
        "register-dataset-type",
        r,
        "cat:c/%(visit)d.h5:PropertySet:Hdf5Storage",
    ]);
    assert!(e.contains("unknown storage \"Hdf5Storage\""), "{e}");
    assert!(
        e.contains("FitsStorage") && e.contains("YamlStorage") && e.contains("BoostStorage"),
        "{e}"
    );
    assert!(!std::fs::read_to_string(repo.join("repositoryCfg.yaml"))
        .unwrap()
        .contains("Hdf5Storage"));
    let e = err(&[
        "register-dataset-type",
        r,
        "cat:c/%(visit.yaml:PropertySet:YamlStorage",
    ]);
    assert!(!e.is_empty());
    // the new type works: a put, then the listing counts it
    let b = daf::butler::Butler::builder()
        .output(repo.as_path())
        .build()
        .unwrap();
    for (v, f) in [(1i64, "g"), (2, "r"), (3, "g")] {
        let mut ps = daf::base::PropertySet::new();
        ps.set("visit", v).unwrap();
        b.put(&ps, "meta", &daf::base::data_id! {visit: v, filter: f})
            .unwrap();
    }
    // README: daf query-dataset-types REPO
    let t = json(&["query-dataset-types", r, "--json"]);
    let names: Vec<&str> = t
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["calexp", "meta", "raw"], "{t}");
    assert_eq!(t[0]["persistable"], "ExposureF", "{t}");
    assert_eq!(t[1]["datasets"], 3, "{t}");
    assert_eq!(t[1]["keys"], serde_json::json!(["filter", "visit"]), "{t}");
    assert_eq!(
        t[1]["template"], "meta/v%(visit)04d_f%(filter)s.yaml",
        "{t}"
    );
    assert_eq!(t[2]["datasets"], 0, "{t}");
    let out = ok(&["query-dataset-types", r]);
    assert!(
        out.contains("\nmeta\tfilter,visit\tPropertySet\tYamlStorage\t3\n"),
        "{out}"
    );
    // a camera-mapper repository's types come from its policy
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cam = d.path().join("cam");
    ok(&[
        "create",
        cam.to_str().unwrap(),
        "--mapper",
        "CameraMapper",
        "--policy",
        here.join("tests/data/obs_test/policy/testMapper.yaml")
            .to_str()
            .unwrap(),
    ]);
    let e = err(&["register-dataset-type", cam.to_str().unwrap(), META_YAML]);
    assert!(e.contains("come from its mapper policy"), "{e}");
}

#[test]
fn retrieve_copies_files_out() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    create(&repo, None);
    let files = ingest_three_raws(d.path(), &repo);
    let dest = d.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let out = ok(&["retrieve", r, "raw", "filter=g", dest_s, "--dry-run"]);
    assert!(out.contains("would copy: raw"), "{out}");
    assert!(!dest.exists());
    // README: daf retrieve REPO raw filter=g DEST
    let out = ok(&["retrieve", r, "raw", "filter=g", dest_s]);
    assert_eq!(out.matches("copied: raw").count(), 2, "{out}");
    assert_eq!(
        std::fs::read(dest.join("raw/raw_v3_fg.fits")).unwrap(),
        std::fs::read(&files[2]).unwrap()
    );
    assert!(!dest.join("raw/raw_v2_fr.fits").exists());
    let j = json(&["retrieve", r, "raw", "filter=g", dest_s, "--json"]);
    assert!(
        j.as_array()
            .unwrap()
            .iter()
            .all(|x| x["outcome"] == "already there"),
        "{j}"
    );
    std::fs::write(dest.join("raw/raw_v1_fg.fits"), b"other").unwrap();
    let e = err(&["retrieve", r, "raw", "visit=1", dest_s]);
    assert!(e.contains("with other content (left alone)"), "{e}");
    assert_eq!(
        std::fs::read(dest.join("raw/raw_v1_fg.fits")).unwrap(),
        b"other"
    );
    let e = err(&["retrieve", r, "raw", "vist=1", dest_s]);
    assert!(e.contains("did you mean \"visit\"?"), "{e}");
    let e = err(&[
        "retrieve",
        r,
        "raw",
        "visit=1",
        dest_s,
        "--transfer",
        "move",
    ]);
    assert!(
        e.contains("copies or links") || e.contains("invalid value"),
        "{e}"
    );
    // the dry run counts what it would copy
    let o = daf(&[
        "retrieve",
        r,
        "raw",
        "filter=r",
        d.path().join("dry").to_str().unwrap(),
        "--dry-run",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("1 dataset(s) matched, 1 file(s) to copy"), "{e}");
    // a relative link out of a relative destination points back into the
    // repository relative to the link's own folder
    let o = Command::new(env!("CARGO_BIN_EXE_daf"))
        .current_dir(d.path())
        .args([
            "retrieve",
            r,
            "raw",
            "visit=3",
            "rel",
            "--transfer",
            "relsymlink",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = d.path().join("rel/raw/raw_v3_fg.fits");
    let target = std::fs::read_link(&link).unwrap();
    assert!(target.is_relative(), "{}", target.display());
    assert_eq!(target, Path::new("../../repo/raw/raw_v3_fg.fits"));
    assert_eq!(
        std::fs::read(&link).unwrap(),
        std::fs::read(&files[2]).unwrap()
    );
}

#[test]
fn typos_in_query_and_get_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    create(&repo, None);
    ingest_three_raws(d.path(), &repo);
    for (args, want) in [
        (vec!["query", r, "--dataset-type", "rwa"], "unknown dataset type \"rwa\"; did you mean \"raw\"? (valid: meta, raw)"),
        (vec!["query", r, "--dataset-type", "raw", "--where", "vist > 1"], "unknown data-id key \"vist\" in --where for dataset type \"raw\"; did you mean \"visit\"? (valid: filter, visit)"),
        (vec!["query", r, "--where", "filtre = 'g'"], "did you mean \"filter\"?"),
        (vec!["query", r, "--dataset-type", "raw", "--keys", "visit,fitler"], "unknown data-id key \"fitler\" in --keys"),
        (vec!["get", r, "rae", "visit=1"], "did you mean \"raw\"?"),
        (vec!["get", r, "raw", "visti=1"], "did you mean \"visit\"?"),
        (vec!["get", r, "bias", "visit=1"], "unknown dataset type \"bias\" (valid: meta, raw)"),
    ] {
        let e = err(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // the right names still work
    assert_eq!(count(r, "raw"), 3);
    let g = json(&["get", r, "raw", "visit=1", "--json"]);
    assert_eq!(g["data_id"]["visit"], 1);
}

#[test]
fn query_of_a_repository_with_a_gen2_parent_lists_the_parents_datasets() {
    let d = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = here.join("tests/data/obs_test/input");
    let out = d.path().join("out");
    let o = out.to_str().unwrap();
    ok(&[
        "create",
        o,
        "--mapper",
        "CameraMapper",
        "--policy",
        here.join("tests/data/obs_test/policy/testMapper.yaml")
            .to_str()
            .unwrap(),
        "--parent",
        input.to_str().unwrap(),
    ]);
    let q = json(&["query", o, "--json"]);
    let mut got: Vec<(String, i64)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["dataset_type"].as_str().unwrap().to_string(),
                x["data_id"]["visit"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("raw".into(), 1), ("raw".into(), 2), ("raw".into(), 3)],
        "{q}"
    );
    let q = json(&[
        "query",
        o,
        "--dataset-type",
        "raw",
        "--where",
        "filter = 'r'",
        "--json",
    ]);
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert!(
        q[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("raw/raw_v3_fr.fits.gz"),
        "{q}"
    );
    // and retrieve copies from the parent
    let dest = d.path().join("dest");
    ok(&["retrieve", o, "raw", "visit=2", dest.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(dest.join("raw/raw_v2_fg.fits.gz")).unwrap(),
        std::fs::read(input.join("raw/raw_v2_fg.fits.gz")).unwrap()
    );
}

#[test]
fn cli_conventions_verbosity_transfer_choices_info_and_closed_pipes() {
    // --transfer is a fixed choice, listed in the help
    let help = ok(&["ingest", "--help"]);
    assert!(
        help.contains("copy") && help.contains("relsymlink") && help.contains("direct"),
        "{help}"
    );
    assert!(help.contains("[default: copy]"), "{help}");
    let e = err(&["ingest", "/nonexistent", "f.fits", "--transfer", "cpoy"]);
    assert!(
        e.contains("invalid value 'cpoy'") && e.contains("copy"),
        "{e}"
    );
    let e = err(&["import", "/nonexistent", "f.yaml", "--transfer", "bogus"]);
    assert!(e.contains("possible values: copy, move, hardlink"), "{e}");
    // info lists storages and formatters
    let info = ok(&["info"]);
    assert!(
        info.contains("\nstorages: ") && info.contains("FitsStorage"),
        "{info}"
    );
    let f = info
        .lines()
        .find(|l| l.starts_with("formatters: "))
        .expect(&info);
    assert!(
        f.contains("PropertySet") && f.contains("ExposureF"),
        "{info}"
    );
    // -v/-q are global, on every command
    ok(&["-q", "info"]);
    ok(&["info", "-vv"]);
    let h = ok(&["--help"]);
    assert!(
        h.contains("-v, --verbose") && h.contains("-q, --quiet"),
        "{h}"
    );
    let e = err(&["-v", "query", "/nonexistent/repo"]);
    assert!(e.starts_with("daf: "), "{e}");

    // RUST_LOG and -v reach the log of any command: a query on a
    // PostgreSQL-free repository logs nothing at warn, but -vvv (trace)
    // and RUST_LOG=trace both enable the subscriber without error
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    create(&repo, None);
    ingest_three_raws(d.path(), &repo);
    let o = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["query", r])
        .env("RUST_LOG", "bogus=[")
        .output()
        .unwrap();
    assert!(o.status.success());

    // README: daf query REPO | head -1 — the closed pipe ends daf quietly
    let cam = d.path().join("cam");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    ok(&[
        "create",
        cam.to_str().unwrap(),
        "--mapper",
        "CameraMapper",
        "--policy",
        here.join("tests/data/obs_test/policy/testMapper.yaml")
            .to_str()
            .unwrap(),
    ]);
    let bin = env!("CARGO_BIN_EXE_daf");
    for (cmd, first) in [
        (
            format!("{bin} query {r}"),
            "dataset_type\tdata_id\trun\tfile\n",
        ),
        // far more than a pipe holds
        (format!("{bin} dump-policy {}", cam.display()), "- "),
    ] {
        let sh = format!("{cmd} 2>{}/err | head -1", d.path().display());
        let o = Command::new("bash").args(["-c", &sh]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with(first),
            "{sh}: {o:?}"
        );
        let errs = std::fs::read_to_string(d.path().join("err")).unwrap();
        // daf may be ended by the closed pipe before its last line: quietly
        assert!(errs.is_empty() || errs == "3 dataset(s)\n", "{sh}: {errs}");
    }
}

/// `daf prune --purge` killed (SIGKILL) at random moments: afterwards every
/// registered dataset still has its file, nothing outside the prune was
/// touched, the next writer resolves what the killed one left, and a prune
/// run to the end leaves `verify` with nothing to report.
#[test]
fn a_killed_prune_leaves_no_row_without_its_file() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    create(&repo, None);
    ingest_three_raws(d.path(), &repo);
    {
        let b = common::butler(&repo);
        let mut ps = daf::base::PropertySet::new();
        ps.set("v", 1).unwrap();
        let items: Vec<(&dyn daf::formatters::Persistable, daf::base::DataId)> = (1..=400i64)
            .map(|v| {
                (
                    &ps as &dyn daf::formatters::Persistable,
                    data_id! {visit: v, filter: "g"},
                )
            })
            .collect();
        b.put_many("meta", &items, &Default::default()).unwrap();
    }
    let raw_before: Vec<Vec<u8>> = [
        "raw/raw_v1_fg.fits",
        "raw/raw_v2_fr.fits",
        "raw/raw_v3_fg.fits",
    ]
    .iter()
    .map(|p| std::fs::read(repo.join(p)).unwrap())
    .collect();
    // how long a whole prune takes here, on a copy
    let probe = d.path().join("probe");
    std::fs::create_dir(&probe).unwrap();
    let t = std::time::Instant::now();
    let o = Command::new("cp")
        .args(["-a", r, probe.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(o.success());
    let copy = probe.join("repo");
    // the copy's configuration names no absolute paths: a SimpleMapper repository
    ok(&[
        "prune",
        copy.to_str().unwrap(),
        "meta",
        "--where",
        "visit > 100",
        "--purge",
    ]);
    let full = t.elapsed().as_micros().max(1000) as u64;
    let mut seed = u64::from(std::process::id()) | 1;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cut = 0;
    for _ in 0..6 {
        let mut c = Command::new(env!("CARGO_BIN_EXE_daf"))
            .args(["prune", r, "meta", "--where", "visit > 100", "--purge"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rand() % full));
        let _ = c.kill();
        c.wait().unwrap();
        // every row has its file, whatever the moment of the kill
        let o = daf(&["verify", r, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
        cut += usize::from(!v["pending_puts"].as_array().unwrap().is_empty());
        // the datasets not asked for are all there
        let q = json(&[
            "query",
            r,
            "--dataset-type",
            "meta",
            "--where",
            "visit <= 100",
            "--json",
        ]);
        assert_eq!(q.as_array().unwrap().len(), 100);
    }
    eprintln!("{cut} of 6 kills left a removal pending");
    // the next writer (here: the prune again, to its end) resolves the rest
    ok(&["prune", r, "meta", "--where", "visit > 100", "--purge"]);
    assert_eq!(count(r, "meta"), 100);
    assert_eq!(verify_clean(r), 103);
    let v = json(&["verify", r, "--json"]);
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
    for (p, before) in [
        "raw/raw_v1_fg.fits",
        "raw/raw_v2_fr.fits",
        "raw/raw_v3_fg.fits",
    ]
    .iter()
    .zip(raw_before)
    {
        assert_eq!(std::fs::read(repo.join(p)).unwrap(), before);
    }
}

/// The listing commands open a legacy Gen2 repository with `--policy`, as
/// `query` and `get` do (the "did you mean" of an unknown type points to
/// `query-dataset-types`).
#[test]
fn listing_commands_open_a_legacy_repository_with_policy() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = here.join("tests/data/obs_test/input");
    let policy = here.join("tests/data/obs_test/policy/testMapper.yaml");
    let (i, p) = (input.to_str().unwrap(), policy.to_str().unwrap());
    let types = ok(&["query-dataset-types", i, "--policy", p]);
    assert!(types.lines().any(|l| l.starts_with("raw\t")), "{types}");
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("out");
    ok(&[
        "retrieve",
        i,
        "raw",
        "visit=1",
        dest.to_str().unwrap(),
        "--policy",
        p,
    ]);
    let copied: Vec<_> = walk(&dest);
    assert_eq!(copied.len(), 1, "{copied:?}");
    ok(&["query-runs", i, "--policy", p]);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Concurrent `daf register-dataset-type` processes on one repository: every
/// registration is kept (the cfg update is serialized by a lock), and the
/// repository stays readable.
#[test]
fn concurrent_registrations_are_all_kept() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    ok(&["create", r, "--dataset", RAW]);
    const N: usize = 12;
    let children: Vec<_> = (0..N)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
                .args([
                    "register-dataset-type",
                    r,
                    &format!("t{i:02}:t{i}/%(visit)d.yaml:PropertySet:YamlStorage"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let t = json(&["query-dataset-types", r, "--json"]);
    let names: Vec<&str> = t
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    let mut want = vec!["raw".to_string()];
    want.extend((0..N).map(|i| format!("t{i:02}")));
    assert_eq!(names, want, "{t}");
}

/// `daf query-runs` shows the unnamed run as it is typed (`--run ""`), and
/// that spelling selects it.
#[test]
fn query_runs_shows_the_unnamed_run_as_typed() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    ok(&["create", r, "--dataset", RAW]);
    let f = d.path().join("incoming/e1.fits");
    daf::butler::testing::write_raw_fits(&f, 1, "g").unwrap();
    let fs = f.to_str().unwrap();
    ok(&[
        "ingest",
        r,
        fs,
        "--key",
        "visit=VISIT",
        "--key",
        "filter=FILTER",
        "-q",
    ]);
    let out = ok(&["query-runs", r]);
    assert!(out.contains("\n\"\"\t1\traw\t"), "{out}");
    assert!(!out.contains("(none)"), "{out}");
    let q = json(&["query-runs", r, "--json"]);
    assert_eq!(q[0]["run"], "", "{q}");
    // the label works as typed
    let g = json(&["get", r, "raw", "visit=1", "--run", "", "--json"]);
    assert_eq!(g["run"], "", "{g}");
}
