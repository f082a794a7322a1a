//! Lazy reads: `Butler::get_deferred` resolves a dataset now and reads it
//! later — whole, as a component, as a cut-out — and fails if the dataset
//! vanished or was replaced in between.

use std::path::Path;

use daf_base::{data_id, PropertySet};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, ButlerError, GetOptions, Origin, PutOptions, Repository};
use daf_formatters::image::{ExposureF, ImageF, Mask, MaskedImageF};

fn repo(root: &Path) -> Butler {
    let m = SimpleMapper::new([
        (
            "calexp",
            SimpleDataset::new("calexp/v%(visit)d.fits", "ExposureF", "FitsStorage"),
        ),
        (
            "meta",
            SimpleDataset::new("meta/v%(visit)d.boost", "PropertySet", "BoostStorage"),
        ),
    ])
    .unwrap();
    Repository::create(root, Some("SimpleMapper"), m.to_args(), &[]).unwrap();
    Butler::builder().output(root).build().unwrap()
}

fn exposure(w: usize, h: usize, offset: f32) -> ExposureF {
    let px = (0..w * h)
        .map(|i| (i % w) as f32 + 1000.0 * (i / w) as f32 + offset)
        .collect();
    let mut image = ImageF::from_vec(w, h, px).unwrap();
    image.set_xy0(10, 20);
    let mut mask = Mask::new(w, h);
    let bad = mask.add_plane("BAD").unwrap();
    mask.set(3, 4, 1 << bad);
    let mut e = ExposureF::new(MaskedImageF::from_parts(image, mask, None).unwrap());
    e.metadata.set("OBSERVER", "daf").unwrap();
    e
}

#[test]
fn a_handle_resolves_now_and_reads_parts_later() {
    let d = tempfile::tempdir().unwrap();
    let b = repo(&d.path().join("repo"));
    let id = data_id! {visit: 1};
    b.put(&exposure(40, 30, 0.0), "calexp", &id).unwrap();

    let h = b
        .get_deferred("calexp", &id, &GetOptions::default())
        .unwrap();
    assert_eq!(h.data_id().get("visit").and_then(|v| v.as_i64()), Some(1));
    assert_eq!(
        h.path().unwrap(),
        d.path().join("repo/calexp/v1.fits"),
        "the location is resolved when the handle is made"
    );
    assert_eq!(h.resolved().found_run(), Some(""));

    // whole, then components, then cut-outs, from the one handle
    let e: ExposureF = h.get().unwrap();
    assert_eq!((e.width(), e.height()), (40, 30));
    assert_eq!(e.masked_image.image.get(7, 8), 7.0 + 8000.0);
    let md: PropertySet = h
        .get_with(Some("metadata"), &GetOptions::default())
        .unwrap();
    assert_eq!(md.get::<String>("OBSERVER").unwrap(), "daf");
    let mask: Mask = h.get_with(Some("mask"), &GetOptions::default()).unwrap();
    assert_eq!(mask.get(3, 4), 1 << mask.plane_bit("BAD").unwrap());
    let cut: ImageF = h
        .get_with(
            Some("image"),
            &GetOptions::default().bbox(12, 25, 5, 3, Origin::Parent),
        )
        .unwrap();
    assert_eq!((cut.width(), cut.height(), cut.xy0()), (5, 3, (12, 25)));
    assert_eq!(cut.get(0, 0), 2.0 + 5000.0);
    let cut: ExposureF = h
        .get_with(None, &GetOptions::default().bbox(1, 2, 4, 4, Origin::Local))
        .unwrap();
    assert_eq!(cut.masked_image.image.get(1, 1), 2.0 + 3000.0);

    // a box given when the handle is made applies to every read
    let hb = b
        .get_deferred(
            "calexp",
            &id,
            &GetOptions::default().bbox(10, 20, 2, 2, Origin::Parent),
        )
        .unwrap();
    let img: ImageF = hb.get_with(Some("image"), &GetOptions::default()).unwrap();
    assert_eq!((img.width(), img.height()), (2, 2));
    assert_eq!(img.get(1, 1), 1.0 + 1000.0);

    // a handle made for a component reads that component
    let hm = b
        .get_deferred("calexp.metadata", &id, &GetOptions::default())
        .unwrap();
    let md: PropertySet = hm.get().unwrap();
    assert_eq!(md.get::<String>("OBSERVER").unwrap(), "daf");
    let e = hm
        .get_with::<Mask>(Some("mask"), &GetOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, ButlerError::BadDataId { .. }) && e.to_string().contains("\"metadata\""),
        "{e}"
    );
    // an unknown component is the same error as for get
    let e = h
        .get_with::<ImageF>(Some("wcs"), &GetOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("no component \"wcs\""), "{e}");
    // the handle is resolved for one run
    let e = h
        .get_with::<ExposureF>(None, &GetOptions::default().run("other"))
        .unwrap_err();
    assert!(e.to_string().contains("resolved in run"), "{e}");
}

