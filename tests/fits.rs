//! FITS storage and formatters: round trips, the obs_test raw files, and
//! (with the real tools) fitsverify and astropy in both directions.

use std::path::{Path, PathBuf};
use std::process::Command;

use daf::base::{testing, DateTime, Policy, PropertySet, Timescale};
use daf::formatters::catalog::{Cell, Field, FieldType, SourceCatalog};
use daf::formatters::fits::read_metadata;
use daf::formatters::image::*;
use daf::formatters::{FormatterRegistry, Persistable, Persistence};
use daf::storages::fits::{FitsFile, FitsStorage};
use daf::storages::{LogicalLocation, Storage, StorageRegistry};

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

fn get<T: Persistable>(loc: &str, ad: &PropertySet) -> T {
    try_get(loc, ad).unwrap()
}

fn try_get<T: Persistable>(loc: &str, ad: &PropertySet) -> daf::formatters::Result<T> {
    let p = persistence();
    let mut st = vec![p.retrieve_storage("FitsStorage", &LogicalLocation::literal(loc))?];
    p.retrieve_as::<T>(&mut st, ad)
}

fn obs_raw(name: &str) -> String {
    format!(
        "{}/tests/data/obs_test/input/raw/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn ramp<T: Pixel>(w: usize, h: usize, f: impl Fn(usize, usize) -> f64) -> Image<T> {
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            px.push(T::from_f64(f(x, y)));
        }
    }
    Image::from_vec(w, h, px).unwrap()
}

fn sample_exposure() -> ExposureF {
    let mut image = ramp::<f32>(37, 23, |x, y| x as f64 * 0.5 - y as f64 * 1.25 + 0.1);
    image.set_xy0(100, -7);
    let mut mask = Mask::new(37, 23);
    mask.add_plane("STREAK").unwrap();
    let sat = mask.plane_bitmask("SAT").unwrap();
    let streak = mask.plane_bitmask("STREAK").unwrap();
    mask.set(3, 4, sat | streak);
    let variance = ramp::<f32>(37, 23, |x, y| (x * y) as f64 + 0.5);
    let mut e = ExposureF::new(MaskedImage::from_parts(image, mask, Some(variance)).unwrap());
    e.filter = Some("r".into());
    e.exposure_time = Some(30.5);
    e.obs_date =
        Some(DateTime::from_calendar(2020, 2, 29, 3, 4, 5, 250_000_000, Timescale::Utc).unwrap());
    let md = &mut e.metadata;
    md.set("CTYPE1", "RA---TAN").unwrap();
    md.set("CTYPE2", "DEC--TAN").unwrap();
    md.set("CRPIX1", 6261.0).unwrap();
    md.set("CRPIX2", 6225.0).unwrap();
    md.set("CRVAL1", 79.24522).unwrap();
    md.set("CRVAL2", -9.702295).unwrap();
    md.set("CD1_1", 5.151818e-05).unwrap();
    md.set("CD1_2", -2.079169e-05).unwrap();
    md.set("CD2_1", -2.079169e-05).unwrap();
    md.set("CD2_2", -5.151818e-05).unwrap();
    md.set("RADESYS", "ICRS").unwrap();
    md.set("OBSID", 890104911).unwrap();
    md.set("OBJECT", "it's a test").unwrap();
    md.set("LONGTEXT", "a very long string value ".repeat(8).trim_end())
        .unwrap();
    md.set("ESO DET CHIP TEMPERATURE", -120.5).unwrap();
    md.set("FLAG", true).unwrap();
    md.add("COMMENT", "first comment").unwrap();
    md.add("COMMENT", "second comment").unwrap();
    md.add("HISTORY", "made by daf").unwrap();
    e
}

fn sample_catalog() -> SourceCatalog {
    let mut fields = vec![
        Field::new("id", FieldType::I64),
        Field::new("coord_ra", FieldType::F64),
        Field::new("flux", FieldType::F32),
        Field::new("nchild", FieldType::I32),
        Field::new("flag_bad", FieldType::Flag),
        Field::new("name", FieldType::String),
    ];
    fields[1].unit = "deg".into();
    fields[2].doc = "instrumental flux".into();
    let mut cat = SourceCatalog::new(fields);
    for i in 0..17i64 {
        cat.push_row(vec![
            Cell::I64(i * 1_000_000_007),
            Cell::F64(10.0 + i as f64 / 7.0),
            Cell::F32(i as f32 * 1.5),
            Cell::I32(-(i as i32)),
            Cell::Flag(i % 3 == 0),
            Cell::String(format!("src{i}")),
        ])
        .unwrap();
    }
    cat.metadata.set("VISIT", 42).unwrap();
    cat
}

// ---------------------------------------------------------------- round trips

#[test]
fn image_round_trip_every_pixel_type() {
    let dir = tempfile::tempdir().unwrap();
    fn check<T: ImagePixel>(dir: &Path, f: impl Fn(usize, usize) -> f64) {
        let mut im = ramp::<T>(13, 9, f);
        im.set_xy0(-4, 11);
        let path = dir.join(format!("{}.fits", T::IMAGE_NAME));
        put(&im, &path);
        let back: Image<T> = get(path.to_str().unwrap(), &PropertySet::new());
        assert_eq!(back, im, "{}", T::IMAGE_NAME);
        let f = FitsFile::open(&path).unwrap();
        assert_eq!(f.hdus()[0].bitpix, T::BITPIX);
        assert_eq!(f.hdus()[0].bzero, T::BZERO);
    }
    check::<u8>(dir.path(), |x, y| (x * 19 + y) as f64);
    check::<i16>(dir.path(), |x, y| x as f64 * 1000.0 - y as f64 * 3000.0);
    check::<u16>(dir.path(), |x, y| (x * 5000 + y) as f64);
    check::<i32>(dir.path(), |x, y| x as f64 * 1e8 - y as f64 * 2e8);
    check::<u32>(dir.path(), |x, y| (x as f64) * 3.3e8 + y as f64);
    check::<i64>(dir.path(), |x, y| x as f64 * 1e15 - y as f64);
    check::<f32>(dir.path(), |x, y| x as f64 / 3.0 - y as f64);
    check::<f64>(dir.path(), |x, y| x as f64 / 7.0 + y as f64 * 1e-300);
}

