//! The shared Storage conformance suite (`daf_storages::conformance`) run
//! on BoostStorage, XmlStorage, FitsStorage, DbStorage and DbTsvStorage
//! (the database storages on SQLite always, PostgreSQL and MariaDB when their
//! test servers are configured).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf_base::testing::{test_servers, unique_name};
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::conformance::{run, Fixture};
use daf_storages::db::{quote_ident, DbAuth, DbStorage, DbTsvStorage};
use daf_storages::fits::FitsStorage;
use daf_storages::{LogicalLocation, Storage, StorageError};

/// A file storage writing one value to `dir/name`.
struct Files<S> {
    dir: tempfile::TempDir,
    name: &'static str,
    new: fn() -> S,
    write: fn(&mut S, i64) -> Result<(), StorageError>,
    read: fn(&Path) -> i64,
    aside: Option<PathBuf>,
}

impl<S> Files<S> {
    fn path(&self) -> PathBuf {
        self.dir.path().join(self.name)
    }
}

impl<S: Storage> Fixture for Files<S> {
    type S = S;
    fn storage(&mut self) -> S {
        (self.new)()
    }
    fn persist_here(&mut self, s: &mut S) -> Result<(), StorageError> {
        s.set_persist_location(&LogicalLocation::literal(self.path().to_str().unwrap()))
    }
    fn write(&mut self, s: &mut S, value: i64) -> Result<(), StorageError> {
        (self.write)(s, value)
    }
    /// The destination becomes a non-empty folder (the committed file moved
    /// aside), which no rename may replace.
    fn write_doomed(&mut self, s: &mut S, value: i64) -> Result<(), StorageError> {
        (self.write)(s, value)?;
        let aside = self.dir.path().join("aside");
        std::fs::rename(self.path(), &aside).unwrap();
        std::fs::create_dir(self.path()).unwrap();
        std::fs::write(self.path().join("keep"), b"kept").unwrap();
        self.aside = Some(aside);
        Ok(())
    }
    fn after_doomed(&mut self) {
        assert_eq!(
            std::fs::read(self.path().join("keep")).unwrap(),
            b"kept",
            "the failed commit left the destination as it was"
        );
        std::fs::remove_dir_all(self.path()).unwrap();
        std::fs::rename(self.aside.take().unwrap(), self.path()).unwrap();
    }
    fn read(&mut self) -> Vec<i64> {
        let p = self.path();
        if p.exists() {
            vec![(self.read)(&p)]
        } else {
            Vec::new()
        }
    }
    fn accumulates(&self) -> bool {
        false
    }
    fn leftovers(&mut self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != self.name && n != "aside")
            .collect()
    }
}

fn archive(new: fn() -> ArchiveStorage, name: &'static str) -> Files<ArchiveStorage> {
    Files {
        dir: tempfile::tempdir().unwrap(),
        name,
        new,
        write: |s, v| s.write_archive(|ar| ar.field("v", &v)),
        read: move |p| {
            let mut s = if p.extension().is_some_and(|e| e == "xml") {
                ArchiveStorage::xml()
            } else {
                ArchiveStorage::new()
            };
            s.set_retrieve_location(&LogicalLocation::literal(p.to_str().unwrap()))
                .unwrap();
            s.start_transaction().unwrap();
            let v: i64 = s.read_archive(|ar| ar.field("v")).unwrap();
            s.end_transaction().unwrap();
            v
        },
        aside: None,
    }
}

#[test]
fn boost_storage_conforms() {
    run(&mut archive(ArchiveStorage::new, "v.boost"));
}

#[test]
fn xml_storage_conforms() {
    run(&mut archive(ArchiveStorage::xml, "v.xml"));
}

#[test]
fn fits_storage_conforms() {
    run(&mut Files {
        dir: tempfile::tempdir().unwrap(),
        name: "v.fits",
        new: FitsStorage::new,
        write: |s, v| s.write_image(&[], 1, 1, (0, 0), &[v]),
        read: |p| {
            let mut s = FitsStorage::new();
            s.set_retrieve_location(&LogicalLocation::literal(p.to_str().unwrap()))
                .unwrap();
            s.start_transaction().unwrap();
            let (w, h, px) = s.read_image::<i64>(0, None).unwrap();
            s.end_transaction().unwrap();
            assert_eq!((w, h, px.len()), (1, 1, 1));
            px[0]
        },
        aside: None,
    });
}

