//! The conformance suite every [`Registry`] backend must pass.
//!
//! A backend test fills the registry with the standard content (SQL backends:
//! [`populate`]; the filesystem registry: [`populate_files`]) and calls
//! [`run`] with the [`Capabilities`] of the backend. The content mirrors the
//! obs_test registry: three raw exposures, their sky tiles and one flat.

use std::path::Path;

use daf_base::{data_id, DataIdValue};

use super::{ColumnType, Lookup, Registry, Row, ValidRange};

/// What a backend supports beyond plain single-table lookups.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Several tables, `NATURAL JOIN`ed.
    pub joins: bool,
    /// `obs_time BETWEEN start AND end`.
    pub valid_range: bool,
    /// SQL tables with columns (and identifier validation).
    pub tables: bool,
}

/// SQL backends: everything.
pub const SQL: Capabilities = Capabilities {
    joins: true,
    valid_range: true,
    tables: true,
};

/// The filesystem registry: single "table", no ranges.
pub const FILESYSTEM: Capabilities = Capabilities {
    joins: false,
    valid_range: false,
    tables: false,
};

/// The template the filesystem registry is asked with.
pub const RAW_TEMPLATE: &str = "raw/v%(visit)d_f%(filter)s.fits";

/// (visit, filter, taiObs, expTime) of the standard raw rows.
pub const RAW: [(i64, &str, &str, f64); 3] = [
    (1, "g", "1999-01-17T04:52:34.895201920", 15.0),
    (2, "g", "1999-01-17T05:22:08.687202048", 15.0),
    (3, "r", "1999-02-19T01:17:24.056802176", 30.0),
];