#[test]
fn exposure_round_trip_keeps_planes_metadata_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/calexp.fits");
    let e = sample_exposure();
    put(&e, &path);
    let back: ExposureF = get(path.to_str().unwrap(), &PropertySet::new());
    assert_eq!(back.masked_image, e.masked_image);
    assert_eq!(back.masked_image.image.xy0(), (100, -7));
    assert_eq!(
        back.masked_image.mask.plane_bit("STREAK"),
        e.masked_image.mask.plane_bit("STREAK")
    );
    assert_eq!(back.filter.as_deref(), Some("r"));
    assert_eq!(back.exposure_time, Some(30.5));
    assert_eq!(back.obs_date, e.obs_date);
    let md = &back.metadata;
    assert_eq!(md.get::<String>("CTYPE1").unwrap(), "RA---TAN");
    assert_eq!(md.get::<f64>("CRVAL1").unwrap(), 79.24522);
    assert_eq!(md.get::<f64>("CD1_1").unwrap(), 5.151818e-05);
    assert_eq!(md.get::<i32>("OBSID").unwrap(), 890104911);
    assert_eq!(md.get::<String>("OBJECT").unwrap(), "it's a test");
    assert_eq!(
        md.get::<String>("LONGTEXT").unwrap(),
        e.metadata.get::<String>("LONGTEXT").unwrap()
    );
    assert_eq!(md.get::<f64>("ESO DET CHIP TEMPERATURE").unwrap(), -120.5);
    assert!(md.get::<bool>("FLAG").unwrap());
    assert_eq!(
        md.get_array::<String>("COMMENT").unwrap(),
        vec!["first comment", "second comment"]
    );
    assert_eq!(
        md.get_array::<String>("HISTORY").unwrap(),
        vec!["made by daf"]
    );
    for k in [
        "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "EXTNAME", "FILTER", "EXPTIME",
    ] {
        assert!(!md.exists(k), "{k} leaked into metadata");
    }
    // Layout: empty primary + IMAGE, MASK, VARIANCE.
    let f = FitsFile::open(&path).unwrap();
    let names: Vec<_> = f
        .hdus()
        .iter()
        .map(|h| h.extname().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        vec![
            None,
            Some("IMAGE".into()),
            Some("MASK".into()),
            Some("VARIANCE".into())
        ]
    );
    assert_eq!(f.hdus()[0].data_len, 0);
    assert_eq!(f.hdus()[2].bitpix, 32);
}

#[test]
fn masked_decorated_mask_and_catalog_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mi = sample_exposure().masked_image;
    let p = dir.path().join("mi.fits");
    put(&mi, &p);
    assert_eq!(
        get::<MaskedImageF>(p.to_str().unwrap(), &PropertySet::new()),
        mi
    );

    let p = dir.path().join("mask.fits");
    put(&mi.mask, &p);
    assert_eq!(
        get::<Mask>(p.to_str().unwrap(), &PropertySet::new()),
        mi.mask
    );

    let mut d = DecoratedImageU::new(ramp::<u16>(10, 4, |x, y| (x * 6000 + y) as f64));
    d.metadata.set("FILTER", "g").unwrap();
    d.metadata.set("EXPTIME", 15.0).unwrap();
    let p = dir.path().join("raw.fits");
    put(&d, &p);
    let back: DecoratedImageU = get(p.to_str().unwrap(), &PropertySet::new());
    assert_eq!(back, d);
    assert_eq!(FitsFile::open(&p).unwrap().hdus().len(), 1);

    let cat = sample_catalog();
    let p = dir.path().join("src.fits");
    put(&cat, &p);
    let back: SourceCatalog = get(p.to_str().unwrap(), &PropertySet::new());
    assert_eq!(back.fields(), cat.fields());
    assert_eq!(back.columns(), cat.columns());
    assert_eq!(back.metadata.get::<i32>("VISIT").unwrap(), 42);
}

#[test]
fn cut_outs_parent_and_local_and_components() {
    let dir = tempfile::tempdir().unwrap();
    let e = sample_exposure();
    let path = dir.path().join("calexp.fits");
    put(&e, &path);
    let loc = path.to_str().unwrap();
    let mut ad = PropertySet::new();
    ad.set("llcX", 105).unwrap();
    ad.set("llcY", -5).unwrap();
    ad.set("width", 6).unwrap();
    ad.set("height", 3).unwrap();
    let parent: ExposureF = get(loc, &ad);
    assert_eq!((parent.width(), parent.height()), (6, 3));
    assert_eq!(parent.masked_image.image.xy0(), (105, -5));
    let full = &e.masked_image;
    for y in 0..3 {
        for x in 0..6 {
            assert_eq!(
                parent.masked_image.image.get(x, y),
                full.image.get(x + 5, y + 2)
            );
            assert_eq!(
                parent.masked_image.variance.get(x, y),
                full.variance.get(x + 5, y + 2)
            );
            assert_eq!(
                parent.masked_image.mask.get(x, y),
                full.mask.get(x + 5, y + 2)
            );
        }
    }
    assert_eq!(parent.filter.as_deref(), Some("r"));
    ad.set("imageOrigin", "LOCAL").unwrap();
    ad.set("llcX", 5).unwrap();
    ad.set("llcY", 2).unwrap();
    let local: ImageF = get(loc, &ad);
    assert_eq!(&local, &parent.masked_image.image);
    // Out of bounds is an error naming the file.
    ad.set("width", 600).unwrap();
    let err = try_get::<ImageF>(loc, &ad).unwrap_err().to_string();
    assert!(err.contains("calexp.fits"), "{err}");

    // One plane, without reading the others.
    let mut c = PropertySet::new();
    c.set("component", "variance").unwrap();
    let var: ImageF = get(loc, &c);
    assert_eq!(var, full.variance);
    // [N] suffix picks the HDU; no suffix picks the first with data (IMAGE).
    let img: ImageF = get(loc, &PropertySet::new());
    assert_eq!(img, full.image);
    let mask: ImageI = get(&format!("{loc}[2]"), &PropertySet::new());
    assert_eq!(mask.pixels(), full.mask.image.pixels());
    // Metadata only.
    let mut s = FitsStorage::new();
    s.set_retrieve_location(&LogicalLocation::literal(loc))
        .unwrap();
    let md = read_metadata(&mut s).unwrap();
    assert_eq!(md.get::<String>("FILTER").unwrap(), "r");
    let md: PropertySet = {
        let p = persistence();
        let mut st = vec![p
            .retrieve_storage(
                "FitsStorage",
                &LogicalLocation::literal(format!("{loc}[1]")),
            )
            .unwrap()];
        *p.retrieve("PropertyList", &mut st, &PropertySet::new())
            .unwrap()
            .into_any()
            .downcast()
            .unwrap()
    };
    assert_eq!(md.get::<String>("EXTNAME").unwrap(), "IMAGE");
}

