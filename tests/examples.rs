//! Every example in `examples/` runs here (each is also built by `cargo
//! test` as a binary): the Gen2 get, the cut-out, the put into a rerun and
//! DbStorage (SQLite, and the PostgreSQL and MariaDB test servers). The
//! custom-stages example runs in `harness_upstream.rs`.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../examples/db_storage.rs"]
mod db_storage;
#[allow(dead_code)]
#[path = "../examples/fits_cutout.rs"]
mod fits_cutout;
#[allow(dead_code)]
#[path = "../examples/gen2_get.rs"]
mod gen2_get;
#[allow(dead_code)]
#[path = "../examples/put_rerun.rs"]
mod put_rerun;

fn obs() -> (PathBuf, PathBuf) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    (
        here.join("tests/data/obs_test/input"),
        here.join("tests/data/obs_test/policy/testMapper.yaml"),
    )
}

#[test]
fn gen2_get_reads_the_obs_test_raw() {
    let (input, policy) = obs();
    let (w, h, mean, exptime) = gen2_get::run(&input, &policy).unwrap();
    assert_eq!((w, h), (1026, 2000));
    assert!(
        (mean - 2_496_790_727.0 / (1026.0 * 2000.0)).abs() < 1e-6,
        "{mean}"
    );
    assert_eq!(exptime, 15.0);
}

#[test]
fn fits_cutout_reads_a_box() {
    let (input, policy) = obs();
    assert_eq!(fits_cutout::run(&input, &policy).unwrap(), (100, 50, 1134));
}

#[test]
fn put_rerun_writes_only_the_output() {
    let (input, policy) = obs();
    let d = tempfile::tempdir().unwrap();
    let rerun = d.path().join("rerun/me");
    let (path, first) = put_rerun::run(&input, &policy, &rerun).unwrap();
    assert!(
        path.starts_with(&rerun) && path.is_file(),
        "{}",
        path.display()
    );
    assert!(!input.join("calexp").exists());
    assert!((first - (966.0 - 967.6)).abs() < 1e-3, "{first}");
}

#[test]
fn db_storage_on_sqlite_and_postgresql() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", d.path().join("db.sqlite3").display());
    let want = vec![(2, 2.5), (3, 4.0)];
    assert_eq!(
        db_storage::run(&url, "example_sources", None).unwrap(),
        want
    );
    for server in daf::base::testing::test_servers() {
        let u = daf::storages::db::DbUrl::parse(&server.url).unwrap();
        let mut auth = daf::storages::db::DbAuth::new();
        auth.add(&u.host, u.port, server.user, "");
        let table = daf::base::testing::unique_name("example_sources");
        let got = db_storage::run(&server.url, &table, Some(std::sync::Arc::new(auth))).unwrap();
        assert_eq!(got, want, "{}", server.url);
    }
}

/// README: `cargo run --example NAME` — the example programs themselves,
/// as `cargo test` built them (beside this test's own binary), run with no
/// arguments from the repository root.
#[test]
fn example_programs_run_as_the_readme_says() {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples");
    for (name, args, want) in [
        (
            "gen2_get",
            &[] as &[&str],
            "raw visit=1: 1026×2000 pixels, mean ",
        ),
        ("fits_cutout", &[], "cut-out 100×50, pixel (0, 0) = 1134"),
        ("put_rerun", &[], "put calexp visit=1 into "),
        ("db_storage", &[], "source 2: flux 2.5\nsource 3: flux 4\n"),
        // daf-cli's custom_stages: cli/tests/harness_upstream.rs runs it
    ] {
        let bin = dir.join(name);
        // `cargo test --workspace` (the README's test command) builds the
        // examples; a narrower `cargo test --test examples` does not
        if !daf::base::testing::available(bin.is_file(), &format!("{} not built", bin.display())) {
            continue;
        }
        let d = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(&bin);
        // the examples' scratch files go to the temporary folder: this one
        cmd.args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TMPDIR", d.path());
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(want), "{name}: {out}");
    }
}
