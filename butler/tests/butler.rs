//! Butler behaviour with PropertySet datasets in JSON files (no camera
//! mapper or FITS needed).

use std::path::{Path, PathBuf};

use daf_base::{data_id, DataId, PropertySet};
use daf_butler::file_registry::{DatasetRecord, FileRegistry};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{testing, Butler, ButlerError, GetOptions, PutOptions, Repository};
use daf_mappers::KeyType;

mod common;
use common::{out_butler, ps, put_child, run_put_children};

fn mapper() -> SimpleMapper {
    SimpleMapper::new([
        (
            "meta",
            SimpleDataset::new(
                "meta/v%(visit)04d_f%(filter)s.json",
                "PropertySet",
                "JsonStorage",
            ),
        ),
        (
            "bad",
            SimpleDataset::new("bad/v%(visit)d.json", "PropertySet", "FailingStorage"),
        ),
        (
            "badwrite",
            SimpleDataset::new("bad/w%(visit)d.json", "PropertySet", "FailingWriteStorage"),
        ),
    ])
    .unwrap()
}

fn make_repo(root: &Path, parents: &[PathBuf]) {
    Repository::create(root, Some("SimpleMapper"), mapper().to_args(), parents).unwrap();
}

/// Files in `dir` (recursively), excluding the registry files.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("daf_registry")
                && !p.ends_with("repositoryCfg.yaml")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn put_get_registry_and_verify() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let b = out_butler(&root);
    let id = data_id! {visit: 1, filter: "g"};
    let paths = b.put(&ps(1), "meta", &id).unwrap();
    assert_eq!(paths, vec![root.join("meta/v0001_fg.json")]);
    let back: PropertySet = b.get("meta", &id).unwrap();
    assert_eq!(back, ps(1));
    assert!(b.dataset_exists("meta", &id).unwrap());
    assert!(!b
        .dataset_exists("meta", &data_id! {visit: 2, filter: "g"})
        .unwrap());
    assert_eq!(
        b.get_uri("meta", &id, false).unwrap(),
        root.join("meta/v0001_fg.json")
    );
    // a partial id is completed from the file registry
    let back: PropertySet = b.get("meta", &data_id! {visit: 1}).unwrap();
    assert_eq!(back.get::<i64>("value").unwrap(), 1);
    let reg = b.registry(0).unwrap();
    let rec = reg.find("meta", &id, None).unwrap().unwrap();
    assert_eq!(rec.path, "meta/v0001_fg.json");
    let bytes = std::fs::read(root.join(&rec.path)).unwrap();
    assert_eq!(rec.size, bytes.len() as u64);
    assert_eq!(rec.checksum, blake3::hash(&bytes).to_hex().to_string());
    assert!(reg.verify().unwrap().is_empty());
}

#[test]
fn overwrite_needs_clobber_and_backup_keeps_old() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let b = out_butler(&root);
    let id = data_id! {visit: 5, filter: "r"};
    b.put(&ps(1), "meta", &id).unwrap();
    let e = b.put(&ps(2), "meta", &id).unwrap_err();
    assert!(matches!(e, ButlerError::Exists { .. }), "{e}");
    assert!(e.to_string().contains("clobber"), "{e}");
    assert_eq!(b.get::<PropertySet>("meta", &id).unwrap(), ps(1));
    b.put_with(&ps(2), "meta", &id, &PutOptions::clobber())
        .unwrap();
    assert_eq!(b.get::<PropertySet>("meta", &id).unwrap(), ps(2));
    b.put_with(&ps(3), "meta", &id, &PutOptions::backup())
        .unwrap();
    b.put_with(&ps(4), "meta", &id, &PutOptions::backup())
        .unwrap();
    assert_eq!(b.get::<PropertySet>("meta", &id).unwrap(), ps(4));
    let f = root.join("meta/v0005_fr.json");
    let old1: PropertySet =
        serde_json::from_slice(&std::fs::read(format!("{}~1", f.display())).unwrap()).unwrap();
    let old2: PropertySet =
        serde_json::from_slice(&std::fs::read(format!("{}~2", f.display())).unwrap()).unwrap();
    assert_eq!(old1, ps(2));
    assert_eq!(old2, ps(3));
    assert_eq!(b.registry(0).unwrap().count().unwrap(), 1);
}

#[test]
fn runs_are_kept_apart_and_chosen_by_the_reader() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let b = out_butler(&root);
    let id = data_id! {visit: 1, filter: "g"};
    b.put_with(&ps(10), "meta", &id, &PutOptions::default().run("r1"))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    b.put_with(&ps(20), "meta", &id, &PutOptions::default().run("r2"))
        .unwrap();
    assert!(root.join("r1/meta/v0001_fg.json").is_file());
    assert!(root.join("r2/meta/v0001_fg.json").is_file());
    assert_eq!(b.get::<PropertySet>("meta", &id).unwrap(), ps(20));
    let r1: PropertySet = b
        .get_with("meta", &id, &GetOptions::default().run("r1"))
        .unwrap();
    assert_eq!(r1, ps(10));
    let e = b
        .get_with::<PropertySet>("meta", &id, &GetOptions::default().run("r9"))
        .unwrap_err();
    assert!(e.to_string().contains("run \"r9\""), "{e}");
}

