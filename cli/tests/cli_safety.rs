//! Issue 20 through the `daf` binary and the API: nothing input-derived
//! writes outside the repository; after a failure the obvious retry works;
//! `verify` finds and `verify --repair` cleans leftovers; `get --verify`
//! and `get`'s exit status.

use std::path::Path;

use daf::base::{data_id, PropertySet};
use daf::butler::{ButlerError, PutOptions};

mod common;
use common::{butler, daf, ingest_three_raws, json, ok, META, RAW};

fn create(repo: &Path) {
    ok(&[
        "create",
        repo.to_str().unwrap(),
        "--dataset",
        RAW,
        "--dataset",
        META,
    ]);
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`, recursively (but the file registry, which
/// opening a repository for writing creates).
fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with("daf_registry") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ingest_run_cannot_leave_the_repository() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("sub/repo");
    create(&repo);
    let f = d.path().join("in/x.fits");
    daf::butler::testing::write_raw_fits(&f, 1, "g").unwrap();
    let before = all_files(d.path());
    let abs = d.path().join("abs-target");
    for run in [
        "../../escaped",
        "../../../tmp/x",
        "a/../../b",
        abs.to_str().unwrap(),
        "a\nb",
    ] {
        let o = daf(&[
            "ingest",
            repo.to_str().unwrap(),
            f.to_str().unwrap(),
            "--key",
            "visit=VISIT",
            "--key",
            "filter=FILTER",
            "--run",
            run,
        ]);
        assert!(!o.status.success(), "{run:?} accepted");
        let e = stderr(&o);
        assert!(e.contains("unsafe run"), "{run:?}: {e}");
    }
    assert_eq!(all_files(d.path()), before, "nothing written anywhere");
    assert!(!d.path().join("escaped").exists() && !abs.exists());
}

#[test]
fn put_run_and_template_cannot_leave_the_repository() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("sub/repo");
    create(&repo);
    let b = butler(&repo);
    let mut ps = PropertySet::new();
    ps.set("v", 1).unwrap();
    let id = data_id! {visit: 1, filter: "g"};
    let abs = d.path().join("abs");
    for run in [
        "../escaped",
        abs.to_str().unwrap(),
        "a/../../b",
        "x\0y",
        "x\ny",
    ] {
        let e = b
            .put_with(&ps, "meta", &id, &PutOptions::default().run(run))
            .unwrap_err();
        assert!(matches!(e, ButlerError::UnsafePath(_)), "{run:?}: {e}");
    }
    // a data-id value with a newline or `..` never becomes a path
    for bad in ["a\nb", "..", "../x"] {
        let e = b
            .put(&ps, "meta", &data_id! {visit: 1, filter: bad})
            .unwrap_err();
        assert!(
            e.to_string().contains("would break the path"),
            "{bad:?}: {e}"
        );
    }
    let files: Vec<_> = all_files(d.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
    // a named run that is safe works and stays inside
    let written = b
        .put_with(&ps, "meta", &id, &PutOptions::default().run("nightly/r1"))
        .unwrap();
    assert!(written[0].starts_with(&repo), "{written:?}");

    // a template with `..` in its literal part is refused at creation
    let repo2 = d.path().join("repo2");
    let o = daf(&[
        "create",
        repo2.to_str().unwrap(),
        "--dataset",
        "meta:../../x/v%(visit)d.b:PropertySet:JsonStorage",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("'..' component is not allowed"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn get_verify_and_read_errors_set_the_exit_status() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    create(&repo);
    ingest_three_raws(d.path(), &repo);
    let g = json(&["get", repo_s, "raw", "visit=2", "--verify", "--json"]);
    assert_eq!(g["verified"], true, "{g}");
    // as README shows it
    let text = ok(&["get", repo_s, "raw", "visit=2", "--verify"]);
    assert!(text.contains("verified: true"), "{text}");
    // damage that still reads: --verify catches it, plain get does not
    let f = repo.join("raw/raw_v2_fr.fits");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 2880));
    std::fs::write(&f, &bytes).unwrap();
    ok(&["get", repo_s, "raw", "visit=2"]);
    let o = daf(&["get", repo_s, "raw", "visit=2", "--verify", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["verified"], false, "{g}");
    assert!(
        g["verify_error"].as_str().unwrap().contains("size changed"),
        "{g}"
    );
    // a file that cannot be read: summary printed, exit status 1
    std::fs::write(&f, b"SIMPLE  = garbage").unwrap();
    let o = daf(&["get", repo_s, "raw", "visit=2", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(g["read_error"].is_string(), "{g}");
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
}

#[test]
fn verify_reports_leftovers_and_repair_cleans_only_garbage() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    create(&repo);
    ingest_three_raws(d.path(), &repo);
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["unregistered_files"], serde_json::json!([]), "{v}");
    // an unregistered file, a dead writer's temporary file and staging file,
    // and a live writer's temporary file
    let host = daf::storages::owner::token()
        .split('@')
        .nth(1)
        .unwrap()
        .to_string();
    let dead = format!("p4000000s1@{host}");
    let stray = repo.join("raw/stray.fits");
    let dead_tmp = repo.join(format!("raw/.raw_v9.fits.{dead}.Ab12Cd.daf-tmp"));
    let dead_staging = repo.join(format!("raw/.daf-tmp.{dead}.3.raw_v9.fits"));
    let live_tmp = repo.join(format!(
        "raw/.raw_v8.fits.{}.Xy34Zw.daf-tmp",
        daf::storages::owner::token()
    ));
    for p in [&stray, &dead_tmp, &dead_staging, &live_tmp] {
        std::fs::write(p, b"x").unwrap();
    }
    // as README shows it
    let o = daf(&["verify", repo_s]);
    assert_eq!(o.status.code(), Some(3), "garbage fails verify");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("stray.fits: not registered"), "{text}");
    assert!(text.contains("temporary file of a dead process"), "{text}");
    assert!(stderr(&o).contains("daf verify --repair"), "{}", stderr(&o));
    let o = daf(&["verify", repo_s, "--json"]);
    assert_eq!(o.status.code(), Some(3), "garbage fails verify");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["unregistered_files"], serde_json::json!([stray]), "{v}");
    let temps = v["temporary_files"].as_array().unwrap();
    assert_eq!(temps.len(), 3, "{v}");
    let kind_of = |p: &Path| {
        temps
            .iter()
            .find(|t| t["path"] == serde_json::json!(p))
            .map(|t| t["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind_of(&dead_tmp).as_deref(), Some("dead_temp"));
    assert_eq!(kind_of(&dead_staging).as_deref(), Some("dead_temp"));
    assert_eq!(kind_of(&live_tmp).as_deref(), Some("live_temp"));
    let text = ok(&["verify", repo_s, "--repair"]);
    assert!(text.contains("removed"), "{text}");
    assert!(!dead_tmp.exists() && !dead_staging.exists());
    assert!(live_tmp.exists() && stray.exists(), "only garbage goes");
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["mismatches"], serde_json::json!([]));
    assert_eq!(v["unregistered_files"], serde_json::json!([stray]), "{v}");
}

#[test]
fn ingest_retry_adopts_an_identical_copy_and_move_resolves_symlinks() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    create(&repo);
    let keys = ["--key", "visit=VISIT", "--key", "filter=FILTER", "--json"];
    // a relative symbolic link moved in: the file it points to is copied
    // in, the link goes, the file it pointed to stays
    let real = d.path().join("data/real.fits");
    daf::butler::testing::write_raw_fits(&real, 4, "g").unwrap();
    std::fs::create_dir_all(d.path().join("links")).unwrap();
    let link = d.path().join("links/l.fits");
    std::os::unix::fs::symlink("../data/real.fits", &link).unwrap();
    let mut args = vec![
        "ingest",
        repo_s,
        link.to_str().unwrap(),
        "--transfer",
        "move",
    ];
    args.extend(keys);
    let s = json(&args);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 1, "{s}");
    let stored = repo.join("raw/raw_v4_fg.fits");
    assert!(!stored.symlink_metadata().unwrap().is_symlink());
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        std::fs::read(&real).unwrap()
    );
    assert!(link.symlink_metadata().is_err() && real.exists());
    // a dangling link is refused, not moved
    let link = d.path().join("links/dangling.fits");
    std::os::unix::fs::symlink("../data/nothing.fits", &link).unwrap();
    let mut args = vec![
        "ingest",
        repo_s,
        link.to_str().unwrap(),
        "--transfer",
        "move",
    ];
    args.extend(keys);
    let o = daf(&args);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        s["failed"][0][1].as_str().unwrap().contains("dangling"),
        "{s}"
    );
    assert!(
        link.symlink_metadata().is_ok(),
        "the link stays where it was"
    );

    // a failed ingest left an unregistered copy: the retry adopts it
    let f = d.path().join("in/v5.fits");
    daf::butler::testing::write_raw_fits(&f, 5, "r").unwrap();
    std::fs::copy(&f, repo.join("raw/raw_v5_fr.fits")).unwrap();
    let mut args = vec!["ingest", repo_s, f.to_str().unwrap()];
    args.extend(keys);
    let s = json(&args);
    assert_eq!(s["ingested"].as_array().unwrap().len(), 1, "{s}");
    // a different unregistered file there is refused and left alone
    let g = d.path().join("in/v6.fits");
    daf::butler::testing::write_raw_fits(&g, 6, "r").unwrap();
    std::fs::write(repo.join("raw/raw_v6_fr.fits"), b"other bytes").unwrap();
    let mut args = vec!["ingest", repo_s, g.to_str().unwrap()];
    args.extend(keys);
    let o = daf(&args);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        s["failed"][0][1]
            .as_str()
            .unwrap()
            .contains("not registered and differs"),
        "{s}"
    );
    assert_eq!(
        std::fs::read(repo.join("raw/raw_v6_fr.fits")).unwrap(),
        b"other bytes"
    );
    let v = json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 2, "{v}");
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
}
