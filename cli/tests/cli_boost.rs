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

/// Compiles tests/cpp/boost_lsst_shapes.cpp against the installed Boost, or
/// None (with `SKIPPED:`) where g++ or the headers are missing (required in CI).
fn lsst_shapes_exe() -> Option<PathBuf> {
    if !daf_base::testing::available(
        daf_base::testing::have_program("g++")
            && std::path::Path::new("/usr/include/boost/serialization/vector.hpp").exists(),
        "g++ or the Boost.Serialization headers (apt-get install g++ libboost-serialization-dev)",
    ) {
        return None;
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cpp/boost_lsst_shapes.cpp");
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boost_lsst_shapes");
    let fresh = match (std::fs::metadata(&exe), std::fs::metadata(&src)) {
        (Ok(e), Ok(s)) => e.modified().unwrap() >= s.modified().unwrap(),
        _ => false,
    };
    if !fresh {
        let tmp = exe.with_extension(format!("tmp{}", std::process::id()));
        let out = Command::new("g++")
            .args(["-std=c++17", "-O1", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lboost_serialization")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
    }
    Some(exe)
}

#[test]
fn convert_keeps_every_lsst_type_code_so_cpp_reads_long_as_long() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let mut for_cpp = Vec::new();
    for (folder, version) in [("boost-1.74", "1.74"), ("boost-1.81", "1.81")] {
        for src_ext in ["bin", "txt", "xml"] {
            let src = data(&format!("{folder}/lsst/propertyset_codes.{src_ext}"));
            let src = src.to_str().unwrap();
            // Through YAML: the C++ type rides along as `cpp:`.
            let yaml = p(&format!("{folder}-{src_ext}.yaml"));
            let (ok, _, err) = daf(&["convert", src, &yaml]);
            assert!(ok, "{err}");
            let text = std::fs::read_to_string(&yaml).unwrap();
            assert!(
                text.contains("visit:\n  cpp: long\n  type: i64\n"),
                "{text}"
            );
            assert!(
                text.contains("sch:\n  cpp: signed char\n  type: i8\n"),
                "{text}"
            );
            assert!(
                text.contains("ul:\n  cpp: unsigned long\n  type: u64\n"),
                "{text}"
            );
            assert!(text.contains("ll:\n  type: i64\n"), "{text}");
            for ext in ["bin", "txt", "xml"] {
                let want =
                    std::fs::read(data(&format!("{folder}/lsst/propertyset_codes.{ext}"))).unwrap();
                // YAML → archive and archive → archive give C++'s bytes.
                let sub = dir.path().join(format!("{folder}-{src_ext}-yaml"));
                std::fs::create_dir_all(&sub).unwrap();
                let out = sub.join(format!("propertyset_codes.{ext}"));
                let out = out.to_str().unwrap();
                let (ok, _, err) = daf(&["convert", &yaml, out, "--boost-version", version]);
                assert!(ok, "{err}");
                assert_eq!(std::fs::read(out).unwrap(), want, "{yaml} -> {ext}");
                for_cpp.push(out.to_string());
                let sub = dir.path().join(format!("{folder}-{src_ext}-direct"));
                std::fs::create_dir_all(&sub).unwrap();
                let out = sub.join(format!("propertyset_codes.{ext}"));
                let out = out.to_str().unwrap();
                let (ok, _, err) = daf(&["convert", src, out]);
                assert!(ok, "{err}");
                assert_eq!(std::fs::read(out).unwrap(), want, "{src} -> {ext}");
            }
        }
        // Written at Boost 1.74's version, every converted archive is for C++ below.
        let sub = dir.path().join(format!("{folder}-to-1.74"));
        std::fs::create_dir_all(&sub).unwrap();
        for ext in ["bin", "txt", "xml"] {
            let out = sub.join(format!("propertyset_codes.{ext}"));
            let src = data(&format!("{folder}/lsst/propertyset_codes.bin"));
            let (ok, _, err) = daf(&[
                "convert",
                src.to_str().unwrap(),
                out.to_str().unwrap(),
                "--boost-version",
                "1.74",
            ]);
            assert!(ok, "{err}");
            for_cpp.push(out.to_str().unwrap().to_string());
        }
    }
    // Live: C++ reads every code with its own type (`std::vector<long>` for
    // 'l', `std::vector<signed char>` for 'y' ...), as LSST's get<long> needs.
    let Some(exe) = lsst_shapes_exe() else { return };
    let installed_18 = {
        let d = tempfile::tempdir().unwrap();
        Command::new(&exe)
            .arg("--generate")
            .arg(d.path())
            .output()
            .unwrap();
        std::fs::read(d.path().join("shared_ptr.txt"))
            .unwrap()
            .starts_with(b"22 serialization::archive 18")
    };
    let readable: Vec<&String> = for_cpp
        .iter()
        // Boost 1.74 refuses version 19 in binary and text archives.
        .filter(|f| {
            !installed_18
                || !f.contains("boost-1.81-")
                || f.ends_with(".xml")
                || f.contains("to-1.74")
        })
        .collect();
    let out = Command::new(&exe)
        .arg("--verify")
        .args(&readable)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "C++ rejected converted archives:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
