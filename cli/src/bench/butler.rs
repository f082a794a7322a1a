//! Butler benchmarks: `get` and `put` of a small PropertySet dataset against
//! a plain read / a plain temp+fsync+rename of the same bytes, `get_many` of
//! many small datasets, and ingest of many FITS files.
//!
//! With a PostgreSQL location, `get` through a repository whose file
//! registry is in PostgreSQL is reported against the same `get` through the
//! SQLite registry (informational, no target).
//!
//! The small dataset is a PropertySet in a Boost archive (`BoostStorage`:
//! a text archive, its LSST default), read and written with the built-in
//! formatters.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use daf_base::{data_id, DataId, PropertySet};
use daf_butler::file_registry::{now_ns, PgFileRegistry, PgLocation};
use daf_butler::ingest::{ingest, DataIdSource, IngestOptions, Transfer};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, GetOptions, PutOptions, Repository};

use daf_storages::db::DbAuth;

use crate::bench::{median_time, Row, Target};

/// A scratch repository with one small dataset put into it.
pub struct Env {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The butler over the repository.
    pub butler: Butler,
    /// The small object.
    pub object: PropertySet,
    /// Its data id.
    pub id: DataId,
    /// Its file.
    pub file: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A small PropertySet like a processing-metadata dataset (~20 entries).
pub fn small_object() -> PropertySet {
    let mut ps = PropertySet::new();
    for i in 0..10 {
        ps.set(&format!("stage{i}.runtime"), 1.5 * i as f64)
            .unwrap();
        ps.set(&format!("stage{i}.name"), format!("task{i}"))
            .unwrap();
    }
    ps.set("visit", 85471048i64).unwrap();
    ps
}

/// Creates the repository and puts the object.
pub fn setup() -> Env {
    setup_with(None)
}

/// Creates the repository, with its file registry in PostgreSQL at
/// `registry` when given, and puts the object.
pub fn setup_with(registry: Option<&PgLocation>) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("repo");
    let m = SimpleMapper::new([
        (
            "meta",
            SimpleDataset::new("meta/v%(visit)d.boost", "PropertySet", "BoostStorage"),
        ),
        (
            "raw",
            SimpleDataset::new("raw/v%(visit)d.fits", "DecoratedImageU", "FitsStorage"),
        ),
    ])
    .expect("valid templates");
    Repository::create_with_registry(
        &root,
        Some("SimpleMapper"),
        m.to_args(),
        &[],
        registry,
        None,
    )
    .expect("create");
    let butler = Butler::builder()
        .output(root.as_path())
        .build()
        .expect("butler");
    let object = small_object();
    let id = data_id! {visit: 0};
    let file = butler.put(&object, "meta", &id).expect("put")[0].clone();
    let bytes = std::fs::read(&file).expect("read");
    Env {
        dir,
        butler,
        object,
        id,
        file,
        bytes,
    }
}

/// One butler get of the small dataset.
pub fn get_once(env: &Env) -> PropertySet {
    env.butler.get("meta", &env.id).expect("get")
}

/// The reference: a plain read of the same file.
pub fn read_once(env: &Env) -> Vec<u8> {
    std::fs::read(&env.file).expect("read")
}

/// One butler put (clobbering) of the small dataset.
pub fn put_once(env: &Env) {
    env.butler
        .put_with(&env.object, "meta", &env.id, &PutOptions::clobber())
        .expect("put");
}

/// The reference: temp file + write + fsync + rename of the same bytes.
pub fn write_once(env: &Env) {
    let target = env.dir.path().join("plain.boost");
    let tmp = env.dir.path().join(".plain.boost.tmp");
    let mut f = std::fs::File::create(&tmp).expect("create");
    f.write_all(&env.bytes).expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    std::fs::rename(&tmp, &target).expect("rename");
    if let Ok(d) = std::fs::File::open(env.dir.path()) {
        let _ = d.sync_all();
    }
}

