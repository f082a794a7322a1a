//! Issue 16 §1–2 as users meet them, through the `daf` binary: a repository
//! written by one user under umask 022 and read by another (`runuser -u
//! nobody`, since the tests run as root, which ignores file modes), read-only
//! access to registries, and honest failures (exit status, "2 match",
//! "unknown dataset type", "permission denied", empty configuration).
//!
//! Every test here runs with umask 022 (set once for this test process, so
//! library puts and the `daf` children all write under it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use daf::base::{data_id, PropertySet};
use daf::butler::{Butler, PutOptions};
use daf_base::testing::{available, have_program};

mod common;
use common::{ingest_three_raws, RAW};

/// PropertySets in Boost archives (a storage the `daf` binary reads).
const META: &str = "meta:meta/v%(visit)04d_f%(filter)s.boost:PropertySet:BoostStorage";

fn umask_022() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: umask only swaps the process's file-mode mask; every test of
    // this binary wants the same value.
    ONCE.call_once(|| unsafe {
        libc::umask(0o022);
    });
}

/// A scratch folder every user can traverse (mode 0755 under /tmp), and a
/// `daf` binary every user can run (the built one, or a copy inside the
/// folder). `None` (after `SKIPPED:`; a failure in CI) without `runuser` or
/// root.
struct Shared {
    dir: tempfile::TempDir,
    daf: PathBuf,
}

