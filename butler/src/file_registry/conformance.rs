//! The conformance suite every [`DatasetRegistry`](super::DatasetRegistry)
//! backend must pass.
//!
//! A backend test makes an empty folder (the repository root) and a fresh,
//! empty registry store for it, and calls [`run`] with a function that opens
//! a new handle on that store: the suite opens two handles, to check that
//! one sees what the other wrote (the cross-process guarantee the butler
//! relies on).
//!
//! ```
//! use daf_butler::file_registry::{conformance, FileRegistry};
//! let dir = tempfile::tempdir().unwrap();
//! let root = dir.path().to_path_buf();
//! conformance::run(&root, &|| FileRegistry::open(&root, true).unwrap().unwrap());
//! ```

use std::path::Path;

use daf_base::{data_id, DataId};

use super::{checksum_file, Claim, DatasetRecord, FileRegistry, Intent, IntentMode, Problem};

/// A record of the existing file `root/path` (its real size and checksum).
pub(crate) fn record(
    root: &Path,
    dt: &str,
    id: DataId,
    run: &str,
    path: &str,
    time_ns: i64,
) -> DatasetRecord {
    let (checksum, size) = checksum_file(&root.join(path)).expect("test file exists");
    DatasetRecord {
        id: 0,
        dataset_type: dt.into(),
        data_id: id,
        run: run.into(),
        path: path.into(),
        size,
        checksum,
        time_ns,
        source: None,
    }
}

fn paths(v: &[DatasetRecord]) -> Vec<&str> {
    v.iter().map(|r| r.path.as_str()).collect()
}

