//! `daf show` on FITS files, through the real binary.

use std::process::Command;

fn daf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .unwrap()
}

fn data(rel: &str) -> String {
    format!(
        "{}/tests/data/obs_test/input/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn show_json_lists_hdus_cards_and_stats() {
    let out = daf(&["show", &data("raw/raw_v3_fr.fits.gz"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &v["hdus"][0];
    assert_eq!(v["hdus"].as_array().unwrap().len(), 1);
    assert_eq!(h["type"], "PRIMARY");
    assert_eq!(h["bitpix"], 16);
    assert_eq!(h["shape"], serde_json::json!([1026, 2000]));
    assert_eq!(h["stats"]["min"], 938.0);
    assert_eq!(h["stats"]["max"], 61272.0);
    let mean = h["stats"]["mean"].as_f64().unwrap();
    assert!((mean - 1530.0406554581).abs() < 1e-9, "{mean}");
    let cards = h["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 460);
    let filter = cards.iter().find(|c| c["key"] == "FILTER").unwrap();
    assert_eq!(filter["value"], "r");
    let bzero = cards.iter().find(|c| c["key"] == "BZERO").unwrap();
    assert_eq!(bzero["value"], 32768);
}

#[test]
fn show_text_describes_tables() {
    let out = daf(&["show", &data("defects/defects.fits")]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 HDU(s)"), "{text}");
    assert!(
        text.contains("HDU 1  BINTABLE  BITPIX=8  shape=60 x 504"),
        "{text}"
    );
    assert!(text.contains("rows: 504"));
    assert!(text.contains("column SHAPE (16A)"));
    assert!(text.contains("DEFECTS_SCHEMA = 'FITS Region'"), "{text}");
}

#[test]
fn show_rejects_non_fits_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "hello").unwrap();
    let out = daf(&["show", p.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
    let p = dir.path().join("broken.fits");
    std::fs::write(&p, b"SIMPLE  =                    T").unwrap();
    let out = daf(&["show", p.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.fits") && err.contains("truncated"),
        "{err}"
    );
}

/// `daf show` says how a file is compressed: gzip, and per HDU the tile
/// compression (`compressed (RICE_1, tiles …)`); a tile compression daf
/// does not decode (PLIO_1, HCOMPRESS_1) is "unsupported", not "malformed".
#[test]
fn show_says_how_a_file_is_compressed() {
    let seeds = |f: &str| format!("{}/tests/data/fits/seeds/{f}", env!("CARGO_MANIFEST_DIR"));
    let out = daf(&["show", &seeds("rice_i16.fits.fz")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("compressed (RICE_1, tiles "), "{text}");
    let out = daf(&["show", &seeds("rice_i16.fits.fz"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["hdus"][1]["compression"]
            .as_str()
            .unwrap()
            .starts_with("RICE_1, tiles "),
        "{v}"
    );
    assert_eq!(v["gzip"], false);
    assert!(v["hdus"][0].get("compression").is_none(), "{v}");
    let out = daf(&["show", &seeds("daf_rice_f32_dither2.fits.fz")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SUBTRACTIVE_DITHER_2"), "{text}");
    let out = daf(&["show", &data("raw/raw_v3_fr.fits.gz")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(": FITS (gzip-compressed), 1 HDU(s)"),
        "{text}"
    );
    assert!(!text.contains("compressed ("), "{text}");
    for (f, algo) in [
        ("plio_i16.fits.fz", "PLIO_1"),
        ("hcompress_i16.fits.fz", "HCOMPRESS_1"),
    ] {
        let out = daf(&["show", &seeds(f)]);
        assert!(!out.status.success());
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("unsupported") && e.contains(algo), "{e}");
        assert!(!e.contains("malformed"), "{e}");
    }
}