impl Shared {
    fn new() -> Option<Shared> {
        umask_022();
        let root = unsafe { libc::geteuid() } == 0;
        if !available(
            have_program("runuser") && root,
            "runuser (as root) is needed to read as a second user",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("daf-shared-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let built = PathBuf::from(env!("CARGO_BIN_EXE_daf"));
        let mut s = Shared { dir, daf: built };
        if !s.nobody(&["--version"]).status.success() {
            let copy = s.dir.path().join("daf");
            std::fs::copy(&s.daf, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            s.daf = copy;
        }
        let o = s.nobody(&["--version"]);
        assert!(
            o.status.success(),
            "nobody cannot run daf: {}",
            text(&o.stderr)
        );
        Some(s)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `daf ARGS` as root (umask 022, inherited).
    fn root(&self, args: &[&str]) -> Output {
        Command::new(&self.daf)
            .args(args)
            .current_dir("/")
            .output()
            .unwrap()
    }

    fn root_ok(&self, args: &[&str]) -> String {
        let o = self.root(args);
        assert!(o.status.success(), "daf {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// `runuser -u nobody -- daf ARGS`.
    fn nobody(&self, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&self.daf)
            .args(args)
            .current_dir("/")
            .output()
            .unwrap()
    }

    fn nobody_ok(&self, args: &[&str]) -> String {
        let o = self.nobody(args);
        assert!(
            o.status.success(),
            "nobody: daf {args:?}: {}{}",
            text(&o.stderr),
            text(&o.stdout)
        );
        text(&o.stdout)
    }

    fn nobody_json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.nobody_ok(args)).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Every file and folder under `dir` (not `dir`), recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

/// Errors a user must never see for a permission problem.
fn assert_permission_denied(o: &Output, what: &str) {
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{what}: succeeded");
    let low = err.to_lowercase();
    assert!(low.contains("permission denied"), "{what}: {err}");
    for wrong in [
        "not found",
        "no such",
        "unable to open database file",
        "not a repository",
        "readonly database",
    ] {
        assert!(!low.contains(wrong), "{what}: says {wrong:?}: {err}");
    }
}

/// A repository written by root under umask 022 — `daf create`, `daf
/// ingest`, library puts (new, backup), `daf export`, `daf import`,
/// `daf registry create` — has 0644 files and 0755 folders, and a second
/// user (`nobody`, who may not write anything there) can `query`, `get`
/// and `verify` it.
#[test]
fn a_second_user_reads_what_daf_wrote_under_umask_022() {
    let Some(s) = Shared::new() else { return };
    let repo = s.path("repo");
    let repo_s = repo.to_str().unwrap();
    s.root_ok(&["create", repo_s, "--dataset", RAW, "--dataset", META]);
    ingest_three_raws(s.dir.path(), &repo);
    let b = Butler::builder().output(repo.as_path()).build().unwrap();
    for v in 1..=2i64 {
        let mut ps = PropertySet::new();
        ps.set("visit", v).unwrap();
        b.put(&ps, "meta", &data_id! {visit: v, filter: "g"})
            .unwrap();
    }
    let mut ps = PropertySet::new();
    ps.set("visit", 20i64).unwrap();
    b.put_with(
        &ps,
        "meta",
        &data_id! {visit: 2, filter: "g"},
        &PutOptions::backup(),
    )
    .unwrap();
    drop(b);
    let export = s.path("export.yaml");
    s.root_ok(&["export", repo_s, "-o", export.to_str().unwrap()]);
    let repo2 = s.path("repo2");
    let repo2_s = repo2.to_str().unwrap();
    s.root_ok(&["create", repo2_s, "--dataset", RAW, "--dataset", META]);
    s.root_ok(&["import", repo2_s, export.to_str().unwrap()]);

    // Modes: the umask's, everywhere.
    let backup = repo.join("meta/v0002_fg.boost~1");
    assert!(backup.is_file(), "the backup put kept the old file");
    for r in [&repo, &repo2] {
        let mut all = Vec::new();
        walk(r, &mut all);
        assert!(all.len() > 8, "{all:?}");
        for p in &all {
            let want = if p.is_dir() { 0o755 } else { 0o644 };
            assert_eq!(mode(p), want, "{}", p.display());
        }
        assert_eq!(mode(&r.join("repositoryCfg.yaml")), 0o644);
        assert_eq!(mode(&r.join("daf_registry.sqlite3")), 0o644);
    }
    assert_eq!(mode(&export), 0o644);

    // A second user reads it all; nothing there is writable for them.
    let before = {
        let mut v = Vec::new();
        walk(&repo, &mut v);
        v.sort();
        v
    };
    let g = s.nobody_json(&["get", repo_s, "raw", "visit=2", "--json"]);
    assert_eq!(g["type"], "DecoratedImageU", "{g}");
    assert_eq!(g["data_id"]["filter"], "r", "{g}");
    let g = s.nobody_json(&["get", repo_s, "meta", "visit=2", "--json"]);
    assert_eq!(g["fields"]["visit"], 20, "{g}");
    let q = s.nobody_json(&["query", repo_s, "--json"]);
    assert_eq!(q.as_array().unwrap().len(), 5, "{q}");
    let q = s.nobody_json(&[
        "query",
        repo_s,
        "--dataset-type",
        "raw",
        "--where",
        "visit > 1",
        "--json",
    ]);
    assert_eq!(q.as_array().unwrap().len(), 2, "{q}");
    let v = s.nobody_json(&["verify", repo_s, "--json"]);
    assert_eq!(v["checked"], 5, "{v}");
    assert_eq!(v["mismatches"], serde_json::json!([]), "{v}");
    let v = s.nobody_json(&["verify", repo2_s, "--json"]);
    assert_eq!(v["checked"], 5, "{v}");
    // The reads wrote nothing (no WAL files, no journal, no temp files).
    let mut after = Vec::new();
    walk(&repo, &mut after);
    after.sort();
    assert_eq!(before, after);
    // Repairing needs write access, and says so.
    let o = s.nobody(&["verify", repo_s, "--repair"]);
    assert_permission_denied(&o, "verify --repair as nobody");

    // A camera-mapper repository whose registry `daf registry create` made
    // (WAL mode), in a folder the reader cannot write, is read as it is.
    let cam = s.path("cam");
    let cam_s = cam.to_str().unwrap();
    let policy = s.path("mapper.yaml");
    std::fs::write(
        &policy,
        "exposures:\n  raw:\n    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz\n    \
         tables: raw\n    persistable: DecoratedImageU\n    storage: FitsStorage\n",
    )
    .unwrap();
    let policy_s = policy.to_str().unwrap();
    s.root_ok(&[
        "create",
        cam_s,
        "--mapper",
        "CameraMapper",
        "--policy",
        policy_s,
    ]);
    let raws = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/input/raw");
    std::fs::create_dir_all(cam.join("raw")).unwrap();
    for f in [
        "raw_v1_fg.fits.gz",
        "raw_v2_fg.fits.gz",
        "raw_v3_fr.fits.gz",
    ] {
        std::fs::copy(raws.join(f), cam.join("raw").join(f)).unwrap();
        chmod(&cam.join("raw").join(f), 0o644);
    }
    s.root_ok(&["registry", "create", "--quiet", policy_s, cam_s]);
    assert_eq!(mode(&cam.join("registry.sqlite3")), 0o644);
    let q = s.nobody_json(&[
        "query",
        cam_s,
        "--dataset-type",
        "raw",
        "--keys",
        "visit,filter",
        "--json",
    ]);
    assert_eq!(q.as_array().unwrap().len(), 3, "{q}");
    let g = s.nobody_json(&["get", cam_s, "raw", "visit=3", "--json"]);
    assert_eq!(g["data_id"]["filter"], "r", "{g}");
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
    assert!(!cam.join("registry.sqlite3-shm").exists());
}

/// `daf get` exits non-zero, with the reason on stderr, for every failed
/// read: a registered file that is gone, a storage that does not exist, a
/// file the user may not read.
#[test]
fn failed_reads_exit_non_zero() {
    let Some(s) = Shared::new() else { return };
    let repo = s.path("repo");
    let repo_s = repo.to_str().unwrap();
    s.root_ok(&[
        "create",
        repo_s,
        "--dataset",
        RAW,
        "--dataset",
        "blob:blob/v%(visit)d.bin:PropertySet:NoSuchStorage",
    ]);
    ingest_three_raws(s.dir.path(), &repo);
    // missing
    std::fs::remove_file(repo.join("raw/raw_v1_fg.fits")).unwrap();
    let o = s.root(&["get", repo_s, "raw", "visit=1", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("raw_v1_fg.fits"),
        "{}",
        text(&o.stderr)
    );
    // unknown storage
    std::fs::create_dir_all(repo.join("blob")).unwrap();
    std::fs::write(repo.join("blob/v1.bin"), b"{}").unwrap();
    let o = s.root(&["get", repo_s, "blob", "visit=1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("NoSuchStorage"),
        "{}",
        text(&o.stderr)
    );
    // permission denied on the file
    chmod(&repo.join("raw/raw_v2_fr.fits"), 0o600);
    let o = s.nobody(&["get", repo_s, "raw", "visit=2", "--json"]);
    assert_permission_denied(&o, "get of a 0600 file");
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        g["read_error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{g}"
    );
    // and verify says it could not read it, not that it changed
    let o = s.nobody(&["verify", repo_s]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("unreadable: Permission denied"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("could not be read"),
        "{}",
        text(&o.stderr)
    );
}

/// Permission denied on a folder or a file is reported as such — never as
/// "not found", "not a repository" or SQLite's "unable to open database
/// file" — for daf repositories and legacy ones.
#[test]
fn permission_denied_is_reported_as_such() {
    let Some(s) = Shared::new() else { return };
    let mk = |name: &str| {
        let r = s.path(name);
        s.root_ok(&["create", r.to_str().unwrap(), "--dataset", RAW]);
        ingest_three_raws(&s.path(&format!("{name}-in")), &r);
        r
    };
    // the repository folder itself
    let closed = mk("closed");
    chmod(&closed, 0o700);
    for args in [
        vec!["query", closed.to_str().unwrap()],
        vec!["get", closed.to_str().unwrap(), "raw", "visit=1"],
        vec!["verify", closed.to_str().unwrap()],
    ] {
        assert_permission_denied(&s.nobody(&args), &format!("{args:?}"));
    }
    // the file registry
    let reg = mk("reg");
    chmod(&reg.join("daf_registry.sqlite3"), 0o600);
    for args in [
        vec!["query", reg.to_str().unwrap()],
        vec!["get", reg.to_str().unwrap(), "raw", "visit=1"],
    ] {
        assert_permission_denied(&s.nobody(&args), &format!("{args:?}"));
    }
    // a data folder
    let data = mk("data");
    chmod(&data.join("raw"), 0o700);
    assert_permission_denied(
        &s.nobody(&["get", data.to_str().unwrap(), "raw", "visit=1"]),
        "get in a closed data folder",
    );

    // A legacy repository (the obs_test fixture, no file registry) behind
    // a camera-mapper output: its registry, then its data folder.
    let legacy = legacy_copy(&s, "legacy");
    let out = camera_output(&s, "legacy-out", &legacy);
    chmod(&legacy.join("registry.sqlite3"), 0o600);
    for args in [
        vec!["get", out.to_str().unwrap(), "raw", "visit=1"],
        vec![
            "query",
            out.to_str().unwrap(),
            "--dataset-type",
            "raw",
            "--keys",
            "visit",
        ],
    ] {
        assert_permission_denied(&s.nobody(&args), &format!("{args:?}"));
    }
    chmod(&legacy.join("registry.sqlite3"), 0o644);
    s.nobody_ok(&["get", out.to_str().unwrap(), "raw", "visit=1"]);
    chmod(&legacy.join("raw"), 0o700);
    assert_permission_denied(
        &s.nobody(&["get", out.to_str().unwrap(), "raw", "visit=1"]),
        "get in a closed legacy data folder",
    );
}

/// A copy of the obs_test fixture (a legacy repository: `_mapper`,
/// `registry.sqlite3`, no file registry), readable by all.
fn legacy_copy(s: &Shared, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/input");
    let dst = s.path(name);
    copy_tree(&src, &dst);
    dst
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    chmod(dst, 0o755);
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
            chmod(&to, 0o644);
        }
    }
}

/// `daf create OUT --mapper CameraMapper --policy testMapper.yaml --parent
/// LEGACY`, as root.
fn camera_output(s: &Shared, name: &str, legacy: &Path) -> PathBuf {
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/policy/testMapper.yaml");
    let out = s.path(name);
    s.root_ok(&[
        "create",
        out.to_str().unwrap(),
        "--mapper",
        "CameraMapper",
        "--policy",
        policy.to_str().unwrap(),
        "--parent",
        legacy.to_str().unwrap(),
    ]);
    out
}

/// Without a file registry (a legacy repository), an ambiguous data id and
/// an unknown dataset type are reported as the file-registry path reports
/// them: "2 match" and "unknown dataset type", not "no raw dataset".
#[test]
fn legacy_lookups_say_2_match_and_unknown_dataset_type() {
    umask_022();
    let d = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_daf"))
            .args(args)
            .output()
            .unwrap()
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/input");
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/policy/testMapper.yaml");
    let out = d.path().join("out");
    let o = run(&[
        "create",
        out.to_str().unwrap(),
        "--mapper",
        "CameraMapper",
        "--policy",
        policy.to_str().unwrap(),
        "--parent",
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // With a file registry, for comparison.
    let reg = d.path().join("reg");
    let o = run(&["create", reg.to_str().unwrap(), "--dataset", RAW]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    ingest_three_raws(d.path(), &reg);
    for repo in [&out, &reg] {
        let r = repo.to_str().unwrap();
        let o = run(&["get", r, "raw", "filter=g"]);
        assert_eq!(o.status.code(), Some(1), "{r}");
        let e = text(&o.stderr);
        assert!(
            e.contains("no unique dataset for raw {filter: \"g\"}: 2 match"),
            "{r}: {e}"
        );
        let o = run(&["get", r, "bogus", "visit=1"]);
        assert_eq!(o.status.code(), Some(1), "{r}");
        let e = text(&o.stderr);
        assert!(e.contains("unknown dataset type \"bogus\""), "{r}: {e}");
        // A data id that matches nothing is still "no … dataset".
        let o = run(&["get", r, "raw", "visit=9"]);
        assert_eq!(o.status.code(), Some(1), "{r}");
        assert!(text(&o.stderr).contains("no raw dataset"), "{r}");
    }
    // And a unique partial id still reads.
    let o = run(&["get", out.to_str().unwrap(), "raw", "filter=r", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["data_id"]["visit"], 3, "{g}");
}

/// An empty `repositoryCfg.yaml` is an error, and configuration errors
/// name the file and line in daf's words, without the YAML parser's
/// " at line L column C".
#[test]
fn empty_or_corrupt_repository_cfg_is_a_clear_error() {
    umask_022();
    let d = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_daf"))
            .args(args)
            .output()
            .unwrap()
    };
    let repo = d.path().join("repo");
    let r = repo.to_str().unwrap();
    assert!(run(&["create", r, "--dataset", RAW]).status.success());
    let cfg = repo.join("repositoryCfg.yaml");
    for (body, want) in [
        ("", "the file is empty"),
        ("\n  \n", "the file is empty"),
        ("!RepositoryCfg_v1\n", "the file holds no settings"),
        (
            "!RepositoryCfg_v1\nmapper: SimpleMapper\nbogus: 1\n",
            "repositoryCfg.yaml: line 3: unknown field `bogus`",
        ),
        (
            "mapper: [unclosed\n",
            "repositoryCfg.yaml: line 1: mapper: invalid type",
        ),
    ] {
        std::fs::write(&cfg, body).unwrap();
        for args in [vec!["query", r], vec!["get", r, "raw", "visit=1"]] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(1), "{body:?}");
            let e = text(&o.stderr);
            assert!(e.contains(want), "{body:?}: {e}");
            assert!(e.contains("corrupt"), "{body:?}: {e}");
            assert!(!e.contains(" at line "), "{body:?}: {e}");
            assert!(!e.contains(" column "), "{body:?}: {e}");
        }
    }
}

/// Released Gen2 data (a legacy folder, root's, readable by all) opened
/// directly by a second user with `--policy`: its registry opens read-only,
/// `query` and `get` (raw with its detector, a component) answer, and
/// nothing is written into the folder.
#[test]
fn a_second_user_reads_a_released_legacy_folder_with_policy() {
    let Some(s) = Shared::new() else { return };
    let legacy = legacy_copy(&s, "released");
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/policy/testMapper.yaml");
    let (l, p) = (legacy.to_str().unwrap(), policy.to_str().unwrap());
    let mut before = Vec::new();
    walk(&legacy, &mut before);
    let q = s.nobody_json(&[
        "query",
        l,
        "--dataset-type",
        "raw",
        "--keys",
        "visit,filter",
        "--policy",
        p,
        "--json",
    ]);
    assert_eq!(
        q,
        serde_json::json!([{"visit": 1, "filter": "g"}, {"visit": 2, "filter": "g"}, {"visit": 3, "filter": "r"}])
    );
    let g = s.nobody_json(&["get", l, "raw", "visit=1", "--policy", p, "--json"]);
    assert_eq!(g["shape"], serde_json::json!([1026, 2000]), "{g}");
    assert_eq!(g["detector"]["serial"], "0000011", "{g}");
    let m = s.nobody_json(&["get", l, "raw.metadata", "visit=2", "--policy", p, "--json"]);
    assert_eq!(m["fields"]["EXPTIME"], 15.0, "{m}");
    let mut after = Vec::new();
    walk(&legacy, &mut after);
    before.sort();
    after.sort();
    assert_eq!(before, after, "a read wrote into the released folder");
}