#[test]
fn persist_is_atomic_and_abort_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.fits");
    let mut s = FitsStorage::new();
    s.set_persist_location(&LogicalLocation::literal(path.to_str().unwrap()))
        .unwrap();
    s.start_transaction().unwrap();
    s.write_image::<f32>(&[], 2, 2, (0, 0), &[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    s.prepare_commit().unwrap();
    assert!(!path.exists());
    s.abort_transaction().unwrap();
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        0
    );
    // Nothing written: commit fails.
    s.start_transaction().unwrap();
    assert!(s.prepare_commit().is_err());
    s.abort_transaction().unwrap();
    // A [N] suffix on a persist location is refused.
    let mut s = FitsStorage::new();
    assert!(s
        .set_persist_location(&LogicalLocation::literal("x.fits[1]"))
        .is_err());
    // Missing file on retrieve: NotFound naming it.
    let err = s
        .set_retrieve_location(&LogicalLocation::literal("/no/such/file.fits"))
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/file.fits"));
}

// ---------------------------------------------------------------- obs_test

#[test]
fn obs_test_raws_match_the_readme() {
    struct Expect {
        file: &'static str,
        filter: &'static str,
        obsid: i32,
        mjd: f64,
        min: u16,
        max: u16,
        sum: u64,
        row0: [u16; 8],
        corners: [u16; 4],
        center: u16,
        prescan: f64,
        utc: &'static str,
    }
    let cases = [
        Expect {
            file: "raw_v1_fg.fits.gz",
            filter: "g",
            obsid: 890104911,
            mjd: 51195.2035520278,
            min: 936,
            max: 61267,
            sum: 2_496_790_727,
            row0: [966, 967, 964, 960, 1134, 1134, 1159, 1154],
            corners: [966, 1224, 976, 1206],
            center: 995,
            prescan: 967.599,
            utc: "1999-01-17T04:52:34.895",
        },
        Expect {
            file: "raw_v2_fg.fits.gz",
            filter: "g",
            obsid: 890106021,
            mjd: 51195.2240820278,
            min: 937,
            max: 61272,
            sum: 2_593_128_614,
            row0: [962, 980, 956, 960, 1181, 1199, 1184, 1195],
            corners: [962, 1290, 971, 1259],
            center: 1013,
            prescan: 967.657,
            utc: "1999-01-17T05:22:08.687",
        },
        Expect {
            file: "raw_v3_fr.fits.gz",
            filter: "r",
            obsid: 890880321,
            mjd: 51228.0541210278,
            min: 938,
            max: 61272,
            sum: 3_139_643_425,
            row0: [963, 963, 959, 960, 1383, 1374, 1392, 1376],
            corners: [963, 1469, 973, 1477],
            center: 1010,
            prescan: 967.471,
            utc: "1999-02-19T01:17:24.056",
        },
    ];
    for c in cases {
        let loc = obs_raw(c.file);
        let d: DecoratedImageU = get(&loc, &PropertySet::new());
        let im = &d.image;
        assert_eq!((im.width(), im.height()), (1026, 2000), "{}", c.file);
        let sum: u64 = im.pixels().iter().map(|&p| p as u64).sum();
        assert_eq!(sum, c.sum);
        assert_eq!(*im.pixels().iter().min().unwrap(), c.min);
        assert_eq!(*im.pixels().iter().max().unwrap(), c.max);
        assert_eq!(&im.row(0)[..8], &c.row0);
        assert_eq!(
            [
                im.get(0, 0),
                im.get(1025, 0),
                im.get(0, 1999),
                im.get(1025, 1999)
            ],
            c.corners
        );
        assert_eq!(im.get(513, 1000), c.center);
        let (_, _, mean) = im.stats().unwrap();
        assert!((mean - c.sum as f64 / 2_052_000.0).abs() < 1e-9);
        let md = &d.metadata;
        assert_eq!(md.get::<String>("FILTER").unwrap(), c.filter);
        assert_eq!(md.get::<f64>("EXPTIME").unwrap(), 15.0);
        assert_eq!(md.get::<i32>("OBSID").unwrap(), c.obsid);
        assert_eq!(md.get::<f64>("MJD-OBS").unwrap(), c.mjd);
        assert_eq!(md.get::<String>("CCDID").unwrap(), "R22_S00_C00");
        assert_eq!(
            md.get::<String>("DATASEC").unwrap(),
            "[   1: 513,   1:2001]"
        );
        assert_eq!(md.get::<String>("CTYPE1").unwrap(), "RA---TAN");
        assert_eq!(md.get::<f64>("GAIN").unwrap(), 1.7741);
        assert_eq!(md.get_array::<String>("COMMENT").unwrap().len(), 4);
        assert!(!md.exists("BZERO") && !md.exists("BITPIX"));

        // As an exposure: fields from the header.
        let e: ExposureU = get(&loc, &PropertySet::new());
        assert_eq!(e.filter.as_deref(), Some(c.filter));
        assert_eq!(e.exposure_time, Some(15.0));
        let utc = e.obs_date.unwrap().to_iso(Timescale::Utc);
        assert!(utc.starts_with(c.utc), "{utc} vs {}", c.utc);

        // A cut-out of the first prescan: columns 0-3, all rows.
        let mut ad = PropertySet::new();
        for (k, v) in [("llcX", 0), ("llcY", 0), ("width", 4), ("height", 2000)] {
            ad.set(k, v).unwrap();
        }
        let pre: ImageU = get(&loc, &ad);
        let (_, _, m) = pre.stats().unwrap();
        assert!((m - c.prescan).abs() < 5e-4, "{m}");
    }
}

