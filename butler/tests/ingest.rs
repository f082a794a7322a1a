//! Ingest: transfer modes, header and table data ids, re-ingest, failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use daf_base::data_id;
use daf_butler::ingest::{
    ingest, read_primary_header, read_table, DataIdSource, IngestOptions, Transfer,
};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{testing, Butler, Repository};
use daf_mappers::HeaderRule;

fn setup(d: &Path) -> (PathBuf, Vec<PathBuf>) {
    let m = SimpleMapper::new([(
        "raw",
        SimpleDataset::new(
            "raw/raw_v%(visit)d_f%(filter)s.fits",
            "DecoratedImageU",
            "FitsStorage",
        ),
    )])
    .unwrap();
    let root = d.join("repo");
    Repository::create(&root, Some("SimpleMapper"), m.to_args(), &[]).unwrap();
    let src = d.join("incoming");
    let files = (1..=4)
        .map(|v| {
            let p = src.join(format!("exposure {v}.fits"));
            let filter = if v % 2 == 0 { "r" } else { "g" };
            testing::write_raw_fits(&p, v, filter).unwrap();
            p
        })
        .collect();
    (root, files)
}

fn rules() -> DataIdSource {
    DataIdSource::Header(vec![
        ("visit".to_string(), HeaderRule::card("VISIT")),
        ("filter".to_string(), HeaderRule::card("FILTER")),
    ])
}

fn butler(root: &Path) -> Butler {
    Butler::builder()
        .output(root)
        .persistence(testing::json_persistence())
        .build()
        .unwrap()
}

fn opts(t: Transfer) -> IngestOptions {
    IngestOptions {
        dataset_type: "raw".into(),
        transfer: t,
        ids: rules(),
        run: String::new(),
    }
}

#[test]
fn header_reader_reads_cards() {
    let d = tempfile::tempdir().unwrap();
    let (_, files) = setup(d.path());
    let h = read_primary_header(&files[1]).unwrap();
    assert_eq!(h["VISIT"], 2.into());
    assert_eq!(h["FILTER"], "r".into());
    assert_eq!(h["EXPTIME"], 15.0.into());
    std::fs::write(d.path().join("junk"), b"not fits").unwrap();
    assert!(read_primary_header(&d.path().join("junk")).is_err());
}

#[test]
fn every_transfer_mode() {
    for (mode, name) in [
        (Transfer::Copy, "copy"),
        (Transfer::Move, "move"),
        (Transfer::Hardlink, "hardlink"),
        (Transfer::Symlink, "symlink"),
        (Transfer::Relsymlink, "relsymlink"),
        (Transfer::Direct, "direct"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let (root, files) = setup(d.path());
        assert_eq!(name.parse::<Transfer>().unwrap(), mode);
        let b = butler(&root);
        let s = ingest(&b, &files, &opts(mode), &|| {}).unwrap();
        assert_eq!(s.ingested.len(), 4, "{name}: {s:?}");
        assert!(s.failed.is_empty(), "{name}: {s:?}");
        let uri = b.get_uri("raw", &data_id! {visit: 2}, false).unwrap();
        let target = root.join("raw/raw_v2_fr.fits");
        match mode {
            Transfer::Direct => {
                assert_eq!(uri, files[1]);
                assert!(!target.exists());
            }
            Transfer::Move => {
                assert_eq!(uri, target);
                assert!(!files[1].exists());
            }
            Transfer::Symlink | Transfer::Relsymlink => {
                assert_eq!(uri, target);
                let link = std::fs::read_link(&target).unwrap();
                assert_eq!(link.is_absolute(), mode == Transfer::Symlink, "{link:?}");
                assert_eq!(
                    std::fs::canonicalize(&target).unwrap(),
                    std::fs::canonicalize(&files[1]).unwrap()
                );
            }
            _ => {
                assert_eq!(uri, target);
                assert!(files[1].exists());
            }
        }
        assert_eq!(read_primary_header(&uri).unwrap()["VISIT"], 2.into());
        let reg = b.registry(0).unwrap();
        assert_eq!(reg.count().unwrap(), 4);
        assert!(reg.verify().unwrap().is_empty(), "{name}");
        drop(reg);
        assert_eq!(
            b.query_metadata("raw", &["visit"], &data_id! {filter: "g"})
                .unwrap(),
            vec![vec![1.into()], vec![3.into()]]
        );
    }
}

#[test]
fn reingest_skips_failures_go_on_and_verify_catches_changes() {
    let d = tempfile::tempdir().unwrap();
    let (root, mut files) = setup(d.path());
    let b = butler(&root);
    let s = ingest(&b, &files[..2], &opts(Transfer::Direct), &|| {}).unwrap();
    assert_eq!(s.ingested.len(), 2);
    // a broken file, a missing file and one lacking a card, among good ones
    let broken = d.path().join("incoming/broken.fits");
    std::fs::write(&broken, b"SIMPLE  = garbage").unwrap();
    let nocard = d.path().join("incoming/nocard.fits");
    testing::write_test_fits(&nocard, &[("VISIT", "9".into())]).unwrap();
    files.push(broken.clone());
    files.push(d.path().join("incoming/missing.fits"));
    files.push(nocard.clone());
    let count = std::sync::atomic::AtomicUsize::new(0);
    let s = ingest(&b, &files, &opts(Transfer::Direct), &|| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(count.into_inner(), 7);
    assert_eq!(s.skipped.len(), 2, "{s:?}");
    assert_eq!(s.ingested.len(), 2, "{s:?}");
    assert_eq!(s.failed.len(), 3, "{s:?}");
    let why: BTreeMap<_, _> = s.failed.iter().cloned().collect();
    assert!(why[&broken].contains("not a FITS file"), "{why:?}");
    assert!(why[&nocard].contains("no FILTER card"), "{why:?}");
    assert_eq!(
        s.to_string(),
        "2 ingested, 2 skipped (already ingested), 3 failed"
    );
    assert_eq!(b.registry(0).unwrap().count().unwrap(), 4);

    // change a file after ingest: verify reports it
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[100] = b'X';
    std::fs::write(&files[0], bytes).unwrap();
    let v = b.registry(0).unwrap().verify().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].full_path, std::path::absolute(&files[0]).unwrap());
    assert!(v[0].problem.to_string().contains("checksum changed"));
}

