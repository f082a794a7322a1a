//! Repositories: a root folder described by `repositoryCfg.yaml` (or, for
//! legacy Gen2 repositories, by a `_mapper` file and `_parent` links), and the
//! search order a butler reads them in.
//!
//! A repository is opened as an *input* (read-only) or an *output*
//! (writable). Reads search the outputs, then the inputs, each followed
//! depth-first by its parents, with repeats dropped; a new output records the
//! inputs as its parents.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use daf_storages::db::DbAuth;

use crate::error::ButlerError;
use crate::file_registry::{auth_or_default, PgFileRegistry, PgLocation};

/// The configuration file name of a repository.
pub const CFG_FILE: &str = "repositoryCfg.yaml";
/// The YAML tag LSST wrote in front of the configuration.
const CFG_TAG: &str = "!RepositoryCfg_v1";

/// The contents of `repositoryCfg.yaml`.
///
/// ```
/// use daf_butler::repository::RepositoryCfg;
/// let cfg = RepositoryCfg::from_yaml_str("mapper: SimpleMapper\nparents: [../in]\n").unwrap();
/// assert_eq!(cfg.mapper.as_deref(), Some("SimpleMapper"));
/// assert_eq!(cfg.parents, vec!["../in".to_string()]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryCfg {
    /// The root, when it differs from the folder holding the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The mapper name.
    #[serde(default)]
    pub mapper: Option<String>,
    /// Arguments for the mapper.
    #[serde(default)]
    pub mapper_args: BTreeMap<String, serde_json::Value>,
    /// Parent repositories, relative to the root (or absolute).
    #[serde(default)]
    pub parents: Vec<String>,
    /// An optional policy (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// Where the file registry lives: absent for the SQLite file
    /// `daf_registry.sqlite3` in the root; a PostgreSQL URL
    /// (`postgresql://[user@]host[:port]/database`, never with a password)
    /// for a registry shared by many nodes. See [`crate::file_registry`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The PostgreSQL schema holding this repository's registry rows (one
    /// schema per repository, so repositories can share a database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_schema: Option<String>,
    /// Where the datasets' bytes live: absent for the repository folder
    /// itself; `s3://bucket/prefix` for an S3 bucket (credentials from the
    /// standard AWS variables or `~/.aws/credentials`, never here). See
    /// [`daf_storages::datastore`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore: Option<String>,
}

impl RepositoryCfg {
    /// Parses the YAML text of a configuration (a leading `!RepositoryCfg_v1`
    /// tag is accepted).
    pub fn from_yaml_str(text: &str) -> Result<RepositoryCfg, String> {
        let body = text.trim_start();
        let body = body.strip_prefix(CFG_TAG).unwrap_or(body);
        if body.trim().is_empty() {
            return Err(if text.trim().is_empty() {
                "the file is empty".into()
            } else {
                "the file holds no settings".into()
            });
        }
        serde_norway::from_str(body).map_err(|e| match e.location() {
            // Lines of the file, though the tag line was cut off above.
            Some(l) => format!(
                "line {}: {}",
                l.line() + text[..text.len() - body.len()].matches('\n').count(),
                daf_base::yaml_error_text(&e)
            ),
            None => daf_base::yaml_error_text(&e),
        })
    }

    /// The YAML text of this configuration, with LSST's tag in front.
    pub fn to_yaml_string(&self) -> String {
        let body = serde_norway::to_string(self).expect("a RepositoryCfg always serializes");
        format!("{CFG_TAG}\n{body}")
    }
}

/// How many `_parent` links a legacy folder without `_mapper` follows to
/// find its mapper.
const MAX_LEGACY_DEPTH: usize = 32;

/// `args` with a relative `policy` made absolute against `root` (the root of
/// the repository the arguments came from), so they mean the same file when
/// another repository inherits them.
pub fn absolute_policy(
    args: &BTreeMap<String, serde_json::Value>,
    root: &Path,
) -> BTreeMap<String, serde_json::Value> {
    let mut out = args.clone();
    if let Some(p) = args.get("policy").and_then(|v| v.as_str()) {
        let abs = normalize(&root.join(p));
        out.insert("policy".into(), abs.to_string_lossy().into_owned().into());
    }
    out
}