// ---------------------------------------------------------------- bad input

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn good_file_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("good.fits");
    put(&sample_exposure(), &p);
    std::fs::read(&p).unwrap()
}

fn replace_card(bytes: &mut [u8], key: &str, new: &str) {
    let pos = bytes
        .chunks(80)
        .position(|c| c.starts_with(key.as_bytes()))
        .unwrap();
    let mut card = format!("{new:<80}").into_bytes();
    card.truncate(80);
    bytes[pos * 80..pos * 80 + 80].copy_from_slice(&card);
}

#[test]
fn bad_input_gives_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_file_bytes(dir.path());
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated_data.fits", good[..good.len() - 5000].to_vec()),
        ("truncated_header.fits", good[..1000].to_vec()),
        (
            "not_fits.fits",
            b"hello, this is not a FITS file at all\n".repeat(100),
        ),
        ("empty.fits", Vec::new()),
        ("short_block.fits", {
            // A header not padded to 2880 bytes: END card, then EOF.
            let mut b = good[..2880].to_vec();
            let end = b.chunks(80).position(|c| c.starts_with(b"END ")).unwrap();
            b.truncate((end + 1) * 80);
            b
        }),
    ];
    let mut bad_bitpix = good.clone();
    replace_card(&mut bad_bitpix, "BITPIX", "BITPIX  =                   17");
    cases.push(("bad_bitpix.fits", bad_bitpix));
    let mut no_naxis = good.clone();
    replace_card(&mut no_naxis, "NAXIS ", "COMMENT no NAXIS here");
    cases.push(("no_naxis.fits", no_naxis));
    let mut str_bitpix = good.clone();
    replace_card(&mut str_bitpix, "BITPIX", "BITPIX  = 'sixteen'");
    cases.push(("string_bitpix.fits", str_bitpix));
    for (name, bytes) in cases {
        let p = write_bytes(dir.path(), name, &bytes);
        let err = match try_get::<ExposureF>(p.to_str().unwrap(), &PropertySet::new()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{name} was read without error"),
        };
        assert!(err.contains(name), "{name}: {err}");
    }
    // HDU out of range.
    let p = write_bytes(dir.path(), "ok.fits", &good);
    let err = try_get::<ImageF>(&format!("{}[9]", p.display()), &PropertySet::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ok.fits") && err.contains("out of range"),
        "{err}"
    );
    // Wrong HDU kind.
    let p = dir.path().join("cat.fits");
    put(&sample_catalog(), &p);
    let err = try_get::<ImageF>(&format!("{}[1]", p.display()), &PropertySet::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cat.fits") && err.contains("not an image"),
        "{err}"
    );
}

mod corruption {
    use super::*;
    use proptest::prelude::*;

    fn read_everything(path: &Path) {
        if let Ok(f) = FitsFile::open(path) {
            for h in f.hdus() {
                let _ = f.read_image::<f32>(h.index, None);
                let _ = f.read_image::<u16>(h.index, Some((1, 1, 2, 2)));
                let _ = f.image_stats(h.index);
                let _ = f.read_table(h.index);
            }
        }
        let _ = try_get::<ExposureF>(path.to_str().unwrap(), &PropertySet::new());
        let _ = try_get::<SourceCatalog>(path.to_str().unwrap(), &PropertySet::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn corrupted_files_never_panic(
            cut in 0usize..40_000,
            flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 0..12),
            which in 0usize..2,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("src.fits");
            if which == 0 { put(&sample_exposure(), &p) } else { put(&sample_catalog(), &p) }
            let mut bytes = std::fs::read(&p).unwrap();
            for (pos, b) in flips {
                let n = bytes.len();
                bytes[pos % n] = b;
            }
            bytes.truncate(cut.min(bytes.len()).max(if cut % 2 == 0 { bytes.len() } else { 0 }));
            let q = write_bytes(dir.path(), "bad.fits", &bytes);
            read_everything(&q);
        }
    }
}

// ---------------------------------------------------------------- real tools

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

