//! Issue 3, items 1–3 and 6: registries, Persistence over BoostStorage and
//! XmlStorage with real rollback, and the PropertySet formatter against the
//! C++ goldens.

use std::any::Any;
use std::path::{Path, PathBuf};

use daf_base::testing::manifest_property_set;
use daf_base::{Policy, PropertySet};
use daf_formatters::{
    Formatter, FormatterError, FormatterRegistry, Persistable, Persistence, PropertySetFormatter,
};
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::{LogicalLocation, Storage, StorageError, StorageRegistry};

fn golden(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/boost")
        .join(path)
}

fn loc(p: &Path) -> LogicalLocation {
    LogicalLocation::literal(p.to_str().unwrap())
}

/// Every file below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---- a storage that fails on demand (test only) ---------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum FailAt {
    Start,
    Write,
    Prepare,
    /// Fails at `end_transaction`, after the storages before it committed.
    Commit,
    /// Never fails, commits, and cannot undo its commit.
    Never,
}

#[derive(Debug)]
struct FailingStorage {
    fail_at: FailAt,
    aborted: bool,
}

impl Storage for FailingStorage {
    fn storage_name(&self) -> &str {
        "FailingStorage"
    }
    fn set_persist_location(&mut self, _l: &LogicalLocation) -> daf_storages::Result<()> {
        Ok(())
    }
    fn set_retrieve_location(&mut self, _l: &LogicalLocation) -> daf_storages::Result<()> {
        Ok(())
    }
    fn start_transaction(&mut self) -> daf_storages::Result<()> {
        if self.fail_at == FailAt::Start {
            return Err(StorageError::state(
                "FailingStorage",
                "start failed on purpose",
            ));
        }
        Ok(())
    }
    fn prepare_commit(&mut self) -> daf_storages::Result<()> {
        if self.fail_at == FailAt::Prepare {
            return Err(StorageError::state(
                "FailingStorage",
                "prepare failed on purpose",
            ));
        }
        Ok(())
    }
    fn end_transaction(&mut self) -> daf_storages::Result<()> {
        if self.fail_at == FailAt::Commit {
            return Err(StorageError::state(
                "FailingStorage",
                "commit failed on purpose",
            ));
        }
        Ok(())
    }
    fn abort_transaction(&mut self) -> daf_storages::Result<()> {
        self.aborted = true;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("FailingStorage({:?})", self.fail_at)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A test persistable with a formatter that supports both ArchiveStorage and FailingStorage.
#[derive(Debug, Clone, PartialEq)]
struct Note(String);
daf_formatters::impl_persistable!(Note, "Note");

struct NoteFormatter;
impl Formatter for NoteFormatter {
    fn persistable_name(&self) -> &str {
        "Note"
    }
    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        _ad: &PropertySet,
    ) -> daf_formatters::Result<()> {
        let note: &Note = daf_formatters::formatter::expect_object(self, obj)?;
        if let Some(f) = storage.as_any_mut().downcast_mut::<FailingStorage>() {
            if f.fail_at == FailAt::Write {
                return Err(FormatterError::Invalid {
                    persistable: "Note".into(),
                    message: "write failed on purpose".into(),
                });
            }
            return Ok(());
        }
        match storage.as_any_mut().downcast_mut::<ArchiveStorage>() {
            Some(s) => Ok(s.write_archive(|ar| ar.field("note", &note.0))?),
            None => Err(daf_formatters::formatter::unsupported(self, storage)),
        }
    }
    fn read(
        &self,
        storage: &mut dyn Storage,
        _ad: &PropertySet,
    ) -> daf_formatters::Result<Box<dyn Persistable>> {
        match storage.as_any_mut().downcast_mut::<ArchiveStorage>() {
            Some(s) => Ok(Box::new(Note(s.read_archive(|ar| ar.field("note"))?))),
            None => Err(daf_formatters::formatter::unsupported(self, storage)),
        }
    }
}

fn persistence(policy: Policy) -> Persistence {
    let mut formatters = FormatterRegistry::with_defaults();
    formatters
        .register::<Note>("Note", |_| Box::new(NoteFormatter))
        .unwrap();
    Persistence::new(policy, formatters, StorageRegistry::with_defaults())
}

// ---- item 1: StorageRegistry ---------------------------------------------

#[test]
fn storage_registry_creates_by_name_and_lists_known_names() {
    let reg = StorageRegistry::with_defaults();
    assert!(reg.contains("BoostStorage") && reg.contains("XmlStorage"));
    assert_eq!(
        reg.create("BoostStorage").unwrap().storage_name(),
        "BoostStorage"
    );
    assert_eq!(
        reg.create("XmlStorage").unwrap().storage_name(),
        "XmlStorage"
    );
    let err = reg.create("NoSuchStorage").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, StorageError::UnknownStorage { known, .. } if known.contains(&"BoostStorage".to_string()))
    );
    assert!(
        msg.contains("NoSuchStorage") && msg.contains("BoostStorage") && msg.contains("XmlStorage"),
        "{msg}"
    );

    let mut reg = reg;
    let dup = reg
        .register("BoostStorage", || Box::new(ArchiveStorage::new()))
        .unwrap_err();
    assert!(matches!(dup, StorageError::DuplicateStorage { ref name } if name == "BoostStorage"));
    reg.register("FailingStorage", || {
        Box::new(FailingStorage {
            fail_at: FailAt::Write,
            aborted: false,
        })
    })
    .unwrap();
    assert_eq!(
        reg.create("FailingStorage").unwrap().storage_name(),
        "FailingStorage"
    );
}

