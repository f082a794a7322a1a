//! Repositories whose datastore is an S3 bucket (SeaweedFS in CI, started
//! by `.ci/setup/20-seaweedfs.sh`): put and get of FITS exposures (with
//! components and cut-outs read by ranged GETs, bytes counted), PropertySet
//! and Boost archives; exists/clobber/backup rules; a PostgreSQL registry;
//! `daf create --datastore` and the other commands through the CLI.

use std::path::Path;
use std::sync::Arc;

use daf::base::{data_id, PropertySet};
use daf::butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf::butler::{Butler, ButlerError, GetOptions, Origin, PutOptions, Repository};
use daf::formatters::image::*;
use daf::storages::datastore::{open_datastore, PutMode};

/// `s3://bucket/daf-tests/<tag>-<pid>-<ns>`, or None (skipped locally,
/// a failure in CI).
fn s3_prefix(tag: &str) -> Option<String> {
    let ok = std::env::var("DAF_TEST_S3_ENDPOINT").is_ok();
    if !daf::base::testing::available(
        ok,
        "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)",
    ) {
        return None;
    }
    let bucket = std::env::var("DAF_TEST_S3_BUCKET").unwrap_or_else(|_| "daf-test".into());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Some(format!(
        "s3://{bucket}/daf-tests/{tag}-{}-{t}",
        std::process::id()
    ))
}

fn mapper() -> SimpleMapper {
    SimpleMapper::new([
        (
            "calexp",
            SimpleDataset::new("calexp/v%(visit)d.fits", "ExposureF", "FitsStorage"),
        ),
        (
            "big",
            SimpleDataset::new("big/v%(visit)d.fits", "ImageF", "FitsStorage"),
        ),
        (
            "meta",
            SimpleDataset::new("meta/v%(visit)d.boost", "PropertySet", "BoostStorage"),
        ),
    ])
    .unwrap()
}

fn s3_repo(root: &Path, url: &str) -> Repository {
    let mut r = Repository::create(root, Some("SimpleMapper"), mapper().to_args(), &[]).unwrap();
    r.set_datastore(url).unwrap();
    r
}

fn sample(w: usize, h: usize) -> ExposureF {
    let px = (0..w * h)
        .map(|i| (i % w) as f32 + 1000.0 * (i / w) as f32)
        .collect();
    let mut image = ImageF::from_vec(w, h, px).unwrap();
    image.set_xy0(10, 20);
    let mut mask = Mask::new(w, h);
    let bad = mask.add_plane("BAD").unwrap();
    mask.set(3, 4, 1 << bad);
    let mut var = ImageF::new(w, h);
    var.set(5, 6, 2.5);
    let mut e = ExposureF::new(MaskedImageF::from_parts(image, mask, Some(var)).unwrap());
    e.metadata.set("OBSERVER", "daf").unwrap();
    e
}