fn run_python(py: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One file of every kind daf writes.
fn write_every_kind(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut add = |name: &str, obj: &dyn Persistable| {
        let p = dir.join(name);
        put(obj, &p);
        files.push(p);
    };
    add("imageB.fits", &ramp::<u8>(5, 4, |x, y| (x * 40 + y) as f64));
    add(
        "imageS.fits",
        &ramp::<i16>(5, 4, |x, y| x as f64 * 900.0 - y as f64 * 7000.0),
    );
    add(
        "imageU.fits",
        &ramp::<u16>(5, 4, |x, y| (x * 16000 + y) as f64),
    );
    add(
        "imageI.fits",
        &ramp::<i32>(5, 4, |x, y| x as f64 * 4e8 - y as f64),
    );
    add(
        "imageUI.fits",
        &ramp::<u32>(5, 4, |x, y| x as f64 * 1e9 + y as f64),
    );
    add(
        "imageL.fits",
        &ramp::<i64>(5, 4, |x, y| x as f64 * 1e12 - y as f64),
    );
    add(
        "imageF.fits",
        &ramp::<f32>(5, 4, |x, y| x as f64 * 0.25 - y as f64),
    );
    add(
        "imageD.fits",
        &ramp::<f64>(5, 4, |x, y| x as f64 / 3.0 - y as f64),
    );
    let e = sample_exposure();
    add("exposureF.fits", &e);
    add("maskedImageF.fits", &e.masked_image);
    add("mask.fits", &e.masked_image.mask);
    let mut d = DecoratedImageU::new(ramp::<u16>(6, 3, |x, y| (x * 10000 + y) as f64));
    d.metadata = e.metadata.clone();
    add("decoratedU.fits", &d);
    add("catalog.fits", &sample_catalog());
    // A catalog whose metadata carries a sky WCS, a non-finite real and a
    // long HISTORY: the data-less primary gets WCSAXES, NaN is written as
    // afw writes it, the history is split over whole cards.
    let mut cat = sample_catalog();
    for (k, v) in [
        ("CRVAL1", 150.0),
        ("CRVAL2", 2.5),
        ("CRPIX1", 1024.5),
        ("CRPIX2", 2048.5),
        ("CD1_1", -5.5e-5),
        ("CD2_2", 5.5e-5),
        ("EQUINOX", 2000.0),
        ("SKYLEVEL", f64::NAN),
    ] {
        cat.metadata.set(k, v).unwrap();
    }
    cat.metadata.set("CTYPE1", "RA---TAN").unwrap();
    cat.metadata.set("CTYPE2", "DEC--TAN").unwrap();
    cat.metadata.set("RADESYS", "ICRS").unwrap();
    cat.metadata
        .set(
            "HISTORY",
            "measured with a deblender that splits blends; "
                .repeat(4)
                .trim_end(),
        )
        .unwrap();
    add("catalogWcs.fits", &cat);
    files
}

#[test]
fn fitsverify_accepts_every_kind_we_write() {
    if !testing::available(
        testing::have_program("fitsverify"),
        "fitsverify not installed",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // DAF_KEEP_FITS=<folder> keeps the files for inspection.
    let keep = std::env::var_os("DAF_KEEP_FITS").map(PathBuf::from);
    let out_dir = keep.as_deref().unwrap_or(dir.path());
    for f in write_every_kind(out_dir) {
        let out = Command::new("fitsverify")
            .arg("-q")
            .arg(&f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("0 warnings and 0 errors") || text.contains("OK:"),
            "{}: {text}",
            f.display()
        );
        let full = Command::new("fitsverify").arg(&f).output().unwrap();
        let text = String::from_utf8_lossy(&full.stdout);
        assert!(
            text.contains("0 warning(s) and 0 error(s)"),
            "{}: {text}",
            f.display()
        );
    }
}

/// Equal up to JSON's decimal round trip (serde_json parses floats to within
/// an ulp or two).
fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-15 * w.abs().max(1.0),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

const ASTROPY_DUMP: &str = r#"
import json, sys
import numpy as np
from astropy.io import fits
out = {}
for path in sys.argv[1:]:
    hdus = []
    with fits.open(path) as hl:
        for h in hl:
            d = {"name": h.name, "header": {}}
            for k, v in h.header.items():
                if k in ("COMMENT", "HISTORY", ""):
                    d["header"].setdefault(k, []).append(str(v))
                elif isinstance(v, (bool, int, float, str)):
                    d["header"][k] = v
            if isinstance(h, fits.BinTableHDU):
                d["columns"] = {c.name: [x.item() if hasattr(x, "item") else str(x) for x in h.data[c.name]] for c in h.columns}
            elif h.data is not None:
                a = h.data
                d["shape"] = list(a.shape)
                d["dtype"] = a.dtype.name
                d["pixels"] = a.ravel().tolist()
            hdus.append(d)
    out[path] = hdus
print(json.dumps(out))
"#;

#[test]
fn astropy_reads_what_we_write() {
    let Some(py) = python() else {
        testing::available(false, "python with astropy (set DAF_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = write_every_kind(dir.path());
    let args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let json: serde_json::Value =
        serde_json::from_str(&run_python(&py, ASTROPY_DUMP, &args)).unwrap();
    let hdus = |name: &str| {
        json[dir.path().join(name).to_str().unwrap()]
            .as_array()
            .unwrap()
            .clone()
    };

    // Plain images: shapes, dtypes (unsigned via BZERO) and every pixel.
    fn pixels<T: Pixel>(im: &Image<T>) -> Vec<f64> {
        im.pixels().iter().map(|p| p.to_f64()).collect()
    }
    let checks: Vec<(&str, Vec<f64>, &str)> = vec![
        (
            "imageB.fits",
            pixels(&ramp::<u8>(5, 4, |x, y| (x * 40 + y) as f64)),
            "uint8",
        ),
        (
            "imageS.fits",
            pixels(&ramp::<i16>(5, 4, |x, y| {
                x as f64 * 900.0 - y as f64 * 7000.0
            })),
            "int16",
        ),
        (
            "imageU.fits",
            pixels(&ramp::<u16>(5, 4, |x, y| (x * 16000 + y) as f64)),
            "uint16",
        ),
        (
            "imageI.fits",
            pixels(&ramp::<i32>(5, 4, |x, y| x as f64 * 4e8 - y as f64)),
            "int32",
        ),
        (
            "imageUI.fits",
            pixels(&ramp::<u32>(5, 4, |x, y| x as f64 * 1e9 + y as f64)),
            "uint32",
        ),
        (
            "imageL.fits",
            pixels(&ramp::<i64>(5, 4, |x, y| x as f64 * 1e12 - y as f64)),
            "int64",
        ),
        (
            "imageF.fits",
            pixels(&ramp::<f32>(5, 4, |x, y| x as f64 * 0.25 - y as f64)),
            "float32",
        ),
        (
            "imageD.fits",
            pixels(&ramp::<f64>(5, 4, |x, y| x as f64 / 3.0 - y as f64)),
            "float64",
        ),
    ];
    for (name, want, dtype) in checks {
        let h = &hdus(name)[0];
        assert_eq!(h["shape"], serde_json::json!([4, 5]), "{name}");
        assert_eq!(h["dtype"].as_str().unwrap(), dtype, "{name}");
        let got: Vec<f64> = h["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_close(&got, &want, name);
    }

    // Exposure: layout, planes and header values.
    let e = sample_exposure();
    let h = hdus("exposureF.fits");
    let names: Vec<&str> = h.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["PRIMARY", "IMAGE", "MASK", "VARIANCE"]);
    let hdr = &h[0]["header"];
    assert_eq!(hdr["FILTER"], "r");
    assert_eq!(hdr["EXPTIME"], 30.5);
    assert_eq!(hdr["DATE-OBS"], "2020-02-29T03:04:05.250000000");
    assert_eq!(h[1]["header"]["CRVAL1"], 79.24522);
    assert_eq!(h[1]["header"]["CD2_2"], -5.151818e-05);
    assert_eq!(hdr["OBSID"], 890104911);
    assert_eq!(hdr["OBJECT"], "it's a test");
    assert_eq!(
        hdr["LONGTEXT"],
        e.metadata.get::<String>("LONGTEXT").unwrap()
    );
    assert_eq!(hdr["ESO DET CHIP TEMPERATURE"], -120.5);
    assert_eq!(hdr["FLAG"], true);
    assert_eq!(
        hdr["COMMENT"],
        serde_json::json!(["first comment", "second comment"])
    );
    assert_eq!(h[1]["shape"], serde_json::json!([23, 37]));
    let img: Vec<f64> = h[1]["pixels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_close(&img, &pixels(&e.masked_image.image), "IMAGE");
    assert_eq!(h[1]["header"]["LTV1"], -100);
    assert_eq!(h[1]["header"]["LTV2"], 7);
    let mask: Vec<f64> = h[2]["pixels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(mask, pixels(&e.masked_image.mask.image));
    assert_eq!(
        h[2]["header"]["MP_STREAK"],
        e.masked_image.mask.plane_bit("STREAK").unwrap() as i64
    );
    assert_eq!(h[2]["header"]["MP_SAT"], 1);
    let var: Vec<f64> = h[3]["pixels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_close(&var, &pixels(&e.masked_image.variance), "VARIANCE");

    // Decorated image: primary image with the header.
    let h = hdus("decoratedU.fits");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["dtype"], "uint16");
    assert_eq!(h[0]["header"]["CTYPE1"], "RA---TAN");

    // Catalog.
    let h = hdus("catalog.fits");
    assert_eq!(h[0]["header"]["VISIT"], 42);
    let cols = &h[1]["columns"];
    let cat = sample_catalog();
    assert_eq!(cols["id"][16], 16 * 1_000_000_007i64);
    assert_eq!(cols["coord_ra"][3], 10.0 + 3.0 / 7.0);
    assert_eq!(cols["flux"][5], 7.5);
    assert_eq!(cols["nchild"][2], -2);
    assert_eq!(cols["flag_bad"][3], true);
    assert_eq!(cols["flag_bad"][4], false);
    assert_eq!(cols["name"][11], "src11");
    assert_eq!(cols["id"].as_array().unwrap().len(), cat.len());
    assert_eq!(h[1]["header"]["TUNIT2"], "deg");

    // Catalog with a WCS, NaN and a long HISTORY in its metadata.
    let h = hdus("catalogWcs.fits");
    assert_eq!(h[0]["header"]["WCSAXES"], 2);
    assert_eq!(h[0]["header"]["CRPIX2"], 2048.5);
    assert_eq!(h[0]["header"]["SKYLEVEL"], "NAN");
    let hist: Vec<String> = h[0]["header"]["HISTORY"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        hist.len() >= 3 && hist.iter().all(|l| l.len() <= 72),
        "{hist:?}"
    );
    assert_eq!(
        hist.join(" "),
        "measured with a deblender that splits blends; "
            .repeat(4)
            .trim_end()
    );
}

const ASTROPY_WRITE: &str = r#"
import sys, os
import numpy as np
from astropy.io import fits
d = sys.argv[1]
y, x = np.mgrid[0:7, 0:11]
base = (x * 3 + y * 5).astype(np.float64)
for name, dt in [("b8", np.uint8), ("i16", np.int16), ("i32", np.int32), ("i64", np.int64),
                 ("f32", np.float32), ("f64", np.float64), ("u16", np.uint16), ("u32", np.uint32)]:
    a = (base * (2 if dt in (np.uint8,) else 100 if dt in (np.int16,) else 1000)).astype(dt)
    if dt in (np.uint16,):
        a = (base * 500 + 30000).astype(dt)
    if dt in (np.uint32,):
        a = (base * 500 + 3000000000).astype(dt)
    h = fits.PrimaryHDU(a)
    h.header["FILTER"] = "i"
    h.header["EXPTIME"] = 12.5
    h.header["HIERARCH ESO INS TEMP"] = -3.25
    h.header["LONGSTR"] = "word " * 30
    h.header.add_history("astropy wrote this")
    h.writeto(os.path.join(d, name + ".fits"), overwrite=True)
# Scaled integers: BSCALE/BZERO physical values.
h = fits.PrimaryHDU((base * 10).astype(np.int16))
h.header["BSCALE"] = 0.5
h.header["BZERO"] = 100.0
h.writeto(os.path.join(d, "scaled.fits"), overwrite=True, output_verify="ignore")
# Multi-extension.
hl = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(base.astype(np.float32), name="SCI"),
                   fits.ImageHDU((base * 2).astype(np.int32), name="DQ")])
hl.writeto(os.path.join(d, "mef.fits"), overwrite=True)
# Binary table.
cols = fits.ColDefs([
    fits.Column(name="id", format="K", array=np.arange(5, dtype=np.int64) * 10),
    fits.Column(name="ra", format="D", unit="deg", array=np.linspace(0, 1, 5)),
    fits.Column(name="flux", format="E", array=np.arange(5, dtype=np.float32) / 4),
    fits.Column(name="n", format="J", array=-np.arange(5, dtype=np.int32)),
    fits.Column(name="ok", format="L", array=np.array([True, False, True, False, True])),
    fits.Column(name="label", format="8A", array=np.array(["a", "bb", "ccc", "dddd", "eeeee"])),
])
t = fits.BinTableHDU.from_columns(cols)
t.header["TELESCOP"] = "test"
fits.HDUList([fits.PrimaryHDU(), t]).writeto(os.path.join(d, "table.fits"), overwrite=True)
# gzip and RICE tile compression.
fits.PrimaryHDU((base * 500 + 30000).astype(np.uint16)).writeto(os.path.join(d, "gz.fits.gz"), overwrite=True)
fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU((base * 500 + 30000).astype(np.uint16), compression_type="RICE_1")]).writeto(os.path.join(d, "rice_u16.fits.fz"), overwrite=True)
fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU((base * 7 - 40).astype(np.int32), compression_type="RICE_1", name="SCI")]).writeto(os.path.join(d, "rice_i32.fits.fz"), overwrite=True)
fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(base.astype(np.float32) / 8, compression_type="RICE_1")]).writeto(os.path.join(d, "rice_f32.fits.fz"), overwrite=True)
"#;