/// A database table `id BIGINT NOT NULL`; a NULL id dooms the transaction.
struct Table<S> {
    url: String,
    auth: Arc<DbAuth>,
    table: String,
    new: fn(&str, Arc<DbAuth>) -> S,
    _dir: Option<tempfile::TempDir>,
}

trait Rows: Storage {
    fn insert(&mut self, table: &str, id: Option<i64>) -> Result<(), StorageError>;
}
impl Rows for DbStorage {
    fn insert(&mut self, table: &str, id: Option<i64>) -> Result<(), StorageError> {
        self.set_table_for_insert(table)?;
        match id {
            Some(v) => self.set_column("id", v)?,
            None => self.set_column_to_null("id")?,
        }
        self.insert_row()
    }
}
impl Rows for DbTsvStorage {
    fn insert(&mut self, table: &str, id: Option<i64>) -> Result<(), StorageError> {
        self.set_table_for_insert(table)?;
        match id {
            Some(v) => self.set_column("id", v)?,
            None => self.set_column_to_null("id")?,
        }
        self.insert_row()
    }
}

impl<S: Rows> Fixture for Table<S> {
    type S = S;
    fn storage(&mut self) -> S {
        (self.new)(&self.url, self.auth.clone())
    }
    fn persist_here(&mut self, _s: &mut S) -> Result<(), StorageError> {
        Ok(())
    }
    fn write(&mut self, s: &mut S, value: i64) -> Result<(), StorageError> {
        s.insert(&self.table, Some(value))
    }
    fn write_doomed(&mut self, s: &mut S, value: i64) -> Result<(), StorageError> {
        s.insert(&self.table, Some(value))?;
        s.insert(&self.table, None)
    }
    fn read(&mut self) -> Vec<i64> {
        let mut db = DbStorage::open_url(&self.url, Some(self.auth.clone())).unwrap();
        db.set_table_for_query(&self.table).unwrap();
        db.out_column("id").unwrap();
        db.query().unwrap();
        let mut v = Vec::new();
        while db.next().unwrap() {
            v.push(db.get_column_by_pos::<i64>(0).unwrap());
        }
        db.finish_query();
        v.sort_unstable();
        v
    }
    fn accumulates(&self) -> bool {
        true
    }
}

impl<S> Drop for Table<S> {
    fn drop(&mut self) {
        if let Ok(mut db) = DbStorage::open_url(&self.url, Some(self.auth.clone())) {
            let _ = db.drop_table(&self.table);
        }
    }
}

/// One fresh table per backend: SQLite, then every configured server.
fn tables<S>(new: fn(&str, Arc<DbAuth>) -> S) -> Vec<Table<S>> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("conf.sqlite3").display());
    let mut targets = vec![(sqlite, Arc::new(DbAuth::new()), Some(dir))];
    for server in test_servers() {
        let u = daf_storages::db::DbUrl::parse(&server.url).unwrap();
        let mut auth = DbAuth::new();
        auth.add(&u.host, u.port, server.user, "");
        targets.push((server.url, Arc::new(auth), None));
    }
    targets
        .into_iter()
        .map(|(url, auth, dir)| {
            let table = unique_name("daf_storage_conf");
            let mut db = DbStorage::open_url(&url, Some(auth.clone())).unwrap();
            let b = db.backend().unwrap();
            db.execute_sql(&format!(
                "CREATE TABLE {} ({} BIGINT NOT NULL)",
                quote_ident(b, &table).unwrap(),
                quote_ident(b, "id").unwrap()
            ))
            .unwrap();
            eprintln!("testing backend: {url}");
            Table {
                url,
                auth,
                table,
                new,
                _dir: dir,
            }
        })
        .collect()
}

#[test]
fn db_storage_conforms() {
    for mut t in tables(|url, auth| DbStorage::open_url(url, Some(auth)).unwrap()) {
        run(&mut t);
    }
}

#[test]
fn db_tsv_storage_conforms() {
    for mut t in tables(|url, auth| DbTsvStorage::open_url(url, Some(auth)).unwrap()) {
        run(&mut t);
    }
}