/// Read-only input or writable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Read-only.
    Read,
    /// Writable.
    Write,
}

/// One opened repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    /// The absolute root folder.
    pub root: PathBuf,
    /// Its configuration (synthesised for legacy repositories).
    pub cfg: RepositoryCfg,
    /// Its parents, resolved to absolute paths.
    pub parents: Vec<PathBuf>,
    /// Whether it was read from `_mapper` / `_parent` instead of a cfg file.
    pub legacy: bool,
    /// Read-only or writable, as opened by the butler.
    pub mode: Mode,
}

/// Is there a file at `p`? Absent is `false`; a path this user may not
/// look at is an error (permission denied), not `false`.
fn is_file(p: &Path) -> Result<bool, ButlerError> {
    match std::fs::metadata(p) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ButlerError::io(p, e)),
    }
}

fn absolute(p: &Path) -> Result<PathBuf, ButlerError> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| ButlerError::io(p, e))?
            .join(p)
    };
    Ok(normalize(&abs))
}

/// Removes `.` and resolves `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` relative to `base` (both absolute and normalized).
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return target.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

impl Repository {
    /// The mapper policy a repository's cfg names (`mapperArgs.policy`,
    /// relative to its root), if it names one: the policy that also serves
    /// its chain's legacy parents that name a camera mapper but no policy
    /// (what `daf query`, `daf get` and `daf run`'s IO stages use when no
    /// `--policy` is given).
    pub fn lent_policy(root: &Path) -> Option<PathBuf> {
        let r = Repository::open(root, Mode::Read).ok()?;
        let p = r.cfg.mapper_args.get("policy")?.as_str()?;
        Some(r.root.join(p))
    }

    /// Does `root` hold a repository (a cfg file, or a legacy `_mapper` /
    /// `_parent` / `registry.sqlite3`)?
    pub fn exists(root: &Path) -> bool {
        root.join(CFG_FILE).is_file()
            || root.join("_mapper").is_file()
            || root.join("_parent").exists()
            || root.join("registry.sqlite3").is_file()
    }

    /// Opens the repository at `root` in `mode`.
    ///
    /// Errors: no such folder, no configuration, a corrupt configuration, or a
    /// parent that does not exist — each naming the path and what to do.
    pub fn open(root: &Path, mode: Mode) -> Result<Repository, ButlerError> {
        Self::open_depth(root, mode, 0)
    }

