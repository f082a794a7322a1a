//! Repository lifecycle subcommands: `prune`, `remove-run`,
//! `register-dataset-type`, `query-dataset-types`, `query-runs`,
//! `retrieve`, and the restore half of `ingest --force`.
//!
//! A **run** is the label a put or an ingest records with each dataset
//! (`--run`, default none: the empty name); a named run's files go under
//! `<run>/` in the repository. Datasets of one type and data id written by
//! different runs are kept apart, so a run is also what `remove-run`
//! removes as a whole.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};
use daf_base::{DataId, DataIdValue};
use daf_butler::file_registry::{checksum_file, DatasetRecord};
use daf_butler::ingest::{IngestOptions, IngestSummary, Transfer};
use daf_butler::lifecycle::{self, FileAction, Removal, RemoveReport, Restored};
use daf_butler::query::parse_where;
use daf_butler::repository::{Mode, CFG_FILE};
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, Repository};

use super::butler::{open, open_with, parse_kv, print_json, PolicyArg};
use super::{typos, CliError};

/// How a file is brought in (`ingest`, `import`) or out (`retrieve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransferArg {
    /// Copy (atomically: temporary file, fsync, rename).
    Copy,
    /// Move (rename; copy and delete across file systems).
    Move,
    /// Hard link.
    #[value(alias = "link")]
    Hardlink,
    /// Absolute symbolic link.
    Symlink,
    /// Relative symbolic link.
    Relsymlink,
    /// Leave the file where it is and record its absolute path (ingest only).
    Direct,
}

impl From<TransferArg> for Transfer {
    fn from(t: TransferArg) -> Transfer {
        match t {
            TransferArg::Copy => Transfer::Copy,
            TransferArg::Move => Transfer::Move,
            TransferArg::Hardlink => Transfer::Hardlink,
            TransferArg::Symlink => Transfer::Symlink,
            TransferArg::Relsymlink => Transfer::Relsymlink,
            TransferArg::Direct => Transfer::Direct,
        }
    }
}

/// An existing repository opened for writing (a missing one is an error,
/// not created).
fn open_existing_output(repo: &Path) -> Result<Butler, CliError> {
    if !Repository::exists(repo) {
        return Err(CliError::new(format!(
            "{} is not a repository (no {CFG_FILE}); `daf create` makes one",
            repo.display()
        )));
    }
    open(repo, true)
}

/// A run as it is typed on the command line: the unnamed run is `""`
/// (`--run ""`).
fn run_label(run: &str) -> String {
    if run.is_empty() {
        "\"\"".into()
    } else {
        run.to_string()
    }
}

// ---------------------------------------------------------------- prune / remove-run

/// `daf prune`: remove datasets from a repository.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The repository (its parents are never touched).
    pub repo: PathBuf,
    /// The dataset type.
    pub dataset_type: String,
    /// A partial data id as `KEY=VALUE` items (none: every dataset of the type).
    #[arg(value_parser = parse_kv)]
    pub data_id: Vec<(String, DataIdValue)>,
    /// Only this run (default: every run).
    #[arg(long)]
    pub run: Option<String>,
    /// Only data ids matching this filter, e.g. `visit > 3`.
    #[arg(long = "where")]
    pub where_: Option<String>,
    /// Delete the files too (default: only the registry rows go; the files
    /// stay, unregistered). Files ingested in place (`--transfer direct`)
    /// are never deleted.
    #[arg(long)]
    pub purge: bool,
    /// List what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf prune`.
pub fn prune(a: PruneArgs) -> Result<(), CliError> {
    let butler = open_existing_output(&a.repo)?;
    typos::check_dataset_type(&butler, &a.dataset_type)?;
    let id: DataId = a.data_id.iter().cloned().collect();
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    let asked: Vec<&str> = id
        .keys()
        .chain(filter.iter().flat_map(|f| f.keys()))
        .collect();
    typos::check_keys(
        &butler,
        Some(&a.dataset_type),
        asked,
        "the data id or --where",
    )?;
    if let Some(run) = &a.run {
        check_run(&butler, run)?;
    }
    let recs: Vec<DatasetRecord> = {
        let reg = registry(&butler, &a.repo)?;
        reg.find_matching(Some(&a.dataset_type), &id, a.run.as_deref())?
            .into_iter()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.data_id)))
            .collect()
    };
    remove(&butler, &a.repo, &recs, a.purge, a.dry_run, a.json)
}

