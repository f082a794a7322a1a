//! Acceptance on the obs_test legacy repository: every answer of the
//! fixture's README §5, with the YAML policy and with the 2016 PAF policy.

use std::path::{Path, PathBuf};

use daf_base::{data_id, DataId, DataIdValue};
use daf_mappers::policy::DatasetKind;
use daf_mappers::registry::{ColumnType, Registry};
use daf_mappers::{
    CameraMapper, CameraMapperOptions, KeyType, Mapper, MapperError, MapperPolicy, PolicyDefaults,
    SqliteRegistry,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/obs_test")
}

fn policy_path(name: &str) -> PathBuf {
    data().join("policy").join(name)
}

fn input() -> PathBuf {
    data().join("input")
}

fn mapper(policy: &str) -> CameraMapper {
    CameraMapper::from_policy_file(&policy_path(policy), input())
        .unwrap_or_else(|e| panic!("{policy}: {e}"))
}

const FORMATS: [&str; 2] = ["testMapper.yaml", "testMapper.paf"];

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn vf(v: i64, f: &str) -> Vec<DataIdValue> {
    vec![DataIdValue::Int(v), DataIdValue::from(f)]
}

#[test]
fn query_metadata_answers() {
    for fmt in FORMATS {
        let m = mapper(fmt);
        let vfk = keys(&["visit", "filter"]);
        let q = |k: &[String], id: DataId| m.query_metadata("raw", k, &id).unwrap();
        assert_eq!(q(&vfk, data_id! {visit: 1}), vec![vf(1, "g")], "{fmt}");
        assert_eq!(q(&vfk, data_id! {visit: 2}), vec![vf(2, "g")], "{fmt}");
        assert_eq!(q(&vfk, data_id! {visit: 3}), vec![vf(3, "r")], "{fmt}");
        assert_eq!(
            q(&vfk, data_id! {filter: "g"}),
            vec![vf(1, "g"), vf(2, "g")]
        );
        assert_eq!(q(&vfk, data_id! {filter: "r"}), vec![vf(3, "r")]);
        assert_eq!(
            q(&vfk, data_id! {}),
            vec![vf(1, "g"), vf(2, "g"), vf(3, "r")]
        );
        assert_eq!(
            q(&keys(&["filter"]), data_id! {}),
            vec![vec!["g".into()], vec!["r".into()]]
        );
        assert_eq!(
            q(&keys(&["visit"]), data_id! {filter: "g"}),
            vec![vec![1.into()], vec![2.into()]]
        );
        assert!(q(&vfk, data_id! {visit: 4}).is_empty());
        // A string visit is converted to the template's integer type.
        assert_eq!(q(&vfk, data_id! {visit: "1"}), vec![vf(1, "g")]);
        // The merged raw has `tables: raw` only.
        let e = m
            .query_metadata("raw", &keys(&["skyTile"]), &data_id! {visit: 1})
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such column") && e.contains("skyTile"), "{e}");
    }
}

#[test]
fn the_2014_policy_joins_sky_tiles() {
    let m = mapper("testMapper-0f3b356.paf");
    assert_eq!(
        m.query_metadata("raw", &keys(&["skyTile"]), &data_id! {visit: 1})
            .unwrap(),
        vec![vec![85932.into()], vec![86652.into()]]
    );
    assert_eq!(
        m.map("raw", &data_id! {visit: 3}, false).unwrap().locations,
        vec!["raw/raw_v3_fr.fits.gz"]
    );
}

fn subset_len(m: &CameraMapper, level: Option<&str>, id: DataId) -> usize {
    let k = m.get_keys("raw", level).unwrap();
    if k.keys().all(|key| id.contains_key(key)) {
        return 1;
    }
    let names: Vec<String> = k.keys().cloned().collect();
    m.query_metadata("raw", &names, &id).unwrap().len()
}

