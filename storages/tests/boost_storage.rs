//! BoostStorage and XmlStorage: policy, detection, atomic writes, errors.

use daf_base::Policy;
use daf_storages::boost::ArchiveKind;
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::{BoostStorage, LogicalLocation, Storage, StorageError, XmlStorage};

fn loc(p: &std::path::Path) -> LogicalLocation {
    LogicalLocation::literal(p.to_str().unwrap())
}

fn write(s: &mut ArchiveStorage, path: &std::path::Path, v: &Vec<f64>) {
    s.set_persist_location(&loc(path)).unwrap();
    s.start_transaction().unwrap();
    s.write_archive(|ar| ar.field("v", v)).unwrap();
    s.prepare_commit().unwrap();
    s.end_transaction().unwrap();
}

fn read(path: &std::path::Path, mut s: ArchiveStorage) -> (Vec<f64>, ArchiveKind, u16) {
    s.set_retrieve_location(&loc(path)).unwrap();
    s.start_transaction().unwrap();
    let v: Vec<f64> = s.read_archive(|ar| ar.field("v")).unwrap();
    s.end_transaction().unwrap();
    let r = s.last_read().unwrap();
    (v, r.kind, r.version)
}

#[test]
fn policy_picks_kind_and_version_and_reads_detect_them() {
    let dir = tempfile::tempdir().unwrap();
    let v = vec![1.5, -2.0];
    for (archive, version, kind, lv, start) in [
        (
            "binary",
            "1.74",
            ArchiveKind::Binary,
            18,
            &b"\x16\0\0\0\0\0\0\0serialization::archive\x12\0"[..],
        ),
        (
            "text",
            "19",
            ArchiveKind::Text,
            19,
            b"22 serialization::archive 19 ",
        ),
        (
            "TEXT",
            "1.81.0",
            ArchiveKind::Text,
            19,
            b"22 serialization::archive 19 ",
        ),
    ] {
        let path = dir.path().join(format!("{archive}{version}.boost"));
        let mut policy = Policy::new();
        policy.set("archive", archive).unwrap();
        policy.set("boost_version", version).unwrap();
        let mut s = BoostStorage::new();
        s.set_policy(Some(&policy)).unwrap();
        write(&mut s, &path, &v);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(start), "{archive}");
        // A reader with the default policy detects kind and version.
        assert_eq!(read(&path, BoostStorage::new()), (v.clone(), kind, lv));
    }
    let path = dir.path().join("x.xml");
    let mut s = XmlStorage::xml();
    write(&mut s, &path, &v);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("<?xml"));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("<boost_serialization signature=\"serialization::archive\" version=\"18\">"));
    assert_eq!(
        read(&path, XmlStorage::xml()),
        (v.clone(), ArchiveKind::Xml, 18)
    );
    // With no policy at all, BoostStorage writes LSST's text archives at
    // Boost 1.74's library version 18.
    let path = dir.path().join("default.boost");
    let mut s = BoostStorage::new();
    s.set_policy(None).unwrap();
    write(&mut s, &path, &v);
    assert!(std::fs::read(&path)
        .unwrap()
        .starts_with(b"22 serialization::archive 18 "));
    assert_eq!(
        read(&path, BoostStorage::new()),
        (v.clone(), ArchiveKind::Text, 18)
    );
    // XmlStorage refuses a binary archive.
    let bin = dir.path().join("binary1.74.boost");
    let mut s = XmlStorage::xml();
    s.set_retrieve_location(&loc(&bin)).unwrap();
    let err = s.read_archive(|ar| ar.field::<Vec<f64>>("v")).unwrap_err();
    assert!(
        err.to_string()
            .contains("XmlStorage found a binary archive"),
        "{err}"
    );
}