// ---- item 2: FormatterRegistry -------------------------------------------

#[test]
fn formatter_registry_by_name_and_type_duplicates_and_unknowns() {
    let mut reg = FormatterRegistry::with_defaults();
    assert_eq!(
        reg.lookup_by_name("PropertySet", None)
            .unwrap()
            .persistable_name(),
        "PropertySet"
    );
    assert_eq!(
        reg.lookup_by_type::<PropertySet>(None)
            .unwrap()
            .persistable_name(),
        "PropertySet"
    );
    assert_eq!(reg.name_of::<PropertySet>(), Some("PropertySet"));
    let ps = PropertySet::new();
    assert_eq!(
        reg.lookup_for(&ps, None).unwrap().persistable_name(),
        "PropertySet"
    );

    let dup = reg
        .register::<PropertySet>("PropertySet", |_| Box::new(PropertySetFormatter::new()))
        .expect_err("duplicate name is an error");
    assert!(
        matches!(&dup, FormatterError::DuplicateName { name } if name == "PropertySet"),
        "{dup}"
    );

    let err = reg.lookup_by_name("NoSuchPersistable", None).err().unwrap();
    assert!(err.to_string().contains("NoSuchPersistable"), "{err}");
    let err = reg.lookup_by_type::<Note>(None).err().unwrap();
    assert!(err.to_string().contains("Note"), "{err}");

    reg.register::<Note>("Note", |_| Box::new(NoteFormatter))
        .unwrap();
    assert_eq!(
        reg.lookup_by_type::<Note>(None).unwrap().persistable_name(),
        "Note"
    );
    assert!(
        reg.names().contains(&"Note".to_string())
            && reg.names().contains(&"PropertySet".to_string())
    );
}

#[test]
fn formatter_handed_an_unsupported_storage_names_both() {
    let f = PropertySetFormatter::new();
    let mut s = FailingStorage {
        fail_at: FailAt::Start,
        aborted: false,
    };
    let err = f
        .write(&manifest_property_set(), &mut s, &PropertySet::new())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("PropertySet") && msg.contains("FailingStorage"),
        "{msg}"
    );
}

// ---- item 3: Persistence -------------------------------------------------

