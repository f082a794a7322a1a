//! FITS as LSST afw writes and reads it (issue 17): Exposure / MaskedImage
//! planes found by EXTNAME, then EXTTYPE, then afw's HDU order, in files of
//! every afw layout version made by astropy (`tests/data/fits/afw_layout.py`);
//! files daf writes carry afw's EXTTYPE, INHERIT, xy0 and WCS cards, judged by
//! astropy and fitsverify.

use std::path::{Path, PathBuf};
use std::process::Command;

use daf::base::{testing, DateTime, Policy, PropertySet, Timescale};
use daf::formatters::image::*;
use daf::formatters::{FormatterRegistry, Persistable, Persistence};
use daf::storages::{LogicalLocation, StorageRegistry};
use serde_json::Value as Json;

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

fn try_get<T: Persistable>(loc: &str, ad: &PropertySet) -> daf::formatters::Result<T> {
    let p = persistence();
    let mut st = vec![p.retrieve_storage("FitsStorage", &LogicalLocation::literal(loc))?];
    p.retrieve_as::<T>(&mut st, ad)
}

fn get<T: Persistable>(loc: &str, ad: &PropertySet) -> T {
    try_get(loc, ad).unwrap_or_else(|e| panic!("{loc}: {e}"))
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DAF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/daf/venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import astropy, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        testing::available(false, "python with astropy (set DAF_PYTHON)");
    }
    ok.then_some(p)
}

fn run_python(py: &Path, args: &[&str], script: Option<&str>) -> String {
    let mut c = Command::new(py);
    c.arg("-W").arg("ignore");
    match script {
        Some(s) => c.arg("-c").arg(s),
        None => &mut c,
    };
    let out = c.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn afw_files(py: &Path, dir: &Path) -> Json {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fits/afw_layout.py");
    serde_json::from_str(&run_python(py, &[script, dir.to_str().unwrap()], None)).unwrap()
}

fn sums(mi: &MaskedImageF) -> (f64, usize, i64, f64) {
    let im: f64 = mi.image.pixels().iter().map(|&v| v as f64).sum();
    let nz = mi.mask.image.pixels().iter().filter(|&&v| v != 0).count();
    let ms: i64 = mi.mask.image.pixels().iter().map(|&v| v as i64).sum();
    let var: f64 = mi.variance.pixels().iter().map(|&v| v as f64).sum();
    (im, nz, ms, var)
}

#[test]
fn afw_exposures_of_every_version_read_all_planes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let want = afw_files(&py, dir.path());
    let none = PropertySet::new();
    for (name, w) in want.as_object().unwrap() {
        let p = dir.path().join(name);
        let loc = p.to_str().unwrap();
        let e: ExposureF = get(loc, &none);
        let (im, nz, ms, var) = sums(&e.masked_image);
        assert!(
            (im - w["image_sum"].as_f64().unwrap()).abs() < 1e-3,
            "{name}: image sum {im}"
        );
        assert_eq!(
            nz as u64,
            w["mask_nonzero"].as_u64().unwrap(),
            "{name}: mask pixels"
        );
        assert_eq!(ms, w["mask_sum"].as_i64().unwrap(), "{name}: mask sum");
        let wv = w["variance_sum"].as_f64().unwrap();
        assert!(
            (var - wv).abs() <= 1e-5 * wv,
            "{name}: variance sum {var} vs {wv}"
        );
        let shape = &w["shape"];
        assert_eq!(
            (e.height() as u64, e.width() as u64),
            (shape[0].as_u64().unwrap(), shape[1].as_u64().unwrap())
        );
        assert_eq!(e.masked_image.image.xy0(), (12, -3), "{name}: xy0");
        assert_eq!(e.masked_image.mask.image.xy0(), (12, -3), "{name}");
        assert_eq!(e.filter.as_deref(), Some("i"), "{name}");
        assert_eq!(e.exposure_time, Some(30.0), "{name}");
        assert_eq!(
            e.metadata.get::<String>("CTYPE1").unwrap(),
            "RA---TAN",
            "{name}"
        );
        assert_eq!(e.metadata.get::<String>("OBSERVER").unwrap(), "afw-layout");
        for k in [
            "EXTTYPE", "EXTNAME", "INHERIT", "CRVAL1A", "CTYPE1A", "LTV1",
        ] {
            assert!(!e.metadata.exists(k), "{name}: {k} is not metadata");
        }
        assert_eq!(e.masked_image.mask.plane_bit("DETECTED"), Some(4), "{name}");
        // The same file as a MaskedImage, as a Mask, and by component.
        let mi: MaskedImageF = get(loc, &none);
        assert_eq!(sums(&mi), (im, nz, ms, var), "{name}");
        let m: Mask = get(loc, &none);
        assert_eq!(
            m.image, e.masked_image.mask.image,
            "{name}: Mask is the MASK plane"
        );
        let mut ad = PropertySet::new();
        ad.set("component", "variance").unwrap();
        let v: ImageF = get(loc, &ad);
        assert_eq!(v, e.masked_image.variance, "{name}: variance component");
        // A cut-out in the parent frame takes the same box of every plane.
        let mut ad = PropertySet::new();
        for (k, v) in [("llcX", 14), ("llcY", -2), ("width", 3), ("height", 4)] {
            ad.set(k, v).unwrap();
        }
        let cut: ExposureF = get(loc, &ad);
        assert_eq!(cut.masked_image.image.xy0(), (14, -2));
        assert_eq!(
            cut.masked_image.mask.get(1, 1),
            e.masked_image.mask.get(3, 2),
            "{name}: cut-out mask"
        );
    }
}