fn s(v: &str) -> String {
    v.to_string()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Creates and fills `raw`, `raw_skyTile` and `flat` through the registry's
/// own write API.
pub fn populate(reg: &dyn Registry) {
    reg.create_table(
        "raw",
        &[
            (s("visit"), ColumnType::Int),
            (s("filter"), ColumnType::Text),
            (s("taiObs"), ColumnType::Text),
            (s("expTime"), ColumnType::Float),
        ],
        &[s("visit")],
    )
    .expect("create raw");
    let rows: Vec<Row> = RAW
        .iter()
        .map(|(v, f, t, e)| vec![(*v).into(), (*f).into(), (*t).into(), (*e).into()])
        .collect();
    reg.insert_rows(
        "raw",
        &strings(&["visit", "filter", "taiObs", "expTime"]),
        &rows,
    )
    .expect("insert raw");
    reg.create_table(
        "raw_skyTile",
        &[(s("id"), ColumnType::Int), (s("skyTile"), ColumnType::Int)],
        &[],
    )
    .expect("create raw_skyTile");
    let tiles: Vec<Row> = [(1, 85932), (1, 86652), (2, 85932), (2, 86652), (3, 86653)]
        .iter()
        .map(|(i, t)| vec![DataIdValue::Int(*i), DataIdValue::Int(*t)])
        .collect();
    reg.insert_rows("raw_skyTile", &strings(&["id", "skyTile"]), &tiles)
        .expect("insert raw_skyTile");
    reg.create_table(
        "flat",
        &[
            (s("calibDate"), ColumnType::Text),
            (s("validStart"), ColumnType::Text),
            (s("validEnd"), ColumnType::Text),
            (s("filter"), ColumnType::Text),
        ],
        &[],
    )
    .expect("create flat");
    let flats: Vec<Row> = [
        ("1999-01-01", "1998-12-01", "1999-01-31", "g"),
        ("1999-02-15", "1999-02-01", "1999-03-01", "g"),
        ("1999-02-16", "1999-02-01", "1999-03-01", "r"),
    ]
    .iter()
    .map(|(a, b, c, d)| vec![(*a).into(), (*b).into(), (*c).into(), (*d).into()])
    .collect();
    reg.insert_rows(
        "flat",
        &strings(&["calibDate", "validStart", "validEnd", "filter"]),
        &flats,
    )
    .expect("insert flat");
}

/// Writes the standard raw rows as minimal FITS files under `root`
/// (`raw/v1_fg.fits` ...), with `TAIOBS` and `EXPTIME` header cards.
pub fn populate_files(root: &Path) {
    for (v, f, t, e) in RAW {
        let path = root.join(format!("raw/v{v}_f{f}.fits"));
        crate::fits_header::write_test_fits(
            &path,
            &[
                ("FILTER", format!("'{f:<8}'")),
                ("TAIOBS", format!("'{t}'")),
                ("EXPTIME", format!("{e:.1}")),
            ],
        )
        .expect("write test FITS");
    }
    // A file that does not match the template is ignored.
    std::fs::write(root.join("raw/README.txt"), b"not data").expect("write");
}

fn lookup(reg: &dyn Registry, props: &[&str], tables: &[&str], id: &daf_base::DataId) -> Vec<Row> {
    let props = strings(props);
    let tables = strings(tables);
    reg.lookup_query(&Lookup {
        properties: &props,
        tables: &tables,
        data_id: id,
        valid_range: None,
        template: Some(RAW_TEMPLATE),
    })
    .unwrap_or_else(|e| panic!("lookup {props:?} in {tables:?} with {id}: {e}"))
}

fn ints(v: &[i64]) -> Vec<Row> {
    v.iter().map(|i| vec![DataIdValue::Int(*i)]).collect()
}

/// Runs every check the backend's capabilities allow. Panics on a failure.
pub fn run(reg: &dyn Registry, caps: Capabilities) {
    let g = || DataIdValue::from("g");
    let r = || DataIdValue::from("r");
    // Completion of one key.
    assert_eq!(
        lookup(reg, &["filter"], &["raw"], &data_id! {visit: 1}),
        vec![vec![g()]]
    );
    assert_eq!(
        lookup(reg, &["filter"], &["raw"], &data_id! {visit: 3}),
        vec![vec![r()]]
    );
    // Several rows, sorted, and tuples.
    assert_eq!(
        lookup(reg, &["visit", "filter"], &["raw"], &data_id! {filter: "g"}),
        vec![vec![1.into(), g()], vec![2.into(), g()]]
    );
    assert_eq!(
        lookup(reg, &["visit", "filter"], &["raw"], &data_id! {}),
        vec![
            vec![1.into(), g()],
            vec![2.into(), g()],
            vec![3.into(), r()]
        ]
    );
    // Distinct.
    assert_eq!(
        lookup(reg, &["filter"], &["raw"], &data_id! {}),
        vec![vec![g()], vec![r()]]
    );
    assert_eq!(
        lookup(reg, &["visit"], &["raw"], &data_id! {filter: "g"}),
        ints(&[1, 2])
    );
    // Two constraints, typed values (text and float columns).
    assert_eq!(
        lookup(
            reg,
            &["taiObs", "expTime"],
            &["raw"],
            &data_id! {visit: 2, filter: "g"}
        ),
        vec![vec![RAW[1].2.into(), DataIdValue::Float(15.0)]]
    );
    // No match.
    assert!(lookup(reg, &["filter"], &["raw"], &data_id! {visit: 4}).is_empty());
    assert!(lookup(reg, &["visit"], &["raw"], &data_id! {visit: 1, filter: "r"}).is_empty());
    // Unknown column: an error, not a panic or an empty answer.
    let props = strings(&["nosuchkey"]);
    let tables = strings(&["raw"]);
    let q = Lookup {
        properties: &props,
        tables: &tables,
        data_id: &data_id! {visit: 1},
        valid_range: None,
        template: Some(RAW_TEMPLATE),
    };
    assert!(reg.lookup_query(&q).is_err(), "unknown column must fail");

    if caps.tables {
        let cols = reg.columns("raw").expect("columns of raw");
        for c in ["visit", "filter", "taiObs", "expTime"] {
            assert!(cols.iter().any(|x| x == c), "raw lacks {c}: {cols:?}");
        }
        assert!(reg.columns("no_such_table").is_err());
        assert!(reg.columns("raw; DROP TABLE raw").is_err());
        // Identifiers are validated, never spliced.
        let bad = strings(&["filter\" FROM raw; --"]);
        let q = Lookup {
            properties: &bad,
            tables: &tables,
            data_id: &data_id! {},
            valid_range: None,
            template: None,
        };
        assert!(reg.lookup_query(&q).is_err());
        let bad_tables = strings(&["raw, raw_visit"]);
        let props = strings(&["visit"]);
        let q = Lookup {
            properties: &props,
            tables: &bad_tables,
            data_id: &data_id! {},
            valid_range: None,
            template: None,
        };
        assert!(reg.lookup_query(&q).is_err());
        // Missing table.
        assert!(reg
            .lookup(&props, &strings(&["no_such_table"]), &data_id! {})
            .is_err());
        // Still intact.
        assert_eq!(lookup(reg, &["visit"], &["raw"], &data_id! {}).len(), 3);
    }
    if caps.joins {
        assert_eq!(
            lookup(
                reg,
                &["skyTile"],
                &["raw", "raw_skyTile"],
                &data_id! {visit: 1}
            ),
            ints(&[85932, 86652])
        );
        assert_eq!(
            lookup(
                reg,
                &["visit"],
                &["raw", "raw_skyTile"],
                &data_id! {skyTile: 85932}
            ),
            ints(&[1, 2])
        );
    }
    if caps.valid_range {
        let range = |t: &str| ValidRange {
            obs_time: t.into(),
            start_column: s("validStart"),
            end_column: s("validEnd"),
        };
        let props = strings(&["calibDate"]);
        let tables = strings(&["flat"]);
        let find = |id: daf_base::DataId, t: &str| {
            let vr = range(t);
            reg.lookup_query(&Lookup {
                properties: &props,
                tables: &tables,
                data_id: &id,
                valid_range: Some(&vr),
                template: None,
            })
            .expect("calibration lookup")
        };
        assert_eq!(
            find(data_id! {filter: "g"}, RAW[0].2),
            vec![vec!["1999-01-01".into()]]
        );
        assert_eq!(
            find(data_id! {filter: "g"}, "1999-02-19T01:17:24"),
            vec![vec!["1999-02-15".into()]]
        );
        assert_eq!(
            find(data_id! {filter: "r"}, RAW[2].2),
            vec![vec!["1999-02-16".into()]]
        );
        assert!(find(data_id! {filter: "r"}, "2001-01-01").is_empty());
    }
}