#[test]
fn persist_to_boost_and_xml_then_retrieve_first_reads_later_update() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("deep/er/ps.boost");
    let xml = dir.path().join("x/ps.xml");
    let p = persistence(Policy::new());
    let ps = manifest_property_set();
    let mut storages = vec![
        p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
        p.persist_storage("XmlStorage", &loc(&xml)).unwrap(),
    ];
    p.persist(&ps, &mut storages, &PropertySet::new()).unwrap();
    assert!(
        bin.is_file() && xml.is_file(),
        "parent folders created, files committed"
    );
    assert_eq!(files_under(dir.path()).len(), 2, "no temporary files left");
    assert!(std::fs::read_to_string(&xml)
        .unwrap()
        .contains("<propertySet class_id=\"0\""));

    // Retrieve: the binary archive reads, the XML archive updates.
    let mut storages = vec![
        p.retrieve_storage("BoostStorage", &loc(&bin)).unwrap(),
        p.retrieve_storage("XmlStorage", &loc(&xml)).unwrap(),
    ];
    let back = p
        .retrieve("PropertySet", &mut storages, &PropertySet::new())
        .unwrap();
    assert_eq!(back.downcast_ref::<PropertySet>().unwrap(), &ps);

    // Update really merges: an XML archive with an extra name adds it.
    let mut more = PropertySet::new();
    more.set("extra", 7i32).unwrap();
    more.set("num", 43i32).unwrap();
    let xml2 = dir.path().join("x/more.xml");
    let mut s = vec![p.persist_storage("XmlStorage", &loc(&xml2)).unwrap()];
    p.persist(&more, &mut s, &PropertySet::new()).unwrap();
    let mut storages = vec![
        p.retrieve_storage("BoostStorage", &loc(&bin)).unwrap(),
        p.retrieve_storage("XmlStorage", &loc(&xml2)).unwrap(),
    ];
    let merged: PropertySet = p.retrieve_as(&mut storages, &PropertySet::new()).unwrap();
    assert_eq!(merged.get::<i32>("extra").unwrap(), 7);
    assert_eq!(merged.get::<i32>("num").unwrap(), 43);
    assert_eq!(merged.get::<String>("nested.key").unwrap(), "x");
}

#[test]
fn failing_second_storage_rolls_back_the_first() {
    for fail_at in [FailAt::Start, FailAt::Write, FailAt::Prepare] {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("sub/note.boost");
        let xml = dir.path().join("sub/note.xml");
        let p = persistence(Policy::new());
        let mut storages: Vec<Box<dyn Storage>> = vec![
            p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
            p.persist_storage("XmlStorage", &loc(&xml)).unwrap(),
            Box::new(FailingStorage {
                fail_at,
                aborted: false,
            }),
        ];
        let err = p
            .persist(&Note("hello".into()), &mut storages, &PropertySet::new())
            .unwrap_err();
        assert!(
            matches!(err, FormatterError::RolledBack { .. }),
            "{fail_at:?}: {err}"
        );
        assert!(
            !bin.exists() && !xml.exists(),
            "{fail_at:?}: no file at the final paths"
        );
        assert_eq!(
            files_under(dir.path()),
            Vec::<PathBuf>::new(),
            "{fail_at:?}: no temporary files"
        );
        let failing = storages[2]
            .as_any()
            .downcast_ref::<FailingStorage>()
            .unwrap();
        assert_eq!(
            failing.aborted,
            fail_at != FailAt::Start,
            "{fail_at:?}: started storages are aborted"
        );
    }
}

#[test]
fn directory_at_a_later_target_fails_before_any_file_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("note.boost");
    let xml = dir.path().join("note.xml");
    let p = persistence(Policy::new());
    let mut s = vec![p.persist_storage("BoostStorage", &loc(&bin)).unwrap()];
    p.persist(&Note("old".into()), &mut s, &PropertySet::new())
        .unwrap();
    let before = std::fs::read(&bin).unwrap();
    std::fs::create_dir(&xml).unwrap();
    let mut s = vec![
        p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
        p.persist_storage("XmlStorage", &loc(&xml)).unwrap(),
    ];
    let err = p
        .persist(&Note("new".into()), &mut s, &PropertySet::new())
        .unwrap_err();
    assert!(
        matches!(err, FormatterError::RolledBack { .. }) && err.to_string().contains("directory"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        before,
        "the first file is untouched"
    );
    assert!(xml.is_dir());
    assert_eq!(
        files_under(dir.path()),
        vec![bin.clone()],
        "no temporary files"
    );
}