    fn open_depth(root: &Path, mode: Mode, depth: usize) -> Result<Repository, ButlerError> {
        let root = absolute(root)?;
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ButlerError::io(&root, e))
            }
            _ => {
                return Err(ButlerError::repo(
                    &root,
                    "no such folder; create it with `daf create` or check the path",
                ))
            }
        }
        // A folder this user may not read is "permission denied", not
        // "not a repository".
        std::fs::read_dir(&root).map_err(|e| ButlerError::io(&root, e))?;
        let cfg_path = root.join(CFG_FILE);
        let (cfg, legacy) = if is_file(&cfg_path)? {
            let text =
                std::fs::read_to_string(&cfg_path).map_err(|e| ButlerError::io(&cfg_path, e))?;
            let cfg = RepositoryCfg::from_yaml_str(&text).map_err(|m| {
                ButlerError::repo(
                    &root,
                    format!(
                        "corrupt {}: {m}; fix or remove the file",
                        cfg_path.display()
                    ),
                )
            })?;
            (cfg, false)
        } else if Self::exists(&root) {
            (Self::legacy_cfg(&root)?, true)
        } else {
            return Err(ButlerError::repo(
                &root,
                format!(
                    "not a repository (no {CFG_FILE}, no _mapper); create it with `daf create`"
                ),
            ));
        };
        let base = match &cfg.root {
            Some(r) if !legacy => absolute(&root.join(r))?,
            _ => root.clone(),
        };
        let mut parents = Vec::new();
        for p in &cfg.parents {
            let abs = normalize(&base.join(p));
            if !abs.is_dir() {
                return Err(ButlerError::repo(
                    &root,
                    format!(
                        "parent {p:?} ({}) does not exist; restore it or edit {CFG_FILE}",
                        abs.display()
                    ),
                ));
            }
            parents.push(abs);
        }
        let mut cfg = cfg;
        if legacy && cfg.mapper.is_none() && depth < MAX_LEGACY_DEPTH {
            // Gen2: a folder with only `_parent` uses its parents' mapper.
            for p in &parents {
                let Ok(parent) = Self::open_depth(p, Mode::Read, depth + 1) else {
                    continue;
                };
                if let Some(m) = parent.cfg.mapper.clone() {
                    cfg.mapper = Some(m);
                    cfg.mapper_args = absolute_policy(&parent.cfg.mapper_args, &parent.root);
                    break;
                }
            }
        }
        Ok(Repository {
            root: base,
            cfg,
            parents,
            legacy,
            mode,
        })
    }

    fn legacy_cfg(root: &Path) -> Result<RepositoryCfg, ButlerError> {
        let mut cfg = RepositoryCfg::default();
        let mp = root.join("_mapper");
        if mp.is_file() {
            let name = std::fs::read_to_string(&mp).map_err(|e| ButlerError::io(&mp, e))?;
            cfg.mapper = Some(name.trim().to_string());
        }
        let parent = root.join("_parent");
        if let Ok(meta) = std::fs::symlink_metadata(&parent) {
            let target = if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&parent).map_err(|e| ButlerError::io(&parent, e))?;
                t.to_string_lossy().into_owned()
            } else if meta.is_file() {
                std::fs::read_to_string(&parent)
                    .map_err(|e| ButlerError::io(&parent, e))?
                    .trim()
                    .to_string()
            } else {
                "_parent".to_string()
            };
            cfg.parents.push(target);
        }
        Ok(cfg)
    }

    /// Creates a new repository at `root` (the folder may exist but must not
    /// hold a repository) with `mapper`, `mapper_args` and `parents`.
    /// The configuration is written atomically; parents are stored relative
    /// to the root.
    pub fn create(
        root: &Path,
        mapper: Option<&str>,
        mapper_args: BTreeMap<String, serde_json::Value>,
        parents: &[PathBuf],
    ) -> Result<Repository, ButlerError> {
        Self::create_with_registry(root, mapper, mapper_args, parents, None, None)
    }

    /// [`Repository::create`] with the file registry in PostgreSQL at
    /// `registry` (`None`: the SQLite default), using `auth` for credentials
    /// (default: [`default_db_auth`](crate::file_registry::default_db_auth)).
    /// Without a schema, one is generated
    /// ([`PgLocation::generated_schema`]). The schema and table are made
    /// before the configuration is written, so an unreachable database
    /// leaves no repository behind.
    pub fn create_with_registry(
        root: &Path,
        mapper: Option<&str>,
        mapper_args: BTreeMap<String, serde_json::Value>,
        parents: &[PathBuf],
        registry: Option<&PgLocation>,
        auth: Option<&DbAuth>,
    ) -> Result<Repository, ButlerError> {
        let root = absolute(root)?;
        if Self::exists(&root) {
            return Err(ButlerError::repo(
                &root,
                "a repository already exists here; open it instead",
            ));
        }
        let (registry, registry_schema) = match registry {
            None => (None, None),
            Some(loc) => {
                let loc = PgLocation {
                    url: loc.url.clone(),
                    schema: Some(
                        loc.schema
                            .clone()
                            .unwrap_or_else(|| PgLocation::generated_schema(&root)),
                    ),
                };
                let auth = auth_or_default(auth)?;
                PgFileRegistry::connect(&loc, &root, &auth, true)?;
                (Some(loc.url), loc.schema)
            }
        };
        std::fs::create_dir_all(&root).map_err(|e| ButlerError::io(&root, e))?;
        let mut rel = Vec::new();
        for p in parents {
            let abs = absolute(p)?;
            if !abs.is_dir() {
                return Err(ButlerError::repo(
                    &root,
                    format!("parent {} does not exist", abs.display()),
                ));
            }
            rel.push(relative_to(&abs, &root).to_string_lossy().into_owned());
        }
        let cfg = RepositoryCfg {
            root: None,
            mapper: mapper.map(str::to_string),
            mapper_args,
            parents: rel,
            policy: None,
            registry,
            registry_schema,
            datastore: None,
        };
        let path = root.join(CFG_FILE);
        let mut f = daf_storages::atomic::AtomicFile::create(&path)?;
        f.writer()
            .write_all(cfg.to_yaml_string().as_bytes())
            .map_err(|e| ButlerError::io(&path, e))?;
        f.commit()?;
        Repository::open(&root, Mode::Write)
    }
}

