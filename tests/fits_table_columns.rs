//! Binary-table columns of types X (bits), P/Q (variable-length arrays in
//! the heap), C and M (complex), as astropy writes them, read by daf
//! (#15 §4); heap descriptors outside the heap are errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use daf::base::testing;
use daf::storages::fits::{ColumnData, FitsFile};

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DAF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/daf/venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import astropy, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

const WRITE: &str = r#"
import sys
import numpy as np
from astropy.io import fits
n = 5
bits = np.array([[(r * 3 + k) % 4 == 0 for k in range(11)] for r in range(n)])
pj = np.array([np.arange(r, dtype=np.int32) * 7 - 3 for r in range(n)], dtype=object)
pe = np.array([np.linspace(0, 1, r + 1).astype(np.float32) for r in range(n)], dtype=object)
qd = np.array([np.arange(2 * r, dtype=np.float64) / 3 for r in range(n)], dtype=object)
pa = np.array(["", "a", "bc", "def", "ghij"], dtype=object)
c = (np.arange(n) + 1j * np.arange(n) / 2).astype(np.complex64)
m = np.array([[r + 0.25j, -r - 1.5j] for r in range(n)], dtype=np.complex128)
cols = [
    fits.Column(name="flags", format="11X", array=bits),
    fits.Column(name="ints", format="PJ()", array=pj),
    fits.Column(name="floats", format="PE()", array=pe),
    fits.Column(name="doubles", format="QD()", array=qd),
    fits.Column(name="text", format="PA()", array=pa),
    fits.Column(name="c", format="C", array=c),
    fits.Column(name="m", format="2M", array=m),
    fits.Column(name="id", format="K", array=np.arange(n) * 10),
]
t = fits.BinTableHDU.from_columns(cols)
fits.HDUList([fits.PrimaryHDU(), t]).writeto(sys.argv[1], overwrite=True)
"#;

fn column<'a>(cols: &'a [daf::storages::fits::TableColumn], name: &str) -> &'a ColumnData {
    &cols
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .data
}

fn astropy_table(dir: &Path) -> Option<PathBuf> {
    let Some(py) = python() else {
        testing::available(false, "python with astropy (set DAF_PYTHON)");
        return None;
    };
    let p = dir.join("columns.fits");
    let out = Command::new(py)
        .arg("-c")
        .arg(WRITE)
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(p)
}

#[test]
fn x_p_q_c_m_columns_written_by_astropy_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = astropy_table(dir.path()) else {
        return;
    };
    let f = FitsFile::open(&p).unwrap();
    let cols = f.read_table(1).unwrap();
    let n = 5usize;
    // X: one Bool column per bit.
    for k in 0..11 {
        let want: Vec<bool> = (0..n).map(|r| (r * 3 + k) % 4 == 0).collect();
        assert_eq!(
            column(&cols, &format!("flags_{k}")),
            &ColumnData::Bool(want),
            "bit {k}"
        );
    }
    let var = |name: &str| match column(&cols, name) {
        ColumnData::Var(v) => v.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let ints = var("ints");
    assert_eq!(ints.len(), n);
    for (r, v) in ints.iter().enumerate() {
        let want: Vec<i32> = (0..r as i32).map(|i| i * 7 - 3).collect();
        assert_eq!(v, &ColumnData::I32(want), "ints row {r}");
    }
    for (r, v) in var("floats").iter().enumerate() {
        let ColumnData::F32(x) = v else {
            panic!("{v:?}")
        };
        assert_eq!(x.len(), r + 1);
        assert_eq!(x[r], if r == 0 { 0.0 } else { 1.0 });
    }
    for (r, v) in var("doubles").iter().enumerate() {
        let want: Vec<f64> = (0..2 * r).map(|i| i as f64 / 3.0).collect();
        assert_eq!(v, &ColumnData::F64(want), "doubles row {r}");
    }
    let text: Vec<ColumnData> = var("text");
    assert_eq!(text[3], ColumnData::Str(vec!["def".into()]));
    assert_eq!(text[0], ColumnData::Str(vec![String::new()]));
    let want_c: Vec<[f32; 2]> = (0..n).map(|r| [r as f32, r as f32 / 2.0]).collect();
    assert_eq!(column(&cols, "c"), &ColumnData::C64(want_c));
    let want_m0: Vec<[f64; 2]> = (0..n).map(|r| [r as f64, 0.25]).collect();
    let want_m1: Vec<[f64; 2]> = (0..n).map(|r| [-(r as f64), -1.5]).collect();
    assert_eq!(column(&cols, "m_0"), &ColumnData::C128(want_m0));
    assert_eq!(column(&cols, "m_1"), &ColumnData::C128(want_m1));
    assert_eq!(
        column(&cols, "id"),
        &ColumnData::I64((0..n as i64).map(|i| i * 10).collect())
    );
}

/// A descriptor pointing past the heap (or a negative one) is an error
/// naming the column and row, never a read outside the file.
#[test]
fn heap_descriptors_are_bounded_by_the_heap() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = astropy_table(dir.path()) else {
        return;
    };
    let good = std::fs::read(&p).unwrap();
    let f = FitsFile::open(&p).unwrap();
    let h = &f.hdus()[1];
    let row_bytes = h.naxes[0];
    // "ints" is the second column, after 2 bytes of bits: its descriptor
    // (count, offset) of row 4 is at 2 + 4 * row_bytes.
    let at = h.data_offset + 4 * row_bytes + 2;
    for (count, offset) in [(1i32, 1i32 << 30), (-1, 0), (1 << 28, 0), (4, -8)] {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&count.to_be_bytes());
        b[at + 4..at + 8].copy_from_slice(&offset.to_be_bytes());
        let q = dir.path().join("bad.fits");
        std::fs::write(&q, &b).unwrap();
        let e = FitsFile::open(&q)
            .unwrap()
            .read_table(1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ints") && e.contains("row 4") && e.contains("heap"),
            "({count}, {offset}): {e}"
        );
    }
}