#[test]
fn a_failed_commit_undoes_the_commits_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("note.boost");
    let xml = dir.path().join("note.xml");
    let p = persistence(Policy::new());
    let mut s = vec![p.persist_storage("BoostStorage", &loc(&bin)).unwrap()];
    p.persist(&Note("old".into()), &mut s, &PropertySet::new())
        .unwrap();
    let before = std::fs::read(&bin).unwrap();
    let mut s: Vec<Box<dyn Storage>> = vec![
        p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
        p.persist_storage("XmlStorage", &loc(&xml)).unwrap(),
        Box::new(FailingStorage {
            fail_at: FailAt::Commit,
            aborted: false,
        }),
    ];
    let err = p
        .persist(&Note("new".into()), &mut s, &PropertySet::new())
        .unwrap_err();
    assert!(matches!(err, FormatterError::RolledBack { .. }), "{err}");
    assert!(
        err.to_string().contains("commit failed on purpose"),
        "{err}"
    );
    assert_eq!(std::fs::read(&bin).unwrap(), before, "old file put back");
    assert!(!xml.exists(), "new file removed");
    assert_eq!(
        files_under(dir.path()),
        vec![bin.clone()],
        "no backups left"
    );

    // A storage that cannot undo its commit is named as committed.
    let mut s: Vec<Box<dyn Storage>> = vec![
        Box::new(FailingStorage {
            fail_at: FailAt::Never,
            aborted: false,
        }),
        p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
        Box::new(FailingStorage {
            fail_at: FailAt::Commit,
            aborted: false,
        }),
    ];
    let err = p
        .persist(&Note("new".into()), &mut s, &PropertySet::new())
        .unwrap_err();
    match &err {
        FormatterError::PartiallyCommitted { committed, .. } => {
            assert_eq!(committed, &vec!["FailingStorage(Never)".to_string()])
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("NOT rolled back") && msg.contains("FailingStorage(Never) stayed committed"),
        "{msg}"
    );
    assert!(!msg.contains("transaction rolled back"), "{msg}");
    assert_eq!(std::fs::read(&bin).unwrap(), before, "BoostStorage undone");

    // When every commit succeeds, no backup is left behind.
    let mut s = vec![p.persist_storage("BoostStorage", &loc(&bin)).unwrap()];
    p.persist(&Note("newest".into()), &mut s, &PropertySet::new())
        .unwrap();
    drop(s);
    assert_eq!(files_under(dir.path()), vec![bin.clone()]);
}

#[test]
fn failed_persist_keeps_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("note.boost");
    let p = persistence(Policy::new());
    let mut s = vec![p.persist_storage("BoostStorage", &loc(&bin)).unwrap()];
    p.persist(&Note("old".into()), &mut s, &PropertySet::new())
        .unwrap();
    let before = std::fs::read(&bin).unwrap();
    let mut s: Vec<Box<dyn Storage>> = vec![
        p.persist_storage("BoostStorage", &loc(&bin)).unwrap(),
        Box::new(FailingStorage {
            fail_at: FailAt::Prepare,
            aborted: false,
        }),
    ];
    assert!(p
        .persist(&Note("new".into()), &mut s, &PropertySet::new())
        .is_err());
    assert_eq!(std::fs::read(&bin).unwrap(), before);
    let mut s = vec![p.retrieve_storage("BoostStorage", &loc(&bin)).unwrap()];
    let n: Note = p.retrieve_as(&mut s, &PropertySet::new()).unwrap();
    assert_eq!(n, Note("old".into()));
}

#[test]
fn missing_file_is_not_found_naming_the_path() {
    let p = persistence(Policy::new());
    for name in ["BoostStorage", "XmlStorage"] {
        let err = p
            .retrieve_storage(name, &LogicalLocation::literal("this.does.not.exist"))
            .unwrap_err();
        assert!(
            matches!(&err, FormatterError::Storage(StorageError::NotFound { what }) if what.contains("this.does.not.exist")),
            "{err}"
        );
    }
}

// ---- item 6: PropertySet formatter, byte-identical to LSST's C++ ----------

fn persist_bytes(policy: Policy, storage: &str, ps: &PropertySet) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ps.out");
    let p = persistence(policy);
    let mut s = vec![p.persist_storage(storage, &loc(&path)).unwrap()];
    p.persist(ps, &mut s, &PropertySet::new()).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn property_set_formatter_writes_lsst_layout_byte_identically_by_default() {
    let ps = manifest_property_set();
    for (folder, version) in [("boost-1.74", "1.74"), ("boost-1.81", "1.81")] {
        for (archive, storage, ext) in [
            ("binary", "BoostStorage", "bin"),
            ("text", "BoostStorage", "txt"),
            ("xml", "XmlStorage", "xml"),
        ] {
            let mut policy = Policy::new();
            policy
                .set(&format!("{storage}.boost_version"), version)
                .unwrap();
            if storage == "BoostStorage" {
                policy.set("BoostStorage.archive", archive).unwrap();
            }
            let got = persist_bytes(policy, storage, &ps);
            let want = std::fs::read(golden(&format!(
                "{folder}/persistable-tracked/propertyset_lsst.{ext}"
            )))
            .unwrap();
            assert_eq!(got, want, "{folder} {archive}");
        }
    }
    // Default policy: LSST's text archives at Boost 1.74's library version
    // 18, byte for byte what LSST's C++ on Boost 1.74 wrote.
    let got = persist_bytes(Policy::new(), "BoostStorage", &ps);
    assert_eq!(
        got,
        std::fs::read(golden(
            "boost-1.74/persistable-tracked/propertyset_lsst.txt"
        ))
        .unwrap()
    );
    // XmlStorage's default version is 18 too.
    let got = persist_bytes(Policy::new(), "XmlStorage", &ps);
    assert_eq!(
        got,
        std::fs::read(golden(
            "boost-1.74/persistable-tracked/propertyset_lsst.xml"
        ))
        .unwrap()
    );
}

