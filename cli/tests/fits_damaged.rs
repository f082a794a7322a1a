//! Damaged FITS files found by the fuzz campaign (issue 17 §2, issue 15 §2),
//! one test per crash site: each was a signal, a hang, silent garbage or an
//! unbounded allocation before and is a clear error (or a correct read) now.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daf::base::{Policy, PropertySet};
use daf::formatters::image::*;
use daf::formatters::{FormatterRegistry, Persistable, Persistence};
use daf::storages::fits::FitsFile;
use daf::storages::{LogicalLocation, StorageRegistry};

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fits/seeds")
            .join(name),
    )
    .unwrap()
}

/// Rewrites the value of the first card `key` (fixed format).
fn set_card(b: &mut [u8], key: &str, value: &str) {
    let k = format!("{key:<8}= ");
    let at = (0..b.len() / 80)
        .map(|i| i * 80)
        .find(|&o| b[o..o + 10] == *k.as_bytes())
        .unwrap_or_else(|| panic!("no card {key}"));
    let card = format!("{k}{value:>20}");
    let mut c = [b' '; 80];
    c[..card.len()].copy_from_slice(card.as_bytes());
    b[at..at + 80].copy_from_slice(&c);
}

fn write(dir: &Path, name: &str, b: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

fn open_err(p: &Path) -> String {
    FitsFile::open(p).unwrap_err().to_string()
}

#[test]
fn bad_tile_compression_keywords_are_errors_not_signals() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, says) in [
        ("ZTILE1", "0", "ZTILE1 = 0"), // SIGFPE in cfitsio 3.49
        ("ZNAXIS1", "-5", "ZNAXIS1 = -5"),
        ("ZNAXIS", "0", "ZNAXIS 0"),
        ("ZBITPIX", "7", "ZBITPIX 7"),
        ("ZCMPTYPE", "'NOPE'", "ZCMPTYPE"),
        ("ZNAXIS2", "100000", "tiles"),
        ("TFIELDS", "4294967296", "TFIELDS"),
    ] {
        let mut b = seed("rice_i16.fits.fz");
        set_card(&mut b, key, value);
        let p = write(dir.path(), "bad.fits.fz", &b);
        let e = open_err(&p);
        assert!(
            e.contains(says) && e.contains("bad.fits.fz") && e.contains("HDU 1"),
            "{key}: {e}"
        );
    }
    // Damaged compressed bytes (SIGSEGV in cfitsio): an error naming the tile.
    let good = seed("rice_f32_nan.fits.fz");
    let f = FitsFile::open(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fits/seeds/rice_f32_nan.fits.fz"),
    )
    .unwrap();
    assert_eq!(f.hdus().len(), 2);
    let mut b = good.clone();
    let heap = b.len() - 2000;
    for x in &mut b[heap..heap + 300] {
        *x = 0xFF;
    }
    let p = write(dir.path(), "heap.fits.fz", &b);
    // Tiles are decoded when read (a cut-out decodes only its tiles): the
    // damage is an error then.
    let f = FitsFile::open(&p).unwrap();
    let e = f.read_image::<f32>(1, None).unwrap_err().to_string();
    assert!(e.contains("tile") && e.contains("HDU 1"), "{e}");
    assert!(f.image_stats(1).is_err());
    // PLIO_1 and HCOMPRESS_1 are refused by name.
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fits/seeds/hcompress_i16.fits.fz");
    assert!(open_err(&p).contains("HCOMPRESS_1 is not supported"));
    // ... as a typed "unsupported", not as malformed data
    let e = FitsFile::open(&p).unwrap_err();
    assert!(
        matches!(&e, daf::storages::StorageError::Unsupported { what, .. } if what.ends_with("hcompress_i16.fits.fz")),
        "{e:?}"
    );
    assert!(!e.to_string().contains("malformed"), "{e}");
}