/// `daf remove-run`: remove every dataset of one run.
#[derive(Debug, Args)]
pub struct RemoveRunArgs {
    /// The repository (its parents are never touched).
    pub repo: PathBuf,
    /// The run (`daf query-runs` lists them; `""` is the unnamed run).
    pub run: String,
    /// Delete the files too (default: only the registry rows go).
    #[arg(long)]
    pub purge: bool,
    /// List what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf remove-run`.
pub fn remove_run(a: RemoveRunArgs) -> Result<(), CliError> {
    let butler = open_existing_output(&a.repo)?;
    check_run(&butler, &a.run)?;
    let recs = registry(&butler, &a.repo)?.find_matching(None, &DataId::new(), Some(&a.run))?;
    remove(&butler, &a.repo, &recs, a.purge, a.dry_run, a.json)
}

fn registry<'a>(
    butler: &'a Butler,
    repo: &Path,
) -> Result<std::sync::MutexGuard<'a, daf_butler::FileRegistry>, CliError> {
    butler.registry(0).ok_or_else(|| {
        CliError::new(format!(
            "{} has no file registry (nothing was put or ingested)",
            repo.display()
        ))
    })
}

/// The runs of the first repository (the one written), sorted.
fn runs_of(butler: &Butler) -> Result<BTreeMap<String, usize>, CliError> {
    let mut runs = BTreeMap::new();
    if let Some(reg) = butler.registry(0) {
        for r in reg.all()? {
            *runs.entry(r.run).or_insert(0) += 1;
        }
    }
    Ok(runs)
}

fn check_run(butler: &Butler, run: &str) -> Result<(), CliError> {
    let runs = runs_of(butler)?;
    if runs.contains_key(run) {
        return Ok(());
    }
    let valid: Vec<String> = runs.keys().map(|r| format!("{r:?}")).collect();
    let names: Vec<String> = runs.keys().cloned().collect();
    let mut m = format!("unknown run {run:?}");
    if let Some(s) = typos::did_you_mean(run, &names) {
        m.push_str(&format!("; did you mean {s:?}?"));
    }
    if valid.is_empty() {
        m.push_str(" (the repository holds no datasets)");
    } else {
        m.push_str(&format!(" (runs: {})", valid.join(", ")));
    }
    Err(CliError::new(m))
}