#[test]
fn interrupted_put_leaves_no_file_and_no_row() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let b = out_butler(&root);
    for dt in ["bad", "badwrite"] {
        let e = b.put(&ps(1), dt, &data_id! {visit: 1}).unwrap_err();
        assert!(e.to_string().contains("simulated failure"), "{e}");
        assert!(e.to_string().contains("rolled back"), "{e}");
    }
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
    assert_eq!(b.registry(0).unwrap().count().unwrap(), 0);

    // a registry failure after the rename removes the new file and restores the backup
    let id = data_id! {visit: 3, filter: "g"};
    b.put(&ps(1), "meta", &id).unwrap();
    {
        let c = rusqlite::Connection::open(root.join("daf_registry.sqlite3")).unwrap();
        c.execute_batch(
            "CREATE TRIGGER boom BEFORE UPDATE ON datasets BEGIN SELECT RAISE(ABORT, 'simulated registry failure'); END;",
        )
        .unwrap();
    }
    let e = b
        .put_with(&ps(2), "meta", &id, &PutOptions::backup())
        .unwrap_err();
    assert!(e.to_string().contains("simulated registry failure"), "{e}");
    assert_eq!(b.get::<PropertySet>("meta", &id).unwrap(), ps(1));
    assert_eq!(files_under(&root), vec![root.join("meta/v0003_fg.json")]);
    assert!(b.registry(0).unwrap().verify().unwrap().is_empty());
}

#[test]
fn chained_repositories_read_through_and_write_to_outputs_only() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    make_repo(&input, &[]);
    out_butler(&input)
        .put(&ps(7), "meta", &data_id! {visit: 7, filter: "g"})
        .unwrap();

    // input only: reads work, writes are refused
    let ro = Butler::builder()
        .input(input.as_path())
        .persistence(testing::json_persistence())
        .build()
        .unwrap();
    assert_eq!(
        ro.get::<PropertySet>("meta", &data_id! {visit: 7, filter: "g"})
            .unwrap(),
        ps(7)
    );
    let e = ro
        .put(&ps(8), "meta", &data_id! {visit: 8, filter: "g"})
        .unwrap_err();
    assert!(matches!(e, ButlerError::ReadOnly { .. }), "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");

    // a new output over the input
    let out = d.path().join("out");
    let b = Butler::builder()
        .input(input.as_path())
        .output(out.as_path())
        .persistence(testing::json_persistence())
        .build()
        .unwrap();
    assert_eq!(
        b.repositories()
            .iter()
            .map(|r| r.root.clone())
            .collect::<Vec<_>>(),
        vec![out.clone(), input.clone()]
    );
    assert_eq!(
        b.get::<PropertySet>("meta", &data_id! {visit: 7}).unwrap(),
        ps(7)
    );
    b.put(&ps(8), "meta", &data_id! {visit: 8, filter: "g"})
        .unwrap();
    assert!(out.join("meta/v0008_fg.json").is_file());
    assert!(!input.join("meta/v0008_fg.json").exists());
    // the output shadows the input for the same id
    b.put(&ps(70), "meta", &data_id! {visit: 7, filter: "g"})
        .unwrap();
    assert_eq!(
        b.get::<PropertySet>("meta", &data_id! {visit: 7}).unwrap(),
        ps(70)
    );
    // reopening the output alone follows its recorded parent
    let again = out_butler(&out);
    assert_eq!(again.repositories().len(), 2);
    assert_eq!(
        again
            .query_metadata("meta", &["visit"], &DataId::new())
            .unwrap(),
        vec![vec![8.into()], vec![7.into()]]
    );

    // missing data names type, id and every repository searched
    let e = b
        .get::<PropertySet>("meta", &data_id! {visit: 99, filter: "g"})
        .unwrap_err()
        .to_string();
    assert!(e.contains("meta") && e.contains("visit: 99"), "{e}");
    assert!(
        e.contains(&out.display().to_string()) && e.contains(&input.display().to_string()),
        "{e}"
    );
}

#[test]
fn files_with_any_name_are_found_by_data_id() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    std::fs::create_dir_all(root.join("odd place")).unwrap();
    let f = root.join("odd place/whatever name.txt");
    std::fs::write(&f, serde_json::to_vec(&ps(42)).unwrap()).unwrap();
    {
        let mut reg = FileRegistry::open(&root, true).unwrap().unwrap();
        let (checksum, size) = daf_butler::file_registry::checksum_file(&f).unwrap();
        reg.insert(&DatasetRecord {
            id: 0,
            dataset_type: "meta".into(),
            data_id: data_id! {visit: 42, filter: "i"},
            run: String::new(),
            path: "odd place/whatever name.txt".into(),
            size,
            checksum,
            time_ns: 1,
            source: None,
        })
        .unwrap();
    }
    let b = out_butler(&root);
    assert_eq!(
        b.get::<PropertySet>("meta", &data_id! {visit: 42, filter: "i"})
            .unwrap(),
        ps(42)
    );
    assert_eq!(b.get_uri("meta", &data_id! {visit: 42}, false).unwrap(), f);
}

