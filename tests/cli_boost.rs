//! `daf show` and `daf convert` on the C++ Boost goldens.

use std::path::PathBuf;
use std::process::Command;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/boost")
        .join(p)
}

fn daf(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn show_prints_every_value_with_its_type_for_every_kind() {
    for f in [
        "boost-1.74/persistable-tracked/propertyset_lsst.bin",
        "boost-1.81/propertyset_lsst.txt",
        "boost-1.81/propertyset.xml",
        "boost-1.74/propertyset.bin",
    ] {
        let (ok, out, err) = daf(&["show", "--json", data(f).to_str().unwrap()]);
        assert!(ok, "{f}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["name"]["type"], "String");
        assert_eq!(v["name"]["value"], "foo");
        assert_eq!(v["num"]["type"], "i32");
        assert_eq!(v["num"]["value"], 42);
        assert_eq!(v["ra"]["value"], 10.5);
        assert_eq!(v["flags"]["value"], serde_json::json!([true, false]));
        assert_eq!(v["big"]["type"], "i64");
        assert_eq!(v["big"]["value"], 1099511627776u64);
        assert_eq!(v["nested.key"]["value"], "x");
        assert_eq!(v["arr"]["value"], serde_json::json!([1, 2, 3]));
        // Archive order is kept.
        let name_pos = out.find("\"name\"").unwrap();
        let arr_pos = out.find("\"arr\"").unwrap();
        assert!(name_pos < arr_pos);
    }
    let (ok, out, _) = daf(&[
        "show",
        data("boost-1.81/propertyset_lsst.txt").to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(
        out.starts_with("# ") && out.contains("text archive, library version 19"),
        "{out}"
    );
    assert!(out.contains("ra:\n  type: f64\n  value: 10.5\n"), "{out}");
}

#[test]
fn show_rejects_non_property_set_files_clearly() {
    let (ok, _, err) = daf(&["show", data("boost-1.74/record.bin").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("record.bin") && err.contains("PropertySet"),
        "{err}"
    );
    let (ok, _, err) = daf(&["show", "no/such/file.bin"]);
    assert!(!ok && err.contains("no/such/file.bin"), "{err}");
}

#[test]
fn convert_between_yaml_json_and_every_archive_kind_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for (folder, version) in [("boost-1.74", "1.74"), ("boost-1.81", "19")] {
        let src = data(&format!("{folder}/propertyset.txt"));
        // Archive → YAML → every kind, at the chosen version.
        assert!(daf(&["convert", src.to_str().unwrap(), &p("ps.yaml")]).0);
        assert!(daf(&["convert", &p("ps.yaml"), &p("ps.json")]).0);
        for ext in ["bin", "txt", "xml"] {
            let out = p(&format!("ps.{ext}"));
            let (ok, _, err) = daf(&["convert", &p("ps.json"), &out, "--boost-version", version]);
            assert!(ok, "{err}");
            let want = std::fs::read(data(&format!(
                "{folder}/persistable-tracked/propertyset_lsst.{ext}"
            )))
            .unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), want, "{folder} {ext}");
        }
        // The int-count, untracked layout of the main folder's propertyset.
        let out = p("int.bin");
        assert!(
            daf(&[
                "convert",
                &p("ps.yaml"),
                &out,
                "--boost-version",
                version,
                "--int-count",
                "--untracked-base"
            ])
            .0
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(data(&format!("{folder}/propertyset.bin"))).unwrap()
        );
    }
    // By default the input's version is kept: a 1.74 archive converts to a 1.74 archive.
    let src = data("boost-1.74/persistable-tracked/propertyset_lsst.bin");
    assert!(daf(&["convert", src.to_str().unwrap(), &p("keep.xml")]).0);
    assert_eq!(
        std::fs::read(p("keep.xml")).unwrap(),
        std::fs::read(data("boost-1.74/persistable-tracked/propertyset_lsst.xml")).unwrap()
    );
    // Unknown versions are refused.
    let (ok, _, err) = daf(&[
        "convert",
        src.to_str().unwrap(),
        &p("x.bin"),
        "--boost-version",
        "1.50",
    ]);
    assert!(!ok && err.contains("1.50"), "{err}");
}

#[test]
fn convert_rejects_bad_documents_with_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("bad.yaml");
    std::fs::write(&y, "visit:\n  type: i32\n  value: [1, \"two\"]\n").unwrap();
    let (ok, _, err) = daf(&[
        "convert",
        y.to_str().unwrap(),
        dir.path().join("o.bin").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("visit"), "{err}");
    assert!(!dir.path().join("o.bin").exists());
}
