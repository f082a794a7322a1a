//! `daf bench objectstore`: the butler on an S3 datastore against plain
//! `object_store` calls on the same server, in one run.
//!
//! * get of a 64 MiB FITS image vs one plain GET of the same object (≥ 0.9×);
//! * put of 1,000 small datasets (`put_many`) vs 1,000 plain PUTs, 32 in
//!   flight (≥ 0.8×);
//! * a 100×100 cut-out of that image vs downloading the whole file (≥ 20×).

use std::time::Instant;

use daf_base::{data_id, DataId, PropertySet};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, GetOptions, Origin, PutOptions, Repository};
use daf_formatters::image::ImageF;
use daf_formatters::Persistable;
use daf_storages::datastore::{Datastore, S3Config, S3Datastore};
use futures::StreamExt;
use object_store::{ObjectStoreExt, PutPayload};

use super::{median_time, Row, Target};

/// Runs the three comparisons against the bucket prefix `url`
/// (`s3://bucket/prefix`; a unique folder under it is used and removed).
pub fn run(url: &str, runs: usize) -> Result<Vec<Row>, String> {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let url = format!(
        "{}/bench-{}-{t}",
        url.trim_end_matches('/'),
        std::process::id()
    );
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path().join("repo");
    let mapper = SimpleMapper::new([
        (
            "big",
            SimpleDataset::new("big/v%(visit)d.fits", "ImageF", "FitsStorage"),
        ),
        (
            "meta",
            SimpleDataset::new("meta/v%(visit)d.boost", "PropertySet", "BoostStorage"),
        ),
    ])
    .map_err(|e| e.to_string())?;
    let mut repo = Repository::create(&root, Some("SimpleMapper"), mapper.to_args(), &[])
        .map_err(|e| e.to_string())?;
    repo.set_datastore(&url).map_err(|e| e.to_string())?;
    let b = Butler::builder()
        .output(root.as_path())
        .build()
        .map_err(|e| e.to_string())?;
    let plain = S3Datastore::open(S3Config::from_env(&url).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let store = plain.object_store();
    let prefix = plain.config().prefix.clone();
    let obj = |k: &str| object_store::path::Path::from(format!("{prefix}/{k}"));

    let n = 4096;
    let img = ImageF::from_vec(n, n, (0..n * n).map(|i| i as f32).collect())
        .map_err(|e| e.to_string())?;
    b.put(&img, "big", &data_id! {visit: 1})
        .map_err(|e| e.to_string())?;
    drop(img);
    let big = obj("big/v1.fits");
    let size = plain
        .head("big/v1.fits")
        .map_err(|e| e.to_string())?
        .map(|m| m.size)
        .unwrap_or(0);
    let get_daf = median_time(runs, || {
        let _: ImageF = b.get("big", &data_id! {visit: 1}).expect("get");
    });
    let get_plain = median_time(runs, || {
        plain
            .block_on(async { store.get(&big).await?.bytes().await })
            .expect("plain get");
    });
    let cut_runs = runs * 5;
    let cut = median_time(cut_runs, || {
        let _: ImageF = b
            .get_with(
                "big",
                &data_id! {visit: 1},
                &GetOptions::default().bbox(1000, 2000, 100, 100, Origin::Local),
            )
            .expect("cut-out");
    });

    let count = 1000;
    let objs: Vec<PropertySet> = (0..count)
        .map(|i| {
            let mut p = PropertySet::new();
            let _ = p.set("v", i);
            p
        })
        .collect();
    let ids: Vec<DataId> = (0..count).map(|i| data_id! {visit: i as i64}).collect();
    let items: Vec<(&dyn Persistable, DataId)> = objs
        .iter()
        .zip(&ids)
        .map(|(o, id)| (o as &dyn Persistable, id.clone()))
        .collect();
    // about the size of one archived PropertySet
    let bytes = vec![7u8; 200];
    let t0 = Instant::now();
    b.put_many("meta", &items, &PutOptions::clobber())
        .map_err(|e| e.to_string())?;
    let put_daf = t0.elapsed();
    let t0 = Instant::now();
    plain.block_on(async {
        futures::stream::iter(0..count)
            .map(|i| {
                let p = obj(&format!("plain/{i}"));
                let payload = PutPayload::from(bytes.clone());
                let store = store.clone();
                async move { store.put(&p, payload).await }
            })
            .buffer_unordered(32)
            .for_each(|r| async move {
                r.expect("plain put");
            })
            .await;
    });
    let put_plain = t0.elapsed();

    // clean up the bucket folder
    for m in plain.list("").unwrap_or_default() {
        let _ = plain.delete(&m.key);
    }

    let mib = |d: std::time::Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
    Ok(vec![
        Row {
            name: "get 64 MiB FITS image".into(),
            value: mib(get_daf),
            unit: "MiB/s".into(),
            reference: Some(mib(get_plain)),
            reference_name: "plain object_store GET".into(),
            target: Target::AtLeast(0.9),
        },
        Row {
            name: "put 1,000 small datasets".into(),
            value: count as f64 / put_daf.as_secs_f64(),
            unit: "puts/s".into(),
            reference: Some(count as f64 / put_plain.as_secs_f64()),
            reference_name: "1,000 plain PUTs (32 in flight)".into(),
            target: Target::AtLeast(0.8),
        },
        Row {
            name: "100x100 cut-out of 4096^2".into(),
            value: 1.0 / cut.as_secs_f64(),
            unit: "reads/s".into(),
            reference: Some(1.0 / get_plain.as_secs_f64()),
            reference_name: "download of the whole file".into(),
            target: Target::AtLeast(20.0),
        },
    ])
}
