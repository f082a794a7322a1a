//! [`Butler`]: get, put and query datasets by (dataset type, data id) over a
//! chain of repositories.
//!
//! Each repository has its own [`Mapper`] (made by a [`MapperFactory`] you
//! pass) and its own [`FileRegistry`]. A read searches the repositories in
//! order (outputs, then inputs, each followed by its parents); in each one
//! the file registry is asked first (so files of any name are found by data
//! id, and a `run` can be chosen), then the mapper's templated path.
//!
//! ## Writes
//! A put maps the data id in every output, checks every path piece made
//! from input (run name, filled template) with
//! [`daf_base::path_safety`], and follows the put protocol described in
//! [`crate::recovery`]: stage the file (temporary file, fsync, rename to a
//! staging name) and checksum it; claim the data id with an intent row;
//! refuse to replace an existing dataset unless `clobber` or `backup` is set
//! (exactly one of several racing new puts of one data id succeeds, the
//! others get [`ButlerError::Exists`]); hard-link a backup to `path~N` if
//! asked; rename the staging file into place; record the row and drop the
//! intent in one transaction.
//!
//! A failure before the rename leaves no new file and no row (the old file,
//! if any, is untouched). A registry failure after it removes a new file,
//! or puts the backup back. A crash leaves an intent that the next writer
//! opening the repository (or `daf verify --repair`) resolves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use daf_base::{DataId, DataIdValue, PropertySet};
use daf_formatters::{FormatterError, Persistable, Persistence};
use daf_mappers::{
    open_registry, ButlerLocation, CameraMapper, CameraMapperOptions, KeyType, Mapper, MapperError,
    MapperPolicy,
};
use daf_storages::datastore::{Datastore, PutMode};
use daf_storages::LogicalLocation;
use rayon::prelude::*;

use crate::error::ButlerError;
use crate::file_registry::{
    checksum_file, now_ns, Claim, DatasetRecord, FileRegistry, Intent, IntentMode,
};
use crate::repository::{Repository, RepositoryArgs, RepositorySet};
use crate::simple_mapper::SimpleMapper;
use daf_base::path_safety::{check_relative, join_under};

mod deferred;
pub use deferred::{DeferredDatasetHandle, ResolvedDataset};

/// Makes the mapper of one repository.
pub type MapperFactory =
    Arc<dyn Fn(&Repository) -> Result<Arc<dyn Mapper>, ButlerError> + Send + Sync>;

/// The default mapper factory: [`camera_mapper_factory`] with no named
/// policies and no fallback policy.
pub fn default_mapper_factory() -> MapperFactory {
    camera_mapper_factory(BTreeMap::new(), None)
}

/// A mapper factory that builds
/// * a [`SimpleMapper`] (from the repository's mapper arguments) for
///   repositories whose mapper is `SimpleMapper` or unnamed;
/// * a [`CameraMapper`] for any other mapper name, from the policy named by
///   the repository's `mapperArgs.policy` (relative to its root), else the
///   policy `policies` gives for the mapper name, else `fallback`. A
///   repository without a registry of its own uses the first registry found
///   among its parents (depth-first), as Gen2 did.
pub fn camera_mapper_factory(
    policies: BTreeMap<String, PathBuf>,
    fallback: Option<PathBuf>,
) -> MapperFactory {
    Arc::new(move |repo: &Repository| {
        let name = match repo.cfg.mapper.as_deref() {
            None | Some("SimpleMapper") => {
                return Ok(Arc::new(
                    SimpleMapper::from_args(&repo.cfg.mapper_args)?.with_root(&repo.root),
                ) as Arc<dyn Mapper>)
            }
            Some(n) => n,
        };
        let policy_path = repo
            .cfg
            .mapper_args
            .get("policy")
            .and_then(|v| v.as_str())
            .map(|p| repo.root.join(p))
            .or_else(|| policies.get(name).cloned())
            .or_else(|| fallback.clone())
            .ok_or_else(|| {
                ButlerError::repo(
                    &repo.root,
                    format!(
                        "no mapper policy for mapper {name:?}; pass one (`--policy FILE` on the \
                         command line, `ButlerBuilder::policy` in code), or set mapperArgs.policy \
                         in its {} (daf create --policy)",
                        crate::repository::CFG_FILE
                    ),
                )
            })?;
        let policy = MapperPolicy::load(&policy_path, None)?;
        let mut opts = CameraMapperOptions::default();
        let own = policy.registry_path.is_some()
            || repo.root.join("registry.sqlite3").is_file()
            || repo.root.join("registry.pgsql").is_file();
        if !own {
            if let Some(p) = parent_registry(repo, 0) {
                opts.registry = Some(open_registry(&p)?);
            }
        }
        let mut mapper = CameraMapper::open(policy, &repo.root, opts)?;
        exposure_id_hooks(&mut mapper, name);
        Ok(Arc::new(mapper) as Arc<dyn Mapper>)
    })
}

/// How the camera packages daf knows computed exposure ids (Gen2's
/// `bypass_ccdExposureId` / `bypass_ccdExposureId_bits`, Python code of each
/// obs package): the data-id key that is the id, and its bit count.
const EXPOSURE_ID_RULES: &[(&str, &str, i64)] =
    &[("lsst.obs.test.testMapper.TestMapper", "visit", 41)];

/// Registers the `ccdExposureId` / `ccdExposureId_bits` answers of the
/// camera `mapper_name`, when daf knows its rule and its policy defines the
/// types. Each answer is a `PropertySet` with one value under the type's name.
fn exposure_id_hooks(mapper: &mut CameraMapper, mapper_name: &str) {
    let Some(&(_, key, bits)) = EXPOSURE_ID_RULES.iter().find(|r| r.0 == mapper_name) else {
        return;
    };
    let types = mapper.dataset_types();
    if types.iter().any(|t| t == "ccdExposureId") {
        mapper.set_bypass_hook(
            "ccdExposureId",
            Arc::new(move |loc: &ButlerLocation| {
                let v = match loc.data_id.get(key)? {
                    DataIdValue::Int(i) => *i,
                    DataIdValue::Str(s) => s.trim().parse().ok()?,
                    DataIdValue::Float(_) => return None,
                };
                let mut ps = PropertySet::new();
                ps.set("ccdExposureId", v).ok()?;
                Some(ps)
            }),
        );
    }
    if types.iter().any(|t| t == "ccdExposureId_bits") {
        mapper.set_bypass_hook(
            "ccdExposureId_bits",
            Arc::new(move |_: &ButlerLocation| {
                let mut ps = PropertySet::new();
                ps.set("ccdExposureId_bits", bits).ok()?;
                Some(ps)
            }),
        );
    }
}

