//! `daf bench --peers` and `--json` end to end on tiny sizes: the JSON
//! Lines shape (one object per measurement with name, value, unit,
//! reference, ratio, target, pass), each peer actually run (C++ Boost
//! compiled with g++, cfitsio and astropy, the Gen3 butler, Python sqlite3)
//! and a missing peer failing with an install hint. Ratios are not checked
//! here (they only mean something at full size, in a release build).

use std::process::Command;

use serde_json::Value;

fn daf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .expect("run daf")
}

fn json_rows(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "daf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn check_shape(r: &Value) {
    for k in [
        "name",
        "value",
        "unit",
        "reference",
        "ratio",
        "target",
        "pass",
    ] {
        assert!(r.get(k).is_some(), "{k} missing in {r}");
    }
    assert!(r["value"].as_f64().is_some_and(|v| v > 0.0), "{r}");
    match (r["reference"].as_f64(), r["ratio"].as_f64()) {
        (Some(reference), Some(ratio)) => {
            let v = r["value"].as_f64().unwrap();
            assert!(
                (v / reference - ratio).abs() <= 1e-9 * ratio.abs().max(1.0),
                "{r}"
            );
        }
        (None, None) => {}
        _ => panic!("reference and ratio go together: {r}"),
    }
    assert_eq!(r["target"].is_null(), r["pass"].is_null(), "{r}");
}

fn python_with(module: &str) -> bool {
    let py =
        std::env::var("DAF_PYTHON").unwrap_or_else(|_| "/root/.cache/daf/venv/bin/python".into());
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn json_is_one_object_per_measurement() {
    let rows = json_rows(&daf(&["bench", "foundation", "--quick", "--json"]));
    assert!(!rows.is_empty());
    for r in &rows {
        check_shape(r);
        assert_eq!(r["area"], "foundation");
    }
    assert!(rows.iter().any(|r| r["pass"].is_boolean()));
}

#[test]
fn boost_peers_run_cpp_boost() {
    if !daf::base::testing::available(
        daf::base::testing::have_program("g++")
            && std::path::Path::new("/usr/include/boost/archive/binary_oarchive.hpp").exists(),
        "g++ or the Boost.Serialization headers (apt-get install g++ libboost-serialization-dev)",
    ) {
        return;
    }
    let rows = json_rows(&daf(&[
        "bench",
        "boost",
        "--peers",
        "--json",
        "--vec-mib",
        "1",
        "--records",
        "2000",
        "--text-mib",
        "1",
        "--runs",
        "1",
    ]));
    let peer: Vec<&Value> = rows
        .iter()
        .filter(|r| r["reference_name"] == "C++ Boost 1.74")
        .collect();
    assert_eq!(peer.len(), 6, "{rows:?}");
    for r in &peer {
        check_shape(r);
        assert!(r["target"].is_string(), "{r}");
    }
    assert!(peer
        .iter()
        .any(|r| r["name"] == "2000 small structs binary read"));
}

#[test]
fn fits_peers_run_cfitsio_and_astropy() {
    if !daf::base::testing::available(python_with("astropy"), "python with astropy (DAF_PYTHON)") {
        return;
    }
    let rows = json_rows(&daf(&[
        "bench", "fits", "--peers", "--json", "--quick", "--side", "256", "--runs", "1",
    ]));
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    for want in [
        "FITS f32 256x256 write (durable: fsync)",
        "FITS u16 256x256 read",
        "FITS f32 256x256 read, astropy memmap=False",
        "FITS f32 256x256 read vs astropy memmap=True",
        "FITS f32 100x100 cut-out incl. open",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    rows.iter().for_each(check_shape);
    // The peers do not fsync: the target is on daf's write with the fsync
    // cost taken out, and the fsync cost is its own line.
    let by_name = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap();
    assert!(by_name("FITS f32 256x256 write (durable: fsync)")["target"].is_null());
    assert_eq!(
        by_name("FITS f32 256x256 write, fsync cost taken out")["target"],
        ">=1"
    );
    assert_eq!(by_name("fsync of the 0.3 MiB file")["unit"], "ms");
}

#[test]
fn butler_peers_run_gen3() {
    if !daf::base::testing::available(
        python_with("lsst.daf.butler"),
        "python with lsst-daf-butler (DAF_PYTHON)",
    ) {
        return;
    }
    // The library entry point: the CLI's own rows (1,000 datasets and FITS
    // files) are slow in a debug build; the CLI path is the same call.
    let rows: Vec<Value> = daf_cli::bench::butler::peer_rows(true, 20)
        .unwrap()
        .iter()
        .map(|r| r.to_json("butler"))
        .collect();
    let gen3: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["reference_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Gen3"))
        })
        .collect();
    assert_eq!(gen3.len(), 4, "{rows:?}");
    gen3.iter().for_each(|r| check_shape(r));
}

#[test]
fn db_peers_run_sqlite3_and_psql() {
    let Some(pg) = daf::base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    let rows = json_rows(&daf(&[
        "bench",
        "db",
        "--peers",
        "--json",
        "--rows",
        "2000",
        "--row-insert-rows",
        "200",
        "--postgres",
        &pg,
    ]));
    for want in ["Python sqlite3.executemany", "psql \\copy of the same TSV"] {
        assert!(
            rows.iter()
                .any(|r| r["reference_name"] == want && r["target"].is_string()),
            "{want}: {rows:?}"
        );
    }
}

#[test]
fn a_missing_peer_fails_with_an_install_hint() {
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args([
            "bench", "fits", "--peers", "--quick", "--side", "256", "--runs", "1",
        ])
        .env("DAF_PYTHON", "/nonexistent/python")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("peer missing") && err.contains("pip install astropy"),
        "{err}"
    );
}