impl Repository {
    /// Records `url` (`s3://bucket/prefix`) as the datastore of the new,
    /// still empty repository at `self.root` and rewrites its
    /// configuration. The datastore is opened and listed first, so an
    /// unreachable endpoint, a missing bucket or refused credentials fail
    /// here and leave the configuration unchanged.
    pub fn set_datastore(&mut self, url: &str) -> Result<(), ButlerError> {
        let ds = daf_storages::datastore::open_datastore(url)?;
        ds.list("")?;
        self.cfg.datastore = Some(ds.url());
        let path = self.root.join(CFG_FILE);
        let mut f = daf_storages::atomic::AtomicFile::create(&path)?;
        f.writer()
            .write_all(self.cfg.to_yaml_string().as_bytes())
            .map_err(|e| ButlerError::io(&path, e))?;
        f.commit()?;
        Ok(())
    }

    /// The repository's datastore when it is not its own folder
    /// (`datastore:` in its configuration), else `None`.
    pub fn remote_datastore(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn daf_storages::datastore::Datastore>>, ButlerError> {
        match &self.cfg.datastore {
            Some(url) if daf_storages::datastore::is_remote_url(url) => {
                Ok(Some(daf_storages::datastore::open_datastore(url)?))
            }
            _ => Ok(None),
        }
    }
}

/// How a butler was asked to open one repository.
#[derive(Debug, Clone, Default)]
pub struct RepositoryArgs {
    /// The root folder.
    pub root: PathBuf,
    /// The mapper for a new output (default: the inputs' mapper).
    pub mapper: Option<String>,
    /// Mapper arguments for a new output.
    pub mapper_args: BTreeMap<String, serde_json::Value>,
}

impl RepositoryArgs {
    /// Arguments naming only the root.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RepositoryArgs {
            root: root.into(),
            ..Default::default()
        }
    }
    /// With a mapper name.
    pub fn mapper(mut self, name: impl Into<String>) -> Self {
        self.mapper = Some(name.into());
        self
    }
}

impl From<&Path> for RepositoryArgs {
    fn from(p: &Path) -> Self {
        RepositoryArgs::new(p)
    }
}
impl From<PathBuf> for RepositoryArgs {
    fn from(p: PathBuf) -> Self {
        RepositoryArgs::new(p)
    }
}
impl From<&str> for RepositoryArgs {
    fn from(p: &str) -> Self {
        RepositoryArgs::new(p)
    }
}

/// The repositories of one butler, in read search order.
#[derive(Debug, Clone)]
pub struct RepositorySet {
    /// Every repository in search order (outputs and their parents first).
    pub search: Vec<Repository>,
    /// Indices into `search` of the outputs.
    pub outputs: Vec<usize>,
}

impl RepositorySet {
    /// Opens `inputs` read-only and `outputs` writable; a missing output is
    /// created with the inputs as parents and the inputs' mapper (when they
    /// all share one) unless its args name one.
    pub fn resolve(
        inputs: &[RepositoryArgs],
        outputs: &[RepositoryArgs],
    ) -> Result<RepositorySet, ButlerError> {
        Self::resolve_with_policy(inputs, outputs, None)
    }