/// The first `registry.sqlite3` / `registry.pgsql` among the parents of
/// `repo`, depth-first.
fn parent_registry(repo: &Repository, depth: usize) -> Option<PathBuf> {
    if depth > 32 {
        return None;
    }
    for p in &repo.parents {
        for n in ["registry.pgsql", "registry.sqlite3"] {
            if p.join(n).is_file() {
                return Some(p.join(n));
            }
        }
        if let Ok(parent) = Repository::open(p, crate::repository::Mode::Read) {
            if let Some(found) = parent_registry(&parent, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

/// Origin of a bounding box for cut-out reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Coordinates in the parent image's system.
    Parent,
    /// Coordinates relative to the image's own corner.
    Local,
}

/// Options of a read.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Read this run's dataset (default: the newest).
    pub run: Option<String>,
    /// Read parameters handed to the formatter as additional data.
    pub params: PropertySet,
}

impl GetOptions {
    /// Reads from `run`.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }
    /// Reads only the box with lower-left corner (`x`, `y`) and size
    /// `width` × `height` (additional data `llcX`, `llcY`, `width`, `height`,
    /// `imageOrigin`).
    pub fn bbox(mut self, x: i32, y: i32, width: i32, height: i32, origin: Origin) -> Self {
        let p = &mut self.params;
        let _ = p.set("llcX", x);
        let _ = p.set("llcY", y);
        let _ = p.set("width", width);
        let _ = p.set("height", height);
        let _ = p.set(
            "imageOrigin",
            match origin {
                Origin::Parent => "PARENT",
                Origin::Local => "LOCAL",
            },
        );
        self
    }
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Replace an existing dataset.
    pub clobber: bool,
    /// Replace an existing dataset, keeping the old file as `path~N`.
    pub backup: bool,
    /// The run to record (default: the butler's run, else none). A named
    /// run's files go under `<run>/` in the repository.
    pub run: Option<String>,
}

impl PutOptions {
    /// Overwrite an existing dataset.
    pub fn clobber() -> Self {
        PutOptions {
            clobber: true,
            ..Default::default()
        }
    }
    /// Overwrite, keeping a backup.
    pub fn backup() -> Self {
        PutOptions {
            backup: true,
            ..Default::default()
        }
    }
    /// Record under `run`.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }
}

/// Builds a [`Butler`].
#[derive(Default)]
pub struct ButlerBuilder {
    inputs: Vec<RepositoryArgs>,
    outputs: Vec<RepositoryArgs>,
    factory: Option<MapperFactory>,
    persistence: Option<Persistence>,
    run: Option<String>,
    db_auth: Option<daf_storages::db::DbAuth>,
    policy: Option<PathBuf>,
}

impl ButlerBuilder {
    /// The mapper policy (`.yaml` or `.paf`) of repositories that name a
    /// camera mapper but no policy: legacy Gen2 repositories (`_mapper`,
    /// `registry.sqlite3`, `_parent`), opened as they are, without a
    /// `repositoryCfg.yaml`. A new output made over such inputs records it
    /// (`mapperArgs.policy`). Used by the default mapper factory; a
    /// repository's own `mapperArgs.policy` wins.
    ///
    /// ```no_run
    /// use daf_butler::Butler;
    /// let butler = Butler::builder()
    ///     .input("obs_test/input")                 // _mapper + registry.sqlite3
    ///     .policy("obs_test/policy/testMapper.yaml")
    ///     .build()?;
    /// # Ok::<(), daf_butler::ButlerError>(())
    /// ```
    pub fn policy(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy = Some(path.into());
        self
    }

    /// Credentials for repositories whose file registry is in PostgreSQL
    /// (default: [`default_db_auth`](crate::file_registry::default_db_auth),
    /// read only if such a repository is opened).
    pub fn db_auth(mut self, auth: daf_storages::db::DbAuth) -> Self {
        self.db_auth = Some(auth);
        self
    }
    /// Adds a read-only input repository.
    pub fn input(mut self, args: impl Into<RepositoryArgs>) -> Self {
        self.inputs.push(args.into());
        self
    }
    /// Adds a writable output repository (created if missing).
    pub fn output(mut self, args: impl Into<RepositoryArgs>) -> Self {
        self.outputs.push(args.into());
        self
    }
    /// The mapper factory (default: [`default_mapper_factory`]).
    pub fn mapper_factory(mut self, f: MapperFactory) -> Self {
        self.factory = Some(f);
        self
    }
    /// The persistence (default: built-in formatters and storages).
    pub fn persistence(mut self, p: Persistence) -> Self {
        self.persistence = Some(p);
        self
    }
    /// The default run of puts.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }
    /// Opens the repositories and makes the butler.
    pub fn build(self) -> Result<Butler, ButlerError> {
        if self.inputs.is_empty() && self.outputs.is_empty() {
            return Err(ButlerError::repo(
                ".",
                "a butler needs at least one input or output repository",
            ));
        }
        let policy = match &self.policy {
            Some(p) => {
                let abs = std::path::absolute(p).map_err(|e| ButlerError::io(p, e))?;
                if !abs.is_file() {
                    return Err(ButlerError::repo(
                        &abs,
                        "mapper policy not found (a .yaml or .paf file is expected)",
                    ));
                }
                Some(abs)
            }
            None => None,
        };
        let repos =
            RepositorySet::resolve_with_policy(&self.inputs, &self.outputs, policy.as_deref())?;
        // A repository that names its policy lends it to the legacy
        // repositories of the chain with the same mapper (they name none).
        let mut named = BTreeMap::new();
        for r in &repos.search {
            if let (Some(m), Some(p)) = (
                r.cfg.mapper.as_deref(),
                r.cfg.mapper_args.get("policy").and_then(|v| v.as_str()),
            ) {
                named.entry(m.to_string()).or_insert_with(|| r.root.join(p));
            }
        }
        let factory = self
            .factory
            .unwrap_or_else(|| camera_mapper_factory(named, policy.clone()));
        let mut mappers = Vec::new();
        let mut registries = Vec::new();
        let mut remotes = Vec::new();
        for (i, r) in repos.search.iter().enumerate() {
            let m = factory(r)?;
            tracing::info!(
                root = %r.root.display(),
                mapper = r.cfg.mapper.as_deref().unwrap_or("SimpleMapper"),
                policy = %r.cfg.mapper_args.get("policy").and_then(|v| v.as_str()).map(|p| r.root.join(p).display().to_string())
                    .or_else(|| policy.as_ref().map(|p| p.display().to_string()))
                    .unwrap_or_else(|| "-".into()),
                dataset_types = m.dataset_types().len(),
                "mapper chosen"
            );
            mappers.push(m);
            let writable = repos.outputs.contains(&i);
            let mut reg = FileRegistry::open_cfg(&r.root, &r.cfg, writable, self.db_auth.as_ref())?;
            let remote = r.remote_datastore()?;
            if writable {
                // finish or roll back the puts of writers that died (on an
                // object store: by the checksum of the object under the
                // final key)
                if let Some(reg) = reg.as_mut() {
                    crate::recovery::recover_all_in(&mut **reg, &r.root, remote.as_deref())?;
                }
            }
            tracing::info!(
                root = %r.root.display(),
                mode = if writable { "read-write" } else { "read-only" },
                mapper = r.cfg.mapper.as_deref().unwrap_or("SimpleMapper"),
                registry = %reg.as_ref().map(|g| g.backend().describe()).unwrap_or_else(|| "none (legacy: the mapper's registry)".into()),
                datastore = %remote.as_ref().map(|d| d.url()).unwrap_or_else(|| "local folder".into()),
                "repository opened"
            );
            registries.push(reg.map(Mutex::new));
            remotes.push(remote);
        }
        let persistence = self.persistence.unwrap_or_else(|| {
            Persistence::new(
                daf_base::Policy::new(),
                daf_formatters::FormatterRegistry::with_defaults(),
                daf_storages::StorageRegistry::with_defaults(),
            )
        });
        Ok(Butler {
            policy,
            repos,
            mappers,
            registries,
            remotes,
            persistence,
            aliases: BTreeMap::new(),
            run: self.run,
        })
    }
}

/// What one repository of the search says about a dataset.
enum Lookup {
    Found(Box<Located>),
    /// Its mapper does not define the dataset type.
    UnknownType,
    /// The data id matched this many rows of its mapper's registry, and no
    /// file-registry row settled it.
    Ambiguous(usize),
    Absent,
}

/// The data butler. See the [module docs](self).
///
/// ```
/// use daf_base::{data_id, PropertySet};
/// use daf_butler::{Butler, simple_mapper::{SimpleMapper, SimpleDataset}, Repository};
/// let dir = tempfile::tempdir().unwrap();
/// let mapper = SimpleMapper::new([("meta",
///     SimpleDataset::new("meta/v%(visit)d.json", "PropertySet", "JsonStorage"))]).unwrap();
/// Repository::create(&dir.path().join("repo"), Some("SimpleMapper"), mapper.to_args(), &[]).unwrap();
/// let butler = Butler::builder()
///     .output(dir.path().join("repo"))
///     .persistence(daf_butler::testing::json_persistence())
///     .build().unwrap();
/// let mut ps = PropertySet::new();
/// ps.set("exptime", 15.0).unwrap();
/// butler.put(&ps, "meta", &data_id!{visit: 1}).unwrap();
/// let back: PropertySet = butler.get("meta", &data_id!{visit: 1}).unwrap();
/// assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
/// ```
pub struct Butler {
    /// The policy given to [`ButlerBuilder::policy`], absolute.
    policy: Option<PathBuf>,
    repos: RepositorySet,
    mappers: Vec<Arc<dyn Mapper>>,
    registries: Vec<Option<Mutex<FileRegistry>>>,
    /// The datastore of each repository whose bytes are not in its folder
    /// (`datastore: s3://...`); `None`: files under the root.
    remotes: Vec<Option<Arc<dyn Datastore>>>,
    persistence: Persistence,
    aliases: BTreeMap<String, String>,
    run: Option<String>,
}

impl std::fmt::Debug for Butler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Butler")
            .field("repositories", &self.repos.roots())
            .field("outputs", &self.repos.outputs)
            .field("aliases", &self.aliases)
            .field("run", &self.run)
            .finish()
    }
}

/// Where a dataset was found.
#[derive(Debug, Clone)]
pub struct Located {
    /// Index of the repository in search order.
    pub repo: usize,
    /// The location, with `root` set to the repository root and (for files
    /// found through the file registry) the recorded path.
    pub location: ButlerLocation,
    /// The registry row, if the file registry answered.
    pub record: Option<Arc<DatasetRecord>>,
}

fn strip_hdu(loc: &str) -> &str {
    if loc.ends_with(']') {
        if let Some(i) = loc.rfind('[') {
            return &loc[..i];
        }
    }
    loc
}