#[test]
fn queries_subsets_refs_aliases_and_batches() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let mut b = out_butler(&root);
    let objs: Vec<PropertySet> = (1..=4).map(ps).collect();
    let items: Vec<(&dyn daf_formatters::Persistable, DataId)> = vec![
        (&objs[0], data_id! {visit: 1, filter: "g"}),
        (&objs[1], data_id! {visit: 2, filter: "g"}),
        (&objs[2], data_id! {visit: 3, filter: "r"}),
        (&objs[3], data_id! {visit: 4, filter: "r"}),
    ];
    let written = b.put_many("meta", &items, &PutOptions::default()).unwrap();
    assert_eq!(written.len(), 4);
    assert_eq!(
        b.query_metadata("meta", &["visit", "filter"], &data_id! {filter: "g"})
            .unwrap(),
        vec![vec![1.into(), "g".into()], vec![2.into(), "g".into()]]
    );
    assert_eq!(
        b.query_metadata("meta", &["filter"], &DataId::new())
            .unwrap(),
        vec![vec!["g".into()], vec!["r".into()]]
    );
    assert!(b
        .query_metadata("meta", &["visit"], &data_id! {visit: 9})
        .unwrap()
        .is_empty());
    let keys = b.get_keys("meta", None).unwrap();
    assert_eq!(keys.get("visit"), Some(&KeyType::Int));
    assert_eq!(keys.get("filter"), Some(&KeyType::Str));

    let refs = b.subset("meta", None, &data_id! {filter: "r"}).unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0].data_id, data_id! {visit: 3, filter: "r"});
    assert_eq!(refs[1].get::<PropertySet>().unwrap(), ps(4));
    assert_eq!(b.subset("meta", None, &DataId::new()).unwrap().len(), 4);
    let one = b.data_ref("meta", None, &data_id! {visit: 2}).unwrap();
    assert!(one.exists(None).unwrap());
    assert_eq!(one.uri(None).unwrap(), root.join("meta/v0002_fg.json"));
    assert_eq!(one.sub_items(None).unwrap().len(), 1);
    let e = b
        .data_ref("meta", None, &data_id! {filter: "g"})
        .unwrap_err();
    assert!(matches!(e, ButlerError::NotUnique { count: 2, .. }), "{e}");

    b.define_alias("m", "meta").unwrap();
    assert_eq!(
        b.get::<PropertySet>("@m", &data_id! {visit: 3}).unwrap(),
        ps(3)
    );
    assert!(b.define_alias("@mx", "meta").is_err());
    assert!(b.define_alias("@z", "a@b").is_err());
    assert!(b.get::<PropertySet>("@nope", &data_id! {visit: 3}).is_err());

    let ids: Vec<DataId> = (1..=5).map(|v| data_id! {visit: v}).collect();
    let got = b.get_many::<PropertySet>("meta", &ids, &GetOptions::default());
    assert_eq!(got.len(), 5);
    for (i, g) in got.iter().take(4).enumerate() {
        assert_eq!(g.as_ref().unwrap(), &objs[i]);
    }
    assert!(matches!(got[4], Err(ButlerError::NotFound { .. })));
}

#[test]
fn bad_data_ids_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    let b = out_butler(&root);
    let e = b
        .put(&ps(1), "meta", &data_id! {visit: "x", filter: "g"})
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be an integer"), "{e}");
    let e = b
        .put(&ps(1), "meta", &data_id! {visit: 1, filter: "g", ccd: 2})
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown key \"ccd\""), "{e}");
    let e = b
        .put(&ps(1), "nosuch", &data_id! {visit: 1})
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown dataset type"), "{e}");
    assert!(files_under(&root).is_empty());
}

const CHILD_ENV: &str = "DAF_BUTLER_STRESS_CHILD";

/// Run by `concurrent_processes_lose_nothing` in 8 child processes.
#[test]
fn stress_child() {
    put_child(CHILD_ENV, 1000);
}

#[test]
fn concurrent_processes_lose_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    make_repo(&root, &[]);
    run_put_children("stress_child", CHILD_ENV, &root, 8);
    let b = out_butler(&root);
    let reg = b.registry(0).unwrap();
    assert_eq!(reg.count().unwrap(), 8000);
    assert_eq!(files_under(&root).len(), 8000);
    assert!(reg.verify().unwrap().is_empty());
    drop(reg);
    for visit in [0i64, 999, 3500, 7999] {
        assert_eq!(
            b.get::<PropertySet>("meta", &data_id! {visit: visit})
                .unwrap(),
            ps(visit)
        );
    }
}
