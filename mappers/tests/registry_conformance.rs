//! Every registry backend passes the same conformance suite.

use daf_mappers::registry::conformance::{self, FILESYSTEM, SQL};
use daf_mappers::registry::{open_registry, Registry};
use daf_mappers::{PgRegistry, PosixRegistry, SqliteRegistry};

#[test]
fn sqlite_in_memory() {
    let reg = SqliteRegistry::in_memory().unwrap();
    conformance::populate(&reg);
    conformance::run(&reg, SQL);
}

#[test]
fn sqlite_file_reopened_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite3");
    {
        let reg = SqliteRegistry::create(&path).unwrap();
        conformance::populate(&reg);
    }
    let reg = open_registry(&path).unwrap();
    conformance::run(reg.as_ref(), SQL);
    // Read-only: writes are refused.
    assert!(reg
        .insert_rows("raw", &["visit".into()], &[vec![9.into()]])
        .is_err());
}

#[test]
fn sqlite_missing_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sqlite3");
    let e = SqliteRegistry::open(&missing).unwrap_err().to_string();
    assert!(e.contains("no such registry file"), "{e}");
    let corrupt = dir.path().join("bad.sqlite3");
    std::fs::write(&corrupt, vec![b'x'; 4096]).unwrap();
    let e = SqliteRegistry::open(&corrupt).unwrap_err().to_string();
    assert!(e.contains("not a readable SQLite registry"), "{e}");
    assert!(e.contains("bad.sqlite3"), "{e}");
}

#[test]
fn filesystem() {
    let dir = tempfile::tempdir().unwrap();
    conformance::populate_files(dir.path());
    let reg = PosixRegistry::new(dir.path());
    conformance::run(&reg, FILESYSTEM);
    let via_open = open_registry(dir.path()).unwrap();
    conformance::run(via_open.as_ref(), FILESYSTEM);
}

#[test]
fn postgres() {
    let Some(url) = daf_base::testing::server_url("DAF_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!(
        "daf_conf_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let reg = PgRegistry::connect(&url, Some(&schema), &daf_storages::db::DbAuth::new()).unwrap();
    reg.create_schema().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conformance::populate(&reg);
        conformance::run(&reg, SQL);
    }));
    reg.drop_schema().unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn card(s: &str) -> String {
    format!("{s:<80}")
}

fn hdu(cards: &[&str]) -> Vec<u8> {
    let mut h: String = cards.iter().map(|c| card(c)).collect();
    h.push_str(&card("END"));
    let mut b = h.into_bytes();
    b.resize(b.len().div_ceil(2880) * 2880, b' ');
    b
}

/// A template ending in `[%(hdu)d]`: keys the path lacks come from the header
/// of the HDU the data id names (the primary HDU when it names none).
#[test]
fn filesystem_reads_keys_from_the_named_hdu() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    for (visit, p_filter, x_filter) in [(1, "g", "G1"), (2, "r", "R2")] {
        let mut bytes = hdu(&[
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    0",
            &format!("FILTER  = '{p_filter}'"),
        ]);
        bytes.extend(hdu(&[
            "XTENSION= 'IMAGE   '",
            "BITPIX  =                   16",
            "NAXIS   =                    2",
            "NAXIS1  =                   10",
            "NAXIS2  =                    3",
            &format!("FILTER  = '{x_filter}'"),
            "CCDNUM  =                   42",
        ]));
        let mut data = vec![0u8; 60];
        data.resize(2880, 0);
        bytes.extend(data);
        std::fs::write(dir.path().join(format!("raw/v{visit}.fits")), bytes).unwrap();
    }
    let reg = PosixRegistry::new(dir.path());
    let template = "raw/v%(visit)d.fits[%(hdu)d]";
    let props: Vec<String> = vec!["visit".into(), "filter".into()];
    let tables: Vec<String> = vec!["raw".into()];
    let look = |id: daf_base::DataId| {
        reg.lookup_query(&daf_mappers::registry::Lookup {
            properties: &props,
            tables: &tables,
            data_id: &id,
            valid_range: None,
            template: Some(template),
        })
        .unwrap()
    };
    assert_eq!(
        look(daf_base::data_id! {}),
        vec![vec![1.into(), "g".into()], vec![2.into(), "r".into()]]
    );
    assert_eq!(
        look(daf_base::data_id! {hdu: 1}),
        vec![vec![1.into(), "G1".into()], vec![2.into(), "R2".into()]]
    );
    assert_eq!(
        look(daf_base::data_id! {hdu: 1, filter: "R2"}),
        vec![vec![2.into(), "R2".into()]]
    );
    assert!(look(daf_base::data_id! {visit: 3}).is_empty());
}
