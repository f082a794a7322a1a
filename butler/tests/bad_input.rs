//! Bad input never panics: arbitrary repository configurations, where
//! expressions, metadata tables and FITS headers give values or clear errors.

use daf_butler::ingest::{read_primary_header, read_table};
use daf_butler::query::parse_where;
use daf_butler::repository::{Mode, Repository, CFG_FILE};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn repository_cfg_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CFG_FILE), &bytes).unwrap();
        if let Err(e) = Repository::open(d.path(), Mode::Read) {
            let m = e.to_string();
            prop_assert!(m.contains("repository") || m.contains("I/O"), "{}", m);
        }
    }

    #[test]
    fn repository_cfg_yamlish(text in "(mapper|parents|root|mapperArgs|x)?: ?[\\[\\]{}a-z./: -]{0,40}\n?") {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CFG_FILE), text.as_bytes()).unwrap();
        let _ = Repository::open(d.path(), Mode::Read);
    }

    #[test]
    fn where_expressions(text in "[a-z0-9 ()'=<>!,.]{0,40}") {
        if let Ok(e) = parse_where(&text) {
            let _ = e.matches(&daf_base::data_id!{visit: 1, filter: "g"});
        }
    }

    #[test]
    fn metadata_tables(text in "[a-z0-9,\t\n]{0,120}") {
        let _ = read_table(text.as_bytes());
    }

    #[test]
    fn fits_headers(bytes in proptest::collection::vec(any::<u8>(), 0..6000), simple in any::<bool>()) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.fits");
        let mut b = bytes;
        if simple {
            let mut h = b"SIMPLE  =                    T".to_vec();
            h.resize(80, b' ');
            h.extend(b);
            b = h;
        }
        std::fs::write(&p, &b).unwrap();
        if let Err(e) = read_primary_header(&p) {
            // bytes that start with the gzip magic are read as a .gz
            // stream: a damaged one is reported as such
            let m = e.to_string();
            prop_assert!(m.contains("not a FITS file") || m.contains("gzip"), "{}", m);
        }
    }
}