/// Puts `n` small datasets (visits 1..=n) in one `put_many`.
pub fn fill(env: &Env, n: usize) -> Vec<DataId> {
    let ids: Vec<DataId> = (1..=n as i64).map(|v| data_id! {visit: v}).collect();
    let items: Vec<(&dyn daf_formatters::Persistable, DataId)> = ids
        .iter()
        .map(|id| (&env.object as &dyn daf_formatters::Persistable, id.clone()))
        .collect();
    env.butler
        .put_many("meta", &items, &PutOptions::clobber())
        .expect("put_many");
    ids
}

/// Writes `n` small FITS files to ingest.
pub fn make_fits(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("f{}/exp{i}.fits", i % 100));
            daf_mappers::fits_header::write_test_fits(
                &p,
                &[("VISIT", i.to_string()), ("EXPTIME", "15.".into())],
            )
            .expect("write fits");
            p
        })
        .collect()
}

/// Ingests `files` (hard links) into a fresh repository; returns seconds.
pub fn ingest_secs(env: &Env, files: &[PathBuf], tag: &str) -> f64 {
    let root = env.dir.path().join(format!("ingest-{tag}"));
    let m = SimpleMapper::new([(
        "raw",
        SimpleDataset::new("raw/v%(visit)d.fits", "DecoratedImageU", "FitsStorage"),
    )])
    .expect("template");
    Repository::create(&root, Some("SimpleMapper"), m.to_args(), &[]).expect("create");
    let b = Butler::builder()
        .output(root.as_path())
        .build()
        .expect("butler");
    let opts = IngestOptions {
        dataset_type: "raw".into(),
        transfer: Transfer::Hardlink,
        ids: DataIdSource::Header(vec![(
            "visit".to_string(),
            daf_mappers::HeaderRule::card("VISIT"),
        )]),
        run: String::new(),
    };
    let t = Instant::now();
    let s = ingest(&b, files, &opts, &|| {}).expect("ingest");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.ingested.len(), files.len(), "{s}");
    secs
}

/// Medians of `a` and `b` run alternately (so that both see the same
/// machine load, which matters for fsync-bound work).
pub fn paired_median(
    runs: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (std::time::Duration, std::time::Duration) {
    a();
    b();
    let mut ta = Vec::with_capacity(runs);
    let mut tb = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        a();
        ta.push(t.elapsed());
        let t = Instant::now();
        b();
        tb.push(t.elapsed());
    }
    ta.sort();
    tb.sort();
    (ta[ta.len() / 2], tb[tb.len() / 2])
}

/// A PostgreSQL registry location in a fresh schema (dropped by
/// [`drop_pg_schema`]).
pub fn pg_location(url: &str) -> Result<PgLocation, String> {
    let schema = format!(
        "daf_bench_{}_{}",
        std::process::id(),
        now_ns() % 1_000_000_007
    );
    PgLocation::parse(url, Some(&schema))
}

/// Drops the schema of a [`pg_location`].
pub fn drop_pg_schema(loc: &PgLocation) {
    let here = std::env::temp_dir();
    if let Ok(Some(reg)) = PgFileRegistry::connect(loc, &here, &DbAuth::new(), false) {
        let _ = reg.drop_schema();
    }
}

/// `get` through a repository whose registry is in PostgreSQL against the
/// same `get` through an SQLite registry (`sqlite`), and the registry lookup
/// alone. Informational: no target (a server round trip per lookup is the
/// price of seeing other nodes' writes at once).
pub fn pg_rows(sqlite: &Env, url: &str, runs: usize) -> Result<Vec<Row>, String> {
    let loc = pg_location(url)?;
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = setup_with(Some(&loc));
        let (t_sqlite, t_pg) = paired_median(
            runs,
            || {
                std::hint::black_box(get_once(sqlite));
            },
            || {
                std::hint::black_box(get_once(&pg));
            },
        );
        let (l_sqlite, l_pg) = paired_median(
            runs,
            || {
                let reg = sqlite.butler.registry(0).expect("registry");
                std::hint::black_box(reg.find("meta", &sqlite.id, None).expect("find"));
            },
            || {
                let reg = pg.butler.registry(0).expect("registry");
                std::hint::black_box(reg.find("meta", &pg.id, None).expect("find"));
            },
        );
        vec![
            Row {
                name: "get small PropertySet, PostgreSQL registry".into(),
                value: t_pg.as_secs_f64() * 1e6,
                unit: "µs".into(),
                reference: Some(t_sqlite.as_secs_f64() * 1e6),
                reference_name: "same get, SQLite registry".into(),
                target: Target::None,
            },
            Row {
                name: "  of which: PostgreSQL registry lookup".into(),
                value: l_pg.as_secs_f64() * 1e6,
                unit: "µs".into(),
                reference: Some(l_sqlite.as_secs_f64() * 1e6),
                reference_name: "SQLite registry lookup".into(),
                target: Target::None,
            },
        ]
    }));
    drop_pg_schema(&loc);
    res.map_err(|_| format!("the PostgreSQL registry bench failed ({})", loc.url))
}

