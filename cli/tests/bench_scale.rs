//! `daf bench scale` end to end on tiny sizes: the table's rows, the JSON
//! shape, and the chart — a valid PNG of the size asked for, with curves
//! drawn on it. Latencies are not judged here (they mean something only in
//! a release build at the sizes).

use std::process::Command;

fn daf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .expect("run daf")
}

/// Decodes the PNG at `path`: (width, height, RGB pixels).
fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn scale_prints_the_table_and_draws_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("charts/scale.png");
    let out = daf(&[
        "bench",
        "scale",
        "--sizes",
        "10,100,400",
        "--runs",
        "3",
        "--postgres",
        "",
        "--plot",
        chart.to_str().unwrap(),
        "--width",
        "640",
        "--height",
        "400",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for row in [
        "SQLite get at 10 datasets",
        "SQLite put (durable) at 100 datasets",
        "SQLite query by visit at 400 datasets",
        "SQLite registry size at 400 datasets",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    // the largest size's get and put carry the target
    let get400 = stdout
        .lines()
        .find(|l| l.starts_with("SQLite get at 400 datasets"))
        .unwrap();
    assert!(get400.contains("<=1.5"), "{get400}");
    assert!(stderr.contains("640x400 PNG"), "{stderr}");

    let (w, h, rgb) = decode(&chart);
    assert_eq!((w, h), (640, 400));
    assert_eq!(rgb.len(), 640 * 400 * 3);
    // a white background with curves, axes and labels drawn on it
    let white = rgb.chunks(3).filter(|p| p == &[255, 255, 255]).count();
    let colored = rgb
        .chunks(3)
        .filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(white > 640 * 400 / 2, "mostly background: {white}");
    assert!(white < 640 * 400 * 99 / 100, "something drawn: {white}");
    assert!(
        colored > 100,
        "the red get curve is drawn: {colored} red pixels"
    );
    // nothing but the chart in its folder (written through a temporary file)
    let names: Vec<_> = std::fs::read_dir(chart.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("scale.png")]);
}

#[test]
fn scale_json_has_one_object_per_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("s.png");
    let out = daf(&[
        "bench",
        "scale",
        "--json",
        "--sizes",
        "10,50",
        "--runs",
        "3",
        "--postgres",
        "",
        "--plot",
        chart.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 2 sizes × (get, put, query, size)
    assert_eq!(rows.len(), 8, "{rows:?}");
    assert!(rows.iter().all(|r| r["area"] == "scale"));
    let get = rows
        .iter()
        .find(|r| r["name"] == "SQLite get at 50 datasets")
        .unwrap();
    assert_eq!(get["unit"], "µs");
    assert_eq!(get["target"], "<=1.5");
    assert!(get["value"].as_f64().unwrap() > 0.0);
    // the default chart size
    let (w, h, _) = decode(&chart);
    assert_eq!((w, h), (1000, 640));
}

#[test]
fn scale_refuses_bad_sizes_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("s.png");
    let out = daf(&[
        "bench",
        "scale",
        "--sizes",
        "100,10",
        "--plot",
        chart.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ascending"), "{err}");
    let out = daf(&[
        "bench",
        "scale",
        "--sizes",
        "10",
        "--width",
        "20",
        "--plot",
        chart.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chart size 20x640"), "{err}");
    assert!(!chart.exists());
}

#[test]
fn readme_scale_command_runs_as_written() {
    // README: `daf bench scale --quick --plot scale.png`, typed in a folder
    // of one's own (the PostgreSQL series runs when DAF_TEST_POSTGRES_URL
    // is set, as in CI).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["bench", "scale", "--quick", "--plot", "scale.png"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in [1000, 10000, 100000] {
        assert!(
            stdout.contains(&format!("SQLite get at {n} datasets")),
            "{stdout}"
        );
    }
    let (w, h, _) = decode(&dir.path().join("scale.png"));
    assert_eq!((w, h), (1000, 640));
}