/// Runs every check against the registry `open` opens for the empty
/// repository folder `root` (each call a new handle on one empty store).
/// Panics on the first failure.
pub fn run(root: &Path, open: &dyn Fn() -> FileRegistry) {
    for (name, bytes) in [
        ("a.bin", &b"first"[..]),
        ("b.bin", b"second!"),
        ("c.bin", b"third"),
        ("odd name ü.txt", b"{}"),
    ] {
        std::fs::write(root.join(name), bytes).expect("write test file");
    }
    let mut a = open();
    let b = open();
    assert_eq!(a.root(), root);
    assert!(!a.describe().is_empty());

    // empty
    assert_eq!(a.count().unwrap(), 0);
    assert!(a.all().unwrap().is_empty());
    assert!(a.dataset_types().unwrap().is_empty());
    let id1 = data_id! {visit: 1, filter: "g"};
    assert!(a.find("calexp", &id1, None).unwrap().is_none());
    assert!(a.find_by_source("/nowhere").unwrap().is_none());
    assert!(a.insert_many(&[]).unwrap().is_empty());

    // runs: newest by default, a named one on request
    let r1 = a
        .insert(&record(root, "calexp", id1.clone(), "r1", "a.bin", 100))
        .unwrap();
    let r2 = a
        .insert(&record(root, "calexp", id1.clone(), "r2", "b.bin", 200))
        .unwrap();
    assert_ne!(r1, r2);
    assert_eq!(a.count().unwrap(), 2);
    let newest = a.find("calexp", &id1, None).unwrap().unwrap();
    assert_eq!((newest.run.as_str(), newest.id), ("r2", r2));
    assert_eq!(newest.size, 7);
    assert_eq!(
        newest.checksum,
        blake3::hash(b"second!").to_hex().to_string()
    );
    assert_eq!(newest.time_ns, 200);
    assert_eq!(newest.data_id, id1);
    let named = a.find("calexp", &id1, Some("r1")).unwrap().unwrap();
    assert_eq!((named.path.as_str(), named.id), ("a.bin", r1));
    assert!(a.find("calexp", &id1, Some("r3")).unwrap().is_none());
    assert!(a.find("raw", &id1, None).unwrap().is_none());
    // the data id is matched exactly (order of keys does not matter)
    let reordered: DataId = [
        ("filter".to_string(), "g".into()),
        ("visit".to_string(), 1.into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(a.find("calexp", &reordered, None).unwrap().unwrap().id, r2);
    assert!(a
        .find("calexp", &data_id! {visit: 1}, None)
        .unwrap()
        .is_none());
    // equal times: the later row wins
    let id_t = data_id! {visit: 7};
    a.insert(&record(root, "tie", id_t.clone(), "x", "a.bin", 5))
        .unwrap();
    let later = a
        .insert(&record(root, "tie", id_t.clone(), "y", "b.bin", 5))
        .unwrap();
    assert_eq!(a.find("tie", &id_t, None).unwrap().unwrap().id, later);

    // the other handle sees every committed write at once
    assert_eq!(b.find("calexp", &id1, None).unwrap().unwrap().id, r2);
    assert_eq!(b.count().unwrap(), 4);

    // upsert: same (type, id, run) replaces, keeping the row id
    let mut moved = record(root, "calexp", id1.clone(), "r1", "c.bin", 300);
    moved.source = Some("/src/c.bin".into());
    assert_eq!(a.insert(&moved).unwrap(), r1);
    assert_eq!(a.count().unwrap(), 4);
    let got = b.find("calexp", &id1, Some("r1")).unwrap().unwrap();
    assert_eq!(
        (got.path.as_str(), got.time_ns, got.source.as_deref()),
        ("c.bin", 300, Some("/src/c.bin"))
    );
    assert_eq!(b.find("calexp", &id1, None).unwrap().unwrap().run, "r1");
    assert_eq!(
        b.find_by_source("/src/c.bin").unwrap().unwrap().id,
        r1,
        "find_by_source"
    );

    // batches: ids in input order; a repeated key in one batch: last wins
    let batch: Vec<DatasetRecord> = vec![
        record(
            root,
            "raw",
            data_id! {visit: 10, ccd: "1,1"},
            "",
            "a.bin",
            1,
        ),
        record(
            root,
            "raw",
            data_id! {visit: 11, ccd: "1,1"},
            "",
            "b.bin",
            2,
        ),
        record(
            root,
            "raw",
            data_id! {visit: 10, ccd: "1,1"},
            "",
            "c.bin",
            3,
        ),
        record(
            root,
            "Zeta",
            data_id! {name: "it's \"quoted\" ü", x: 1.5},
            "",
            "odd name ü.txt",
            4,
        ),
    ];
    let ids = a.insert_many(&batch).unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[2]);
    assert!(ids[0] != ids[1] && ids[1] != ids[3]);
    assert_eq!(a.count().unwrap(), 7);
    let r10 = b
        .find("raw", &data_id! {visit: 10, ccd: "1,1"}, None)
        .unwrap()
        .unwrap();
    assert_eq!((r10.id, r10.path.as_str()), (ids[0], "c.bin"));
    let odd = b
        .find(
            "Zeta",
            &data_id! {name: "it's \"quoted\" ü", x: 1.5},
            Some(""),
        )
        .unwrap()
        .unwrap();
    assert_eq!(odd.path, "odd name ü.txt");
    // sorted by bytes, de-duplicated
    assert_eq!(
        b.dataset_types().unwrap(),
        vec!["Zeta", "calexp", "raw", "tie"]
    );

    // partial matching: type, run, numeric int/float, string not number;
    // insertion (row id) order
    let m = b
        .find_matching(Some("calexp"), &data_id! {filter: "g"}, None)
        .unwrap();
    assert_eq!(paths(&m), vec!["c.bin", "b.bin"]);
    assert!(m[0].id < m[1].id);
    // the projection of the same rows, in the same order
    let proj = b
        .project_matching("calexp", &data_id! {filter: "g"}, &["filter", "visit"])
        .unwrap();
    let want: Vec<Vec<daf_base::DataIdValue>> = m
        .iter()
        .map(|r| {
            vec![
                r.data_id.get("filter").unwrap().clone(),
                r.data_id.get("visit").unwrap().clone(),
            ]
        })
        .collect();
    assert_eq!(proj, want);
    assert_eq!(proj[0][0], daf_base::DataIdValue::Str("g".into()));
    assert!(b
        .project_matching("calexp", &DataId::new(), &["visit", "nope"])
        .unwrap()
        .is_empty());
    let m = b
        .find_matching(Some("calexp"), &data_id! {visit: 1.0}, Some("r2"))
        .unwrap();
    assert_eq!(paths(&m), vec!["b.bin"]);
    assert!(b
        .find_matching(None, &data_id! {visit: "1"}, None)
        .unwrap()
        .is_empty());
    let m = b.find_matching(None, &data_id! {ccd: "1,1"}, None).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].data_id, data_id! {visit: 10, ccd: "1,1"});
    let m = b.find_matching(None, &data_id! {x: 1.5}, None).unwrap();
    assert_eq!(paths(&m), vec!["odd name ü.txt"]);
    let m = b.find_matching(None, &DataId::new(), Some("")).unwrap();
    assert_eq!(m.len(), 3);
    let all = b.all().unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "insertion order");

    // remove (twice is fine); the other handle sees it
    a.remove(ids[1]).unwrap();
    a.remove(ids[1]).unwrap();
    assert!(b
        .find("raw", &data_id! {visit: 11, ccd: "1,1"}, None)
        .unwrap()
        .is_none());
    assert_eq!(b.count().unwrap(), 6);

    // full paths: relative to the root, absolute as they are
    let abs_file = root.join("c.bin");
    let mut abs = record(root, "abs", data_id! {visit: 3}, "", "c.bin", 9);
    abs.path = abs_file.to_string_lossy().into_owned();
    a.insert(&abs).unwrap();
    let got = b.find("abs", &data_id! {visit: 3}, None).unwrap().unwrap();
    assert_eq!(b.full_path(&got), abs_file);
    assert_eq!(b.full_path(&r10), root.join("c.bin"));

    // verify: clean, then damaged in three ways (row order)
    assert!(b.verify().unwrap().is_empty());
    std::fs::write(root.join("a.bin"), b"FIRST").unwrap(); // same size
    std::fs::write(root.join("b.bin"), b"x").unwrap(); // size
    let v = b.verify().unwrap();
    // a.bin: the (tie, x) row; b.bin: (calexp, r2) and (tie, y)
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v.windows(2).all(|w| w[0].record.id < w[1].record.id));
    let by_path = |p: &str| -> Vec<&Problem> {
        v.iter()
            .filter(|m| m.record.path == p)
            .map(|m| &m.problem)
            .collect()
    };
    assert!(matches!(by_path("a.bin")[..], [Problem::Checksum { .. }]));
    assert!(matches!(
        by_path("b.bin")[..],
        [
            Problem::Size {
                expected: 7,
                actual: 1
            },
            Problem::Size { .. }
        ]
    ));
    std::fs::remove_file(root.join("odd name ü.txt")).unwrap();
    let v = b.verify().unwrap();
    let gone: Vec<_> = v.iter().filter(|m| m.problem == Problem::Missing).collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].full_path, root.join("odd name ü.txt"));

    // a batch larger than one statement's worth, all in one go
    let big: Vec<DatasetRecord> = (0..12_000i64)
        .map(|v| {
            let mut r = record(root, "big", data_id! {visit: v}, "run", "c.bin", v);
            r.source = Some(format!("/src/{v}"));
            r
        })
        .collect();
    let ids = a.insert_many(&big).unwrap();
    assert_eq!(ids.len(), 12_000);
    assert_eq!(b.count().unwrap(), 7 + 12_000);
    let r = b
        .find("big", &data_id! {visit: 11_999}, None)
        .unwrap()
        .unwrap();
    assert_eq!((r.id, r.time_ns), (ids[11_999], 11_999));
    assert_eq!(b.find_by_source("/src/7").unwrap().unwrap().id, ids[7]);
    assert_eq!(
        b.find_matching(Some("big"), &DataId::new(), None)
            .unwrap()
            .len(),
        12_000
    );

    // provenance: recorded, replaced, sorted, seen by the other handle
    let out = data_id! {visit: 1, ccd: 0};
    assert!(b.provenance("postISR", &out).unwrap().is_empty());
    let raw = ("raw".to_string(), data_id! {visit: 1, ccd: 0});
    let bias = ("bias".to_string(), data_id! {ccd: 0});
    let flat = ("flat".to_string(), data_id! {ccd: 0, filter: "g"});
    a.record_provenance("postISR", &out, &[raw.clone(), bias.clone(), raw.clone()])
        .unwrap();
    assert_eq!(
        b.provenance("postISR", &data_id! {ccd: 0, visit: 1})
            .unwrap(),
        vec![bias.clone(), raw.clone()],
        "sorted, duplicates once, data-id key order irrelevant"
    );
    a.record_provenance("postISR", &out, &[flat.clone(), raw.clone()])
        .unwrap();
    assert_eq!(b.provenance("postISR", &out).unwrap(), vec![flat, raw]);
    assert!(b
        .provenance("postISR", &data_id! {visit: 2, ccd: 0})
        .unwrap()
        .is_empty());
    a.record_provenance("postISR", &out, &[]).unwrap();
    assert!(b.provenance("postISR", &out).unwrap().is_empty());

    intents(open);
}

