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

fn obs_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/obs_test/policy/testMapper.yaml")
}

fn camera_butler(out: &Path) -> Butler {
    let mut policies = std::collections::BTreeMap::new();
    policies.insert(
        "lsst.obs.test.testMapper.TestMapper".to_string(),
        obs_policy(),
    );
    let mut args = daf::butler::RepositoryArgs::new(out).mapper("CameraMapper");
    args.mapper_args.insert(
        "policy".into(),
        obs_policy().to_string_lossy().into_owned().into(),
    );
    Butler::builder()
        .input(obs_input())
        .output(args)
        .mapper_factory(daf::butler::camera_mapper_factory(policies, None))
        .build()
        .unwrap()
}

fn sorted(mut v: Vec<Vec<daf::base::DataIdValue>>) -> Vec<Vec<daf::base::DataIdValue>> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

#[test]
fn obs_test_acceptance_with_the_camera_mapper() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let b = camera_butler(&out);

    // get("raw", {visit: 1}): filter completed from the registry
    let raw: DecoratedImageU = b.get("raw", &data_id! {visit: 1}).unwrap();
    assert_eq!((raw.image.width(), raw.image.height()), (1026, 2000));
    assert_eq!(raw.image.get(0, 0), 966);
    assert_eq!(raw.metadata.get_as_f64("EXPTIME").unwrap(), 15.0);
    assert_eq!(raw.metadata.get::<String>("FILTER").unwrap().trim(), "g");
    assert_eq!(
        b.get_uri("raw", &data_id! {visit: 3}, false).unwrap(),
        obs_input().join("raw/raw_v3_fr.fits.gz")
    );

    // query_metadata (README §5.1)
    let q =
        |keys: &[&str], id: daf::base::DataId| sorted(b.query_metadata("raw", keys, &id).unwrap());
    assert_eq!(
        q(&["visit", "filter"], data_id! {visit: 1}),
        vec![vec![1.into(), "g".into()]]
    );
    assert_eq!(
        q(&["visit", "filter"], data_id! {visit: 3}),
        vec![vec![3.into(), "r".into()]]
    );
    assert_eq!(
        q(&["visit", "filter"], data_id! {filter: "g"}),
        vec![vec![1.into(), "g".into()], vec![2.into(), "g".into()]]
    );
    assert_eq!(
        q(&["filter"], data_id! {}),
        vec![vec!["g".into()], vec!["r".into()]]
    );
    assert_eq!(
        q(&["visit"], data_id! {filter: "g"}),
        vec![vec![1.into()], vec![2.into()]]
    );
    assert!(q(&["visit", "filter"], data_id! {visit: 4}).is_empty());

    // keys, subsets and data refs (README §5.2)
    let keys = b.get_keys("raw", Some("skyTile")).unwrap();
    assert_eq!(
        keys.keys().cloned().collect::<Vec<_>>(),
        vec!["filter".to_string()]
    );
    let keys = b.get_keys("raw", Some("visit")).unwrap();
    assert_eq!(keys.len(), 2);
    let n = |level: Option<&str>, id: daf::base::DataId| b.subset("raw", level, &id).unwrap().len();
    assert_eq!(n(Some("sensor"), data_id! {filter: "g"}), 2);
    assert_eq!(n(Some("sensor"), data_id! {visit: 1}), 1);
    assert_eq!(n(Some("filter"), data_id! {visit: 1}), 1);
    assert_eq!(n(Some("visit"), data_id! {filter: "g"}), 2);
    assert_eq!(n(None, data_id! {}), 3);
    assert_eq!(n(Some("skyTile"), data_id! {}), 2);
    let r = b.data_ref("raw", None, &data_id! {visit: 2}).unwrap();
    assert_eq!(r.data_id, data_id! {visit: 2, filter: "g"});
    assert!(r.exists(None).unwrap());
    let img: DecoratedImageU = r.get().unwrap();
    assert_eq!(img.image.get(0, 0), 962);
    let e = b
        .data_ref("raw", None, &data_id! {filter: "g"})
        .unwrap_err();
    assert!(matches!(e, ButlerError::NotUnique { count: 2, .. }), "{e}");
    assert!(!b
        .dataset_exists("raw", &data_id! {visit: 1, filter: "r"})
        .unwrap());
    let e = b
        .get::<DecoratedImageU>("raw", &data_id! {visit: 4})
        .unwrap_err();
    assert!(e.to_string().contains("visit"), "{e}");

    // processed data into the chained output, read back by a partial id
    let mut calexp = ExposureF::new(MaskedImageF::new(64, 32));
    calexp.masked_image.image.set(1, 2, 42.5);
    calexp.exposure_time = Some(15.0);
    b.put(&calexp, "calexp", &data_id! {visit: 1}).unwrap();
    assert!(out.join("calexp/calexp_v1_fg.fits").is_file());
    let back: ExposureF = b.get("calexp", &data_id! {visit: 1}).unwrap();
    assert_eq!(back.masked_image.image.get(1, 2), 42.5);
    let md: PropertySet = b.get("calexp.metadata", &data_id! {visit: 1}).unwrap();
    assert_eq!(md.get_as_f64("EXPTIME").unwrap(), 15.0);
    // a second butler on the output alone finds the input through its parent link
    let again = camera_butler(&out);
    assert_eq!(again.repositories().len(), 2);
    let back: ExposureF = again
        .get("calexp", &data_id! {visit: 1, filter: "g"})
        .unwrap();
    assert_eq!(back.width(), 64);
}