#[test]
fn a_missing_dataset_fails_when_the_handle_is_made() {
    let d = tempfile::tempdir().unwrap();
    let b = repo(&d.path().join("repo"));
    let e = b
        .get_deferred("calexp", &data_id! {visit: 9}, &GetOptions::default())
        .unwrap_err();
    assert!(matches!(e, ButlerError::NotFound { .. }), "{e}");
}

#[test]
fn a_handle_reads_nothing_until_asked() {
    let d = tempfile::tempdir().unwrap();
    let b = repo(&d.path().join("repo"));
    let id = data_id! {visit: 2};
    let mut ps = PropertySet::new();
    ps.set("exptime", 15.0).unwrap();
    b.put(&ps, "meta", &id).unwrap();
    let h = b.get_deferred("meta", &id, &GetOptions::default()).unwrap();
    // A file whose bytes are garbage (same size) is only noticed at read time:
    // the handle did not read it when it was made.
    let path = h.path().unwrap();
    let n = std::fs::metadata(&path).unwrap().len() as usize;
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, vec![0xffu8; n]).unwrap();
    assert!(h.get::<PropertySet>().is_err());
    std::fs::write(&path, good).unwrap();
    let back: PropertySet = h.get().unwrap();
    assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
}

#[test]
fn a_vanished_or_replaced_dataset_is_an_error_at_read_time() {
    let d = tempfile::tempdir().unwrap();
    let b = repo(&d.path().join("repo"));
    let id = data_id! {visit: 3};
    b.put(&exposure(8, 6, 0.0), "calexp", &id).unwrap();

    // removed
    let h = b
        .get_deferred("calexp", &id, &GetOptions::default())
        .unwrap();
    let path = h.path().unwrap();
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let e = h.get::<ExposureF>().unwrap_err();
    assert!(
        matches!(&e, ButlerError::Vanished { path: p, .. } if *p == path),
        "{e}"
    );
    assert!(e.to_string().contains("removed"), "{e}");
    let e = h
        .get_with::<PropertySet>(Some("metadata"), &GetOptions::default())
        .unwrap_err();
    assert!(matches!(e, ButlerError::Vanished { .. }), "{e}");
    std::fs::write(&path, &saved).unwrap();
    assert!(h.get::<ExposureF>().is_ok(), "back in place, same row");

    // replaced by a later put (clobber): the handle does not read the new data
    b.put_with(&exposure(8, 6, 0.5), "calexp", &id, &PutOptions::clobber())
        .unwrap();
    let e = h.get::<ExposureF>().unwrap_err();
    assert!(
        matches!(e, ButlerError::Vanished { .. }) && e.to_string().contains("replaced"),
        "{e}"
    );
    // a new handle reads the new dataset
    let e2: ExposureF = b
        .get_deferred("calexp", &id, &GetOptions::default())
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(e2.masked_image.image.get(0, 0), 0.5);

    // changed in place behind the registry's back (another size)
    let h = b
        .get_deferred("calexp", &id, &GetOptions::default())
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 2880]);
    std::fs::write(&path, bytes).unwrap();
    let e = h.get::<ExposureF>().unwrap_err();
    assert!(
        matches!(e, ButlerError::Vanished { .. }) && e.to_string().contains("bytes"),
        "{e}"
    );
}