#[test]
fn keys_levels_and_subsets() {
    for fmt in FORMATS {
        let m = mapper(fmt);
        assert_eq!(m.default_level().as_deref(), Some("visit"));
        let both = [
            ("filter".to_string(), KeyType::Str),
            ("visit".to_string(), KeyType::Int),
        ];
        let only_filter = [("filter".to_string(), KeyType::Str)];
        assert_eq!(
            m.get_keys("raw", Some("skyTile")).unwrap(),
            only_filter.into_iter().collect()
        );
        for level in ["filter", "visit", "sensor", ""] {
            assert_eq!(
                m.get_keys("raw", Some(level)).unwrap(),
                both.clone().into_iter().collect(),
                "{fmt} {level}"
            );
        }
        assert_eq!(m.get_keys("raw", None).unwrap().len(), 2);
        assert!(matches!(
            m.get_keys("nope", None),
            Err(MapperError::UnknownDatasetType { .. })
        ));
        assert_eq!(subset_len(&m, Some("sensor"), data_id! {filter: "g"}), 2);
        assert_eq!(subset_len(&m, Some("sensor"), data_id! {visit: 1}), 1);
        assert_eq!(subset_len(&m, Some("filter"), data_id! {visit: 1}), 1);
        assert_eq!(subset_len(&m, Some("visit"), data_id! {filter: "g"}), 2);
        assert_eq!(subset_len(&m, None, data_id! {}), 3);
        assert_eq!(subset_len(&m, Some("skyTile"), data_id! {}), 2);
        assert_eq!(
            m.keys(),
            keys(&[
                "dayObs",
                "detector",
                "expId",
                "fgcmcycle",
                "filter",
                "label",
                "name",
                "numSubfilters",
                "patch",
                "pixel_id",
                "seqNum",
                "subdir",
                "subfilter",
                "tract",
                "visit"
            ]),
            "{fmt}"
        );
    }
}

fn path(m: &CameraMapper, t: &str, id: DataId) -> String {
    let loc = m
        .map(t, &id, false)
        .unwrap_or_else(|e| panic!("map {t} {id}: {e}"));
    assert_eq!(loc.locations.len(), 1);
    loc.locations[0].clone()
}

