//! `daf bench objectstore`: the butler on an S3 datastore against plain
//! `object_store` calls on the same server, in one run.
//!
//! * get of a 64 MiB FITS image vs one plain GET of the same object (≥ 0.9×);
//! * put of 1,000 small datasets (`put_many`) vs 1,000 plain PUTs, 32 in
//!   flight (≥ 0.8×);
//! * a 100×100 cut-out of that image vs downloading the whole file (≥ 20×),
//!   and (reported only) vs its own 101 requests made with plain
//!   `object_store` calls: the floor set by the server's cost per request.
//!
//! [`Fixture`] holds the repository and the plain client; `daf bench
//! objectstore` ([`run`]) and the criterion bench `benches/objectstore.rs`
//! both time its methods.

use std::time::{Duration, Instant};

use daf_base::{data_id, DataId, PropertySet};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, GetOptions, Origin, PutOptions, Repository};
use daf_formatters::image::ImageF;
use daf_formatters::Persistable;
use daf_storages::datastore::{Datastore, S3Config, S3Datastore};
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{median_time, Row, Target};

/// Side of the square test image (4096² `f32`: 64 MiB).
pub const SIDE: usize = 4096;

/// A repository on S3 holding one 4096² image, and a plain `object_store`
/// client on the same bucket folder. Dropping it removes every object it
/// made.
pub struct Fixture {
    butler: Butler,
    plain: S3Datastore,
    prefix: String,
    _tmp: tempfile::TempDir,
    /// Size of the image's FITS object in bytes.
    pub size: u64,
    /// Small datasets for the put comparison.
    objs: Vec<PropertySet>,
    round: std::cell::Cell<u64>,
}

impl Fixture {
    /// Makes the repository under a unique folder of `url`
    /// (`s3://bucket/prefix`) and puts the image.
    pub fn new(url: &str, small: usize) -> Result<Fixture, String> {
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
        let butler = Butler::builder()
            .output(root.as_path())
            .build()
            .map_err(|e| e.to_string())?;
        let plain = S3Datastore::open(S3Config::from_env(&url).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let prefix = plain.config().prefix.clone();
        let img = ImageF::from_vec(SIDE, SIDE, (0..SIDE * SIDE).map(|i| i as f32).collect())
            .map_err(|e| e.to_string())?;
        butler
            .put(&img, "big", &data_id! {visit: 1})
            .map_err(|e| e.to_string())?;
        drop(img);
        let size = plain
            .head("big/v1.fits")
            .map_err(|e| e.to_string())?
            .map(|m| m.size)
            .unwrap_or(0);
        let objs = (0..small)
            .map(|i| {
                let mut p = PropertySet::new();
                let _ = p.set("v", i as i64);
                p
            })
            .collect();
        Ok(Fixture {
            butler,
            plain,
            prefix,
            _tmp: tmp,
            size,
            objs,
            round: std::cell::Cell::new(0),
        })
    }

    fn obj(&self, k: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}/{k}", self.prefix))
    }

    /// `butler.get` of the whole image.
    pub fn get_daf(&self) -> Result<(), String> {
        let img: ImageF = self
            .butler
            .get("big", &data_id! {visit: 1})
            .map_err(|e| e.to_string())?;
        std::hint::black_box(img);
        Ok(())
    }

    /// One plain `object_store` GET of the image's object, into memory.
    pub fn get_plain(&self) -> Result<(), String> {
        let store = self.plain.object_store();
        let p = self.obj("big/v1.fits");
        let b = self
            .plain
            .block_on(async { store.get(&p).await?.bytes().await })
            .map_err(|e| e.to_string())?;
        std::hint::black_box(b);
        Ok(())
    }

    /// A 100×100 cut-out of the image through the butler.
    pub fn cut_out(&self) -> Result<(), String> {
        let img: ImageF = self
            .butler
            .get_with(
                "big",
                &data_id! {visit: 1},
                &GetOptions::default().bbox(1000, 2000, 100, 100, Origin::Local),
            )
            .map_err(|e| e.to_string())?;
        std::hint::black_box(img);
        Ok(())
    }

