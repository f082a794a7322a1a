//! [`StorageRegistry`]: creates storages by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::StorageError;
use crate::storage::Storage;
use crate::Result;

/// A factory making a fresh storage instance.
pub type StorageFactory = Arc<dyn Fn() -> Box<dyn Storage> + Send + Sync>;

/// Creates storages by name. A value, not a process global: build one (usually
/// with [`StorageRegistry::with_defaults`]) and pass it where it is needed.
///
/// ```
/// use daf_storages::StorageRegistry;
/// let reg = StorageRegistry::new();
/// let err = reg.create("NoSuchStorage").unwrap_err();
/// assert!(err.to_string().contains("unknown storage \"NoSuchStorage\""));
/// ```
#[derive(Clone, Default)]
pub struct StorageRegistry {
    factories: BTreeMap<String, StorageFactory>,
}

impl StorageRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every built-in storage registered.
    pub fn with_defaults() -> Self {
        #[allow(unused_mut)]
        let mut reg = Self::new();
        // Built-in storages register themselves here as they are implemented.
        reg.register("BoostStorage", || Box::new(crate::BoostStorage::new()))
            .expect("first registration");
        reg.register("XmlStorage", || Box::new(crate::XmlStorage::xml()))
            .expect("first registration");
        reg.register("FitsStorage", || Box::new(crate::fits::FitsStorage::new()))
            .expect("fresh registry");
        reg.register("DbStorage", || Box::new(crate::db::DbStorage::new()))
            .expect("fresh registry");
        reg.register("DbTsvStorage", || Box::new(crate::db::DbTsvStorage::new()))
            .expect("fresh registry");
        // Gen2's storage of afw tables (BaseCatalog, SourceCatalog): FITS.
        reg.register("FitsCatalogStorage", || {
            Box::new(crate::fits::FitsStorage::new())
        })
        .expect("fresh registry");
        reg.register("YamlStorage", || Box::new(crate::YamlStorage::new()))
            .expect("fresh registry");
        reg.register("ConfigStorage", || Box::new(crate::YamlStorage::config()))
            .expect("fresh registry");
        reg
    }

    /// Registers a storage factory under `name`; a name registered twice is an error.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn() -> Box<dyn Storage> + Send + Sync + 'static,
    ) -> Result<()> {
        if self.factories.contains_key(name) {
            return Err(StorageError::DuplicateStorage { name: name.into() });
        }
        self.factories.insert(name.to_string(), Arc::new(factory));
        Ok(())
    }

    /// Creates a new storage by name; an unknown name lists the known ones.
    pub fn create(&self, name: &str) -> Result<Box<dyn Storage>> {
        match self.factories.get(name) {
            Some(f) => Ok(f()),
            None => Err(StorageError::UnknownStorage {
                name: name.into(),
                known: self.names(),
            }),
        }
    }

    /// Makes `DbStorage` and `DbTsvStorage` use the credentials `auth`
    /// instead of loading `~/.daf/db-auth.yaml` (replacing their registrations).
    ///
    /// ```
    /// use daf_storages::{db::DbAuth, StorageRegistry};
    /// let mut auth = DbAuth::new();
    /// auth.add("127.0.0.1", 5432, "postgres", "");
    /// let mut reg = StorageRegistry::with_defaults();
    /// reg.set_db_auth(auth);
    /// assert!(reg.contains("DbTsvStorage"));
    /// ```
    pub fn set_db_auth(&mut self, auth: crate::db::DbAuth) {
        let auth = Arc::new(auth);
        let a = auth.clone();
        self.factories.insert(
            "DbStorage".into(),
            Arc::new(move || Box::new(crate::db::DbStorage::with_auth(a.clone()))),
        );
        self.factories.insert(
            "DbTsvStorage".into(),
            Arc::new(move || Box::new(crate::db::DbTsvStorage::with_auth(auth.clone()))),
        );
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Is `name` registered?
    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }
}

impl std::fmt::Debug for StorageRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageRegistry")
            .field("names", &self.names())
            .finish()
    }
}