#[test]
fn a_missing_plane_is_an_error_never_zeros() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run_python(
        &py,
        &[d],
        Some(
            r#"
import sys, os, numpy as np
from astropy.io import fits
d = sys.argv[1]
im = np.arange(12, dtype=np.float32).reshape(3, 4)
# An image plane marked by EXTTYPE, then tables: no mask, no variance.
h = fits.ImageHDU(im); h.header["EXTTYPE"] = "IMAGE"
fits.HDUList([fits.PrimaryHDU(), h, fits.BinTableHDU.from_columns([fits.Column(name="a", format="J", array=np.array([1]))])]).writeto(os.path.join(d, "image-only.fits"))
# SCI + DQ (another convention): the DQ plane is not afw's mask.
fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(im, name="SCI"), fits.ImageHDU(im.astype(np.int32), name="DQ")]).writeto(os.path.join(d, "sci-dq.fits"))
# A plain image, then an empty extension: no planes to miss (a raw).
fits.HDUList([fits.PrimaryHDU(im), fits.ImageHDU()]).writeto(os.path.join(d, "plain.fits"))
"#,
        ),
    );
    let none = PropertySet::new();
    // A file of one image (a raw) is an exposure with no mask or variance, as in afw.
    let e: ExposureF = get(&format!("{d}/plain.fits"), &none);
    assert_eq!(e.masked_image.image.get(3, 2), 11.0);
    assert!(e.masked_image.mask.image.pixels().iter().all(|&v| v == 0));
    for f in ["image-only.fits", "sci-dq.fits"] {
        let loc = format!("{d}/{f}");
        let e = try_get::<ExposureF>(&loc, &none).unwrap_err().to_string();
        assert!(e.contains("no MASK plane") && e.contains(f), "{f}: {e}");
        let e = try_get::<MaskedImageF>(&loc, &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no MASK plane"), "{f}: {e}");
        // afw's needAllHdus = false: read the image, zero mask and variance.
        let mut ad = PropertySet::new();
        ad.set("needAllHdus", false).unwrap();
        let e: ExposureF = get(&loc, &ad);
        assert_eq!(e.masked_image.image.get(3, 2), 11.0);
        assert!(e.masked_image.variance.pixels().iter().all(|&v| v == 0.0));
    }
    // The image plane of a marked file is not read as a Mask.
    let e = try_get::<Mask>(&format!("{d}/image-only.fits"), &none)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no MASK plane"), "{e}");
    let mut ad = PropertySet::new();
    ad.set("component", "variance").unwrap();
    let e = try_get::<ImageF>(&format!("{d}/sci-dq.fits"), &ad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no VARIANCE plane"), "{e}");
}

fn sample_exposure() -> ExposureF {
    let mut im = ImageF::new(9, 6);
    for (i, p) in im.pixels_mut().iter_mut().enumerate() {
        *p = i as f32 * 0.5;
    }
    im.set_xy0(100, -7);
    let mut mask = Mask::new(9, 6);
    mask.set(2, 3, 1 << 5);
    let mut var = ImageF::new(9, 6);
    var.pixels_mut().iter_mut().for_each(|v| *v = 2.0);
    let mut e = ExposureF::new(MaskedImageF::from_parts(im, mask, Some(var)).unwrap());
    e.filter = Some("r".into());
    e.exposure_time = Some(15.0);
    e.obs_date = Some(DateTime::from_calendar(2020, 2, 29, 3, 4, 5, 0, Timescale::Utc).unwrap());
    let md = &mut e.metadata;
    for (k, v) in [
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("RADESYS", "ICRS"),
    ] {
        md.set(k, v).unwrap();
    }
    for (k, v) in [
        ("CRPIX1", 5.0),
        ("CRPIX2", 3.0),
        ("CRVAL1", 79.25),
        ("CRVAL2", -9.5),
        ("CD1_1", 5.0e-05),
        ("CD1_2", 0.0),
        ("CD2_1", 0.0),
        ("CD2_2", 5.0e-05),
    ] {
        md.set(k, v).unwrap();
    }
    e
}

const AFW_CHECK: &str = r#"
import json, sys
from astropy.io import fits
from astropy.wcs import WCS
out = {}
with fits.open(sys.argv[1]) as hl:
    out["primary_timesys"] = "TIMESYS" in hl[0].header
    out["primary_date"] = hl[0].header.get("DATE-OBS")
    planes = []
    for h in hl[1:]:
        hd = h.header
        w = WCS(hd)
        a = WCS(hd, key="A")
        planes.append({
            "exttype": hd.get("EXTTYPE"), "extname": hd.get("EXTNAME"),
            "inherit": hd.get("INHERIT"),
            "xy0_from_a": [float(v) for v in a.wcs_pix2world([[0, 0]], 0)[0]],
            "ltv": [hd.get("LTV1"), hd.get("LTV2")],
            "ctype_a": [hd.get("CTYPE1A"), hd.get("CTYPE2A")],
            "crpix_a": [hd.get("CRPIX1A"), hd.get("CRPIX2A")],
            "sky": [float(v) for v in w.wcs_pix2world([[4, 2]], 0)[0]],
            "sum": float(h.data.astype("f8").sum()),
        })
    out["planes"] = planes
print(json.dumps(out))
"#;

#[test]
fn what_daf_writes_reads_as_afw_reads_it() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exp.fits");
    let e = sample_exposure();
    put(&e, &path);
    let got: Json =
        serde_json::from_str(&run_python(&py, &[path.to_str().unwrap()], Some(AFW_CHECK))).unwrap();
    assert_eq!(got["primary_timesys"], false, "no TIMESYS added: {got}");
    assert_eq!(got["primary_date"], "2020-02-29T03:04:05.000000000");
    let planes = got["planes"].as_array().unwrap();
    assert_eq!(planes.len(), 3);
    let sums = [
        e.masked_image
            .image
            .pixels()
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>(),
        32.0,
        2.0 * 54.0,
    ];
    for (p, (name, sum)) in planes
        .iter()
        .zip(["IMAGE", "MASK", "VARIANCE"].iter().zip(sums))
    {
        assert_eq!(p["exttype"], *name, "{p}");
        assert_eq!(p["extname"], *name, "{p}");
        assert_eq!(p["inherit"], true, "{p}");
        assert_eq!(p["xy0_from_a"], serde_json::json!([100.0, -7.0]), "{p}");
        assert_eq!(p["ltv"], serde_json::json!([-100, 7]), "{p}");
        assert_eq!(p["ctype_a"], serde_json::json!(["LINEAR", "LINEAR"]), "{p}");
        assert_eq!(p["crpix_a"], serde_json::json!([1, 1]), "{p}");
        // The sky WCS is in every plane (afw writes it to each).
        let sky = p["sky"].as_array().unwrap();
        assert!((sky[0].as_f64().unwrap() - 79.25).abs() < 1e-6, "{p}");
        assert_eq!(p["sum"].as_f64().unwrap(), sum, "{p}");
    }
    // And back: daf reads its own file, xy0 from the A WCS.
    let back: ExposureF = get(path.to_str().unwrap(), &PropertySet::new());
    assert_eq!(back.masked_image, e.masked_image);
    assert_eq!(back.metadata.get::<f64>("CRVAL1").unwrap(), 79.25);
    assert!(!back.metadata.exists("TIMESYS"));
    assert_eq!(back.obs_date, e.obs_date);
    // fitsverify: clean.
    if testing::available(
        testing::have_program("fitsverify"),
        "fitsverify not installed",
    ) {
        let out = Command::new("fitsverify").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("0 warning(s) and 0 error(s)"), "{text}");
    }
}

