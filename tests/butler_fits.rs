//! The butler over FITS data: components and cut-outs of exposures, and the
//! obs_test input repository (a legacy Gen2 repository) chained to a new
//! output repository.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf::base::{data_id, PropertySet};
use daf::butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf::butler::{Butler, ButlerError, GetOptions, MapperFactory, Origin, Repository};
use daf::formatters::image::*;
use daf::mappers::Mapper;

fn obs_input() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/input")
}

fn datasets() -> SimpleMapper {
    SimpleMapper::new([
        (
            "raw",
            SimpleDataset::new(
                "raw/raw_v%(visit)d_f%(filter)s.fits.gz",
                "DecoratedImageU",
                "FitsStorage",
            ),
        ),
        (
            "calexp",
            SimpleDataset::new(
                "calexp/calexp_v%(visit)d_f%(filter)s.fits",
                "ExposureF",
                "FitsStorage",
            ),
        ),
    ])
    .unwrap()
}

/// Until the camera mapper is used here: every repository gets the same
/// simple definitions of `raw` and `calexp`.
fn factory() -> MapperFactory {
    Arc::new(|r: &Repository| Ok(Arc::new(datasets().with_root(&r.root)) as Arc<dyn Mapper>))
}

fn sample(w: usize, h: usize) -> ExposureF {
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            px.push(x as f32 + 1000.0 * y as f32);
        }
    }
    let mut image = ImageF::from_vec(w, h, px).unwrap();
    image.set_xy0(10, 20);
    let mut mask = Mask::new(w, h);
    let bad = mask.add_plane("BAD").unwrap();
    mask.set(3, 4, 1 << bad);
    let mut var = ImageF::new(w, h);
    var.set(5, 6, 2.5);
    let mut e = ExposureF::new(MaskedImageF::from_parts(image, mask, Some(var)).unwrap());
    e.metadata.set("OBSERVER", "daf").unwrap();
    e.filter = Some("g".into());
    e.exposure_time = Some(15.0);
    e
}

#[test]
fn components_and_cutouts_read_only_their_part() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    Repository::create(&root, Some("SimpleMapper"), datasets().to_args(), &[]).unwrap();
    let b = Butler::builder().output(root.as_path()).build().unwrap();
    let id = data_id! {visit: 1, filter: "g"};
    let e = sample(40, 30);
    b.put(&e, "calexp", &id).unwrap();

    let back: ExposureF = b.get("calexp", &id).unwrap();
    assert_eq!(
        back.masked_image.image.pixels(),
        e.masked_image.image.pixels()
    );
    assert_eq!(back.exposure_time, Some(15.0));
    assert_eq!(back.filter.as_deref(), Some("g"));

    let md: PropertySet = b.get("calexp.metadata", &id).unwrap();
    assert_eq!(md.get::<String>("OBSERVER").unwrap(), "daf");
    let mask: Mask = b.get("calexp.mask", &id).unwrap();
    assert_eq!((mask.width(), mask.height()), (40, 30));
    assert_eq!(mask.get(3, 4), 1 << mask.plane_bit("BAD").unwrap());
    let var: ImageF = b.get("calexp.variance", &id).unwrap();
    assert_eq!(var.get(5, 6), 2.5);
    let img: ImageF = b.get("calexp.image", &id).unwrap();
    assert_eq!(img.get(7, 8), 7.0 + 8000.0);
    let e2 = b.get::<ImageF>("calexp.wcs", &id).unwrap_err();
    assert!(e2.to_string().contains("no component \"wcs\""), "{e2}");

    // cut-outs, PARENT (xy0 = 10, 20) and LOCAL
    let cut: ExposureF = b
        .get_with(
            "calexp",
            &id,
            &GetOptions::default().bbox(12, 25, 5, 3, Origin::Parent),
        )
        .unwrap();
    assert_eq!((cut.width(), cut.height()), (5, 3));
    assert_eq!(cut.masked_image.image.get(0, 0), 2.0 + 5000.0);
    let cut: ImageF = b
        .get_with(
            "calexp.image",
            &id,
            &GetOptions::default().bbox(2, 5, 4, 4, Origin::Local),
        )
        .unwrap();
    assert_eq!(cut.get(1, 1), 3.0 + 6000.0);
    assert_eq!(cut.xy0(), (12, 25));
}