fn remove(
    butler: &Butler,
    repo: &Path,
    recs: &[DatasetRecord],
    purge: bool,
    dry_run: bool,
    json: bool,
) -> Result<(), CliError> {
    let remote = butler.remote_datastore(0).map(|d| &**d);
    let root = butler.repositories()[0].root.clone();
    let report = {
        let mut reg = registry(butler, repo)?;
        if dry_run {
            RemoveReport {
                removed: lifecycle::plan_removal_in(&**reg, recs, purge, remote)?,
                failed: Vec::new(),
            }
        } else {
            lifecycle::remove_datasets_in(&mut **reg, &root, recs, purge, remote)?
        }
    };
    let deleted = report
        .removed
        .iter()
        .filter(|r| r.file_action == FileAction::Delete)
        .count();
    if json {
        print_json(&serde_json::json!({
            "dry_run": dry_run,
            "purge": purge,
            "removed": report.removed,
            "failed": report.failed.iter().map(|(r, why)| serde_json::json!({
                "dataset": r, "reason": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        let line = |r: &Removal| {
            let action = match (dry_run, r.file_action) {
                (true, FileAction::Delete) => "file would be deleted",
                (true, FileAction::Keep) => "file would be kept",
                (_, a) => a.describe(),
            };
            format!(
                "{} {} (run {}): {action}: {}",
                r.record.dataset_type,
                r.record.data_id,
                run_label(&r.record.run),
                r.file.display()
            )
        };
        for r in &report.removed {
            println!("{verb}: {}", line(r));
        }
        for (r, why) in &report.failed {
            eprintln!("not removed: {}: {why}", line(r));
        }
        println!(
            "{} dataset(s) {verb}, {deleted} file(s) {}{}",
            report.removed.len(),
            if dry_run {
                "would be deleted"
            } else {
                "deleted"
            },
            if report.failed.is_empty() {
                String::new()
            } else {
                format!(", {} not removed", report.failed.len())
            }
        );
        if !purge && !report.removed.is_empty() {
            println!("(the files stay, unregistered; --purge deletes them)");
        }
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!(
                "{} dataset(s) not removed (listed above); run the same command again",
                report.failed.len()
            ),
            code: 2,
        })
    }
}

// ---------------------------------------------------------------- query-runs / query-dataset-types

/// `daf query-runs`: the runs of a repository and its parents.
#[derive(Debug, Args)]
pub struct QueryRunsArgs {
    /// The repository (its parents are listed too).
    pub repo: PathBuf,
    #[command(flatten)]
    pub legacy: PolicyArg,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf query-runs`.
pub fn query_runs(a: QueryRunsArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    #[derive(serde::Serialize)]
    struct Row {
        run: String,
        datasets: usize,
        dataset_types: Vec<String>,
        repository: PathBuf,
    }
    let mut rows = Vec::new();
    for (i, r) in butler.repositories().iter().enumerate() {
        let Some(reg) = butler.registry(i) else {
            continue;
        };
        let mut runs: BTreeMap<String, (usize, std::collections::BTreeSet<String>)> =
            BTreeMap::new();
        for rec in reg.all()? {
            let e = runs.entry(rec.run).or_default();
            e.0 += 1;
            e.1.insert(rec.dataset_type);
        }
        for (run, (n, types)) in runs {
            rows.push(Row {
                run,
                datasets: n,
                dataset_types: types.into_iter().collect(),
                repository: r.root.clone(),
            });
        }
    }
    if a.json {
        return print_json(&rows);
    }
    println!("run\tdatasets\tdataset_types\trepository");
    for r in &rows {
        println!(
            "{}\t{}\t{}\t{}",
            run_label(&r.run),
            r.datasets,
            r.dataset_types.join(","),
            r.repository.display()
        );
    }
    eprintln!("{} run(s)", rows.len());
    Ok(())
}

/// `daf query-dataset-types`: the dataset types a repository defines.
#[derive(Debug, Args)]
pub struct QueryDatasetTypesArgs {
    /// The repository (its parents' types are listed too).
    pub repo: PathBuf,
    #[command(flatten)]
    pub legacy: PolicyArg,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf query-dataset-types`.
pub fn query_dataset_types(a: QueryDatasetTypesArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..butler.repositories().len() {
        if let Some(reg) = butler.registry(i) {
            for r in reg.all()? {
                *counts.entry(r.dataset_type).or_insert(0) += 1;
            }
        }
    }
    let mut rows = Vec::new();
    for t in typos::dataset_types(&butler)? {
        let mut row = serde_json::Map::new();
        row.insert("name".into(), t.clone().into());
        for i in 0..butler.repositories().len() {
            let m = butler.mapper(i);
            if !m.dataset_types().contains(&t) {
                continue;
            }
            if let Some(d) = butler.repositories()[i]
                .cfg
                .mapper_args
                .get("datasets")
                .and_then(|d| d.get(&t))
            {
                if let Some(tpl) = d.get("template") {
                    row.insert("template".into(), tpl.clone());
                }
            }
            if let Ok(keys) = m.get_keys(&t, Some("\u{0}every key")) {
                row.insert("keys".into(), keys.into_keys().collect::<Vec<_>>().into());
            }
            if let Ok(loc) = m.map(&t, &DataId::new(), false) {
                row.insert("persistable".into(), loc.persistable.into());
                row.insert("storage".into(), loc.storage.into());
            } else if let Some(d) = butler.repositories()[i]
                .cfg
                .mapper_args
                .get("datasets")
                .and_then(|d| d.get(&t))
            {
                for k in ["persistable", "storage"] {
                    if let Some(v) = d.get(k) {
                        row.insert(k.into(), v.clone());
                    }
                }
            }
            break;
        }
        row.insert(
            "datasets".into(),
            counts.get(&t).copied().unwrap_or(0).into(),
        );
        rows.push(serde_json::Value::Object(row));
    }
    if a.json {
        return print_json(&rows);
    }
    println!("name\tkeys\tpersistable\tstorage\tdatasets");
    let s = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        Some(v) => v.to_string(),
        None => "-".into(),
    };
    for r in &rows {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            s(r.get("name")),
            s(r.get("keys")),
            s(r.get("persistable")),
            s(r.get("storage")),
            s(r.get("datasets"))
        );
    }
    eprintln!("{} dataset type(s)", rows.len());
    Ok(())
}

// ---------------------------------------------------------------- register-dataset-type

/// The lock file that serializes changes of a repository's cfg.
pub const CFG_LOCK_FILE: &str = ".repositoryCfg.yaml.lock";

/// `daf register-dataset-type`: add a dataset type to an existing
/// SimpleMapper repository.
#[derive(Debug, Args)]
pub struct RegisterDatasetTypeArgs {
    /// The repository.
    pub repo: PathBuf,
    /// `NAME:TEMPLATE:PERSISTABLE:STORAGE`, as `daf create --dataset`, e.g.
    /// `calexp:calexp/v%(visit)d_f%(filter)s.fits:ExposureF:FitsStorage`.
    pub definition: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf register-dataset-type`.
pub fn register_dataset_type(a: RegisterDatasetTypeArgs) -> Result<(), CliError> {
    let parts: Vec<&str> = a.definition.splitn(4, ':').collect();
    let [name, template, persistable, storage] = parts[..] else {
        return Err(CliError::new(format!(
            "{:?}: expected NAME:TEMPLATE:PERSISTABLE:STORAGE",
            a.definition
        )));
    };
    if name.is_empty() || name.contains(['/', ' ', '@']) {
        return Err(CliError::new(format!(
            "{name:?} is not a dataset type name (letters, digits, `_`, `.`, `-`)"
        )));
    }
    // The storage must be one daf has (no command could read or write
    // through any other). A persistable close to a built-in one is a typo;
    // another unknown one may be an application's own formatter: allowed,
    // with a warning.
    let storages = daf_storages::StorageRegistry::with_defaults().names();
    if !storages.iter().any(|k| k == storage) {
        return Err(typos::unknown("storage", storage, &storages, ""));
    }
    let persistables = daf_formatters::FormatterRegistry::with_defaults().names();
    if !persistables.iter().any(|k| k == persistable) {
        if typos::did_you_mean(persistable, &persistables).is_some() {
            return Err(typos::unknown(
                "persistable",
                persistable,
                &persistables,
                "",
            ));
        }
        tracing::warn!(
            "persistable {persistable:?} is not built in; a butler reading {persistable:?} datasets must register it"
        );
    }
    let def = SimpleDataset::new(template, persistable, storage);
    SimpleMapper::new([(name, def.clone())])?; // the template parses
    Repository::open(&a.repo, Mode::Write)?; // a writable repository
                                             // Concurrent registrations are serialized by an exclusive lock on a
                                             // lock file beside the cfg, held from reading the cfg to renaming the
                                             // new one into place, so none is lost.
    let lock_path = a.repo.join(CFG_LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::new(format!("{}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| CliError::new(format!("locking {}: {e}", lock_path.display())))?;
    tracing::debug!(lock = %lock_path.display(), "repository cfg locked");
    let mut repo = Repository::open(&a.repo, Mode::Write)?;
    let mapper = repo.cfg.mapper.clone().unwrap_or_default();
    if mapper != "SimpleMapper" {
        let policy = repo
            .cfg
            .mapper_args
            .get("policy")
            .and_then(|v| v.as_str())
            .map(|p| format!(" (its policy {p})"))
            .unwrap_or_default();
        return Err(CliError::new(format!(
            "{} uses the mapper {mapper:?}: its dataset types come from its mapper policy{policy}; \
             register-dataset-type adds types to SimpleMapper repositories",
            a.repo.display()
        )));
    }
    let mut defs: BTreeMap<String, SimpleDataset> = match repo.cfg.mapper_args.get("datasets") {
        Some(v) => serde_json::from_value(v.clone())?,
        None => BTreeMap::new(),
    };
    let outcome = match defs.get(name) {
        Some(old)
            if old.template == def.template
                && old.persistable == def.persistable
                && old.storage == def.storage =>
        {
            "already registered"
        }
        Some(old) => {
            return Err(CliError::new(format!(
                "dataset type {name:?} is already defined as {}:{}:{}; a dataset type \
                 cannot be redefined (register one under a new name)",
                old.template, old.persistable, old.storage
            )))
        }
        None => {
            defs.insert(name.to_string(), def.clone());
            let all = SimpleMapper::new(defs.iter().map(|(k, v)| (k.as_str(), v.clone())))?;
            repo.cfg.mapper_args.extend(all.to_args());
            let path = repo.root.join(CFG_FILE);
            let mut f = daf_storages::atomic::AtomicFile::create(&path)?;
            f.writer()
                .write_all(repo.cfg.to_yaml_string().as_bytes())
                .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
            f.commit()?;
            "registered"
        }
    };
    drop(lock);
    if a.json {
        return print_json(&serde_json::json!({
            "name": name, "template": template, "persistable": persistable,
            "storage": storage, "outcome": outcome,
        }));
    }
    println!("{outcome} dataset type {name} ({template}, {persistable}, {storage})");
    Ok(())
}

// ---------------------------------------------------------------- retrieve

/// `daf retrieve`: copy the files of datasets out of a repository.
#[derive(Debug, Args)]
pub struct RetrieveArgs {
    /// The repository (its parents are searched too).
    pub repo: PathBuf,
    #[command(flatten)]
    pub legacy: PolicyArg,
    /// The dataset type.
    pub dataset_type: String,
    /// A partial data id as `KEY=VALUE` items, then the destination folder
    /// (created if missing); files keep their paths relative to the
    /// repository.
    #[arg(required = true, num_args = 1.., value_name = "KEY=VALUE… DEST")]
    pub rest: Vec<String>,
    /// Only this run (default: the newest of each data id).
    #[arg(long)]
    pub run: Option<String>,
    /// Only data ids matching this filter, e.g. `visit > 3`.
    #[arg(long = "where")]
    pub where_: Option<String>,
    /// How files come out: copy, hardlink, symlink or relsymlink (move and
    /// direct are refused: a retrieve never takes files from the repository).
    #[arg(long, value_enum, default_value_t = TransferArg::Copy,
          value_parser = clap::builder::PossibleValuesParser::new(["copy", "hardlink", "link", "symlink", "relsymlink"])
              .map(|s| <TransferArg as ValueEnum>::from_str(&s, true).expect("a listed value")))]
    pub transfer: TransferArg,
    /// List what would be copied; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// One dataset of a repository chain: from the file registry, or (for a
/// legacy Gen2 repository) from its mapper's registry and templates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The dataset type.
    pub dataset_type: String,
    /// The data id.
    pub data_id: DataId,
    /// The run (`""` for legacy datasets).
    pub run: String,
    /// The full path of the file.
    pub file: PathBuf,
    /// The path relative to its repository (or absolute when outside).
    #[serde(skip)]
    pub rel: String,
    /// The registry row, when the file registry holds one.
    #[serde(skip)]
    pub record: Option<DatasetRecord>,
}

/// The datasets of repository `i` of `butler` that no file registry
/// records, found through its mapper (a Gen2 repository's `registry.sqlite3`
/// and path templates): those of `dataset_type` (every type when `None`)
/// whose file exists.
pub fn legacy_datasets(butler: &Butler, i: usize, dataset_type: Option<&str>) -> Vec<Listed> {
    let m = butler.mapper(i);
    let root = &butler.repositories()[i].root;
    let types = match dataset_type {
        Some(t) => vec![t.to_string()],
        None => m.dataset_types(),
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for t in types {
        let Ok(keys) = m.get_keys(&t, Some("\u{0}every key")) else {
            continue;
        };
        let keys: Vec<String> = keys.into_keys().collect();
        if keys.is_empty() {
            continue;
        }
        let Ok(rows) = m.query_metadata(&t, &keys, &DataId::new()) else {
            continue;
        };
        for row in rows {
            let id: DataId = keys.iter().cloned().zip(row).collect();
            let Ok(loc) = m.map(&t, &id, false) else {
                continue;
            };
            let Some(l) = loc.locations.first() else {
                continue;
            };
            let l = match l.rfind('[') {
                Some(k) if l.ends_with(']') => &l[..k],
                _ => l.as_str(),
            };
            let file = if loc.root.as_os_str().is_empty() {
                root.join(l)
            } else {
                loc.root.join(l)
            };
            if file.is_file() && seen.insert((t.clone(), file.clone())) {
                let rel = file
                    .strip_prefix(root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| file.to_string_lossy().into_owned());
                out.push(Listed {
                    dataset_type: t.clone(),
                    data_id: loc.data_id.clone(),
                    run: String::new(),
                    file,
                    rel,
                    record: None,
                });
            }
        }
    }
    out
}

/// Every dataset of `dataset_type` (all types when `None`) in the chain of
/// `butler` holding every item of `partial`, from `run` if given: the
/// first repository in search order that has a (type, data id, run) wins.
pub fn list_datasets(
    butler: &Butler,
    dataset_type: Option<&str>,
    partial: &DataId,
    run: Option<&str>,
) -> Result<Vec<Listed>, CliError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..butler.repositories().len() {
        let found: Vec<Listed> = match butler.registry(i) {
            Some(reg) => reg
                .find_matching(dataset_type, partial, run)?
                .into_iter()
                .map(|r| Listed {
                    dataset_type: r.dataset_type.clone(),
                    data_id: r.data_id.clone(),
                    run: r.run.clone(),
                    file: reg.full_path(&r),
                    rel: r.path.clone(),
                    record: Some(r),
                })
                .collect(),
            None if run.is_none_or(str::is_empty) => legacy_datasets(butler, i, dataset_type)
                .into_iter()
                .filter(|l| daf_butler::file_registry::matches_partial(&l.data_id, partial))
                .collect(),
            None => Vec::new(),
        };
        for l in found {
            let key = (
                l.dataset_type.clone(),
                daf_butler::file_registry::canonical_data_id(&l.data_id),
                l.run.clone(),
            );
            if seen.insert(key) {
                out.push(l);
            }
        }
    }
    Ok(out)
}

/// Runs `daf retrieve`.
pub fn retrieve(a: RetrieveArgs) -> Result<(), CliError> {
    let (dest, items) = a
        .rest
        .split_last()
        .ok_or_else(|| CliError::new("retrieve needs a destination folder"))?;
    let dest = PathBuf::from(dest);
    if dest.to_string_lossy().contains('=') && !dest.exists() {
        return Err(CliError::new(format!(
            "the last argument {:?} looks like a data-id item; give the destination folder last",
            dest.display()
        )));
    }
    let items = items
        .iter()
        .map(|s| parse_kv(s).map_err(CliError::new))
        .collect::<Result<Vec<_>, _>>()?;
    let transfer: Transfer = match a.transfer {
        TransferArg::Move | TransferArg::Direct => return Err(CliError::new(
            "retrieve copies or links files out: --transfer copy, hardlink, symlink or relsymlink",
        )),
        t => t.into(),
    };
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    typos::check_dataset_type(&butler, &a.dataset_type)?;
    let id: DataId = items.into_iter().collect();
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    let asked: Vec<&str> = id
        .keys()
        .chain(filter.iter().flat_map(|f| f.keys()))
        .collect();
    typos::check_keys(
        &butler,
        Some(&a.dataset_type),
        asked,
        "the data id or --where",
    )?;
    let mut listed: Vec<Listed> =
        list_datasets(&butler, Some(&a.dataset_type), &id, a.run.as_deref())?
            .into_iter()
            .filter(|l| filter.as_ref().is_none_or(|f| f.matches(&l.data_id)))
            .collect();
    if a.run.is_none() {
        // the newest run of each data id, as `get` reads
        let mut newest: BTreeMap<String, usize> = BTreeMap::new();
        for (k, l) in listed.iter().enumerate() {
            let key = daf_butler::file_registry::canonical_data_id(&l.data_id);
            let t = |l: &Listed| l.record.as_ref().map(|r| (r.time_ns, r.id));
            match newest.get(&key) {
                Some(&j) if t(&listed[j]) >= t(l) => {}
                _ => {
                    newest.insert(key, k);
                }
            }
        }
        let keep: HashSet<usize> = newest.into_values().collect();
        listed = listed
            .into_iter()
            .enumerate()
            .filter(|(k, _)| keep.contains(k))
            .map(|(_, l)| l)
            .collect();
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        listed: &'a Listed,
        to: PathBuf,
        outcome: &'static str,
    }
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for l in &listed {
        let rel = if Path::new(&l.rel).is_absolute() {
            format!(
                "{}/{}",
                l.dataset_type,
                l.file.file_name().unwrap_or_default().to_string_lossy()
            )
        } else {
            l.rel.clone()
        };
        let to = daf_base::path_safety::join_under(&dest, "retrieve target", &rel)
            .map_err(|e| CliError::new(e.to_string()))?;
        let outcome = if to.symlink_metadata().is_ok() {
            let same = match (checksum_file(&to), checksum_file(&l.file)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if same {
                "already there"
            } else {
                failed.push(format!(
                    "{}: exists and differs from {}",
                    to.display(),
                    l.file.display()
                ));
                "conflict"
            }
        } else if a.dry_run {
            "would copy"
        } else {
            daf_butler::ingest::transfer_file(&l.file, &to, transfer).map_err(|e| {
                CliError::new(format!("{} → {}: {e}", l.file.display(), to.display()))
            })?;
            "copied"
        };
        rows.push(Out {
            listed: l,
            to,
            outcome,
        });
    }
    if a.json {
        print_json(&rows)?;
    } else {
        for r in &rows {
            println!(
                "{}: {} {} → {}",
                r.outcome,
                r.listed.dataset_type,
                r.listed.data_id,
                r.to.display()
            );
        }
        let n = rows
            .iter()
            .filter(|r| r.outcome == "copied" || r.outcome == "would copy")
            .count();
        eprintln!(
            "{} dataset(s) matched, {n} file(s) {} to {}",
            rows.len(),
            if a.dry_run { "to copy" } else { "copied" },
            dest.display()
        );
    }
    if !failed.is_empty() {
        return Err(CliError::new(format!(
            "{} file(s) already in {} with other content (left alone): {}",
            failed.len(),
            dest.display(),
            failed.join("; ")
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- ingest --force

/// The restore half of `ingest --force`: each of `files` that is the
/// source of a registered dataset (or has the data id of one, in
/// `opts.run`) whose file is missing or changed is put back and recorded.
/// Returns what was restored and the files left for a normal ingest.
pub fn restore_files(
    butler: &Butler,
    files: &[PathBuf],
    opts: &IngestOptions,
) -> Result<(Vec<Restored>, Vec<PathBuf>), CliError> {
    let Some(&out) = butler.output_indices().first() else {
        return Ok((Vec::new(), files.to_vec()));
    };
    if butler.remote_datastore(out).is_some() {
        return Ok((Vec::new(), files.to_vec()));
    }
    let root = butler.repositories()[out].root.clone();
    let mut restored = Vec::new();
    let mut rest = Vec::new();
    for f in files {
        let Ok(abs) = std::path::absolute(f) else {
            rest.push(f.clone());
            continue;
        };
        let row = {
            let reg = butler
                .registry(out)
                .ok_or_else(|| CliError::new("the output has no file registry"))?;
            match reg.find_by_source(&abs.to_string_lossy())? {
                Some(r) => Some(r),
                None => match daf_butler::ingest::file_data_id(butler, out, f, opts) {
                    Ok(id) => reg
                        .find(&opts.dataset_type, &id, Some(&opts.run))?
                        .map(|r| (*r).clone()),
                    Err(_) => None,
                },
            }
        };
        let Some(row) = row else {
            rest.push(f.clone());
            continue;
        };
        let mut reg = butler
            .registry(out)
            .ok_or_else(|| CliError::new("the output has no file registry"))?;
        if lifecycle::damaged(&**reg, &row).is_none() {
            rest.push(f.clone());
            continue;
        }
        let mut r = lifecycle::restore(&mut **reg, &root, &row, &abs, opts.transfer)?;
        r.file = f.clone();
        restored.push(r);
    }
    Ok((restored, rest))
}

/// Prints the outcome of `ingest --force` (the restored files, then the
/// ingest summary); JSON as one object.
pub fn report_restored(
    restored: &[Restored],
    summary: &IngestSummary,
    json: bool,
) -> Result<(), CliError> {
    if json {
        let mut v = serde_json::to_value(summary)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("restored".into(), serde_json::to_value(restored)?);
        }
        return print_json(&v);
    }
    for r in restored {
        println!(
            "restored: {} {} (run {}) from {} (the registered file was {})",
            r.record.dataset_type,
            r.record.data_id,
            run_label(&r.record.run),
            r.file.display(),
            r.problem
        );
    }
    println!("{} restored", restored.len());
    Ok(())
}