/// Intents (pending puts): one claim per data id at a time, seen by the
/// other handle; settle records the row and drops the intent atomically.
fn intents(open: &dyn Fn() -> FileRegistry) {
    let (mut a, mut b) = (open(), open());
    let it = |id: i64, owner: &str| Intent {
        id: 0,
        dataset_type: "pending".into(),
        data_id: data_id! {visit: id},
        run: "r".into(),
        mode: IntentMode::New,
        files: vec![(format!("p/{id}.bin"), format!("p/.daf-tmp.x.{id}.bin"))],
        checksum: "abc".into(),
        size: 3,
        owner: owner.into(),
        time_ns: 5,
    };
    let claims = a.claim(&[it(1, "me"), it(2, "me")]).unwrap();
    let ids: Vec<i64> = claims
        .iter()
        .map(|c| match c {
            Claim::Claimed {
                intent,
                existing: None,
            } => *intent,
            other => panic!("expected a fresh claim, got {other:?}"),
        })
        .collect();
    // the other handle finds them held
    match &b.claim(&[it(1, "you")]).unwrap()[0] {
        Claim::Busy(h) => {
            assert_eq!(h.owner, "me");
            assert_eq!(h.files, it(1, "me").files);
            assert_eq!(h.mode, IntentMode::New);
            assert_eq!((h.checksum.as_str(), h.size), ("abc", 3));
        }
        other => panic!("expected busy, got {other:?}"),
    }
    assert_eq!(b.intents().unwrap().len(), 2);
    // take-over only from the named owner, once
    assert!(!b.take_over(ids[1], "you", "them").unwrap());
    assert!(b.take_over(ids[1], "me", "them").unwrap());
    assert!(!a.take_over(ids[1], "me", "x").unwrap());
    // settle: row in, intent out, in one step
    let rec = DatasetRecord {
        id: 0,
        dataset_type: "pending".into(),
        data_id: data_id! {visit: 1},
        run: "r".into(),
        path: "p/1.bin".into(),
        size: 3,
        checksum: "abc".into(),
        time_ns: 6,
        source: None,
    };
    a.settle(&[rec], &[ids[0]]).unwrap();
    assert!(b
        .find("pending", &data_id! {visit: 1}, Some("r"))
        .unwrap()
        .is_some());
    let left = b.intents().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner, "them");
    // a new claim of a data id with a row reports the row
    match &b.claim(&[it(1, "you")]).unwrap()[0] {
        Claim::Claimed {
            intent,
            existing: Some(r),
        } => {
            assert_eq!(r.path, "p/1.bin");
            b.release(&[*intent]).unwrap();
        }
        other => panic!("expected a claim seeing the row, got {other:?}"),
    }
    a.release(&[ids[1]]).unwrap();
    assert!(a.intents().unwrap().is_empty());
    // discard: a removal's row and intent go in one step
    let row = b
        .find("pending", &data_id! {visit: 1}, Some("r"))
        .unwrap()
        .unwrap();
    let mut gone = it(1, "me");
    gone.mode = IntentMode::Remove;
    gone.files = vec![("p/1.bin".into(), String::new())];
    let intent = match &a.claim(&[gone]).unwrap()[0] {
        Claim::Claimed {
            intent,
            existing: Some(r),
        } => {
            assert_eq!(r.id, row.id);
            *intent
        }
        other => panic!("expected a claim seeing the row, got {other:?}"),
    };
    assert_eq!(b.intents().unwrap()[0].mode, IntentMode::Remove);
    a.discard(&[row.id], &[intent]).unwrap();
    assert!(b
        .find("pending", &data_id! {visit: 1}, Some("r"))
        .unwrap()
        .is_none());
    assert!(b.intents().unwrap().is_empty());
    a.discard(&[row.id], &[intent]).unwrap();
    a.discard(&[], &[]).unwrap();
}