#[test]
fn no_header_archives_use_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nh.bin");
    let mut policy = Policy::new();
    policy.set("no_header", "true").unwrap();
    policy.set("archive", "binary").unwrap();
    let mut s = BoostStorage::new();
    s.set_policy(Some(&policy)).unwrap();
    write(&mut s, &path, &vec![3.0]);
    assert_eq!(std::fs::read(&path).unwrap().len(), 8 + 8);
    let mut r = BoostStorage::new();
    r.set_policy(Some(&policy)).unwrap();
    assert_eq!(read(&path, r).0, vec![3.0]);
}

#[test]
fn bad_policies_are_errors() {
    for (key, value) in [
        ("archive", "zip"),
        ("boost_version", "1.50"),
        ("archive", "xml"),
    ] {
        let mut policy = Policy::new();
        policy.set(key, value).unwrap();
        let err = BoostStorage::new().set_policy(Some(&policy)).unwrap_err();
        assert!(
            err.to_string().contains(value) || err.to_string().contains("XmlStorage"),
            "{err}"
        );
    }
}

#[test]
fn abort_leaves_nothing_and_protocol_misuse_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.boost");
    let mut s = BoostStorage::new();
    assert!(matches!(
        s.start_transaction(),
        Err(StorageError::State { .. })
    ));
    s.set_persist_location(&loc(&path)).unwrap();
    assert!(
        s.write_archive(|ar| ar.field("x", &1i32)).is_err(),
        "outside a transaction"
    );
    s.start_transaction().unwrap();
    s.write_archive(|ar| ar.field("x", &1i32)).unwrap();
    let twice = s.write_archive(|ar| ar.field("x", &1i32)).unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
    s.prepare_commit().unwrap();
    s.abort_transaction().unwrap();
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        0
    );

    let mut r = BoostStorage::new();
    let err = r.set_retrieve_location(&loc(&path)).unwrap_err();
    assert!(
        matches!(&err, StorageError::NotFound { what } if what.contains("c.boost")),
        "{err}"
    );
}

#[test]
fn corrupt_files_are_format_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.boost");
    std::fs::write(&path, b"not an archive").unwrap();
    let mut s = BoostStorage::new();
    s.set_retrieve_location(&loc(&path)).unwrap();
    let err = s.read_archive(|ar| ar.field::<i32>("x")).unwrap_err();
    assert!(
        matches!(&err, StorageError::Format { what, .. } if what.contains("junk.boost")),
        "{err}"
    );
}

#[test]
fn finite_only_policy_refuses_nan_in_text_archives_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::new();
    policy.set("finite_only", "true").unwrap();
    for (archive, refused) in [("text", true), ("binary", false)] {
        let path = dir.path().join(format!("nan.{archive}"));
        policy.set("archive", archive).unwrap();
        let mut s = BoostStorage::new();
        s.set_policy(Some(&policy)).unwrap();
        assert!(s.settings().finite_only);
        s.set_persist_location(&loc(&path)).unwrap();
        s.start_transaction().unwrap();
        let r = s.write_archive(|ar| ar.field("v", &vec![1.0, f64::NAN]));
        if refused {
            let err = r.unwrap_err();
            assert!(
                err.to_string().contains("finite_only") && err.to_string().contains("NaN"),
                "{err}"
            );
            s.abort_transaction().unwrap();
            assert!(!path.exists());
        } else {
            r.unwrap();
            s.prepare_commit().unwrap();
            s.end_transaction().unwrap();
            let (v, kind, _) = read(&path, BoostStorage::new());
            assert_eq!(kind, ArchiveKind::Binary);
            assert!(v[1].is_nan());
        }
    }
    // XmlStorage takes the same key.
    let mut s = XmlStorage::xml();
    let mut policy = Policy::new();
    policy.set("finite_only", "true").unwrap();
    s.set_policy(Some(&policy)).unwrap();
    s.set_persist_location(&loc(&dir.path().join("inf.xml")))
        .unwrap();
    s.start_transaction().unwrap();
    assert!(s
        .write_archive(|ar| ar.field("v", &vec![f64::INFINITY]))
        .is_err());
    s.abort_transaction().unwrap();
    assert!(!dir.path().join("inf.xml").exists());
}