#[test]
fn property_set_formatter_reads_every_propertyset_golden() {
    let p = persistence(Policy::new());
    let want = manifest_property_set();
    for folder in [
        "boost-1.74",
        "boost-1.81",
        "boost-1.74/persistable-tracked",
        "boost-1.81/persistable-tracked",
    ] {
        for case in ["propertyset_lsst", "propertyset"] {
            for (ext, storage) in [
                ("bin", "BoostStorage"),
                ("txt", "BoostStorage"),
                ("xml", "XmlStorage"),
            ] {
                let path = golden(&format!("{folder}/{case}.{ext}"));
                let mut s = vec![p.retrieve_storage(storage, &loc(&path)).unwrap()];
                let got: PropertySet = p
                    .retrieve_as(&mut s, &PropertySet::new())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(got, want, "{}", path.display());
                assert_eq!(got.get_array::<bool>("flags").unwrap(), vec![true, false]);
                assert_eq!(got.get::<i64>("big").unwrap(), 1 << 40);
            }
        }
    }
}

#[test]
fn property_set_formatter_policy_selects_the_int_untracked_layout() {
    let mut policy = Policy::new();
    policy.set("BoostStorage.boost_version", "18").unwrap();
    policy.set("BoostStorage.archive", "binary").unwrap();
    policy.set("Formatter.PropertySet.nitems", "int").unwrap();
    policy
        .set("Formatter.PropertySet.persistable_tracked", "false")
        .unwrap();
    let got = persist_bytes(policy, "BoostStorage", &manifest_property_set());
    assert_eq!(
        got,
        std::fs::read(golden("boost-1.74/propertyset.bin")).unwrap()
    );
}

#[test]
fn property_set_all_value_types_round_trip_in_all_kinds() {
    let mut ps = PropertySet::new();
    ps.set("b", vec![true]).unwrap();
    ps.set("c", vec![-3i8, 4]).unwrap();
    ps.set("uc", 200u8).unwrap();
    ps.set("s16", -300i16).unwrap();
    ps.set("u16", 60000u16).unwrap();
    ps.set("i", i32::MIN).unwrap();
    ps.set("u", u32::MAX).unwrap();
    ps.set("l", i64::MIN).unwrap();
    ps.set("ul", u64::MAX).unwrap();
    ps.set("f", vec![1.5f32, -0.0]).unwrap();
    ps.set("d", vec![f64::MIN_POSITIVE, 1e300]).unwrap();
    ps.set("str", vec!["a b", "", "<&>"]).unwrap();
    ps.set(
        "when",
        daf_base::DateTime::from_nsecs(1_234_567_890_123_456_789, daf_base::Timescale::Tai),
    )
    .unwrap();
    ps.set("deep.er.x", 1i32).unwrap();
    let p = persistence(Policy::new());
    for (archive, storage) in [
        ("binary", "BoostStorage"),
        ("text", "BoostStorage"),
        ("xml", "XmlStorage"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ps");
        let mut policy = Policy::new();
        policy.set("BoostStorage.archive", archive).unwrap();
        let pw = persistence(policy);
        let mut s = vec![pw.persist_storage(storage, &loc(&path)).unwrap()];
        pw.persist(&ps, &mut s, &PropertySet::new()).unwrap();
        let mut s = vec![p.retrieve_storage(storage, &loc(&path)).unwrap()];
        let back: PropertySet = p.retrieve_as(&mut s, &PropertySet::new()).unwrap();
        assert_eq!(back, ps, "{archive}");
    }
}