#[test]
fn obs_test_raw_and_a_chained_output() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("processed");
    let b = Butler::builder()
        .input(obs_input())
        .output(RepoArgsOut(&out))
        .mapper_factory(factory())
        .build()
        .unwrap();
    // the legacy repository is read as it is
    let input = &b.repositories()[1];
    assert!(input.legacy);
    assert_eq!(
        input.cfg.mapper.as_deref(),
        Some("lsst.obs.test.testMapper.TestMapper")
    );

    let raw: DecoratedImageU = b.get("raw", &data_id! {visit: 1, filter: "g"}).unwrap();
    assert_eq!((raw.image.width(), raw.image.height()), (1026, 2000));
    assert_eq!(raw.image.get(0, 0), 966);
    assert_eq!(raw.image.get(1025, 0), 1224);
    assert_eq!(raw.image.get(0, 1999), 976);
    assert_eq!(raw.image.get(513, 1000), 995);
    let sum: u64 = raw.image.pixels().iter().map(|&p| u64::from(p)).sum();
    assert_eq!(sum, 2_496_790_727);
    assert_eq!(raw.metadata.get_as_f64("EXPTIME").unwrap(), 15.0);
    assert_eq!(raw.metadata.get::<String>("FILTER").unwrap().trim(), "g");
    assert_eq!(raw.metadata.get_as_i64("OBSID").unwrap(), 890104911);
    let md: PropertySet = b
        .get("raw.metadata", &data_id! {visit: 3, filter: "r"})
        .unwrap();
    assert_eq!(md.get::<String>("FILTER").unwrap().trim(), "r");
    assert!(b
        .dataset_exists("raw", &data_id! {visit: 2, filter: "g"})
        .unwrap());
    assert!(!b
        .dataset_exists("raw", &data_id! {visit: 1, filter: "r"})
        .unwrap());

    // processed data goes to the output only, and reads back
    let cut: DecoratedImageU = b
        .get_with(
            "raw",
            &data_id! {visit: 1, filter: "g"},
            &GetOptions::default().bbox(4, 0, 100, 50, Origin::Local),
        )
        .unwrap();
    assert_eq!((cut.image.width(), cut.image.height()), (100, 50));
    assert_eq!(cut.image.get(0, 0), 1134);
    let px: Vec<f32> = cut
        .image
        .pixels()
        .iter()
        .map(|&p| f32::from(p) - 967.6)
        .collect();
    let mut calexp = ExposureF::new(
        MaskedImageF::from_parts(
            ImageF::from_vec(100, 50, px).unwrap(),
            Mask::new(100, 50),
            None,
        )
        .unwrap(),
    );
    calexp.exposure_time = Some(15.0);
    let id = data_id! {visit: 1, filter: "g"};
    b.put(&calexp, "calexp", &id).unwrap();
    assert!(out.join("calexp/calexp_v1_fg.fits").is_file());
    assert!(!obs_input().join("calexp").exists());
    let back: ExposureF = b.get("calexp", &id).unwrap();
    assert!((back.masked_image.image.get(0, 0) - (1134.0 - 967.6)).abs() < 1e-3);
    assert_eq!(back.exposure_time, Some(15.0));
    // the output recorded the obs_test input as its parent
    let again = Butler::builder()
        .output(out.as_path())
        .mapper_factory(factory())
        .build()
        .unwrap();
    assert_eq!(again.repositories()[1].root, obs_input());
    let raw2: DecoratedImageU = again.get("raw", &data_id! {visit: 2, filter: "g"}).unwrap();
    assert_eq!(raw2.image.get(0, 0), 962);
    let e = again
        .get::<DecoratedImageU>("raw", &data_id! {visit: 4, filter: "g"})
        .unwrap_err();
    assert!(matches!(e, ButlerError::NotFound { .. }), "{e}");
}

/// An output repository argument (helper for readability).
#[allow(non_snake_case)]
fn RepoArgsOut(p: &Path) -> daf::butler::RepositoryArgs {
    daf::butler::RepositoryArgs::new(p).mapper("SimpleMapper")
}