#[test]
fn exposures_property_sets_and_components_round_trip_through_s3() {
    let Some(url) = s3_prefix("roundtrip") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    let repo = s3_repo(&root, &url);
    assert_eq!(repo.cfg.datastore.as_deref(), Some(url.as_str()));
    let cfg_text = std::fs::read_to_string(root.join("repositoryCfg.yaml")).unwrap();
    assert!(
        cfg_text.contains(&format!("datastore: {url}")),
        "{cfg_text}"
    );
    assert!(!cfg_text.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()));

    let b = Butler::builder().output(root.as_path()).build().unwrap();
    let id = data_id! {visit: 1};
    let e = sample(40, 30);
    let written = b.put(&e, "calexp", &id).unwrap();
    assert_eq!(
        written[0].to_string_lossy(),
        format!("{url}/calexp/v1.fits")
    );
    // the bytes are in the bucket, not in the folder
    assert!(!root.join("calexp/v1.fits").exists());
    let ds = open_datastore(&url).unwrap();
    let size = ds.head("calexp/v1.fits").unwrap().unwrap().size;
    let rec = b
        .registry(0)
        .unwrap()
        .find("calexp", &id, None)
        .unwrap()
        .unwrap();
    assert_eq!(rec.size, size);
    assert_eq!(ds.checksum("calexp/v1.fits").unwrap().0, rec.checksum);

    let back: ExposureF = b.get("calexp", &id).unwrap();
    assert_eq!(
        back.masked_image.image.pixels(),
        e.masked_image.image.pixels()
    );
    let md: PropertySet = b.get("calexp.metadata", &id).unwrap();
    assert_eq!(md.get::<String>("OBSERVER").unwrap(), "daf");
    let mask: Mask = b.get("calexp.mask", &id).unwrap();
    assert_eq!(mask.get(3, 4), 1 << mask.plane_bit("BAD").unwrap());
    let var: ImageF = b.get("calexp.variance", &id).unwrap();
    assert_eq!(var.get(5, 6), 2.5);
    let cut: ExposureF = b
        .get_with(
            "calexp",
            &id,
            &GetOptions::default().bbox(12, 25, 5, 3, Origin::Parent),
        )
        .unwrap();
    assert_eq!((cut.width(), cut.height()), (5, 3));
    assert_eq!(cut.masked_image.image.get(0, 0), 2.0 + 5000.0);

    let mut ps = PropertySet::new();
    ps.set("exptime", 15.5).unwrap();
    ps.set("name", "flat").unwrap();
    b.put(&ps, "meta", &id).unwrap();
    let back: PropertySet = b.get("meta", &id).unwrap();
    assert_eq!(back.get::<f64>("exptime").unwrap(), 15.5);
    assert_eq!(back.get::<String>("name").unwrap(), "flat");
    assert!(b.dataset_exists("meta", &id).unwrap());
    assert!(!b.dataset_exists("meta", &data_id! {visit: 2}).unwrap());

    // a second butler (another process would do the same) reads it all
    let b2 = Butler::builder().input(root.as_path()).build().unwrap();
    let again: PropertySet = b2.get("meta", &id).unwrap();
    assert_eq!(again.get::<f64>("exptime").unwrap(), 15.5);
    assert_eq!(
        b2.get_uri("meta", &id, false).unwrap().to_string_lossy(),
        format!("{url}/meta/v1.boost")
    );
}

#[test]
fn a_cut_out_reads_only_its_rows() {
    let Some(url) = s3_prefix("cutout") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    s3_repo(&root, &url);
    let b = Butler::builder().output(root.as_path()).build().unwrap();
    let n = 4096;
    let px: Vec<f32> = (0..n * n).map(|i| (i % 65_521) as f32).collect();
    let img = ImageF::from_vec(n, n, px).unwrap();
    b.put(&img, "big", &data_id! {visit: 7}).unwrap();
    drop(img);
    let ds = b.remote_datastore(0).unwrap().clone();
    let before = ds.stats().bytes_read();
    let requests = ds.stats().gets();
    let cut: ImageF = b
        .get_with(
            "big",
            &data_id! {visit: 7},
            &GetOptions::default().bbox(1000, 2000, 100, 100, Origin::Local),
        )
        .unwrap();
    let moved = ds.stats().bytes_read() - before;
    // one request opens the object (first blocks and size), one per row
    assert_eq!(ds.stats().gets() - requests, 1 + 100);
    assert_eq!((cut.width(), cut.height()), (100, 100));
    for (x, y) in [(0, 0), (99, 99), (17, 42)] {
        let i = (2000 + y) * n + 1000 + x;
        assert_eq!(cut.get(x, y), (i % 65_521) as f32);
    }
    // 100 rows of 400 bytes, plus header blocks
    assert!(moved <= 64 * 1024 + 4 * 11_520, "{moved} bytes read");
    assert!(moved >= 40_000, "{moved}");
}