    /// [`RepositorySet::resolve`], where a new output that inherits a camera
    /// mapper from inputs naming no policy of their own (legacy Gen2
    /// repositories: `_mapper`, `registry.sqlite3`) records `policy` as its
    /// `mapperArgs.policy`, so it opens later without being told.
    pub fn resolve_with_policy(
        inputs: &[RepositoryArgs],
        outputs: &[RepositoryArgs],
        policy: Option<&Path>,
    ) -> Result<RepositorySet, ButlerError> {
        let mut opened_inputs = Vec::new();
        for a in inputs {
            opened_inputs.push(Repository::open(&a.root, Mode::Read)?);
        }
        let input_roots: Vec<PathBuf> = opened_inputs.iter().map(|r| r.root.clone()).collect();
        let mut opened_outputs = Vec::new();
        for a in outputs {
            let root = absolute(&a.root)?;
            let repo = if Repository::exists(&root) {
                let r = Repository::open(&root, Mode::Write)?;
                if !input_roots.is_empty()
                    && !r.parents.is_empty()
                    && !input_roots.starts_with(&r.parents)
                    && !r.parents.starts_with(&input_roots)
                {
                    return Err(ButlerError::repo(
                        &root,
                        format!(
                            "output was created with parents {:?} but the inputs are {:?}; \
                             pass the same inputs or use a new output",
                            r.parents, input_roots
                        ),
                    ));
                }
                r
            } else {
                let mapper =
                    match &a.mapper {
                        Some(m) => Some(m.clone()),
                        None => {
                            let names: HashSet<Option<&String>> = opened_inputs
                                .iter()
                                .map(|r| r.cfg.mapper.as_ref())
                                .collect();
                            match names.len() {
                                0 => None,
                                1 => names.into_iter().next().flatten().cloned(),
                                _ => return Err(ButlerError::repo(
                                    &root,
                                    "the inputs use different mappers; name the output's mapper",
                                )),
                            }
                        }
                    };
                // An output that inherits its mapper also inherits its arguments.
                let mut args = if a.mapper.is_none() && a.mapper_args.is_empty() {
                    opened_inputs
                        .first()
                        .map(|r| absolute_policy(&r.cfg.mapper_args, &r.root))
                        .unwrap_or_default()
                } else {
                    a.mapper_args.clone()
                };
                let camera = mapper.as_deref().is_some_and(|m| m != "SimpleMapper");
                if let (true, Some(p)) = (camera && !args.contains_key("policy"), policy) {
                    let abs = absolute(p)?;
                    args.insert("policy".into(), abs.to_string_lossy().into_owned().into());
                }
                Repository::create(&root, mapper.as_deref(), args, &input_roots)?
            };
            opened_outputs.push(repo);
        }

        let mut set = RepositorySet {
            search: Vec::new(),
            outputs: Vec::new(),
        };
        let mut seen = HashSet::new();
        for r in opened_outputs {
            let idx = set.search.len();
            set.add_depth_first(r, &mut seen, &mut Vec::new())?;
            set.outputs.push(idx);
        }
        for r in opened_inputs {
            if !seen.contains(&r.root) {
                set.add_depth_first(r, &mut seen, &mut Vec::new())?;
            }
        }
        Ok(set)
    }

    fn add_depth_first(
        &mut self,
        repo: Repository,
        seen: &mut HashSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ButlerError> {
        if stack.contains(&repo.root) {
            return Err(ButlerError::repo(
                &repo.root,
                "parent links form a cycle; fix the parents",
            ));
        }
        if !seen.insert(repo.root.clone()) {
            return Ok(());
        }
        let parents = repo.parents.clone();
        stack.push(repo.root.clone());
        self.search.push(repo);
        for p in parents {
            if stack.contains(&p) {
                return Err(ButlerError::repo(
                    &p,
                    "parent links form a cycle; fix the parents",
                ));
            }
            if seen.contains(&p) {
                continue;
            }
            let parent = Repository::open(&p, Mode::Read)?;
            self.add_depth_first(parent, seen, stack)?;
        }
        stack.pop();
        Ok(())
    }

    /// The roots in search order.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.search.iter().map(|r| r.root.clone()).collect()
    }