    /// The requests of a cut-out made with plain `object_store` calls: one
    /// GET of the first 11,520 bytes, then 100 GETs of 400 bytes one image
    /// row (16 KiB) apart, 32 in flight: the floor of a cut-out that moves
    /// only its rows.
    pub fn ranged_plain(&self) -> Result<(), String> {
        let store = self.plain.object_store();
        let p = self.obj("big/v1.fits");
        let row = (SIDE * 4) as u64;
        let ranges: Vec<std::ops::Range<u64>> = std::iter::once(0..11_520)
            .chain((0..100u64).map(|r| {
                let s = 2880 + (2000 + r) * row + 4000;
                s..s + 400
            }))
            .collect();
        let got: Result<Vec<_>, _> = self.plain.block_on(async {
            futures::stream::iter(ranges)
                .map(|r| {
                    let (store, p) = (store.clone(), &p);
                    async move { store.get_range(p, r).await }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect()
        });
        let got = got.map_err(|e| e.to_string())?;
        std::hint::black_box(got);
        Ok(())
    }

    /// `put_many` of the small datasets (new data ids each call).
    pub fn put_daf(&self) -> Result<(), String> {
        let r = self.round.get();
        self.round.set(r + 1);
        let base = (r as i64 + 1) * 1_000_000;
        let ids: Vec<DataId> = (0..self.objs.len())
            .map(|i| data_id! {visit: base + i as i64})
            .collect();
        let items: Vec<(&dyn Persistable, DataId)> = self
            .objs
            .iter()
            .zip(&ids)
            .map(|(o, id)| (o as &dyn Persistable, id.clone()))
            .collect();
        self.butler
            .put_many("meta", &items, &PutOptions::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// As many plain PUTs of 200 bytes (about one archived PropertySet),
    /// 32 in flight.
    pub fn put_plain(&self) -> Result<(), String> {
        let r = self.round.get();
        self.round.set(r + 1);
        let store = self.plain.object_store();
        static SMALL: [u8; 200] = [7; 200];
        let n = self.objs.len();
        let fails = self.plain.block_on(async {
            futures::stream::iter(0..n)
                .map(|i| {
                    let p = self.obj(&format!("plain/{r}/{i}"));
                    let payload = PutPayload::from(&SMALL[..]);
                    let store = store.clone();
                    async move { store.put(&p, payload).await }
                })
                .buffer_unordered(32)
                .filter(|r| std::future::ready(r.is_err()))
                .count()
                .await
        });
        if fails > 0 {
            return Err(format!("{fails} plain PUTs failed"));
        }
        Ok(())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let store = self.plain.object_store();
        let prefix = object_store::path::Path::from(self.prefix.clone());
        self.plain.block_on(async {
            let locations = store
                .list(Some(&prefix))
                .filter_map(|m| std::future::ready(m.ok().map(|m| Ok(m.location))))
                .boxed();
            let _ = store
                .delete_stream(locations)
                .for_each(|_| std::future::ready(()))
                .await;
        });
    }
}

fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<Duration, String> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// Runs the comparisons against the bucket prefix `url`
/// (`s3://bucket/prefix`; a unique folder under it is used and removed).
pub fn run(url: &str, runs: usize) -> Result<Vec<Row>, String> {
    let count = 1000;
    let fx = Fixture::new(url, count)?;
    let mut err = None;
    let mut check = |r: Result<(), String>| {
        if let Err(e) = r {
            err.get_or_insert(e);
        }
    };
    // interleaved, so both sides see the same server state
    let mut get_daf = Vec::new();
    let mut get_plain = Vec::new();
    let _ = (fx.get_daf(), fx.get_plain());
    for _ in 0..runs.max(1) {
        get_daf.push(timed(|| fx.get_daf()).unwrap_or(Duration::MAX));
        get_plain.push(timed(|| fx.get_plain()).unwrap_or(Duration::MAX));
    }
    let cut = median_time(runs * 5, || check(fx.cut_out()));
    let ranged = median_time(runs * 5, || check(fx.ranged_plain()));
    let mut put_daf = Vec::new();
    let mut put_plain = Vec::new();
    for _ in 0..runs.max(1) {
        put_daf.push(timed(|| fx.put_daf())?);
        put_plain.push(timed(|| fx.put_plain())?);
    }
    if let Some(e) = err {
        return Err(e);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (get_daf, get_plain) = (median(get_daf), median(get_plain));
    let (put_daf, put_plain) = (median(put_daf), median(put_plain));
    if get_daf == Duration::MAX || get_plain == Duration::MAX {
        fx.get_daf()?;
        fx.get_plain()?;
    }
    let size = fx.size;
    let mib = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
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
        Row {
            name: "100x100 cut-out of 4096^2".into(),
            value: 1.0 / cut.as_secs_f64(),
            unit: "reads/s".into(),
            reference: Some(1.0 / ranged.as_secs_f64()),
            reference_name: "its 101 GETs made plain (32 in flight)".into(),
            target: Target::None,
        },
    ])
}