#[test]
fn metadata_table_needs_no_file_opened() {
    let d = tempfile::tempdir().unwrap();
    let (root, _) = setup(d.path());
    // files that are not FITS at all: ids come from the table
    let a = d.path().join("x.dat");
    let c = d.path().join("y.dat");
    std::fs::write(&a, b"aaa").unwrap();
    std::fs::write(&c, b"ccc").unwrap();
    let table = format!(
        "path\tvisit\tfilter\n{}\t10\tg\n{}\t11\ti\n",
        a.display(),
        c.display()
    );
    let t = read_table(table.as_bytes()).unwrap();
    let b = butler(&root);
    let mut o = opts(Transfer::Copy);
    o.ids = DataIdSource::Table(t);
    let s = ingest(&b, &[a, c], &o, &|| {}).unwrap();
    assert_eq!(s.ingested.len(), 2, "{s:?}");
    assert_eq!(
        std::fs::read(root.join("raw/raw_v11_fi.fits")).unwrap(),
        b"ccc"
    );
    assert!(read_table("visit\n1\n".as_bytes()).is_err());
}

#[test]
fn header_rules_convert_like_registry_create() {
    let d = tempfile::tempdir().unwrap();
    let (root, _) = setup(d.path());
    // An exposure of filter g with these OBSID, MJD-OBS and EXPTIME cards.
    let obs = |name: &str, obsid: &str, mjd: &str, exptime: &str| {
        let p = d.path().join("incoming").join(name);
        let cards = [
            ("OBSID", obsid.to_string()),
            ("FILTER", "'g       '".to_string()),
            ("MJD-OBS", mjd.to_string()),
            ("EXPTIME", exptime.to_string()),
        ];
        testing::write_test_fits(&p, &cards).unwrap();
        p
    };
    let f = obs("obs.fits", "'0042'", "51195.2240820278", "15.");
    let b = butler(&root);
    let mut o = opts(Transfer::Copy);
    o.ids = DataIdSource::Header(vec![
        ("visit".into(), "OBSID:int".parse().unwrap()),
        ("filter".into(), HeaderRule::card("FILTER")),
        ("taiObs".into(), "MJD-OBS:mjdTaiToUtc".parse().unwrap()),
        ("expTime".into(), "EXPTIME:float".parse().unwrap()),
    ]);
    let s = ingest(&b, std::slice::from_ref(&f), &o, &|| {}).unwrap();
    assert_eq!(s.ingested.len(), 1, "{s:?}");
    let recs = b.registry(0).unwrap().all().unwrap();
    assert_eq!(recs.len(), 1);
    // What the legacy obs_test registry holds for this MJD, to the nanosecond.
    let tai_obs = "1999-01-17T05:22:08.687202048";
    assert_eq!(
        recs[0].data_id,
        data_id! {visit: 42, filter: "g", taiObs: tai_obs, expTime: 15.0}
    );
    // The very value the mapper side computes for `daf registry create`.
    let h = daf_mappers::fits_header::read_header(&f, 0).unwrap();
    let rule: HeaderRule = "MJD-OBS:mjdTaiToUtc".parse().unwrap();
    assert_eq!(rule.apply(&h), Ok(tai_obs.into()));
    assert!(root.join("raw/raw_v42_fg.fits").is_file());

    // Another file for the same visit and filter at another time is the
    // same dataset: refused, not recorded twice.
    let g = obs("obs-again.fits", "42", "51196.0", "30.");
    let s = ingest(&b, std::slice::from_ref(&g), &o, &|| {}).unwrap();
    assert_eq!(s.failed.len(), 1, "{s:?}");
    assert!(s.failed[0].1.contains("already in the repository"), "{s:?}");

    // A value that does not convert names the card, the value and the key.
    o.ids = DataIdSource::Header(vec![("visit".into(), "FILTER:int".parse().unwrap())]);
    let s = ingest(&b, &[g], &o, &|| {}).unwrap();
    assert_eq!(s.failed.len(), 1, "{s:?}");
    assert_eq!(
        s.failed[0].1,
        "header card FILTER: \"g\" is not an integer (for data-id key \"visit\")"
    );
    assert_eq!(b.registry(0).unwrap().count().unwrap(), 1);
}