#[test]
fn mapped_paths() {
    for fmt in FORMATS {
        let m = mapper(fmt);
        assert_eq!(
            path(&m, "raw", data_id! {visit: 1}),
            "raw/raw_v1_fg.fits.gz"
        );
        assert_eq!(
            path(&m, "raw", data_id! {visit: 1, filter: "g"}),
            "raw/raw_v1_fg.fits.gz"
        );
        assert_eq!(
            path(&m, "raw", data_id! {visit: 2}),
            "raw/raw_v2_fg.fits.gz"
        );
        assert_eq!(
            path(&m, "raw", data_id! {visit: 3}),
            "raw/raw_v3_fr.fits.gz"
        );
        assert_eq!(
            path(&m, "raw", data_id! {visit: 1, filter: "r"}),
            "raw/raw_v1_fr.fits.gz"
        );
        let e = m.map("raw", &data_id! {visit: 4}, false).unwrap_err();
        match &e {
            MapperError::NoUniqueLookup { keys, found, .. } => {
                assert_eq!(keys, &vec!["filter".to_string()]);
                assert_eq!(*found, 0);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            e.to_string(),
            "No unique lookup for [\"filter\"] with {visit: 4}: found 0"
        );
        assert_eq!(
            path(&m, "flat", data_id! {visit: 1}),
            "flat/flat_fg.fits.gz"
        );
        assert_eq!(
            path(&m, "flat", data_id! {visit: 3}),
            "flat/flat_fr.fits.gz"
        );
        assert_eq!(path(&m, "bias", data_id! {visit: 1}), "bias/bias.fits.gz");
        assert_eq!(path(&m, "dark", data_id! {}), "dark/dark.fits.gz");
        assert_eq!(
            path(&m, "calexp", data_id! {visit: 1}),
            "calexp/calexp_v1_fg.fits"
        );
        assert_eq!(path(&m, "src", data_id! {visit: 3}), "src/v3_fr.fits");
        assert_eq!(
            path(&m, "forced_src", data_id! {visit: 1, tract: 0}),
            "forced/0/v1_fg.fits"
        );
        let cfg = m
            .map(
                "processCcd_config",
                &data_id! {visit: 1, filter: "g"},
                false,
            )
            .unwrap();
        assert_eq!(cfg.locations, vec!["config/processCcd.py"]);
        assert_eq!(cfg.storage, "ConfigStorage");
        assert_eq!(
            cfg.python_type,
            "lsst.pipe.tasks.processCcd.ProcessCcdConfig"
        );
        assert_eq!(cfg.persistable, "Config");

        let raw = m.map("raw", &data_id! {visit: 1}, false).unwrap();
        assert_eq!(raw.dataset_type, "raw");
        assert_eq!(raw.python_type, "lsst.afw.image.DecoratedImageU");
        assert_eq!(raw.persistable, "DecoratedImageU");
        assert_eq!(raw.storage, "FitsStorage");
        assert_eq!(raw.root, input());
        assert_eq!(raw.data_id, data_id! {visit: 1, filter: "g"});
        assert_eq!(raw.additional_data.get::<i64>("visit").unwrap(), 1);
        assert_eq!(raw.additional_data.get::<String>("filter").unwrap(), "g");
        assert_eq!(
            raw.locations_with_root()[0]
                .file_name()
                .and_then(|f| f.to_str()),
            Some("raw_v1_fg.fits.gz")
        );
    }
    // Where the two policies differ.
    let y = mapper("testMapper.yaml");
    assert_eq!(path(&y, "defects", data_id! {}), "defects/defects.fits");
    let md = y
        .map(
            "processCcd_metadata",
            &data_id! {visit: 1, filter: "g"},
            false,
        )
        .unwrap();
    assert_eq!(md.locations, vec!["processCcd_metadata/v1_fg.yaml"]);
    assert_eq!(md.storage, "YamlStorage");
    assert_eq!(md.python_type, "lsst.daf.base.PropertySet");
    assert_eq!(md.persistable, "PropertySet");
    let p = mapper("testMapper.paf");
    assert_eq!(
        path(&p, "processCcd_metadata", data_id! {visit: 1, filter: "g"}),
        "processCcd_metadata/v1_fg.boost"
    );
    assert!(matches!(
        p.map("defects", &data_id! {}, false),
        Err(MapperError::UnknownDatasetType { .. })
    ));
}

#[test]
fn merged_policy_shape() {
    let p = MapperPolicy::load(&policy_path("testMapper.yaml"), None).unwrap();
    let count = |k: DatasetKind| p.datasets.values().filter(|d| d.kind == k).count();
    assert_eq!(count(DatasetKind::Exposure), 30);
    assert_eq!(count(DatasetKind::Calibration), 5);
    assert_eq!(count(DatasetKind::Dataset), 262);
    assert_eq!(p.datasets.len(), 297);
    assert_eq!(
        p.datasets
            .values()
            .filter(|d| d.composite.is_some())
            .count(),
        1
    );
    let raw = &p.datasets["raw"];
    assert_eq!(
        raw.template.as_ref().unwrap().text(),
        "raw/raw_v%(visit)d_f%(filter)s.fits.gz"
    );
    assert_eq!(raw.python, "lsst.afw.image.DecoratedImageU");
    assert_eq!(raw.persistable, "DecoratedImageU");
    assert_eq!(raw.storage, "FitsStorage");
    assert_eq!(raw.level.as_deref(), Some("Ccd"));
    assert_eq!(raw.tables, vec!["raw"]);
    let flat = &p.datasets["flat"];
    assert_eq!(flat.reference, vec!["raw"]);
    assert_eq!(flat.columns, vec!["filter"]);
    assert_eq!(flat.storage, "FitsStorage");
    assert_eq!(flat.obs_time_name, "taiObs");
    assert_eq!(flat.valid_start_name, "validStart");
    assert_eq!(flat.valid_end_name, "validEnd");
    assert!(!flat.filter);
    let defects = &p.datasets["defects"];
    assert_eq!(defects.storage, "FitsCatalogStorage");
    assert_eq!(defects.persistable, "BaseCatalog");
    assert_eq!(defects.python, "lsst.ip.isr.Defects");
    assert_eq!(defects.tables, vec!["defects"]);
    assert_eq!(p.levels["skyTile"], vec!["visit"]);
    assert_eq!(p.levels["tract"], vec!["patch"]);
    assert!(!p.need_calib_registry);
    let fcr = &p.datasets["fcr"];
    assert_eq!(fcr.tables, vec!["raw", "raw_visit", "raw_skyTile"]);
    let m = mapper("testMapper.yaml");
    assert_eq!(m.dataset_types().len(), 297);
    assert!(m.map("rawAndFlat", &data_id! {visit: 1}, false).is_err());
}

#[test]
fn paf_parses_to_the_same_tree_as_its_yaml_twin() {
    let paf = std::fs::read_to_string(policy_path("testMapper.paf")).unwrap();
    let policy = daf_base::Policy::from_paf_str(&paf, "testMapper.paf").unwrap();
    let mut from_paf =
        daf_mappers::MapperPolicy::tree_from_policy(&policy, "testMapper.paf").unwrap();
    let yaml = std::fs::read_to_string(policy_path("testMapper-761fd02.yaml")).unwrap();
    let mut from_yaml: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    let removed = from_yaml["datasets"]
        .as_mapping_mut()
        .unwrap()
        .remove("other_photo_astro_ref");
    assert!(removed.is_some());
    // Compare as sorted JSON-like text: key order is not significant.
    fn norm(v: &mut serde_norway::Value) {
        if let serde_norway::Value::Mapping(m) = v {
            let mut entries: Vec<_> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
            for (k, mut val) in entries {
                norm(&mut val);
                m.insert(k, val);
            }
        } else if let serde_norway::Value::Sequence(s) = v {
            s.iter_mut().for_each(norm);
        }
    }
    norm(&mut from_paf);
    norm(&mut from_yaml);
    assert_eq!(from_paf, from_yaml);
}

/// Calibration lookup with validity: the obs time and refCols come from the
/// reference table, then `taiObs BETWEEN validStart AND validEnd` picks the row.
#[test]
fn calibration_validity_lookup() {
    let text = r#"
needCalibRegistry: true
defaultLevel: visit
exposures:
  raw:
    template: raw/raw_v%(visit)d_f%(filter)s.fits.gz
calibrations:
  flat:
    template: flat/%(calibDate)s/flat_f%(filter)s.fits
    reference: raw
    refCols: visit
    columns: [filter]
    validRange: true
    tables: flat
"#;
    let defaults = PolicyDefaults::load_dir(&policy_path("obs_base")).unwrap();
    let policy = MapperPolicy::from_yaml_str(text, "calib.yaml", &defaults).unwrap();
    let calib = SqliteRegistry::in_memory().unwrap();
    let cols: Vec<(String, ColumnType)> = ["calibDate", "validStart", "validEnd", "filter"]
        .iter()
        .map(|c| (c.to_string(), ColumnType::Text))
        .collect();
    calib.create_table("flat", &cols, &[]).unwrap();
    let names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
    calib
        .insert_rows(
            "flat",
            &names,
            &[
                vec![
                    "1999-01-10".into(),
                    "1999-01-01".into(),
                    "1999-01-31".into(),
                    "g".into(),
                ],
                vec![
                    "1999-02-10".into(),
                    "1999-02-01".into(),
                    "1999-02-28".into(),
                    "g".into(),
                ],
                vec![
                    "1999-02-11".into(),
                    "1999-02-01".into(),
                    "1999-02-28".into(),
                    "r".into(),
                ],
            ],
        )
        .unwrap();
    let m = CameraMapper::open(
        policy,
        input(),
        CameraMapperOptions {
            calib_registry: Some(Box::new(calib)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        path(&m, "flat", data_id! {visit: 1}),
        "flat/1999-01-10/flat_fg.fits"
    );
    assert_eq!(
        path(&m, "flat", data_id! {visit: 3}),
        "flat/1999-02-11/flat_fr.fits"
    );
    assert_eq!(
        m.query_metadata("flat", &keys(&["calibDate"]), &data_id! {visit: 2})
            .unwrap(),
        vec![vec!["1999-01-10".into()]]
    );
    // An obs time outside every range finds nothing.
    let e = m
        .map("flat", &data_id! {visit: 1, taiObs: "2005-01-01"}, false)
        .unwrap_err();
    assert!(
        matches!(e, MapperError::NoUniqueLookup { found: 0, .. }),
        "{e}"
    );
    // The real calibRegistry: defects valid 1970-01-01 .. 2037-12-31.
    let calib = SqliteRegistry::open(input().join("calibRegistry.sqlite3")).unwrap();
    let rows = calib
        .lookup_query(&daf_mappers::registry::Lookup {
            properties: &keys(&["calibDate", "filter", "ccd"]),
            tables: &keys(&["defects"]),
            data_id: &data_id! {},
            valid_range: Some(&daf_mappers::registry::ValidRange {
                obs_time: "1999-01-17T04:52:34.895201920".into(),
                start_column: "validStart".into(),
                end_column: "validEnd".into(),
            }),
            template: None,
        })
        .unwrap();
    assert_eq!(
        rows,
        vec![vec!["1970-01-01T00:00:00".into(), "None".into(), 0.into()]]
    );
}

#[test]
fn reads_try_gz_and_fz_variants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        input().join("registry.sqlite3"),
        dir.path().join("registry.sqlite3"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("calexp")).unwrap();
    std::fs::write(dir.path().join("calexp/calexp_v1_fg.fits.fz"), b"x").unwrap();
    std::fs::write(dir.path().join("calexp/calexp_v2_fg.fits.gz"), b"x").unwrap();
    std::fs::write(dir.path().join("calexp/calexp_v3_fr.fits"), b"x").unwrap();
    let m = CameraMapper::from_policy_file(&policy_path("testMapper.yaml"), dir.path()).unwrap();
    assert_eq!(
        path(&m, "calexp", data_id! {visit: 1}),
        "calexp/calexp_v1_fg.fits.fz"
    );
    assert_eq!(
        path(&m, "calexp", data_id! {visit: 2}),
        "calexp/calexp_v2_fg.fits.gz"
    );
    assert_eq!(
        path(&m, "calexp", data_id! {visit: 3}),
        "calexp/calexp_v3_fr.fits"
    );
    let w = m.map("calexp", &data_id! {visit: 1}, true).unwrap();
    assert_eq!(w.locations, vec!["calexp/calexp_v1_fg.fits"]);
}