fn lock(m: &Mutex<FileRegistry>) -> MutexGuard<'_, FileRegistry> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Butler {
    /// A builder.
    pub fn builder() -> ButlerBuilder {
        ButlerBuilder::default()
    }

    /// The mapper policy given to [`ButlerBuilder::policy`] (absolute), if any.
    pub fn policy(&self) -> Option<&Path> {
        self.policy.as_deref()
    }

    /// The repositories in search order.
    pub fn repositories(&self) -> &[Repository] {
        &self.repos.search
    }

    /// Indices (into [`Butler::repositories`]) of the outputs.
    pub fn output_indices(&self) -> &[usize] {
        &self.repos.outputs
    }

    /// The mapper of repository `i`.
    pub fn mapper(&self, i: usize) -> &Arc<dyn Mapper> {
        &self.mappers[i]
    }

    /// The datastore of repository `i` when its bytes are not in its folder
    /// (`datastore: s3://...` in its configuration).
    pub fn remote_datastore(&self, i: usize) -> Option<&Arc<dyn Datastore>> {
        self.remotes.get(i)?.as_ref()
    }

    /// The persistence used for reads and writes.
    pub fn persistence(&self) -> &Persistence {
        &self.persistence
    }

    /// The default run of puts.
    pub fn default_run(&self) -> Option<&str> {
        self.run.as_deref()
    }

    /// The file registry of repository `i`, locked, if it has one.
    pub fn registry(&self, i: usize) -> Option<MutexGuard<'_, FileRegistry>> {
        self.registries.get(i)?.as_ref().map(lock)
    }

    /// Every dataset type the mappers define, sorted and de-duplicated.
    pub fn dataset_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .mappers
            .iter()
            .flat_map(|m| m.dataset_types())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    // ----- aliases -----

    /// Defines `@alias` (the `@` is added if missing) for `dataset_type`.
    /// An alias may not contain `@` after its first character, the target
    /// may not contain `@`, and one alias may not be a prefix of another.
    pub fn define_alias(&mut self, alias: &str, dataset_type: &str) -> Result<(), ButlerError> {
        let alias = if alias.starts_with('@') {
            alias.to_string()
        } else {
            format!("@{alias}")
        };
        if alias.len() < 2 || alias[1..].contains('@') {
            return Err(ButlerError::Alias(format!(
                "{alias:?}: '@' is allowed only as the first character"
            )));
        }
        if dataset_type.contains('@') {
            return Err(ButlerError::Alias(format!(
                "target {dataset_type:?} may not contain '@'"
            )));
        }
        for existing in self.aliases.keys() {
            if existing != &alias && (existing.starts_with(&alias) || alias.starts_with(existing)) {
                return Err(ButlerError::Alias(format!(
                    "{alias:?} overlaps existing alias {existing:?}"
                )));
            }
        }
        self.aliases.insert(alias, dataset_type.to_string());
        Ok(())
    }

    /// Replaces a leading `@alias` in `dataset_type`.
    pub fn resolve_alias<'a>(
        &self,
        dataset_type: &'a str,
    ) -> Result<std::borrow::Cow<'a, str>, ButlerError> {
        if !dataset_type.contains('@') {
            return Ok(std::borrow::Cow::Borrowed(dataset_type));
        }
        let best = self
            .aliases
            .iter()
            .filter(|(a, _)| dataset_type.starts_with(a.as_str()))
            .max_by_key(|(a, _)| a.len());
        match best {
            Some((a, t)) => {
                let out = format!("{t}{}", &dataset_type[a.len()..]);
                if out.contains('@') {
                    return Err(ButlerError::Alias(format!(
                        "{dataset_type:?} still has an unresolved '@' after resolving to {out:?}"
                    )));
                }
                Ok(std::borrow::Cow::Owned(out))
            }
            None => Err(ButlerError::Alias(format!(
                "no alias defined for {dataset_type:?}; define it with define_alias"
            ))),
        }
    }

    /// Whether some mapper of the chain defines `dataset_type`.
    pub fn is_dataset_type(&self, dataset_type: &str) -> bool {
        self.mappers
            .iter()
            .any(|m| m.has_dataset_type(dataset_type))
    }

    /// How a dataset-type name is read: a type of the mappers, a component
    /// (`calexp.metadata`), or one of the types Gen2 derived from every
    /// type: `<type>_md` (the header alone), `<type>_filename` (the file
    /// names) and `<type>_sub` (a cut-out).
    pub fn derived_type<'a>(&self, dataset_type: &'a str) -> Derived<'a> {
        if self.is_dataset_type(dataset_type) {
            return Derived::Plain(dataset_type);
        }
        let (base, component) = self.split_component(dataset_type);
        if let Some(c) = component {
            return Derived::Component(base, c);
        }
        for (suffix, make) in [
            ("_md", Derived::Metadata as fn(&'a str) -> Derived<'a>),
            ("_filename", Derived::Filename),
            ("_sub", Derived::Sub),
        ] {
            if let Some(b) = dataset_type.strip_suffix(suffix) {
                if self.is_dataset_type(b) {
                    return make(b);
                }
            }
        }
        Derived::Plain(dataset_type)
    }

    /// Splits `calexp.metadata` into (`calexp`, `Some("metadata")`) when the
    /// full name is not itself a dataset type.
    pub fn split_component<'a>(&self, dataset_type: &'a str) -> (&'a str, Option<&'a str>) {
        if let Some((base, comp)) = dataset_type.split_once('.') {
            if !self.is_dataset_type(dataset_type) {
                return (base, Some(comp));
            }
        }
        (dataset_type, None)
    }

    // ----- locating -----

    fn not_found(&self, dataset_type: &str, data_id: &DataId, run: Option<&str>) -> ButlerError {
        ButlerError::NotFound {
            dataset_type: dataset_type.into(),
            data_id: data_id.clone(),
            run: run.map(str::to_string),
            searched: self.repos.roots(),
        }
    }

    /// Finds where `dataset_type` for `data_id` is stored (first repository
    /// in search order that has it).
    pub fn locate(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Located, ButlerError> {
        // Where no file registry answers (legacy repositories), the
        // mappers' answers decide the error: a type no mapper defines is
        // unknown, a data id that matched several registry rows is not
        // unique — as the file-registry path reports them.
        let mut unknown = 0;
        let mut ambiguous = None;
        for (i, repo) in self.repos.search.iter().enumerate() {
            match self.locate_in(i, repo, dataset_type, data_id, run)? {
                Lookup::Found(found) => {
                    tracing::info!(
                        dataset_type,
                        data_id = %found.location.data_id,
                        path = %found.location.locations_with_root().first().map(|p| p.display().to_string()).unwrap_or_default(),
                        storage = %found.location.storage,
                        persistable = %found.location.persistable,
                        by = if found.record.is_some() { "file registry" } else { "mapper" },
                        "dataset located"
                    );
                    return Ok(*found);
                }
                Lookup::UnknownType => unknown += 1,
                Lookup::Ambiguous(n) => {
                    ambiguous.get_or_insert(n);
                }
                Lookup::Absent => {}
            }
        }
        if unknown == self.repos.search.len() {
            return Err(MapperError::UnknownDatasetType {
                dataset_type: dataset_type.into(),
            }
            .into());
        }
        if let Some(count) = ambiguous {
            return Err(ButlerError::NotUnique {
                dataset_type: dataset_type.into(),
                data_id: data_id.clone(),
                count,
            });
        }
        Err(self.not_found(dataset_type, data_id, run))
    }

    fn locate_in(
        &self,
        i: usize,
        repo: &Repository,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Lookup, ButlerError> {
        let mapper = &self.mappers[i];
        let mut matched = 0;
        let mapped = match mapper.map(dataset_type, data_id, false) {
            Ok(mut l) => {
                if l.root.as_os_str().is_empty() || l.root.is_relative() {
                    l.root = repo.root.join(&l.root);
                }
                Some(l)
            }
            Err(MapperError::UnknownDatasetType { .. }) => return Ok(Lookup::UnknownType),
            Err(MapperError::NoUniqueLookup { found, .. }) => {
                matched = found;
                None
            }
            Err(e) => return Err(e.into()),
        };
        let absent = if matched > 1 {
            Lookup::Ambiguous(matched)
        } else {
            Lookup::Absent
        };
        if let Some(reg) = self.registries[i].as_ref() {
            let reg = lock(reg);
            let mut rec = match &mapped {
                Some(l) => reg.find(dataset_type, &l.data_id, run)?,
                None => None,
            };
            if rec.is_none() && mapped.is_none() {
                let matches = reg.find_matching(Some(dataset_type), data_id, run)?;
                let mut ids: Vec<&DataId> = Vec::new();
                for m in &matches {
                    if !ids.contains(&&m.data_id) {
                        ids.push(&m.data_id);
                    }
                }
                if ids.len() > 1 {
                    return Err(ButlerError::NotUnique {
                        dataset_type: dataset_type.into(),
                        data_id: data_id.clone(),
                        count: ids.len(),
                    });
                }
                rec = matches
                    .into_iter()
                    .max_by_key(|r| (r.time_ns, r.id))
                    .map(Arc::new);
            }
            if let Some(rec) = rec {
                let mut loc = match mapped {
                    Some(l) => l,
                    None => {
                        let mut l = mapper.map(dataset_type, &rec.data_id, false)?;
                        l.root = repo.root.clone();
                        l
                    }
                };
                // The recorded file, keeping an `[N]` HDU suffix of the
                // mapped location.
                let mut text = match reg.full_path(&rec).into_os_string().into_string() {
                    Ok(t) => t,
                    Err(raw) => raw.to_string_lossy().into_owned(),
                };
                if let Some(first) = loc.locations.first() {
                    text.push_str(&first[strip_hdu(first).len()..]);
                }
                loc.locations.clear();
                loc.locations.push(text);
                if loc.root != repo.root {
                    loc.root = repo.root.clone();
                }
                return Ok(Lookup::Found(Box::new(Located {
                    repo: i,
                    location: loc,
                    record: Some(rec),
                })));
            }
        }
        if run.is_some() {
            return Ok(absent);
        }
        let present = |loc: &ButlerLocation| -> Result<bool, ButlerError> {
            if loc.locations.is_empty() {
                return Ok(false);
            }
            for l in &loc.locations {
                let here = match &self.remotes[i] {
                    Some(ds) => ds.head(&remote_key(&repo.root, strip_hdu(l))?)?.is_some(),
                    // A folder this user may not enter is "permission
                    // denied", not a missing dataset.
                    None => {
                        let p = loc.root.join(strip_hdu(l));
                        p.try_exists().map_err(|e| ButlerError::io(&p, e))?
                    }
                };
                if !here {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        match mapped {
            Some(loc) if present(&loc)? => Ok(Lookup::Found(Box::new(Located {
                repo: i,
                location: loc,
                record: None,
            }))),
            _ => Ok(absent),
        }
    }

    // ----- reads -----

    /// The files of a dataset (Gen2's `<type>_filename`): every location,
    /// joined to its repository's root, without an `[N]` HDU suffix.
    pub fn filenames(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<Vec<PathBuf>, ButlerError> {
        let resolved = self.resolve_alias(dataset_type)?;
        let found = self.locate(&resolved, data_id, run)?;
        Ok(found
            .location
            .locations_with_root()
            .into_iter()
            .map(|p| PathBuf::from(strip_hdu(&p.to_string_lossy())))
            .collect())
    }

    /// A mapper's bypass answer for `dataset_type` (Gen2's `bypass_<type>`,
    /// e.g. `ccdExposureId`), from the first repository whose mapper has one:
    /// no file is needed.
    fn bypass_first(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<Option<PropertySet>, ButlerError> {
        for (i, m) in self.mappers.iter().enumerate() {
            if !m.has_bypass(dataset_type) {
                continue;
            }
            let mut loc = match m.map(dataset_type, data_id, false) {
                Ok(l) => l,
                Err(MapperError::UnknownDatasetType { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if loc.root.as_os_str().is_empty() || loc.root.is_relative() {
                loc.root = self.repos.search[i].root.join(&loc.root);
            }
            if let Some(ps) = m.bypass(dataset_type, &loc) {
                return Ok(Some(ps));
            }
        }
        Ok(None)
    }

    /// The detector of `dataset_type` (a base type; a component or derived
    /// type is taken to its base) for `data_id`: the first mapper defining
    /// the type that knows it (a legacy mapper from the camera description
    /// its policy names), else a detector key of the data id (`detector`,
    /// `ccd`, `ccdnum`: the integer id, named by its text). A read exposure
    /// gets it when its header names no detector.
    pub fn detector(&self, dataset_type: &str, data_id: &DataId) -> Option<daf_base::Detector> {
        let resolved = self.resolve_alias(dataset_type).ok()?;
        let base = match self.derived_type(&resolved) {
            Derived::Plain(t) => t.to_string(),
            Derived::Component(b, _)
            | Derived::Metadata(b)
            | Derived::Filename(b)
            | Derived::Sub(b) => b.to_string(),
        };
        let (base, _) = self.split_component(&base);
        for m in &self.mappers {
            if m.has_dataset_type(base) {
                if let Some(d) = m.detector(base, data_id) {
                    return Some(d);
                }
            }
        }
        daf_base::camera::DETECTOR_ID_KEYS.iter().find_map(|k| {
            let id = data_id.get(k)?.as_i64()?;
            Some(daf_base::Detector::new(id, id.to_string()))
        })
    }

    /// Gives an exposure read without a detector in its header the one
    /// [`Butler::detector`] knows.
    fn fill_detector(&self, obj: &mut dyn Persistable, dataset_type: &str, data_id: &DataId) {
        if let Some(slot) = daf_formatters::fits::exposure_detector_mut(obj) {
            if slot.is_none() {
                *slot = self.detector(dataset_type, data_id);
                if let Some(d) = slot {
                    tracing::debug!(dataset_type, %data_id, detector = %d, "detector from the mapper / data id");
                }
            }
        }
    }

    /// Reads a dataset as its stored type.
    ///
    /// Besides the mappers' dataset types, it reads components
    /// (`raw.metadata`, `calexp.mask`, ...) and Gen2's derived types:
    /// `<type>_md` (the header, a `PropertySet`), `<type>_filename` (a
    /// `PropertySet` whose `filename` holds the full paths) and `<type>_sub`
    /// (the box given by the data-id items or read parameters `llcX`,
    /// `llcY`, `width`, `height` and optional `imageOrigin`, `PARENT` or
    /// `LOCAL`). Types a mapper answers without a file (`ccdExposureId`,
    /// `ccdExposureId_bits`) are a `PropertySet` holding one value under the
    /// type's name.
    pub fn get_dyn(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        opts: &GetOptions,
    ) -> Result<Box<dyn Persistable>, ButlerError> {
        let resolved = self.resolve_alias(dataset_type)?;
        match self.derived_type(&resolved) {
            Derived::Plain(_) | Derived::Component(..) => {}
            Derived::Metadata(b) => {
                return self.get_dyn(&format!("{b}.metadata"), data_id, opts);
            }
            Derived::Filename(b) => {
                let files = self.filenames(b, data_id, opts.run.as_deref())?;
                let mut ps = PropertySet::new();
                let names: Vec<String> = files
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect();
                ps.set("filename", names).map_err(FormatterError::from)?;
                return Ok(Box::new(ps));
            }
            Derived::Sub(b) => {
                let (id, opts) = sub_box(&resolved, data_id, opts)?;
                return self.get_dyn(b, &id, &opts);
            }
        }
        let (base, component) = self.split_component(&resolved);
        if component.is_none() {
            if let Some(ps) = self.bypass_first(base, data_id)? {
                return Ok(Box::new(ps));
            }
        }
        let run = opts.run.as_deref();
        let found = self.locate(base, data_id, run)?;
        let full_id = found.location.data_id.clone();
        let mut obj =
            self.read_located(&resolved, base, component, data_id, found, &opts.params)?;
        self.fill_detector(obj.as_mut(), base, &full_id);
        Ok(obj)
    }

    /// Reads the dataset `found` (located as `base`, asked as `resolved`
    /// for `data_id`), or its `component`, with the read parameters `params`.
    fn read_located(
        &self,
        resolved: &str,
        base: &str,
        component: Option<&str>,
        data_id: &DataId,
        mut found: Located,
        params: &PropertySet,
    ) -> Result<Box<dyn Persistable>, ButlerError> {
        let mapper = &self.mappers[found.repo];
        if mapper.has_bypass(base) {
            if let Some(ps) = mapper.bypass(base, &found.location) {
                return Ok(Box::new(ps));
            }
        }
        let mut additional = std::mem::take(&mut found.location.additional_data);
        let loc = &found.location;
        if !params.is_empty() {
            additional
                .merge_replace(params)
                .map_err(FormatterError::from)?;
        }
        if let Some(c) = component {
            additional
                .set("component", c)
                .map_err(FormatterError::from)?;
        }
        mapper.standardize(base, &loc.data_id, &mut additional);
        let persistable = match component {
            Some(c) => component_persistable(&loc.persistable, c).ok_or_else(|| {
                ButlerError::BadDataId {
                    dataset_type: resolved.to_string(),
                    data_id: data_id.clone(),
                    message: format!(
                        "{} has no component {c:?}; components are metadata, image, mask, variance",
                        loc.persistable
                    ),
                }
            })?,
            None => std::mem::take(&mut found.location.persistable),
        };
        let mut storages = Vec::with_capacity(found.location.locations.len());
        // Objects of a remote datastore that are read whole are downloaded
        // here first (removed when the read is done).
        let mut downloads: Option<tempfile::TempDir> = None;
        let remote = self.remotes[found.repo].as_ref();
        for (n, l) in std::mem::take(&mut found.location.locations)
            .into_iter()
            .enumerate()
        {
            // Locations found through the file registry are absolute already.
            let full = if Path::new(&l).is_absolute() {
                l
            } else {
                found.location.root.join(l).to_string_lossy().into_owned()
            };
            let Some(ds) = remote else {
                storages.push(
                    self.persistence.retrieve_storage(
                        &found.location.storage,
                        &LogicalLocation::literal(full),
                    )?,
                );
                continue;
            };
            let file = strip_hdu(&full);
            let hdu = &full[file.len()..];
            let key = remote_key(&found.location.root, file)?;
            if found.location.storage == "FitsStorage" {
                // FITS reads headers and only the byte ranges it needs.
                storages.push(Box::new(daf_storages::fits::FitsStorage::remote(
                    &full,
                    ds.clone(),
                    key,
                )));
                continue;
            }
            if downloads.is_none() {
                downloads = Some(
                    tempfile::Builder::new()
                        .prefix("daf-get.")
                        .tempdir()
                        .map_err(|e| ButlerError::io(std::env::temp_dir(), e))?,
                );
            }
            let dir = downloads
                .as_ref()
                .expect("made above")
                .path()
                .join(n.to_string());
            std::fs::create_dir_all(&dir).map_err(|e| ButlerError::io(&dir, e))?;
            let name = Path::new(file)
                .file_name()
                .map(|f| f.to_os_string())
                .unwrap_or_else(|| "object".into());
            let local = dir.join(name);
            ds.get_to_file(&key, &local)?;
            storages.push(self.persistence.retrieve_storage(
                &found.location.storage,
                &LogicalLocation::literal(format!("{}{hdu}", local.display())),
            )?);
        }
        Ok(self
            .persistence
            .retrieve(&persistable, &mut storages, &additional)?)
    }

    /// Reads a dataset as `T`.
    pub fn get<T: Persistable>(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<T, ButlerError> {
        self.get_with(dataset_type, data_id, &GetOptions::default())
    }

    /// Reads a dataset as `T`, with options (run, read parameters).
    pub fn get_with<T: Persistable>(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        opts: &GetOptions,
    ) -> Result<T, ButlerError> {
        let mut obj = self.get_dyn(dataset_type, data_id, opts)?;
        if !obj.as_any().is::<T>() {
            // A raw image asked for as an exposure: made one from its header,
            // as Gen2's std_raw did.
            obj = match daf_formatters::fits::standardize_exposure(obj) {
                Ok(made) => {
                    let mut made = made?;
                    self.fill_detector(made.as_mut(), dataset_type, data_id);
                    if made.as_any().is::<T>() {
                        made
                    } else {
                        return Err(ButlerError::Formatter(FormatterError::WrongObject {
                            expected: std::any::type_name::<T>().to_string(),
                            actual: made.persistable_name().to_string(),
                        }));
                    }
                }
                Err(back) => back,
            };
        }
        if !obj.as_any().is::<T>() {
            return Err(ButlerError::Formatter(FormatterError::WrongObject {
                expected: std::any::type_name::<T>().to_string(),
                actual: obj.persistable_name().to_string(),
            }));
        }
        Ok(*obj
            .into_any()
            .downcast::<T>()
            .expect("the type was checked just above"))
    }

    /// Reads many datasets of one type in parallel; one result per data id,
    /// in order.
    pub fn get_many<T: Persistable>(
        &self,
        dataset_type: &str,
        data_ids: &[DataId],
        opts: &GetOptions,
    ) -> Vec<Result<T, ButlerError>> {
        data_ids
            .par_iter()
            .map(|id| self.get_with::<T>(dataset_type, id, opts))
            .collect()
    }

    /// Does the dataset exist in any repository? A dataset type no
    /// repository defines is an error
    /// ([`MapperError::UnknownDatasetType`]), not `false`.
    pub fn dataset_exists(
        &self,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<bool, ButlerError> {
        let resolved = self.resolve_alias(dataset_type)?;
        let (base, _) = self.split_component(&resolved);
        match self.locate(base, data_id, None) {
            Ok(_) => Ok(true),
            Err(ButlerError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The full path of a dataset: where it is (read), or where a put would
    /// write it in the first output (`write`).
    pub fn get_uri(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        write: bool,
    ) -> Result<PathBuf, ButlerError> {
        let resolved = self.resolve_alias(dataset_type)?;
        let (base, _) = self.split_component(&resolved);
        if write {
            let &i = self.repos.outputs.first().ok_or_else(|| self.no_output())?;
            let loc = self.mappers[i].map(base, data_id, true)?;
            let run = self.run.as_deref().unwrap_or("");
            let rel = strip_hdu(loc.locations.first().map(String::as_str).unwrap_or(""));
            let root = &self.repos.search[i].root;
            check_relative("run", run)?;
            let rel = if run.is_empty() {
                rel.to_string()
            } else {
                format!("{run}/{rel}")
            };
            if let Some(ds) = &self.remotes[i] {
                check_relative("dataset path", &rel)?;
                return Ok(PathBuf::from(format!("{}/{rel}", ds.url())));
            }
            return Ok(join_under(root, "dataset path", &rel)?);
        }
        let found = self.locate(base, data_id, None)?;
        if let Some(ds) = &self.remotes[found.repo] {
            let root = &self.repos.search[found.repo].root;
            if let Some(first) = found.location.locations.first() {
                let key = remote_key(root, strip_hdu(first))?;
                return Ok(PathBuf::from(format!("{}/{key}", ds.url())));
            }
        }
        let l = found
            .location
            .locations_with_root()
            .into_iter()
            .next()
            .ok_or_else(|| self.not_found(base, data_id, None))?;
        Ok(PathBuf::from(strip_hdu(&l.to_string_lossy())))
    }

    // ----- writes -----

    fn no_output(&self) -> ButlerError {
        ButlerError::ReadOnly {
            root: self
                .repos
                .search
                .first()
                .map(|r| r.root.clone())
                .unwrap_or_default(),
        }
    }

    /// Writes `obj` as `dataset_type` for `data_id` to every output.
    pub fn put(
        &self,
        obj: &dyn Persistable,
        dataset_type: &str,
        data_id: &DataId,
    ) -> Result<Vec<PathBuf>, ButlerError> {
        self.put_with(obj, dataset_type, data_id, &PutOptions::default())
    }

    /// Writes with options (clobber, backup, run). Returns the files written.
    pub fn put_with(
        &self,
        obj: &dyn Persistable,
        dataset_type: &str,
        data_id: &DataId,
        opts: &PutOptions,
    ) -> Result<Vec<PathBuf>, ButlerError> {
        let dataset_type = self.resolve_alias(dataset_type)?;
        if self.repos.outputs.is_empty() {
            return Err(self.no_output());
        }
        let mut written = Vec::new();
        for &i in &self.repos.outputs {
            // remote output: the staging file is not the durable copy
            let no_sync = self.remotes[i].is_some();
            let staged = self.stage_one(i, obj, &dataset_type, data_id, opts, no_sync)?;
            let mut res = self.commit_staged(i, vec![staged], opts, false)?;
            written.push(res.remove(0)?);
        }
        Ok(written)
    }

    /// Writes many objects of one type (in parallel) and records them in one
    /// registry transaction per output. All are attempted; the first error
    /// is returned after the successful ones are recorded.
    ///
    /// Into a local output, several objects are group-committed: every file
    /// is staged without its own fsync, then one durability barrier
    /// ([`daf_storages::atomic::sync_barrier`]: one `syncfs` on Linux)
    /// covers the whole batch and the claim transaction, the files are
    /// renamed into place, the rows are recorded in one transaction, and a
    /// second barrier covers the renames and that transaction before
    /// `put_many` returns. A crash at any point leaves each dataset either
    /// committed whole or absent (the put protocol of [`crate::recovery`]),
    /// at the cost of two syncs per batch instead of two per file.
    pub fn put_many(
        &self,
        dataset_type: &str,
        items: &[(&dyn Persistable, DataId)],
        opts: &PutOptions,
    ) -> Result<Vec<PathBuf>, ButlerError> {
        let dataset_type = self.resolve_alias(dataset_type)?;
        if self.repos.outputs.is_empty() {
            return Err(self.no_output());
        }
        let mut written = Vec::new();
        let mut first_err = None;
        for &i in &self.repos.outputs {
            let group = items.len() > 1 && self.remotes[i].is_none();
            // a remote output's staging files are only read back for the
            // upload (the object store holds the durable copy; recovery
            // never uses them), so they are written without fsync
            let no_sync = group || self.remotes[i].is_some();
            let results: Vec<Result<Staged, ButlerError>> = items
                .par_iter()
                .map(|(obj, id)| self.stage_one(i, *obj, &dataset_type, id, opts, no_sync))
                .collect();
            let mut ok = Vec::new();
            for r in results {
                match r {
                    Ok(s) => ok.push(s),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            for r in self.commit_staged(i, ok, opts, group)? {
                match r {
                    Ok(p) => written.push(p),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Step 1 of the put protocol ([`crate::recovery`]) into output `i`:
    /// maps the data id, checks every path piece, writes the object to
    /// staging files beside the final paths and checksums the first. With
    /// `defer_sync` the storages skip their fsyncs ([`Storage::defer_sync`]):
    /// the caller syncs the batch.
    ///
    /// [`Storage::defer_sync`]: daf_storages::Storage::defer_sync
    fn stage_one(
        &self,
        i: usize,
        obj: &dyn Persistable,
        dataset_type: &str,
        data_id: &DataId,
        opts: &PutOptions,
        defer_sync: bool,
    ) -> Result<Staged, ButlerError> {
        let repo = &self.repos.search[i];
        let loc = self.mappers[i].map(dataset_type, data_id, true)?;
        let run = opts
            .run
            .clone()
            .or_else(|| self.run.clone())
            .unwrap_or_default();
        check_relative("run", &run)?;
        if loc.locations.is_empty() {
            return Err(ButlerError::repo(&repo.root, "mapper returned no location"));
        }
        let mut files = Vec::with_capacity(loc.locations.len());
        let mut locations = Vec::with_capacity(loc.locations.len());
        // A remote output stages in a private folder in memory (tmpfs where
        // there is one), not in the repository folder: the upload reads the
        // file back and the bucket holds the durable copy, so its intent
        // names no staging file (recovery decides by the object alone).
        let stage_dir = match self.remotes[i] {
            Some(_) => Some(memory_staging_dir()?),
            None => None,
        };
        let mut local_files = Vec::with_capacity(loc.locations.len());
        for (k, l) in loc.locations.iter().enumerate() {
            let file = strip_hdu(l);
            let rel = if run.is_empty() {
                file.to_string()
            } else {
                format!("{run}/{file}")
            };
            let full = join_under(&repo.root, "dataset path", &rel)?;
            tracing::info!(dataset_type, data_id = %loc.data_id, path = %full.display(), storage = %loc.storage, run = %run, "put path resolved");
            let (staging_rel, local) = match &stage_dir {
                Some(d) => {
                    // the name keeps its extension (cfitsio compresses by it)
                    let name = rel.rsplit('/').next().unwrap_or("object");
                    (String::new(), d.path().join(format!("{k}.{name}")))
                }
                None => {
                    let st = staging_name(&rel);
                    let p = repo.root.join(&st);
                    (st, p)
                }
            };
            // the storage sees the staging file, with the location's HDU part
            locations.push(format!("{}{}", local.display(), &l[file.len()..]));
            local_files.push(local);
            files.push((rel, staging_rel, full));
        }
        let remove_staging = |_: &[(String, String, PathBuf)]| {
            for p in &local_files {
                let _ = std::fs::remove_file(p);
            }
        };
        let mut storages = Vec::with_capacity(locations.len());
        let mut result = Ok(());
        for l in &locations {
            match self
                .persistence
                .persist_storage(&loc.storage, &LogicalLocation::literal(l.clone()))
                .and_then(|mut s| {
                    // the dataset type's own storage settings
                    if !loc.storage_options.is_empty() {
                        let p = daf_base::Policy::from_property_set(loc.storage_options.clone());
                        s.set_policy(Some(&p))?;
                    }
                    Ok(s)
                }) {
                Ok(mut s) => {
                    if defer_sync {
                        s.defer_sync();
                    }
                    storages.push(s)
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self
                .persistence
                .persist(obj, &mut storages, &loc.additional_data);
        }
        drop(storages);
        if let Err(e) = result {
            remove_staging(&files);
            return Err(e.into());
        }
        let first = local_files[0].clone();
        let (checksum, size) = match checksum_file(&first) {
            Ok(x) => x,
            Err(e) => {
                remove_staging(&files);
                return Err(ButlerError::io(&first, e));
            }
        };
        Ok(Staged {
            intent: Intent {
                id: 0,
                dataset_type: dataset_type.to_string(),
                data_id: loc.data_id,
                run,
                mode: if opts.backup {
                    IntentMode::Backup
                } else if opts.clobber {
                    IntentMode::Clobber
                } else {
                    IntentMode::New
                },
                files: files
                    .iter()
                    .map(|(f, s, _)| (f.clone(), s.clone()))
                    .collect(),
                checksum,
                size,
                owner: daf_storages::owner::token().to_string(),
                time_ns: now_ns(),
            },
            full: files.into_iter().map(|(_, _, f)| f).collect(),
            local: local_files,
            _stage_dir: stage_dir,
        })
    }

    /// Steps 2–5 of the put protocol ([`crate::recovery`]) for files staged
    /// in output `i`: claim, decide, rename, settle. One result per staged
    /// put, in order; `Err` only when the registry itself fails (or, in a
    /// group commit, a durability barrier).
    ///
    /// With `group` (files staged without their own fsync, local output),
    /// one barrier after the claim makes the staged bytes (and an SQLite
    /// registry's claim) durable before any rename, and one after the
    /// settle makes the renames and the rows durable before returning.
    fn commit_staged(
        &self,
        i: usize,
        staged: Vec<Staged>,
        opts: &PutOptions,
        group: bool,
    ) -> Result<Vec<Result<PathBuf, ButlerError>>, ButlerError> {
        let root = &self.repos.search[i].root;
        let remote = self.remotes[i].as_deref();
        let reg = self.registries[i]
            .as_ref()
            .expect("outputs have a registry");
        let mut results: Vec<Option<Result<PathBuf, ButlerError>>> =
            (0..staged.len()).map(|_| None).collect();
        let drop_staging = |s: &Staged| {
            for p in &s.local {
                let _ = std::fs::remove_file(p);
            }
        };
        // 2. claim, waiting for other writers of the same data ids
        let mut claimed: Vec<(usize, i64, Option<DatasetRecord>)> = Vec::new();
        let mut pending: Vec<usize> = (0..staged.len()).collect();
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        while !pending.is_empty() {
            let intents: Vec<Intent> = pending.iter().map(|&k| staged[k].intent.clone()).collect();
            let claims = match lock(reg).claim(&intents) {
                Ok(c) => c,
                Err(e) => {
                    for &k in &pending {
                        drop_staging(&staged[k]);
                    }
                    self.release_claimed(i, &claimed, &staged);
                    return Err(e);
                }
            };
            let mut again = Vec::new();
            for (&k, c) in pending.iter().zip(claims) {
                match c {
                    Claim::Claimed { intent, existing } => claimed.push((k, intent, existing)),
                    Claim::Busy(holder) => {
                        let mut g = lock(reg);
                        let r = crate::recovery::recover_intent_in(&mut **g, root, remote, &holder);
                        drop(g);
                        match r {
                            Ok(crate::recovery::Resolution::Skipped)
                                if started.elapsed() >= BUSY_WAIT =>
                            {
                                drop_staging(&staged[k]);
                                results[k] = Some(Err(ButlerError::Busy {
                                    dataset_type: holder.dataset_type.clone(),
                                    data_id: holder.data_id.clone(),
                                    owner: holder.owner.clone(),
                                    since_s: (now_ns() - holder.time_ns) / 1_000_000_000,
                                }));
                            }
                            Ok(_) => again.push(k),
                            Err(e) => {
                                drop_staging(&staged[k]);
                                results[k] = Some(Err(e));
                            }
                        }
                    }
                }
            }
            if !again.is_empty() {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            pending = again;
        }
        // group commit: the staged bytes are durable before any rename
        if group && !claimed.is_empty() {
            let files: Vec<PathBuf> = claimed
                .iter()
                .flat_map(|(k, _, _)| staged[*k].intent.files.iter().map(|(_, st)| root.join(st)))
                .collect();
            if let Err(e) = daf_storages::atomic::sync_barrier(root, &files) {
                self.release_claimed(i, &claimed, &staged);
                return Err(ButlerError::Storage(e));
            }
        }
        // 3–4. decide, back up, rename
        let mut recs = Vec::new();
        let mut done = Vec::new();
        let mut release = Vec::new();
        let mut moved: Vec<(usize, Option<PathBuf>)> = Vec::new();
        let mut uploads: Vec<(usize, i64, Option<PathBuf>)> = Vec::new();
        for (k, intent, existing) in claimed {
            let s = &staged[k];
            let full = &s.full[0];
            let exists_err = || ButlerError::Exists {
                dataset_type: s.intent.dataset_type.clone(),
                data_id: s.intent.data_id.clone(),
                path: full.clone(),
            };
            let rel0 = &s.intent.files[0].0;
            let mut adopt = false;
            if !opts.clobber && !opts.backup {
                if existing.is_some() {
                    drop_staging(s);
                    release.push(intent);
                    results[k] = Some(Err(exists_err()));
                    continue;
                }
                // On an object store the upload is create-only, so a taken
                // key shows up there (no HEAD first); see below.
                let present: Result<bool, daf_storages::datastore::DatastoreError> = match remote {
                    Some(_) => Ok(false),
                    None => Ok(full.symlink_metadata().is_ok()),
                };
                let present = match present {
                    Ok(p) => p,
                    Err(e) => {
                        drop_staging(s);
                        release.push(intent);
                        results[k] = Some(Err(e.into()));
                        continue;
                    }
                };
                if present {
                    // an unregistered file: adopted if it holds these bytes
                    let same = match remote {
                        Some(ds) => ds
                            .checksum(rel0)
                            .is_ok_and(|(c, n)| c == s.intent.checksum && n == s.intent.size),
                        None => checksum_file(full)
                            .is_ok_and(|(c, n)| c == s.intent.checksum && n == s.intent.size),
                    };
                    if !same || s.full.len() > 1 {
                        drop_staging(s);
                        release.push(intent);
                        results[k] = Some(Err(exists_err()));
                        continue;
                    }
                    adopt = true;
                }
            }
            let backup = if let Some(ds) = remote.filter(|_| opts.backup) {
                let made = ds.head(rel0).map_err(ButlerError::from).and_then(|m| {
                    m.map(|_| remote_backup(ds, rel0).map(PathBuf::from))
                        .transpose()
                });
                match made {
                    Ok(b) => b,
                    Err(e) => {
                        drop_staging(s);
                        release.push(intent);
                        results[k] = Some(Err(e));
                        continue;
                    }
                }
            } else if opts.backup && full.exists() {
                match make_backup(full) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        drop_staging(s);
                        release.push(intent);
                        results[k] = Some(Err(e));
                        continue;
                    }
                }
            } else {
                None
            };
            if remote.is_some() && !adopt {
                // uploaded together below
                uploads.push((k, intent, backup));
                continue;
            }
            let placed = if adopt {
                Ok(())
            } else {
                rename_staged(root, s)
            };
            if adopt {
                drop_staging(s);
            } else if let Err(e) = placed {
                drop_staging(s);
                if let Some(b) = &backup {
                    match remote {
                        Some(ds) => {
                            let _ = ds.delete(&b.to_string_lossy());
                        }
                        None => {
                            let _ = std::fs::remove_file(b);
                        }
                    }
                }
                release.push(intent);
                results[k] = Some(Err(e));
                continue;
            }
            recs.push(crate::recovery::record_of(&s.intent));
            done.push(intent);
            moved.push((k, backup));
        }
        // 4 (object store). every upload at once, each complete or absent;
        // a create-only upload that finds its key taken adopts an identical
        // unregistered object and refuses any other
        if let Some(ds) = remote {
            let batch: Vec<(String, PathBuf, PutMode)> = uploads
                .iter()
                .flat_map(|(k, _, _)| {
                    let s = &staged[*k];
                    let mode = if s.intent.mode == IntentMode::New {
                        PutMode::Create
                    } else {
                        PutMode::Overwrite
                    };
                    s.intent
                        .files
                        .iter()
                        .zip(&s.local)
                        .map(move |((rel, _), p)| (rel.clone(), p.clone(), mode))
                })
                .collect();
            let mut outcomes = ds.put_files(&batch).into_iter();
            for (k, intent, backup) in uploads {
                let s = &staged[k];
                let got: Vec<_> = outcomes.by_ref().take(s.intent.files.len()).collect();
                drop_staging(s);
                let create = s.intent.mode == IntentMode::New;
                let failed = got.iter().position(|r| r.is_err());
                let err = match failed {
                    None => None,
                    Some(0)
                        if create
                            && s.intent.files.len() == 1
                            && matches!(
                                got[0],
                                Err(daf_storages::datastore::DatastoreError::AlreadyExists { .. })
                            ) =>
                    {
                        let same = ds
                            .checksum(&s.intent.files[0].0)
                            .is_ok_and(|(c, n)| c == s.intent.checksum && n == s.intent.size);
                        (!same).then(|| ButlerError::Exists {
                            dataset_type: s.intent.dataset_type.clone(),
                            data_id: s.intent.data_id.clone(),
                            path: s.full[0].clone(),
                        })
                    }
                    Some(_) => {
                        if create {
                            for ((rel, _), r) in s.intent.files.iter().zip(&got) {
                                if r.is_ok() {
                                    let _ = ds.delete(rel);
                                }
                            }
                        }
                        let e = got.into_iter().find_map(|r| r.err()).expect("one failed");
                        Some(match e {
                            daf_storages::datastore::DatastoreError::AlreadyExists { .. } => {
                                ButlerError::Exists {
                                    dataset_type: s.intent.dataset_type.clone(),
                                    data_id: s.intent.data_id.clone(),
                                    path: s.full[0].clone(),
                                }
                            }
                            e => e.into(),
                        })
                    }
                };
                if let Some(e) = err {
                    if let Some(b) = &backup {
                        let _ = ds.delete(&b.to_string_lossy());
                    }
                    release.push(intent);
                    results[k] = Some(Err(e));
                    continue;
                }
                recs.push(crate::recovery::record_of(&s.intent));
                done.push(intent);
                moved.push((k, backup));
            }
        }
        // 5. settle: rows recorded and intents removed in one transaction
        let settled = lock(reg).settle(&recs, &done);
        let _ = lock(reg).release(&release);
        if let Err(e) = settled {
            // Undo what can be undone now: a backup goes back over the new
            // file, a new file goes. A clobber's old content is gone, so its
            // intent stays and recovery rolls it forward (its file is in
            // place and matches).
            let mut g = lock(reg);
            let mut undone = Vec::new();
            for (&intent, (k, backup)) in done.iter().zip(&moved) {
                let s = &staged[*k];
                if let Some(ds) = remote {
                    // put the backup back, or remove the new object
                    let rel0 = &s.intent.files[0].0;
                    let ok = match backup {
                        Some(b) => ds.rename(&b.to_string_lossy(), rel0).is_ok(),
                        None if s.intent.mode == IntentMode::New => ds.delete(rel0).is_ok(),
                        None => false,
                    };
                    if ok {
                        undone.push(intent);
                    }
                    continue;
                }
                match backup {
                    Some(b) if std::fs::rename(b, &s.full[0]).is_ok() => undone.push(intent),
                    Some(_) => {}
                    None if s.intent.mode == IntentMode::New => {
                        let mut it = s.intent.clone();
                        it.id = intent;
                        let _ = crate::recovery::resolve_intent(&mut **g, root, &it);
                    }
                    None => {}
                }
            }
            let _ = g.release(&undone);
            return Err(e);
        }
        // group commit: the renames and the rows are durable before any
        // put of the batch is acknowledged
        if group && !moved.is_empty() {
            let files: Vec<PathBuf> = moved
                .iter()
                .flat_map(|(k, _)| staged[*k].full.iter().cloned())
                .collect();
            daf_storages::atomic::sync_barrier(root, &files).map_err(ButlerError::Storage)?;
        }
        for (k, _) in moved {
            results[k] = Some(Ok(match remote {
                Some(ds) => PathBuf::from(format!("{}/{}", ds.url(), staged[k].intent.files[0].0)),
                None => staged[k].full[0].clone(),
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every staged put has an outcome"))
            .collect())
    }

    /// Releases intents claimed before a registry failure (best effort).
    fn release_claimed(
        &self,
        i: usize,
        claimed: &[(usize, i64, Option<DatasetRecord>)],
        staged: &[Staged],
    ) {
        if let Some(reg) = self.registries[i].as_ref() {
            let ids: Vec<i64> = claimed.iter().map(|c| c.1).collect();
            let _ = lock(reg).release(&ids);
        }
        for (k, _, _) in claimed {
            for p in &staged[*k].local {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    // ----- queries -----

    /// Distinct tuples of `keys` for datasets of `dataset_type` matching
    /// `data_id`: from the first repository with a non-empty answer (its
    /// mapper's registry and its file registry together).
    pub fn query_metadata(
        &self,
        dataset_type: &str,
        keys: &[&str],
        data_id: &DataId,
    ) -> Result<Vec<Vec<DataIdValue>>, ButlerError> {
        let dataset_type = self.resolve_alias(dataset_type)?;
        let keys_owned: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        let mut unknown = 0;
        for (i, _) in self.repos.search.iter().enumerate() {
            let mut out: Vec<Vec<DataIdValue>> = Vec::new();
            let mut mapper_err = None;
            match self.mappers[i].query_metadata(&dataset_type, &keys_owned, data_id) {
                Ok(v) => {
                    tracing::debug!(repository = i, dataset_type = %dataset_type, rows = v.len(), "mapper registry query");
                    out = v
                }
                Err(MapperError::UnknownDatasetType { .. }) => {
                    unknown += 1;
                    continue;
                }
                Err(e) => mapper_err = Some(e),
            }
            if let Some(reg) = self.registries[i].as_ref() {
                // Distinct tuples through a hash of their values (equal as
                // `value_eq` has them: 1 and 1.0 are one value), not a scan
                // of every tuple kept so far.
                let mut seen: std::collections::HashSet<Vec<ValueKey<'_>>> =
                    std::collections::HashSet::with_capacity(out.len());
                let mut kept: Vec<Vec<DataIdValue>> = Vec::new();
                for o in &out {
                    seen.insert(o.iter().map(ValueKey::of).collect());
                }
                let tuples = lock(reg).project_matching(&dataset_type, data_id, keys)?;
                tracing::debug!(repository = i, dataset_type = %dataset_type, rows = tuples.len(), "file registry query");
                seen.reserve(tuples.len());
                let keep: Vec<bool> = tuples
                    .iter()
                    .map(|t| seen.insert(t.iter().map(ValueKey::of).collect()))
                    .collect();
                drop(seen);
                kept.extend(
                    tuples
                        .into_iter()
                        .zip(keep)
                        .filter_map(|(t, k)| k.then_some(t)),
                );
                out.extend(kept);
            }
            if out.is_empty() {
                if let Some(e) = mapper_err {
                    return Err(e.into());
                }
                continue;
            }
            tracing::info!(dataset_type = %dataset_type, keys = ?keys, rows = out.len(), "query");
            return Ok(out);
        }
        if unknown > 0 && unknown == self.repos.search.len() {
            // No repository defines the type: say so, not "nothing found".
            return Err(MapperError::UnknownDatasetType {
                dataset_type: dataset_type.into_owned(),
            }
            .into());
        }
        Ok(Vec::new())
    }

    /// The data-id keys of `dataset_type` and their types, minus the keys of
    /// `level` (from the first repository whose mapper knows the type).
    pub fn get_keys(
        &self,
        dataset_type: &str,
        level: Option<&str>,
    ) -> Result<BTreeMap<String, KeyType>, ButlerError> {
        let dataset_type = self.resolve_alias(dataset_type)?;
        let mut last = None;
        for m in &self.mappers {
            match m.get_keys(&dataset_type, level) {
                Ok(k) => return Ok(k),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .map(ButlerError::from)
            .unwrap_or_else(|| self.not_found(&dataset_type, &DataId::new(), None)))
    }

    /// One data reference per distinct value of the keys of `dataset_type`
    /// at `level` matching `data_id` (exactly one when `data_id` already has
    /// every key).
    pub fn subset(
        &self,
        dataset_type: &str,
        level: Option<&str>,
        data_id: &DataId,
    ) -> Result<Vec<DataRef<'_>>, ButlerError> {
        let dataset_type = self.resolve_alias(dataset_type)?;
        let keys = self.get_keys(&dataset_type, level)?;
        // A value that cannot have the key's type is an error (Gen2's subset
        // returned no references for it, silently).
        let all_keys = self.get_keys(&dataset_type, Some("\u{0}"))?;
        for (k, v) in data_id.iter() {
            let Some(kt) = all_keys.get(k) else { continue };
            let fits = match (kt, v) {
                (KeyType::Int, DataIdValue::Str(s)) => s.trim().parse::<i64>().is_ok(),
                (KeyType::Int, DataIdValue::Float(f)) => f.fract() == 0.0,
                (KeyType::Float, DataIdValue::Str(s)) => s.trim().parse::<f64>().is_ok(),
                _ => true,
            };
            if !fits {
                let want = match kt {
                    KeyType::Int => "an integer",
                    KeyType::Float => "a number",
                    KeyType::Str => "a string",
                };
                return Err(ButlerError::BadDataId {
                    dataset_type: dataset_type.to_string(),
                    data_id: data_id.clone(),
                    message: format!("key {k:?} must be {want} ({kt:?}), got {v}"),
                });
            }
        }
        let mk = |id: DataId| DataRef {
            butler: self,
            dataset_type: dataset_type.to_string(),
            level: level.map(str::to_string),
            data_id: id,
        };
        if keys.keys().all(|k| data_id.contains_key(k)) {
            return Ok(vec![mk(data_id.clone())]);
        }
        let names: Vec<&str> = keys.keys().map(String::as_str).collect();
        let tuples = self.query_metadata(&dataset_type, &names, data_id)?;
        Ok(tuples
            .into_iter()
            .map(|t| {
                let mut id = data_id.clone();
                for (k, v) in names.iter().zip(t) {
                    id.insert(*k, v);
                }
                mk(id)
            })
            .collect())
    }

    /// The one data reference matching `data_id` at `level`; none or several
    /// is [`ButlerError::NotUnique`].
    pub fn data_ref(
        &self,
        dataset_type: &str,
        level: Option<&str>,
        data_id: &DataId,
    ) -> Result<DataRef<'_>, ButlerError> {
        let mut refs = self.subset(dataset_type, level, data_id)?;
        if refs.len() != 1 {
            return Err(ButlerError::NotUnique {
                dataset_type: dataset_type.into(),
                data_id: data_id.clone(),
                count: refs.len(),
            });
        }
        Ok(refs.remove(0))
    }
}

/// The persistable that reads `component` of a file holding `persistable`:
/// `metadata` → `PropertyList` (the header alone), `mask` → `Mask`,
/// `variance` → `ImageF`, `image` → the `Image*` of the same pixel type.
/// The FITS formatters read only that HDU (additional data `component`).
pub fn component_persistable(persistable: &str, component: &str) -> Option<String> {
    let suffix = ["MaskedImage", "Exposure", "DecoratedImage", "Image"]
        .iter()
        .find_map(|p| persistable.strip_prefix(p));
    match component {
        "metadata" | "md" => Some("PropertyList".into()),
        "mask" => suffix.map(|_| "Mask".into()),
        "variance" => suffix.map(|_| "ImageF".into()),
        "image" => suffix.map(|s| format!("Image{s}")),
        _ => None,
    }
}

/// What a dataset-type name asks for (see [`Butler::derived_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived<'a> {
    /// A dataset type (or an unknown name, reported as such when read).
    Plain(&'a str),
    /// A component of a dataset type: `calexp.metadata`.
    Component(&'a str, &'a str),
    /// `<type>_md`: the header of the dataset.
    Metadata(&'a str),
    /// `<type>_filename`: the dataset's files.
    Filename(&'a str),
    /// `<type>_sub`: a cut-out of the dataset.
    Sub(&'a str),
}

/// The keys of a cut-out box, as data-id items or read parameters.
const BOX_KEYS: [&str; 4] = ["llcX", "llcY", "width", "height"];

/// Moves the box of a `<type>_sub` read (`llcX`, `llcY`, `width`, `height`,
/// optional `imageOrigin`) from the data id into the read parameters; a box
/// already in the read parameters is kept.
fn sub_box(
    dataset_type: &str,
    data_id: &DataId,
    opts: &GetOptions,
) -> Result<(DataId, GetOptions), ButlerError> {
    let mut id = data_id.clone();
    let mut opts = opts.clone();
    let bad = |m: String| ButlerError::BadDataId {
        dataset_type: dataset_type.into(),
        data_id: data_id.clone(),
        message: m,
    };
    let in_params = BOX_KEYS.iter().all(|k| opts.params.exists(k));
    let mut vals = [0i64; 4];
    for (n, k) in BOX_KEYS.iter().enumerate() {
        match id.remove(k) {
            Some(DataIdValue::Int(v)) => vals[n] = v,
            Some(other) => {
                return Err(bad(format!(
                    "box key {k:?} must be an integer, got {other}"
                )))
            }
            None if in_params => {}
            None => {
                return Err(bad(format!(
                    "a {dataset_type} read needs a box: llcX, llcY, width and height \
                     (and optionally imageOrigin=PARENT|LOCAL)"
                )))
            }
        }
    }
    let origin = match id.remove("imageOrigin") {
        None => None,
        Some(DataIdValue::Str(s)) if s == "PARENT" || s == "LOCAL" => Some(s),
        Some(other) => {
            return Err(bad(format!(
                "imageOrigin must be PARENT or LOCAL, got {other}"
            )))
        }
    };
    if !in_params || BOX_KEYS.iter().any(|k| data_id.contains_key(k)) {
        let [x, y, w, h] = vals;
        let fit = |v: i64, k: &str| {
            i32::try_from(v).map_err(|_| bad(format!("box key {k:?} = {v} is out of range")))
        };
        let origin = match origin.as_deref() {
            Some("LOCAL") => Origin::Local,
            _ => Origin::Parent,
        };
        opts = opts.bbox(
            fit(x, "llcX")?,
            fit(y, "llcY")?,
            fit(w, "width")?,
            fit(h, "height")?,
            origin,
        );
    } else if let Some(o) = origin {
        let _ = opts.params.set("imageOrigin", o);
    }
    Ok((id, opts))
}

/// How long a put waits for another writer's pending put of the same data
/// id before giving up with [`ButlerError::Busy`].
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One put staged in one output: its intent (files relative to the root)
/// and the full final paths.
struct Staged {
    intent: Intent,
    full: Vec<PathBuf>,
    /// The staging files as written (under the root, or in the memory
    /// folder of a remote output).
    local: Vec<PathBuf>,
    /// A remote output's staging folder (removed with it).
    _stage_dir: Option<tempfile::TempDir>,
}

/// A private folder for a remote output's staging files: in memory
/// (`/dev/shm`) where there is one, else in the temporary folder.
fn memory_staging_dir() -> Result<tempfile::TempDir, ButlerError> {
    let shm = Path::new("/dev/shm");
    let b = || tempfile::Builder::new().prefix("daf-stage.").clone();
    if shm.is_dir() {
        if let Ok(d) = b().tempdir_in(shm) {
            return Ok(d);
        }
    }
    b().tempdir()
        .map_err(|e| ButlerError::io(std::env::temp_dir(), e))
}

/// `dir/.daf-tmp.OWNER.N.NAME` for `dir/NAME`: the staging file of a put,
/// keeping the name's extension (cfitsio compresses by it).
fn staging_name(rel: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (dir, name) = match rel.rfind('/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => ("", rel),
    };
    format!("{dir}.daf-tmp.{}.{n}.{name}", daf_storages::owner::token())
}

/// A data-id value as a hash key, equal where
/// [`value_eq`](crate::file_registry::value_eq) says so: numbers
/// by their `f64` value (1 and 1.0 alike; -0.0 as 0.0), strings by text.
#[derive(PartialEq, Eq, Hash)]
enum ValueKey<'a> {
    Num(u64),
    Str(&'a str),
}

impl<'a> ValueKey<'a> {
    fn of(v: &'a DataIdValue) -> Self {
        match v {
            DataIdValue::Str(s) => ValueKey::Str(s),
            n => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                ValueKey::Num(if f == 0.0 { 0 } else { f.to_bits() })
            }
        }
    }
}

/// `obj` as `T`, or [`FormatterError::WrongObject`].
fn downcast<T: Persistable>(obj: Box<dyn Persistable>) -> Result<T, ButlerError> {
    if !obj.as_any().is::<T>() {
        return Err(ButlerError::Formatter(FormatterError::WrongObject {
            expected: std::any::type_name::<T>().to_string(),
            actual: obj.persistable_name().to_string(),
        }));
    }
    Ok(*obj
        .into_any()
        .downcast::<T>()
        .expect("the type was checked just above"))
}

/// The datastore key of `path`, a file under the repository `root`.
fn remote_key(root: &Path, path: &str) -> Result<String, ButlerError> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(root).map_err(|_| {
            ButlerError::repo(
                root,
                format!("{path} is not inside the repository, so not in its datastore"),
            )
        })?
    } else {
        p
    };
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let key = parts.join("/");
    daf_storages::datastore::check_key(&key)?;
    Ok(key)
}

/// The first free `rel~N` in a remote datastore, copied from `rel`
/// (create-only, so a racing backup never overwrites another).
fn remote_backup(ds: &dyn Datastore, rel: &str) -> Result<String, ButlerError> {
    for n in 1..10_000 {
        let b = format!("{rel}~{n}");
        if ds.head(&b)?.is_some() {
            continue;
        }
        match ds.copy(rel, &b, PutMode::Create) {
            Ok(()) => return Ok(b),
            Err(daf_storages::datastore::DatastoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ButlerError::repo(
        ds.url(),
        format!("no free backup name for {rel}"),
    ))
}

/// Renames every staging file of `s` over its final path.
fn rename_staged(root: &Path, s: &Staged) -> Result<(), ButlerError> {
    for ((_, st), full) in s.intent.files.iter().zip(&s.full) {
        std::fs::rename(root.join(st), full).map_err(|e| ButlerError::io(full, e))?;
    }
    Ok(())
}

/// Hard-links (or copies) `path` to the first free `path~N`.
fn make_backup(path: &Path) -> Result<PathBuf, ButlerError> {
    for n in 1.. {
        let b = PathBuf::from(format!("{}~{n}", path.display()));
        if b.exists() {
            continue;
        }
        match std::fs::hard_link(path, &b) {
            Ok(()) => return Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                std::fs::copy(path, &b).map_err(|e| ButlerError::io(&b, e))?;
                return Ok(b);
            }
        }
    }
    unreachable!("some backup name is free")
}

/// A reference to one dataset (type + complete data id) of a butler.
#[derive(Debug, Clone)]
pub struct DataRef<'a> {
    butler: &'a Butler,
    /// The default dataset type.
    pub dataset_type: String,
    /// The level the reference was made at.
    pub level: Option<String>,
    /// The data id.
    pub data_id: DataId,
}

impl<'a> DataRef<'a> {
    /// Reads the default dataset type as `T`.
    pub fn get<T: Persistable>(&self) -> Result<T, ButlerError> {
        self.butler.get(&self.dataset_type, &self.data_id)
    }
    /// Reads `dataset_type` for this data id as `T`.
    pub fn get_type<T: Persistable>(&self, dataset_type: &str) -> Result<T, ButlerError> {
        self.butler.get(dataset_type, &self.data_id)
    }
    /// Writes `obj` as `dataset_type` (default: the reference's type).
    pub fn put(
        &self,
        obj: &dyn Persistable,
        dataset_type: Option<&str>,
    ) -> Result<Vec<PathBuf>, ButlerError> {
        self.butler.put(
            obj,
            dataset_type.unwrap_or(&self.dataset_type),
            &self.data_id,
        )
    }
    /// Does the dataset (default type or `dataset_type`) exist?
    pub fn exists(&self, dataset_type: Option<&str>) -> Result<bool, ButlerError> {
        self.butler
            .dataset_exists(dataset_type.unwrap_or(&self.dataset_type), &self.data_id)
    }
    /// The dataset's file.
    pub fn uri(&self, dataset_type: Option<&str>) -> Result<PathBuf, ButlerError> {
        self.butler.get_uri(
            dataset_type.unwrap_or(&self.dataset_type),
            &self.data_id,
            false,
        )
    }
    /// References one level down (`level`, or the mapper's default sub-level).
    pub fn sub_items(&self, level: Option<&str>) -> Result<Vec<DataRef<'a>>, ButlerError> {
        let m = &self.butler.mappers[0];
        let sub = match level {
            Some(l) => Some(l.to_string()),
            None => {
                let here = self.level.clone().or_else(|| m.default_level());
                here.and_then(|h| m.default_sub_level(&h))
            }
        };
        self.butler
            .subset(&self.dataset_type, sub.as_deref(), &self.data_id)
    }
}