#[test]
fn a_decompressed_header_has_one_extname() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = seed("rice_i16.fits.fz");
    // Two EXTNAME cards added before END of the compressed header.
    let end = (2880 / 80..b.len() / 80)
        .map(|i| i * 80)
        .find(|&o| b[o..o + 8] == *b"END     ")
        .unwrap();
    let mut cards: Vec<[u8; 80]> = Vec::new();
    for name in ["'SCI'", "'OTHER'"] {
        let mut c = [b' '; 80];
        let t = format!("EXTNAME = {name:<20}");
        c[..t.len()].copy_from_slice(t.as_bytes());
        cards.push(c);
    }
    // Insert both before END (there is room in the block).
    b.copy_within(end..end + 80, end + 160);
    b[end..end + 80].copy_from_slice(&cards[0]);
    b[end + 80..end + 160].copy_from_slice(&cards[1]);
    let p = write(dir.path(), "two.fits.fz", &b);
    let f = FitsFile::open(&p).unwrap();
    let n = f.hdus()[1]
        .cards
        .iter()
        .filter(|c| c.key == "EXTNAME")
        .count();
    assert_eq!(n, 1);
    // The last real name wins over astropy's default COMPRESSED_IMAGE.
    assert_eq!(f.hdus()[1].extname(), Some("OTHER"));
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_is_inflated_no_further_than_the_headers_declare() {
    let dir = tempfile::tempdir().unwrap();
    let img = {
        let b = seed("image_f32.fits");
        assert_eq!(b.len(), 2880 * 3);
        b
    };
    // A bomb: a valid 32x24 image followed by 64 MB of zeros.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&img).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let p = write(dir.path(), "bomb.fits.gz", &e.finish().unwrap());
    let t = Instant::now();
    let f = FitsFile::open(&p).unwrap();
    assert_eq!(
        f.bytes().len(),
        2880 * 3,
        "only the declared HDU is inflated"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let (w, h, px) = f.read_image::<f32>(0, None).unwrap();
    assert_eq!((w, h, px.len()), (32, 24, 768));
    // A header declaring 40 GB over a small stream: a truncation error, after
    // inflating only what the stream holds.
    let mut big = img.clone();
    set_card(&mut big, "NAXIS1", "200000");
    set_card(&mut big, "NAXIS2", "50000");
    let p = write(dir.path(), "claims.fits.gz", &gzip(&big));
    let e = open_err(&p);
    assert!(e.contains("declares 40000000000 data bytes"), "{e}");
}

#[test]
fn random_groups_data_is_sized_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    // 3 groups of (2 parameters + 4x2 values), f32: 120 bytes.
    let mut b = seed("random_groups.fits");
    let f = FitsFile::from_bytes("rg.fits", b.clone()).unwrap();
    let h = &f.hdus()[0];
    assert!(h.is_random_groups());
    assert_eq!(h.data_len, 120);
    let e = f.read_image::<f32>(0, None).unwrap_err().to_string();
    assert!(e.contains("random-groups"), "{e}");
    // An extension after the groups is found where the groups end.
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fits/seeds/random_groups_ext.fits");
    let f = FitsFile::open(&p).unwrap();
    assert_eq!(f.hdus().len(), 2);
    assert_eq!(f.hdus()[1].image_dims(), Some((32, 24)));
    let _ = (&mut b, dir.path());
    let out = daf(&["show", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn daf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn show_with_a_huge_tfields_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = seed("catalog.fits");
    set_card(&mut b[2880..], "TFIELDS", "4294967296");
    let p = write(dir.path(), "tf.fits", &b);
    let t = Instant::now();
    let out = daf(&["show", p.to_str().unwrap()]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TFIELDS  = 4294967296"), "{text}");
}

#[test]
fn show_into_a_closed_pipe_exits_quietly() {
    // `daf show FILE | head -1`: the reader goes away after one line.
    let raw = format!(
        "{}/tests/data/obs_test/input/raw/raw_v1_fg.fits.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["show", &raw])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(libc_sigpipe()),
        "{status:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(err, "", "nothing on stderr");
}

fn libc_sigpipe() -> i32 {
    13
}

fn persistence() -> Persistence {
    Persistence::new(
        Policy::new(),
        FormatterRegistry::with_defaults(),
        StorageRegistry::with_defaults(),
    )
}

fn put(obj: &dyn Persistable, path: &Path) {
    let p = persistence();
    let loc = LogicalLocation::literal(path.to_str().unwrap());
    let mut st = vec![p.persist_storage("FitsStorage", &loc).unwrap()];
    p.persist(obj, &mut st, &PropertySet::new()).unwrap();
}

#[test]
fn an_out_of_bounds_cut_out_names_the_box_and_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("im.fits");
    let mut im = ImageF::new(10, 8);
    im.set_xy0(100, 200);
    put(&im, &p);
    let pers = persistence();
    for (x, y, w, h) in [(105, 205, 10, 2), (90, 200, 2, 2)] {
        let mut ad = PropertySet::new();
        for (k, v) in [("llcX", x), ("llcY", y), ("width", w), ("height", h)] {
            ad.set(k, v).unwrap();
        }
        let mut st = vec![pers
            .retrieve_storage(
                "FitsStorage",
                &LogicalLocation::literal(p.to_str().unwrap()),
            )
            .unwrap()];
        let e = pers
            .retrieve_as::<ImageF>(&mut st, &ad)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("malformed"), "{e}");
        assert!(
            e.contains(&format!("({x}, {y})"))
                && e.contains("(100, 200)")
                && e.contains("(109, 207)"),
            "{e}"
        );
    }
}