#[test]
fn exists_clobber_and_backup_on_s3() {
    let Some(url) = s3_prefix("clobber") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    s3_repo(&root, &url);
    let b = Butler::builder().output(root.as_path()).build().unwrap();
    let id = data_id! {visit: 3};
    let ps = |v: i32| {
        let mut p = PropertySet::new();
        p.set("v", v).unwrap();
        p
    };
    b.put(&ps(1), "meta", &id).unwrap();
    let e = b.put(&ps(2), "meta", &id).unwrap_err();
    assert!(matches!(e, ButlerError::Exists { .. }), "{e}");
    assert_eq!(
        b.get::<PropertySet>("meta", &id)
            .unwrap()
            .get::<i32>("v")
            .unwrap(),
        1
    );
    b.put_with(&ps(3), "meta", &id, &PutOptions::backup())
        .unwrap();
    assert_eq!(
        b.get::<PropertySet>("meta", &id)
            .unwrap()
            .get::<i32>("v")
            .unwrap(),
        3
    );
    let ds = open_datastore(&url).unwrap();
    assert!(ds.head("meta/v3.boost~1").unwrap().is_some());
    b.put_with(&ps(4), "meta", &id, &PutOptions::clobber())
        .unwrap();
    assert_eq!(
        b.get::<PropertySet>("meta", &id)
            .unwrap()
            .get::<i32>("v")
            .unwrap(),
        4
    );

    // an unregistered object with other bytes at the key: refused, untouched, no row
    ds.put_bytes("meta/v9.boost", b"not yours", PutMode::Overwrite)
        .unwrap();
    let e = b.put(&ps(9), "meta", &data_id! {visit: 9}).unwrap_err();
    assert!(matches!(e, ButlerError::Exists { .. }), "{e}");
    assert_eq!(ds.get("meta/v9.boost", 100).unwrap(), b"not yours");
    assert!(b
        .registry(0)
        .unwrap()
        .find("meta", &data_id! {visit: 9}, None)
        .unwrap()
        .is_none());
    // no staging file is left in the folder
    let left: Vec<_> = walk(&root)
        .into_iter()
        .filter(|p| p.contains(".daf-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn many_parallel_puts_with_a_postgresql_registry() {
    let Some(url) = s3_prefix("pg") else { return };
    let pg = daf::base::testing::server_url("DAF_TEST_POSTGRES_URL");
    if pg.is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    let loc = daf::butler::file_registry::PgLocation::parse(pg.as_deref().unwrap(), None).unwrap();
    let mut r = Repository::create_with_registry(
        &root,
        Some("SimpleMapper"),
        mapper().to_args(),
        &[],
        Some(&loc),
        None,
    )
    .unwrap();
    r.set_datastore(&url).unwrap();
    let b = Arc::new(Butler::builder().output(root.as_path()).build().unwrap());
    let objs: Vec<PropertySet> = (0..64)
        .map(|v| {
            let mut p = PropertySet::new();
            p.set("v", v).unwrap();
            p
        })
        .collect();
    let items: Vec<(&dyn daf::formatters::Persistable, daf::base::DataId)> = objs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p as &dyn daf::formatters::Persistable,
                data_id! {visit: i as i64},
            )
        })
        .collect();
    b.put_many("meta", &items, &PutOptions::default()).unwrap();
    let ds = open_datastore(&url).unwrap();
    assert_eq!(ds.list("meta").unwrap().len(), 64);
    for i in [0i64, 31, 63] {
        let p: PropertySet = b.get("meta", &data_id! {visit: i}).unwrap();
        assert_eq!(p.get::<i32>("v").unwrap() as i64, i);
    }
}

/// The README's `daf create ... --datastore ... --registry ...`, typed as
/// shown, then a put and get through a Butler opening that repository.
#[test]
fn readme_daf_create_with_datastore_and_postgresql_registry() {
    let Some(url) = s3_prefix("cli") else { return };
    let pg = daf::base::testing::server_url("DAF_TEST_POSTGRES_URL");
    if pg.is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["create"])
        .arg(&repo)
        .args([
            "--dataset",
            "meta:meta/v%(visit)d.boost:PropertySet:BoostStorage",
            "--datastore",
            &url,
            "--registry",
            pg.as_deref().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::fs::read_to_string(repo.join("repositoryCfg.yaml")).unwrap();
    assert!(cfg.contains(&format!("datastore: {url}")), "{cfg}");
    assert!(cfg.contains("registry: postgresql://"), "{cfg}");
    let b = Butler::builder().output(repo.as_path()).build().unwrap();
    let mut ps = PropertySet::new();
    ps.set("x", 2).unwrap();
    b.put(&ps, "meta", &data_id! {visit: 5}).unwrap();
    let ds = open_datastore(&url).unwrap();
    assert!(ds.head("meta/v5.boost").unwrap().is_some());
    // a bucket-less URL is refused before anything is made
    let bad = d.path().join("bad");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daf"))
        .args(["create"])
        .arg(&bad)
        .args(["--datastore", "s3://daf-no-such-bucket-q7/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!bad.join("repositoryCfg.yaml").exists());
}