const ASTROPY_PIXELS: &str = r#"
import json, sys, numpy as np
from astropy.io import fits
out = {}
for p in sys.argv[1:]:
    with fits.open(p) as hl:
        d = hl[1].data.astype(np.float64)
        out[p] = [None if np.isnan(v) else float(v) for v in d.ravel()]
print(json.dumps(out))
"#;

/// Tile-compressed images (decoded in Rust) equal astropy's reading pixel for
/// pixel, NaN where astropy has NaN (RICE float with ZBLANK, dithered GZIP_2).
#[test]
fn compressed_images_match_astropy_bit_for_bit() {
    let Some(py) = python() else { return };
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fits/seeds");
    let names = [
        "rice_f32_nan.fits.fz",
        "rice_i16.fits.fz",
        "rice_u16.fits.fz",
        "gzip1_i32.fits.fz",
        "gzip2_f32.fits.fz",
        "gzip2_f32_dither2.fits.fz",
    ];
    let paths: Vec<String> = names
        .iter()
        .map(|n| seeds.join(n).to_str().unwrap().to_string())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let want: Json = serde_json::from_str(&run_python(&py, &args, Some(ASTROPY_PIXELS))).unwrap();
    for p in &paths {
        let d: DecoratedImageD = get(p, &PropertySet::new());
        let w = want[p.as_str()].as_array().unwrap();
        assert_eq!(d.image.pixels().len(), w.len(), "{p}");
        let mut nans = 0;
        for (i, (g, w)) in d.image.pixels().iter().zip(w).enumerate() {
            match w.as_f64() {
                None => {
                    assert!(g.is_nan(), "{p}[{i}]: {g}, astropy NaN");
                    nans += 1;
                }
                Some(w) => assert_eq!(*g, w, "{p}[{i}]"),
            }
        }
        if p.contains("nan") || p.contains("dither2") {
            assert_eq!(nans, 2, "{p}: the two NaN pixels");
        }
    }
}