    /// The writable repositories.
    pub fn output_repos(&self) -> impl Iterator<Item = &Repository> {
        self.outputs.iter().map(|&i| &self.search[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_and_chain() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        Repository::create(&a, Some("M"), BTreeMap::new(), &[]).unwrap();
        Repository::create(&b, Some("M"), BTreeMap::new(), std::slice::from_ref(&a)).unwrap();
        let text = std::fs::read_to_string(b.join(CFG_FILE)).unwrap();
        assert!(text.starts_with("!RepositoryCfg_v1\n"), "{text}");
        assert!(text.contains("- ../a"), "{text}");
        let rb = Repository::open(&b, Mode::Read).unwrap();
        assert_eq!(rb.parents, vec![a.clone()]);
        assert_eq!(rb.cfg.mapper.as_deref(), Some("M"));

        // output c over inputs b: search c, b, a
        let c = d.path().join("c");
        let set =
            RepositorySet::resolve(&[RepositoryArgs::new(&b)], &[RepositoryArgs::new(&c)]).unwrap();
        assert_eq!(set.roots(), vec![c.clone(), b.clone(), a.clone()]);
        assert_eq!(set.outputs, vec![0]);
        assert_eq!(set.search[0].mode, Mode::Write);
        assert_eq!(set.search[1].mode, Mode::Read);
        assert_eq!(set.search[0].cfg.mapper.as_deref(), Some("M"));
        // c recorded b as its parent
        let rc = Repository::open(&c, Mode::Read).unwrap();
        assert_eq!(rc.parents, vec![b.clone()]);
    }

    #[test]
    fn dedup_diamond() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base");
        let x = d.path().join("x");
        let y = d.path().join("y");
        Repository::create(&base, None, BTreeMap::new(), &[]).unwrap();
        Repository::create(&x, None, BTreeMap::new(), std::slice::from_ref(&base)).unwrap();
        Repository::create(&y, None, BTreeMap::new(), std::slice::from_ref(&base)).unwrap();
        let set = RepositorySet::resolve(&[RepositoryArgs::new(&x), RepositoryArgs::new(&y)], &[])
            .unwrap();
        assert_eq!(set.roots(), vec![x, base, y]);
        assert!(set.outputs.is_empty());
    }

    #[test]
    fn legacy_repo_with_parent_symlink() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().join("p");
        let child = d.path().join("c");
        std::fs::create_dir_all(&parent).unwrap();
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(
            parent.join("_mapper"),
            "lsst.obs.test.testMapper.TestMapper\n",
        )
        .unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../p", child.join("_parent")).unwrap();
        let r = Repository::open(&child, Mode::Read).unwrap();
        assert!(r.legacy);
        assert_eq!(r.parents, vec![parent.clone()]);
        let set = RepositorySet::resolve(&[RepositoryArgs::new(&child)], &[]).unwrap();
        assert_eq!(set.roots(), vec![child, parent.clone()]);
        assert_eq!(
            set.search[1].cfg.mapper.as_deref(),
            Some("lsst.obs.test.testMapper.TestMapper")
        );
    }

    #[test]
    fn corrupt_cfg_and_missing_parent_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("r");
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(r.join(CFG_FILE), "mapper: [unclosed\n").unwrap();
        let e = Repository::open(&r, Mode::Read).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains(CFG_FILE), "{e}");

        std::fs::write(r.join(CFG_FILE), "mapper: M\nbogus: 1\n").unwrap();
        let e = Repository::open(&r, Mode::Read).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");

        std::fs::write(r.join(CFG_FILE), "mapper: M\nparents: [../gone]\n").unwrap();
        let e = Repository::open(&r, Mode::Read).unwrap_err().to_string();
        assert!(
            e.contains("parent \"../gone\"") && e.contains("does not exist"),
            "{e}"
        );

        let e = Repository::open(&d.path().join("nothing"), Mode::Read)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such folder"), "{e}");
    }

    #[test]
    fn cycle_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join(CFG_FILE), "parents: [../b]\n").unwrap();
        std::fs::write(b.join(CFG_FILE), "parents: [../a]\n").unwrap();
        let e = RepositorySet::resolve(&[RepositoryArgs::new(&a)], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn mismatched_parents_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        let out = d.path().join("out");
        Repository::create(&a, None, BTreeMap::new(), &[]).unwrap();
        Repository::create(&b, None, BTreeMap::new(), &[]).unwrap();
        RepositorySet::resolve(&[RepositoryArgs::new(&a)], &[RepositoryArgs::new(&out)]).unwrap();
        let e = RepositorySet::resolve(&[RepositoryArgs::new(&b)], &[RepositoryArgs::new(&out)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("created with parents"), "{e}");
    }
}