#[test]
fn we_read_what_astropy_writes() {
    let Some(py) = python() else {
        testing::available(false, "python with astropy (set DAF_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    run_python(&py, ASTROPY_WRITE, &[dir.path().to_str().unwrap()]);
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let base = |x: usize, y: usize| (x * 3 + y * 5) as f64;
    let none = PropertySet::new();

    fn check<T: ImagePixel>(loc: &str, f: impl Fn(usize, usize) -> f64) -> DecoratedImage<T> {
        let d: DecoratedImage<T> = get(loc, &PropertySet::new());
        assert_eq!((d.image.width(), d.image.height()), (11, 7), "{loc}");
        for y in 0..7 {
            for x in 0..11 {
                assert_eq!(d.image.get(x, y).to_f64(), f(x, y), "{loc} ({x},{y})");
            }
        }
        d
    }
    let d = check::<u8>(&p("b8.fits"), |x, y| base(x, y) * 2.0);
    assert_eq!(d.metadata.get::<String>("FILTER").unwrap(), "i");
    assert_eq!(d.metadata.get::<f64>("EXPTIME").unwrap(), 12.5);
    assert_eq!(d.metadata.get::<f64>("ESO INS TEMP").unwrap(), -3.25);
    assert_eq!(
        d.metadata.get::<String>("LONGSTR").unwrap(),
        "word ".repeat(30).trim_end()
    );
    assert_eq!(
        d.metadata.get_array::<String>("HISTORY").unwrap(),
        vec!["astropy wrote this"]
    );
    check::<i16>(&p("i16.fits"), |x, y| base(x, y) * 100.0);
    check::<i32>(&p("i32.fits"), |x, y| base(x, y) * 1000.0);
    check::<i64>(&p("i64.fits"), |x, y| base(x, y) * 1000.0);
    check::<f32>(&p("f32.fits"), |x, y| base(x, y) * 1000.0);
    check::<f64>(&p("f64.fits"), |x, y| base(x, y) * 1000.0);
    check::<u16>(&p("u16.fits"), |x, y| base(x, y) * 500.0 + 30000.0);
    check::<u32>(&p("u32.fits"), |x, y| base(x, y) * 500.0 + 3e9);
    // Other types than stored: converted through the physical values.
    check::<f64>(&p("u16.fits"), |x, y| base(x, y) * 500.0 + 30000.0);
    check::<f32>(&p("scaled.fits"), |x, y| base(x, y) * 10.0 * 0.5 + 100.0);
    // MEF: first HDU with data, and by EXTNAME / [N].
    let sci: ImageF = get(&p("mef.fits"), &none);
    assert_eq!(sci.get(10, 6), base(10, 6) as f32);
    let dq: ImageI = get(&format!("{}[2]", p("mef.fits")), &none);
    assert_eq!(dq.get(10, 6), base(10, 6) as i32 * 2);
    // SCI + DQ is not afw's layout: no MASK plane, an error unless the
    // caller accepts a zero mask and variance (afw's needAllHdus = false).
    let err = try_get::<ExposureF>(&p("mef.fits"), &none).unwrap_err();
    assert!(err.to_string().contains("no MASK plane"), "{err}");
    let mut lax = PropertySet::new();
    lax.set("needAllHdus", false).unwrap();
    let e: ExposureF = get(&p("mef.fits"), &lax);
    assert_eq!(e.masked_image.image, sci);
    // Binary table.
    let cat: SourceCatalog = get(&p("table.fits"), &none);
    assert_eq!(cat.len(), 5);
    assert_eq!(cat.cell(4, "id"), Some(Cell::I64(40)));
    assert_eq!(cat.cell(2, "ra"), Some(Cell::F64(0.5)));
    assert_eq!(cat.cell(3, "flux"), Some(Cell::F32(0.75)));
    assert_eq!(cat.cell(1, "n"), Some(Cell::I32(-1)));
    assert_eq!(cat.cell(1, "ok"), Some(Cell::Flag(false)));
    assert_eq!(cat.cell(3, "label"), Some(Cell::String("dddd".into())));
    assert_eq!(cat.fields()[1].unit, "deg");
    assert_eq!(cat.metadata.get::<String>("TELESCOP").unwrap(), "test");
    // gzip and RICE.
    check::<u16>(&p("gz.fits.gz"), |x, y| base(x, y) * 500.0 + 30000.0);
    check::<u16>(&p("rice_u16.fits.fz"), |x, y| base(x, y) * 500.0 + 30000.0);
    check::<i32>(&p("rice_i32.fits.fz"), |x, y| base(x, y) * 7.0 - 40.0);
    // Floats are quantised by RICE: equal to within the quantisation step.
    let f: DecoratedImageF = get(&p("rice_f32.fits.fz"), &none);
    for y in 0..7 {
        for x in 0..11 {
            assert!((f.image.get(x, y) as f64 - base(x, y) / 8.0).abs() < 0.01);
        }
    }
    let f = FitsFile::open(p("rice_u16.fits.fz")).unwrap();
    assert_eq!(f.hdus()[1].bitpix, 16);
    assert_eq!(f.hdus()[1].bzero, 32768.0);
    // A cut-out of a compressed image.
    let mut ad = PropertySet::new();
    for (k, v) in [("llcX", 2), ("llcY", 3), ("width", 4), ("height", 2)] {
        ad.set(k, v).unwrap();
    }
    let cut: ImageI = get(&p("rice_i32.fits.fz"), &ad);
    assert_eq!(cut.get(0, 0), (base(2, 3) * 7.0 - 40.0) as i32);
    assert_eq!(cut.xy0(), (2, 3));
}

/// The first failure under a retrieval's rollback.
fn root(e: daf::formatters::FormatterError) -> daf::formatters::FormatterError {
    match e {
        daf::formatters::FormatterError::RolledBack { source, .. } => root(*source),
        e => e,
    }
}

/// DC3-era afw's three-file masked image at a location `BASE`
/// (`BASE_img.fits`, `BASE_msk.fits`, `BASE_var.fits`): read when `BASE`
/// itself does not exist; a partial set is a typed error; writing still
/// produces daf's one multi-extension file.
#[test]
fn legacy_three_file_masked_image() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("871034p_1_MI");
    let at = |suffix: &str| PathBuf::from(format!("{}{suffix}", base.display()));
    let (w, h) = (7, 5);
    let mut img = DecoratedImageF::new(
        ImageF::from_vec(w, h, (0..w * h).map(|i| i as f32 * 0.5).collect()).unwrap(),
    );
    img.metadata.set("FILTER", "r").unwrap();
    img.metadata.set("EXPTIME", 15.0).unwrap();
    img.metadata.set("OBSERVER", "cfht").unwrap();
    put(&img, &at("_img.fits"));
    let mut mask = Mask::new(w, h);
    let sat = mask.add_plane("SAT").unwrap();
    mask.set(3, 2, 1 << sat);
    put(&mask, &at("_msk.fits"));
    let var = ImageF::from_vec(w, h, vec![2.25; w * h]).unwrap();
    put(&var, &at("_var.fits"));

    let none = PropertySet::new();
    let loc = base.to_str().unwrap();
    let mi: MaskedImageF = get(loc, &none);
    assert_eq!((mi.width(), mi.height()), (w, h));
    assert_eq!(mi.image.get(6, 4), 34.0 * 0.5);
    assert_eq!(mi.mask.get(3, 2), 1 << sat);
    assert_eq!(mi.mask.get(0, 0), 0);
    assert_eq!(mi.mask.plane_bit("SAT"), Some(sat));
    assert_eq!(mi.variance.get(1, 1), 2.25);
    // As an exposure: its metadata is BASE_img.fits's header.
    let e: ExposureF = get(loc, &none);
    assert_eq!(e.masked_image, mi);
    assert_eq!(e.filter.as_deref(), Some("r"));
    assert_eq!(e.exposure_time, Some(15.0));
    assert_eq!(e.metadata.get::<String>("OBSERVER").unwrap(), "cfht");
    // A plain image read of BASE reads BASE_img.fits.
    let im: ImageF = get(loc, &none);
    assert_eq!(im, mi.image);

    // Written back: one multi-extension file at the location as given.
    let out = dir.path().join("image871034");
    put(&mi, &out);
    assert!(!at("_img.fits")
        .with_file_name("image871034_img.fits")
        .exists());
    let back: MaskedImageF = get(out.to_str().unwrap(), &none);
    assert_eq!(back, mi);
    assert_eq!(FitsFile::open(&out).unwrap().hdus().len(), 4);

    // No variance file: an error naming it, unless needAllHdus = false
    // (then the variance is zero, as for a one-file image without one).
    std::fs::remove_file(at("_var.fits")).unwrap();
    let err = root(try_get::<MaskedImageF>(loc, &none).unwrap_err());
    assert!(
        matches!(err, daf::formatters::FormatterError::Invalid { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("871034p_1_MI_var.fits is missing"),
        "{err}"
    );
    let mut lax = PropertySet::new();
    lax.set("needAllHdus", false).unwrap();
    let mi2: MaskedImageF = get(loc, &lax);
    assert_eq!(mi2.image, mi.image);
    assert_eq!(mi2.mask, mi.mask);
    assert_eq!(mi2.variance.get(1, 1), 0.0);

    // Planes of different sizes: an error.
    put(&ImageF::new(3, 3), &at("_var.fits"));
    let err = try_get::<MaskedImageF>(loc, &none).unwrap_err();
    assert!(err.to_string().contains("legacy three-file"), "{err}");

    // A mask file but no image file: the storage's NotFound, naming both.
    std::fs::remove_file(at("_img.fits")).unwrap();
    let err = root(try_get::<MaskedImageF>(loc, &none).unwrap_err());
    let msg = err.to_string();
    assert!(
        msg.contains("871034p_1_MI_msk.fits") && msg.contains("no ") && msg.contains("_img.fits"),
        "{msg}"
    );
    assert!(
        matches!(
            err,
            daf::formatters::FormatterError::Storage(daf::storages::StorageError::NotFound { .. })
        ),
        "{err:?}"
    );
}