/// Runs every measurement; `quick` uses fewer runs and 1,000 instead of
/// 10,000 datasets/files. The PostgreSQL-registry rows run when
/// `DAF_TEST_POSTGRES_URL` is set ([`run_with`] takes the URL).
pub fn run(quick: bool) -> Vec<Row> {
    let url = std::env::var("DAF_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    run_with(quick, url.as_deref())
}

/// [`run`], with the PostgreSQL-registry rows against `postgres` if given.
pub fn run_with(quick: bool, postgres: Option<&str>) -> Vec<Row> {
    let env = setup();
    let runs = if quick { 200 } else { 2000 };
    let n = if quick { 1000 } else { 10_000 };
    let mut rows = Vec::new();

    let (t_read, t_get) = paired_median(
        runs,
        || {
            std::hint::black_box(read_once(&env));
        },
        || {
            std::hint::black_box(get_once(&env));
        },
    );
    rows.push(Row {
        name: format!("get small PropertySet ({} B)", env.bytes.len()),
        value: t_get.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(t_read.as_secs_f64() * 1e6),
        reference_name: "std::fs::read same file".into(),
        target: Target::AtMost(2.0),
    });

    // Where the time of a get goes.
    let reg_lookup = median_time(runs, || {
        let reg = env.butler.registry(0).expect("registry");
        std::hint::black_box(reg.find("meta", &env.id, None).expect("find"));
    });
    let map = median_time(runs, || {
        std::hint::black_box(
            env.butler
                .mapper(0)
                .map("meta", &env.id, false)
                .expect("map"),
        );
    });
    let p = env.butler.persistence();
    let loc = daf_storages::LogicalLocation::literal(env.file.to_string_lossy().into_owned());
    let decode = median_time(runs, || {
        let mut st = vec![p.retrieve_storage("BoostStorage", &loc).expect("storage")];
        std::hint::black_box(
            p.retrieve_as::<PropertySet>(&mut st, &PropertySet::new())
                .expect("retrieve"),
        );
    });
    for (name, t) in [
        ("  of which: file-registry lookup", reg_lookup),
        ("  of which: mapper map", map),
        ("  of which: Persistence::retrieve (read+decode)", decode),
    ] {
        rows.push(Row {
            name: name.into(),
            value: t.as_secs_f64() * 1e6,
            unit: "µs".into(),
            reference: None,
            reference_name: String::new(),
            target: Target::None,
        });
    }

    if let Some(url) = postgres {
        match pg_rows(&env, url, runs) {
            Ok(r) => rows.extend(r),
            Err(e) => eprintln!("note: {e}"),
        }
    }

    let pruns = if quick { 20 } else { 100 };
    let (t_write, t_put) = paired_median(pruns, || write_once(&env), || put_once(&env));
    let ploc = daf_storages::LogicalLocation::literal(
        env.dir
            .path()
            .join("persist-only.boost")
            .to_string_lossy()
            .into_owned(),
    );
    let (_, t_persist) = paired_median(
        pruns,
        || write_once(&env),
        || {
            let mut st = vec![p.persist_storage("BoostStorage", &ploc).expect("storage")];
            p.persist(&env.object, &mut st, &PropertySet::new())
                .expect("persist");
        },
    );
    rows.push(Row {
        name: "put small PropertySet".into(),
        value: t_put.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: Some(t_write.as_secs_f64() * 1e6),
        reference_name: "temp+fsync+rename".into(),
        target: Target::AtMost(2.0),
    });
    rows.push(Row {
        name: "  of which: Persistence::persist alone".into(),
        value: t_persist.as_secs_f64() * 1e6,
        unit: "µs".into(),
        reference: None,
        reference_name: String::new(),
        target: Target::None,
    });

    let ids = fill(&env, n);
    let files: Vec<PathBuf> = ids
        .iter()
        .map(|id| env.butler.get_uri("meta", id, false).expect("uri"))
        .collect();
    // Interleaved passes (sequential reads, get_many, ...), medians.
    let mut seq = || {
        Ok(super::peers::timed(|| {
            for f in &files {
                std::hint::black_box(std::fs::read(f).expect("read"));
            }
        }))
    };
    let mut many = || {
        let t = Instant::now();
        let got = env
            .butler
            .get_many::<PropertySet>("meta", &ids, &GetOptions::default());
        let s = t.elapsed().as_secs_f64();
        if got.iter().all(|g| g.is_ok()) {
            Ok(s)
        } else {
            Err("get_many failed".to_string())
        }
    };
    let [t_seq, t_many] =
        super::peers::interleaved(if quick { 5 } else { 9 }, [&mut seq, &mut many])
            .expect("get_many");
    rows.push(Row {
        name: format!("get_many {n} small datasets"),
        value: n as f64 / t_many,
        unit: "ds/s".into(),
        reference: Some(n as f64 / t_seq),
        reference_name: "sequential fs::read".into(),
        target: Target::AtLeast(1.0),
    });

    let src = env.dir.path().join("fits-src");
    let fits = make_fits(&src, n);
    let t = Instant::now();
    for f in &fits {
        std::hint::black_box(std::fs::read(f).expect("read"));
    }
    let ref_rate = n as f64 / t.elapsed().as_secs_f64();
    let secs = ingest_secs(&env, &fits, "bench");
    rows.push(Row {
        name: format!("ingest {n} FITS files (hardlink)"),
        value: n as f64 / secs,
        unit: "files/s".into(),
        reference: Some(ref_rate),
        reference_name: "sequential fs::read".into(),
        target: Target::None,
    });
    rows
}

/// daf's butler against the Gen3 butler (`lsst-daf-butler`, venv Python) on
/// the same small datasets, interleaved, medians: get by data id, a query
/// of every dataset (1,000), a single durable put, and a batch of puts
/// (`put_many`; Gen3 has no batch put, so a loop of `Butler.put`). daf's
/// puts are durable (fsync), Gen3's are not. Figures are rates, so a target
/// of ≥ N× means N times as many operations per second as Gen3.
///
/// `n` datasets are in both repositories before the get and the query
/// (1,000 for the target); `quick` runs fewer repeats. daf's
/// `put_many` batch is 1,000 datasets (never more than `n`); Gen3's loop,
/// whose rate does not depend on its length, is 200 puts per round when
/// `quick` (1,000 otherwise), so that a quick run stays short.
/// 100 instead of 1,000 (never more than `n`).
pub fn peer_rows(quick: bool, n: usize) -> Result<Vec<Row>, String> {
    use super::peers::{interleaved, timed, PyDriver};
    let py = super::peers::python(&["lsst.daf.butler"], "lsst-daf-butler")?;
    let n = n.max(10);
    let (runs, put_runs, g3_batch) = if quick { (20, 5, 200) } else { (50, 9, 1000) };
    let batch = 1000.min(n);
    let g3_batch = g3_batch.min(batch);
    let ids = n + 10 + (put_runs + 1) * (g3_batch + 1);
    let env = setup();
    fill(&env, n);
    let g3_root = env.dir.path().join("gen3");
    let mut g3 = PyDriver::start(
        &py,
        "gen3",
        include_str!("../../benches/peers/gen3_peer.py"),
        &[],
    )?;
    g3.secs(&format!("setup {} {n} {ids}", g3_root.display()))?;
    let mut rows = Vec::new();
    let rate = |secs: f64| 1.0 / secs;

    // Both sides the same way: a round is a loop of `per_round` gets, each
    // timed alone, reduced to its median; rounds alternate daf, Gen3, daf
    // ... and the median of the rounds is reported.
    let probe = data_id! {visit: 5};
    let per_round = 25;
    let mut daf_get = || {
        let mut t: Vec<f64> = (0..per_round)
            .map(|_| {
                timed(|| {
                    std::hint::black_box(
                        env.butler.get::<PropertySet>("meta", &probe).expect("get"),
                    );
                })
            })
            .collect();
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    };
    let mut g3_get = || g3.secs(&format!("getloop 5 {per_round}"));
    let [d, g] = interleaved(runs, [&mut daf_get, &mut g3_get])?;
    rows.push(Row {
        name: "butler get small dataset by data id".into(),
        value: rate(d),
        unit: "get/s".into(),
        reference: Some(rate(g)),
        reference_name: "Gen3 Butler.get".into(),
        target: Target::AtLeast(200.0),
    });

    let all = DataId::new();
    let mut daf_q = || {
        let t = Instant::now();
        let reg = env.butler.registry(0).ok_or("no registry")?;
        let found = reg
            .find_matching(Some("meta"), &all, None)
            .map_err(|e| e.to_string())?;
        let s = t.elapsed().as_secs_f64();
        if found.len() < n {
            return Err(format!(
                "daf query found {} datasets, expected {n}",
                found.len()
            ));
        }
        Ok(s)
    };
    let mut g3_q = || {
        let out = g3.call("query")?;
        let mut it = out.split_whitespace();
        let s: f64 = it.next().and_then(|v| v.parse().ok()).ok_or("gen3 query")?;
        let count: usize = it.next().and_then(|v| v.parse().ok()).ok_or("gen3 query")?;
        if count < n {
            return Err(format!("Gen3 query found {count} datasets, expected {n}"));
        }
        Ok(s)
    };
    let [d, g] = interleaved(runs.min(20), [&mut daf_q, &mut g3_q])?;
    rows.push(Row {
        name: format!("butler query {n} datasets"),
        value: rate(d),
        unit: "query/s".into(),
        reference: Some(rate(g)),
        reference_name: "Gen3 query_datasets".into(),
        target: Target::AtLeast(30.0),
    });

    // Puts of new data ids: daf's visits and Gen3's detectors from n + 1.
    let next = std::cell::Cell::new(n as i64 + 1);
    let next_g3 = std::cell::Cell::new(n as i64 + 1);
    let mut daf_put = || {
        let v = next.get();
        next.set(v + 1);
        let id = data_id! {visit: v};
        let t = Instant::now();
        env.butler
            .put(&env.object, "meta", &id)
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed().as_secs_f64())
    };
    let mut g3_put = || {
        let v = next_g3.get();
        next_g3.set(v + 1);
        g3.secs(&format!("put {v}"))
    };
    let [d, g] = interleaved(put_runs, [&mut daf_put, &mut g3_put])?;
    rows.push(Row {
        name: "butler put small dataset (daf durable)".into(),
        value: rate(d),
        unit: "put/s".into(),
        reference: Some(rate(g)),
        reference_name: "Gen3 Butler.put (no fsync)".into(),
        target: Target::AtLeast(1.0),
    });

    let mut daf_many = || {
        let v0 = next.get();
        next.set(v0 + batch as i64);
        let ids: Vec<DataId> = (v0..v0 + batch as i64)
            .map(|v| data_id! {visit: v})
            .collect();
        let items: Vec<(&dyn daf_formatters::Persistable, DataId)> = ids
            .iter()
            .map(|id| (&env.object as &dyn daf_formatters::Persistable, id.clone()))
            .collect();
        let t = Instant::now();
        env.butler
            .put_many("meta", &items, &PutOptions::default())
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed().as_secs_f64())
    };
    let mut g3_many = || {
        let v0 = next_g3.get();
        next_g3.set(v0 + g3_batch as i64);
        g3.secs(&format!("putmany {v0} {g3_batch}"))
    };
    let [d, g] = interleaved(put_runs, [&mut daf_many, &mut g3_many])?;
    rows.push(Row {
        name: format!("butler put_many {batch} small datasets (durable)"),
        value: batch as f64 / d,
        unit: "ds/s".into(),
        reference: Some(g3_batch as f64 / g),
        reference_name: "Gen3 put loop (no fsync)".into(),
        target: Target::AtLeast(20.0),
    });
    Ok(rows)
}
