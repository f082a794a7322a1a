//! Butler subcommands: `create`, `ingest`, `query`, `get`, `dump-policy`,
//! `verify`, `export`, `import`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use daf_base::{DataId, DataIdValue, PropertySet};
use daf_butler::export::Export;
use daf_butler::file_registry::{DatasetRecord, PgLocation};
use daf_butler::ingest::{self, DataIdSource, IngestOptions, IngestSummary, Transfer};
use daf_butler::query::parse_where;
use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
use daf_butler::{Butler, GetOptions, Repository};
use daf_mappers::HeaderRule;
use indicatif::{ProgressBar, ProgressStyle};

use super::lifecycle::TransferArg;
use super::{typos, CliError};

/// Parses `key=value` into a data-id item (integer, float or string).
pub(super) fn parse_kv(s: &str) -> Result<(String, DataIdValue), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    let v = v.trim();
    let val = if let Ok(i) = v.parse::<i64>() {
        DataIdValue::Int(i)
    } else if let Ok(f) = v.parse::<f64>() {
        DataIdValue::Float(f)
    } else {
        DataIdValue::Str(v.trim_matches('\'').to_string())
    };
    Ok((k.trim().to_string(), val))
}

fn data_id(items: &[(String, DataIdValue)]) -> DataId {
    items.iter().cloned().collect()
}

/// Opens `repo` (as an output when `writable`). A camera-mapper policy named
/// by the repository (`mapperArgs.policy`) also serves its legacy parents.
pub(super) fn open(repo: &Path, writable: bool) -> Result<Butler, CliError> {
    open_with(repo, writable, None)
}

/// [`open`] with the mapper policy given by `--policy`: it serves legacy
/// Gen2 repositories (`_mapper`, `registry.sqlite3`, `_parent`) opened as
/// they are, and every repository of the chain that names a camera mapper
/// but no policy of its own.
pub(super) fn open_with(
    repo: &Path,
    writable: bool,
    policy: Option<&Path>,
) -> Result<Butler, CliError> {
    let b = if writable {
        Butler::builder().output(repo)
    } else {
        Butler::builder().input(repo)
    };
    let fallback = match policy {
        Some(p) => Some(p.to_path_buf()),
        None => Repository::lent_policy(repo),
    };
    let b = match fallback {
        Some(p) => b.policy(p),
        None => b,
    };
    b.build().map_err(|e| CliError::new(e.to_string()))
}

/// The `--policy` option of the commands that open a repository.
#[derive(Debug, Clone, Args)]
pub struct PolicyArg {
    /// The mapper policy (.yaml or .paf) for a legacy Gen2 repository
    /// (`_mapper`, `registry.sqlite3`), opened as it is, without
    /// `daf create`; also serves any repository of the chain that names a
    /// camera mapper but no policy.
    #[arg(long = "policy", value_name = "POLICY")]
    pub policy: Option<PathBuf>,
}

fn progress(n: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} {msg}",
        )
        .expect("valid template"),
    );
    pb
}

pub(super) fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::new(e.to_string()))?;
    println!("{s}");
    Ok(())
}

// ---------------------------------------------------------------- create

/// `daf create`: make a new repository.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The repository folder to create.
    pub repo: PathBuf,
    /// The mapper name (default `SimpleMapper`; `CameraMapper` with `--policy`).
    #[arg(long)]
    pub mapper: Option<String>,
    /// A parent repository (repeatable).
    #[arg(long = "parent")]
    pub parents: Vec<PathBuf>,
    /// The mapper policy of a camera mapper (recorded as `mapperArgs.policy`).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// A dataset type for `SimpleMapper`: `NAME:TEMPLATE:PERSISTABLE:STORAGE`
    /// (repeatable), e.g. `raw:raw/v%(visit)d_f%(filter)s.fits:DecoratedImageU:FitsStorage`.
    #[arg(long = "dataset")]
    pub datasets: Vec<String>,
    /// Keep the file registry in PostgreSQL, for a repository shared by many
    /// nodes: `postgresql://[user@]host[:port]/database[?schema=NAME]`, never
    /// with a password (that comes from ~/.daf/db-auth.yaml or PGPASSWORD).
    /// Default: the SQLite file daf_registry.sqlite3 in the repository.
    #[arg(long)]
    pub registry: Option<String>,
    /// The PostgreSQL schema for this repository's rows (default: a new
    /// `daf_<hex>` name); one schema per repository.
    #[arg(long, requires = "registry")]
    pub registry_schema: Option<String>,
    /// Keep the datasets' bytes in an S3 bucket: `s3://bucket/prefix`.
    /// Credentials and endpoint come from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION or
    /// ~/.aws/credentials, never from the URL. Default: the repository folder.
    #[arg(long)]
    pub datastore: Option<String>,
}

/// Runs `daf create`.
pub fn create(a: CreateArgs) -> Result<(), CliError> {
    let mut defs = Vec::new();
    for d in &a.datasets {
        let parts: Vec<&str> = d.splitn(4, ':').collect();
        if parts.len() != 4 {
            return Err(CliError::new(format!(
                "--dataset {d:?}: expected NAME:TEMPLATE:PERSISTABLE:STORAGE"
            )));
        }
        defs.push((parts[0], SimpleDataset::new(parts[1], parts[2], parts[3])));
    }
    let mapper = a.mapper.clone().unwrap_or_else(|| {
        if a.policy.is_some() {
            "CameraMapper".into()
        } else {
            "SimpleMapper".into()
        }
    });
    if mapper != "SimpleMapper" && !defs.is_empty() {
        return Err(CliError::new(format!(
            "--dataset defines SimpleMapper dataset types; the {mapper} takes its dataset types \
             from --policy"
        )));
    }
    if mapper != "SimpleMapper" && a.policy.is_none() {
        return Err(CliError::new(format!(
            "the {mapper} needs its mapper policy: add --policy FILE (.yaml or .paf)"
        )));
    }
    let mut args = if mapper == "SimpleMapper" {
        SimpleMapper::new(defs)?.to_args()
    } else {
        BTreeMap::new()
    };
    if let Some(p) = &a.policy {
        let abs =
            std::path::absolute(p).map_err(|e| CliError::new(format!("{}: {e}", p.display())))?;
        if !abs.is_file() {
            return Err(CliError::new(format!(
                "policy {} does not exist",
                abs.display()
            )));
        }
        args.insert("policy".into(), abs.to_string_lossy().into_owned().into());
    }
    let registry = a
        .registry
        .as_deref()
        .map(|url| PgLocation::parse(url, a.registry_schema.as_deref()))
        .transpose()
        .map_err(CliError::new)?;
    if let Some(url) = &a.datastore {
        // reachable, bucket present, credentials accepted: before anything is made
        daf_storages::datastore::open_datastore(url)
            .and_then(|ds| ds.list("").map(|_| ()))
            .map_err(|e| CliError::new(e.to_string()))?;
    }
    let mut r = Repository::create_with_registry(
        &a.repo,
        Some(&mapper),
        args,
        &a.parents,
        registry.as_ref(),
        None,
    )?;
    if let Some(url) = &a.datastore {
        r.set_datastore(url)?;
        println!("datastore {}", r.cfg.datastore.as_deref().unwrap_or(url));
    }
    match (&r.cfg.registry, &r.cfg.registry_schema) {
        (Some(url), Some(schema)) => println!(
            "created repository {} (mapper {mapper}, registry {url} schema {schema})",
            r.root.display()
        ),
        _ => println!("created repository {} (mapper {mapper})", r.root.display()),
    }
    Ok(())
}

// ---------------------------------------------------------------- ingest

/// `daf ingest`: bring files into a repository.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Their dataset type.
    #[arg(long, default_value = "raw")]
    pub dataset_type: String,
    /// How each file gets into the repository.
    #[arg(long, value_enum, default_value_t = TransferArg::Copy)]
    pub transfer: TransferArg,
    /// A data-id rule `KEY=HEADERCARD[:CONVERSION]` (repeatable), e.g. `--key visit=OBSID
    /// --key filter=FILTER --key taiObs=MJD-OBS:mjdTaiToUtc`. Conversions, as in a mapper
    /// policy's `ingest.headerKeys`: none (default), int, float, string, mjdTaiToUtc, mjdTaiToTai.
    /// Without --key and --table, the rules of the repository's mapper policy are used.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// A metadata table (`path` column plus data-id keys; tab or comma separated) instead of headers.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// The run to record.
    #[arg(long, default_value = "")]
    pub run: String,
    /// Restore registered datasets whose file is missing or changed (what
    /// `daf verify` reports) from these files; intact ones are still skipped.
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
    /// No progress bar (set from the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
}

/// Runs `daf ingest`.
pub fn ingest(a: IngestArgs) -> Result<(), CliError> {
    let transfer: Transfer = a.transfer.into();
    let ids = match &a.table {
        Some(t) => {
            let f = std::fs::File::open(t)
                .map_err(|e| CliError::new(format!("{}: {e}", t.display())))?;
            DataIdSource::Table(
                ingest::read_table(f)
                    .map_err(|e| CliError::new(format!("{}: {e}", t.display())))?,
            )
        }
        None if a.keys.is_empty() => {
            let ids = policy_ids(&a.repo, a.legacy.policy.as_deref(), &a.dataset_type)?;
            if !a.json && !a.quiet {
                eprintln!("{}", describe_ids(&ids, &a.dataset_type));
            }
            ids
        }
        None => DataIdSource::Header(key_rules(&a.keys)?),
    };
    let butler = open_with(&a.repo, true, a.legacy.policy.as_deref())?;
    let opts = IngestOptions {
        dataset_type: a.dataset_type.clone(),
        transfer,
        ids,
        run: a.run.clone(),
    };
    let (restored, files) = if a.force {
        super::lifecycle::restore_files(&butler, &a.files, &opts)?
    } else {
        (Vec::new(), a.files.clone())
    };
    let pb = progress(files.len(), a.json || a.quiet);
    let summary = ingest::ingest(&butler, &files, &opts, &|| pb.inc(1))?;
    pb.finish_and_clear();
    if a.force {
        super::lifecycle::report_restored(&restored, &summary, a.json)?;
        return report_summary(&summary, a.json, true);
    }
    report_summary(&summary, a.json, false)
}

/// The `--key KEY=HEADERCARD[:CONVERSION]` rules, in the order given; a
/// key given twice is an error.
fn key_rules(keys: &[String]) -> Result<Vec<(String, HeaderRule)>, CliError> {
    let mut rules: Vec<(String, HeaderRule)> = Vec::new();
    for k in keys {
        let bad = |m: &str| CliError::new(format!("--key {k:?}: {m}"));
        let (key, spec) = k
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=HEADERCARD[:CONVERSION]"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("no data-id key before `=`"));
        }
        if rules.iter().any(|(k2, _)| k2 == key) {
            return Err(bad(&format!("data-id key {key:?} is given twice")));
        }
        let rule: HeaderRule = spec.parse().map_err(|m: String| bad(&m))?;
        rules.push((key.to_string(), rule));
    }
    Ok(rules)
}

/// Where data ids come from when neither `--key` nor `--table` is given:
/// the mapper policy (the repository's `mapperArgs.policy`, else
/// `--policy`). Its template for the dataset type gives the keys in the
/// file names (as `daf registry create` reads them), and its
/// `ingest.headerKeys` rules (which win for their keys); without a
/// template, the header rules alone.
fn policy_ids(
    repo: &Path,
    policy: Option<&Path>,
    dataset_type: &str,
) -> Result<DataIdSource, CliError> {
    let none = || {
        CliError::new(
            "say where data ids come from: --key KEY=HEADERCARD[:CONVERSION] (repeatable), \
             --table FILE, or a mapper policy (daf create --policy) whose dataset template or \
             ingest.headerKeys section gives them",
        )
    };
    let r = Repository::open(repo, daf_butler::repository::Mode::Read)?;
    let path = match r.cfg.mapper_args.get("policy").and_then(|v| v.as_str()) {
        Some(p) => r.root.join(p),
        None => match policy {
            Some(p) => p.to_path_buf(),
            None => return Err(none()),
        },
    };
    let policy = daf_mappers::MapperPolicy::load(&path, None)?;
    let rules = policy
        .ingest
        .as_ref()
        .map(|i| i.header_keys.clone())
        .unwrap_or_default();
    let template = policy
        .datasets
        .get(dataset_type)
        .and_then(|d| d.template.clone())
        .filter(|t| !t.keys().is_empty());
    match template {
        Some(template) => Ok(DataIdSource::Names { template, rules }),
        None if !rules.is_empty() => Ok(DataIdSource::Header(rules)),
        None => Err(none()),
    }
}

/// One line saying where ingest takes data ids from.
fn describe_ids(ids: &DataIdSource, dataset_type: &str) -> String {
    let rules = |r: &[(String, HeaderRule)]| {
        r.iter()
            .map(|(k, h)| format!("{k}={}", h.header))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match ids {
        DataIdSource::Names { template, rules: r } if r.is_empty() => format!(
            "data ids from file names through the {dataset_type} template {:?}",
            template.text()
        ),
        DataIdSource::Names { template, rules: r } => format!(
            "data ids from file names through the {dataset_type} template {:?}, \
             and from header cards where the policy has rules (ingest.headerKeys: {})",
            template.text(),
            rules(r)
        ),
        DataIdSource::Header(r) => format!(
            "data ids from header cards (ingest.headerKeys: {})",
            rules(r)
        ),
        DataIdSource::Table(_) => "data ids from the metadata table".into(),
    }
}

fn report_summary(summary: &IngestSummary, json: bool, printed: bool) -> Result<(), CliError> {
    if printed {
        // the caller printed the JSON
        if !json {
            for (f, why) in &summary.failed {
                eprintln!("failed: {}: {why}", f.display());
            }
            println!("{summary}");
        }
    } else if json {
        print_json(summary)?;
    } else {
        for (f, why) in &summary.failed {
            eprintln!("failed: {}: {why}", f.display());
        }
        println!("{summary}");
        if !summary.skipped.is_empty() {
            // why, and what to do if that was not what was meant
            eprintln!(
                "skipped: a file whose path is already recorded as the source of a dataset of \
                 this repository (in any run) is not ingested again; `daf query REPO --json` \
                 shows where, and `daf ingest … --force` restores a registered file that is \
                 missing or changed"
            );
        }
    }
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!(
                "{} file(s) failed (listed above); fix them and run the same command again \
                 (files already done are skipped)",
                summary.failed.len()
            ),
            code: 2,
        })
    }
}

// ---------------------------------------------------------------- query

/// `daf query`: list datasets, or distinct data-id values (`--keys`).
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The repository (its parents are searched too).
    pub repo: PathBuf,
    /// Only this dataset type.
    #[arg(long)]
    pub dataset_type: Option<String>,
    /// A filter such as `visit > 1 AND filter = 'g'`.
    #[arg(long = "where")]
    pub where_: Option<String>,
    /// Print distinct values of these keys (comma separated) instead of datasets.
    #[arg(long, value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Only this run.
    #[arg(long)]
    pub run: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
}

/// Runs `daf query`.
pub fn query(a: QueryArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    if let Some(t) = &a.dataset_type {
        typos::check_dataset_type(&butler, t)?;
    }
    if let Some(f) = &filter {
        typos::check_keys(&butler, a.dataset_type.as_deref(), f.keys(), "--where")?;
    }
    if !a.keys.is_empty() {
        let dt = a.dataset_type.as_deref().ok_or_else(|| {
            CliError::new("--keys needs --dataset-type (the dataset type whose keys to list)")
        })?;
        let keys: Vec<&str> = a.keys.iter().map(String::as_str).collect();
        typos::check_keys(&butler, Some(dt), keys.iter().copied(), "--keys")?;
        // The filter may name keys that are not listed: ask for those too,
        // filter the full rows, then keep the listed keys (each row once).
        let mut asked = keys.clone();
        for k in filter.iter().flat_map(|f| f.keys()) {
            if !asked.contains(&k) {
                asked.push(k);
            }
        }
        let rows = butler.query_metadata(dt, &asked, &DataId::new())?;
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<DataId> = rows
            .into_iter()
            .map(|t| {
                asked
                    .iter()
                    .map(|k| k.to_string())
                    .zip(t)
                    .collect::<DataId>()
            })
            .filter(|id| filter.as_ref().is_none_or(|f| f.matches(id)))
            .map(|id| {
                keys.iter()
                    .filter_map(|k| id.get(k).map(|v| (k.to_string(), v.clone())))
                    .collect::<DataId>()
            })
            .filter(|id| seen.insert(id.to_string()))
            .collect();
        if a.json {
            return print_json(&rows);
        }
        println!("{}", keys.join("\t"));
        for id in rows {
            let cells: Vec<String> = keys
                .iter()
                .map(|k| match id.get(k) {
                    Some(DataIdValue::Str(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                })
                .collect();
            println!("{}", cells.join("\t"));
        }
        return Ok(());
    }
    let mut out: Vec<(PathBuf, DatasetRecord)> = Vec::new();
    for i in 0..butler.repositories().len() {
        if butler.registry(i).is_none() && a.run.is_none() {
            // A legacy repository has no file registry: its mapper's
            // registry lists the data ids, the files present are its datasets.
            if let Some(dt) = a.dataset_type.as_deref() {
                out.extend(legacy_datasets(&butler, i, dt, filter.as_ref()));
            } else {
                // every type whose files are present
                for l in super::lifecycle::legacy_datasets(&butler, i, None) {
                    if filter.as_ref().is_none_or(|f| f.matches(&l.data_id)) {
                        let rec = DatasetRecord {
                            id: 0,
                            dataset_type: l.dataset_type,
                            data_id: l.data_id,
                            run: l.run,
                            path: l.rel,
                            size: std::fs::metadata(&l.file).map_or(0, |m| m.len()),
                            checksum: String::new(),
                            time_ns: 0,
                            source: None,
                        };
                        out.push((l.file, rec));
                    }
                }
            }
            continue;
        }
        if let Some(reg) = butler.registry(i) {
            for r in
                reg.find_matching(a.dataset_type.as_deref(), &DataId::new(), a.run.as_deref())?
            {
                if filter.as_ref().is_none_or(|f| f.matches(&r.data_id)) {
                    let full = reg.full_path(&r);
                    out.push((full, r));
                }
            }
        }
    }
    if a.json {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            rec: &'a DatasetRecord,
            file: &'a Path,
        }
        let rows: Vec<Row<'_>> = out.iter().map(|(f, r)| Row { rec: r, file: f }).collect();
        return print_json(&rows);
    }
    println!("dataset_type\tdata_id\trun\tfile");
    for (f, r) in &out {
        println!(
            "{}\t{}\t{}\t{}",
            r.dataset_type,
            r.data_id,
            r.run,
            f.display()
        );
    }
    eprintln!("{} dataset(s)", out.len());
    Ok(())
}

/// The datasets of `dataset_type` in repository `i` of `butler` as its
/// mapper knows them (a legacy repository without a file registry): each
/// data id of the mapper's registry (all the type's keys) whose file is
/// present, with its size; no checksum, no run.
fn legacy_datasets(
    butler: &Butler,
    i: usize,
    dataset_type: &str,
    filter: Option<&daf_butler::query::Expr>,
) -> Vec<(PathBuf, DatasetRecord)> {
    let m = butler.mapper(i);
    let Ok(keys) = m.get_keys(dataset_type, Some("\u{0}")) else {
        return Vec::new();
    };
    let names: Vec<String> = keys.keys().cloned().collect();
    let Ok(rows) = m.query_metadata(dataset_type, &names, &DataId::new()) else {
        return Vec::new();
    };
    let root = &butler.repositories()[i].root;
    let mut out = Vec::new();
    for row in rows {
        let id: DataId = names.iter().cloned().zip(row).collect();
        if filter.is_some_and(|f| !f.matches(&id)) {
            continue;
        }
        let Ok(loc) = m.map(dataset_type, &id, false) else {
            continue;
        };
        let Some(first) = loc.locations.first() else {
            continue;
        };
        let rel = first.split('[').next().unwrap_or(first).to_string();
        let base = if loc.root.is_absolute() {
            loc.root.clone()
        } else {
            root.join(&loc.root)
        };
        let full = base.join(&rel);
        let Ok(meta) = std::fs::metadata(&full) else {
            continue;
        };
        out.push((
            full,
            DatasetRecord {
                id: 0,
                dataset_type: dataset_type.to_string(),
                data_id: loc.data_id,
                run: String::new(),
                path: rel,
                size: meta.len(),
                checksum: String::new(),
                time_ns: 0,
                source: None,
            },
        ));
    }
    out
}

// ---------------------------------------------------------------- get

/// `daf get`: read one dataset and print a summary of it.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The dataset type.
    pub dataset_type: String,
    /// The data id as `KEY=VALUE` items.
    #[arg(value_parser = parse_kv)]
    pub data_id: Vec<(String, DataIdValue)>,
    /// Read this run (default: newest).
    #[arg(long)]
    pub run: Option<String>,
    /// Check the file against the size and checksum recorded in the file
    /// registry before reading it (exit status 3 on a mismatch).
    #[arg(long)]
    pub verify: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
}

/// Runs `daf get`. Any read error (and a `--verify` mismatch) makes the
/// exit status non-zero, after the summary is printed.
pub fn get(a: GetArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let id = data_id(&a.data_id);
    // Components (`raw.metadata`) and Gen2's derived types (`raw_md`,
    // `raw_filename`, `raw_sub`) are found where their dataset type is.
    let (locate_type, locate_id) = locate_target(&butler, &a.dataset_type, &id);
    let found = match butler.locate(&locate_type, &locate_id, a.run.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            // a type a mapper answers without a file (`ccdExposureId`)
            if let Some(r) = get_without_file(&butler, &a, &id) {
                return r;
            }
            // typos are named, with the valid names
            typos::check_dataset_type(&butler, &locate_type)?;
            typos::check_keys(&butler, Some(&locate_type), locate_id.keys(), "the data id")?;
            return Err(e.into());
        }
    };
    typos::check_keys(&butler, Some(&locate_type), locate_id.keys(), "the data id")?;
    let file = found
        .location
        .locations_with_root()
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut summary = serde_json::Map::new();
    summary.insert("dataset_type".into(), a.dataset_type.clone().into());
    summary.insert(
        "data_id".into(),
        serde_json::to_value(&found.location.data_id).unwrap_or_default(),
    );
    summary.insert("file".into(), file.display().to_string().into());
    summary.insert(
        "persistable".into(),
        found.location.persistable.clone().into(),
    );
    summary.insert("storage".into(), found.location.storage.clone().into());
    if let Some(r) = &found.record {
        summary.insert("run".into(), r.run.clone().into());
        summary.insert("size".into(), r.size.into());
        summary.insert("checksum".into(), r.checksum.clone().into());
    }
    let mut failure: Option<CliError> = None;
    if a.verify {
        match &found.record {
            None => {
                failure = Some(CliError::new(format!(
                    "--verify: {} has no file-registry row (no recorded checksum to check)",
                    file.display()
                )))
            }
            Some(r) => {
                let bad = daf_butler::file_registry::verify_records_in(
                    &butler.repositories()[found.repo].root,
                    butler.remote_datastore(found.repo).map(|d| &**d),
                    vec![(**r).clone()],
                );
                match bad.first() {
                    Some(m) => {
                        summary.insert("verified".into(), false.into());
                        summary.insert("verify_error".into(), m.problem.to_string().into());
                        let why = if matches!(
                            m.problem,
                            daf_butler::file_registry::Problem::Unreadable { .. }
                        ) {
                            "the file could not be read"
                        } else {
                            "the file changed since it was recorded"
                        };
                        failure = Some(CliError {
                            message: format!("{}: {} ({why})", m.full_path.display(), m.problem),
                            code: 3,
                        });
                    }
                    None => {
                        summary.insert("verified".into(), true.into());
                    }
                }
            }
        }
    }
    let opts = GetOptions {
        run: a.run.clone(),
        ..Default::default()
    };
    match butler.get_dyn(&a.dataset_type, &id, &opts) {
        Ok(obj) => {
            summary.insert("type".into(), obj.persistable_name().to_string().into());
            if let Some(ps) = obj.downcast_ref::<PropertySet>() {
                summary.insert("fields".into(), ps_json(ps));
            } else if let Some((shape, _)) = describe_image(obj.as_ref()) {
                summary.insert("shape".into(), serde_json::json!(shape));
                // the exposure's own detector, else (a raw image) the one
                // the mapper's camera description or the data id gives
                let mut obj = obj;
                let detector = match daf_formatters::fits::exposure_detector_mut(obj.as_mut()) {
                    Some(d) => d.clone(),
                    None => butler.detector(&locate_type, &found.location.data_id),
                };
                if let Some(d) = detector {
                    summary.insert(
                        "detector".into(),
                        serde_json::to_value(&d).unwrap_or_default(),
                    );
                }
                if let Some(h) = describe_image(obj.as_ref()).and_then(|(_, h)| h) {
                    summary.insert("header".into(), ps_json(h));
                }
            } else if let Some(cat) = obj.downcast_ref::<daf_formatters::SourceCatalog>() {
                summary.insert("rows".into(), cat.len().into());
                let cols: Vec<String> = cat
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {:?}", f.name, f.field_type))
                    .collect();
                summary.insert("columns".into(), cols.into());
            } else {
                let mut d = format!("{obj:?}");
                if d.len() > 2000 {
                    let mut cut = 2000;
                    while !d.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    d.truncate(cut);
                    d.push('…');
                }
                summary.insert("debug".into(), d.into());
            }
        }
        Err(e) => {
            // Describe the file as far as possible, then fail.
            summary.insert("read_error".into(), e.to_string().into());
            failure.get_or_insert(CliError::new(format!(
                "cannot read {}: {e}",
                file.display()
            )));
            let p = PathBuf::from(
                file.to_string_lossy()
                    .split('[')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
            if let Ok(h) = ingest::read_primary_header(&p) {
                summary.insert("header".into(), serde_json::to_value(h).unwrap_or_default());
            }
        }
    }
    if a.json {
        print_json(&summary)?;
    } else {
        let yaml = serde_norway::to_string(&summary).map_err(|e| CliError::new(e.to_string()))?;
        print!("{yaml}");
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// The dataset type and data id whose file a `daf get` of `dataset_type`
/// reads: the type itself, or the type a component or derived type
/// (`_md`, `_filename`, `_sub`) belongs to, without the box of a `_sub`.
fn locate_target(butler: &Butler, dataset_type: &str, id: &DataId) -> (String, DataId) {
    let resolved = butler
        .resolve_alias(dataset_type)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| dataset_type.to_string());
    match butler.derived_type(&resolved) {
        daf_butler::Derived::Plain(t) => (t.to_string(), id.clone()),
        daf_butler::Derived::Component(b, _)
        | daf_butler::Derived::Metadata(b)
        | daf_butler::Derived::Filename(b) => (b.to_string(), id.clone()),
        daf_butler::Derived::Sub(b) => {
            let mut id = id.clone();
            for k in ["llcX", "llcY", "width", "height", "imageOrigin"] {
                id.remove(k);
            }
            (b.to_string(), id)
        }
    }
}

/// `daf get` of a dataset a mapper answers without a file (Gen2's bypass
/// types, e.g. `ccdExposureId`): `None` when it is not one.
fn get_without_file(butler: &Butler, a: &GetArgs, id: &DataId) -> Option<Result<(), CliError>> {
    let opts = GetOptions {
        run: a.run.clone(),
        ..Default::default()
    };
    let obj = butler.get_dyn(&a.dataset_type, id, &opts).ok()?;
    let ps = obj.downcast_ref::<PropertySet>()?;
    let summary = serde_json::json!({
        "dataset_type": a.dataset_type,
        "data_id": id,
        "type": obj.persistable_name(),
        "fields": ps_json(ps),
    });
    Some(if a.json {
        print_json(&summary)
    } else {
        serde_norway::to_string(&summary)
            .map_err(|e| CliError::new(e.to_string()))
            .map(|y| print!("{y}"))
    })
}

/// A PropertySet as plain JSON: one value → a scalar, several → an array.
fn ps_json(ps: &PropertySet) -> serde_json::Value {
    use daf_base::Values;
    let mut m = serde_json::Map::new();
    for (name, vals) in ps.iter() {
        let one = |i: usize| -> serde_json::Value {
            match vals {
                Values::Bool(v) => v[i].into(),
                Values::F32(_) | Values::F64(_) => vals.as_f64_at(i).into(),
                Values::String(v) => v[i].clone().into(),
                Values::PropertySet(v) => ps_json(&v[i]),
                Values::DateTime(_) => vals.text_at(i).into(),
                _ => vals.as_i64_at(i).into(),
            }
        };
        let v = if vals.len() == 1 {
            one(0)
        } else {
            (0..vals.len()).map(one).collect::<Vec<_>>().into()
        };
        m.insert(name.to_string(), v);
    }
    m.into()
}

/// Shape `[width, height]` and header of the image persistables.
fn describe_image(
    obj: &dyn daf_formatters::Persistable,
) -> Option<([usize; 2], Option<&PropertySet>)> {
    use daf_formatters::image::*;
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(x) = obj.downcast_ref::<DecoratedImage<$t>>() {
                return Some(([x.image.width(), x.image.height()], Some(&x.metadata)));
            }
            if let Some(x) = obj.downcast_ref::<Exposure<$t>>() {
                return Some(([x.width(), x.height()], Some(&x.metadata)));
            }
            if let Some(x) = obj.downcast_ref::<MaskedImage<$t>>() {
                return Some(([x.width(), x.height()], None));
            }
            if let Some(x) = obj.downcast_ref::<Image<$t>>() {
                return Some(([x.width(), x.height()], None));
            }
        )*};
    }
    try_types!(u8, i16, u16, i32, u32, i64, f32, f64);
    if let Some(m) = obj.downcast_ref::<Mask>() {
        return Some(([m.width(), m.height()], None));
    }
    None
}

// ---------------------------------------------------------------- dump-policy

/// `daf dump-policy`: the fully merged dataset definitions of a repository chain.
#[derive(Debug, Args)]
pub struct DumpPolicyArgs {
    /// The repository.
    pub repo: PathBuf,
    /// JSON output (default YAML).
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
}

/// Runs `daf dump-policy`.
pub fn dump_policy(a: DumpPolicyArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let mut repos = Vec::new();
    for (i, r) in butler.repositories().iter().enumerate() {
        let m = butler.mapper(i);
        let mut datasets = serde_json::Map::new();
        let defs = r
            .cfg
            .mapper_args
            .get("datasets")
            .and_then(|d| d.as_object())
            .cloned()
            .unwrap_or_default();
        for t in m.dataset_types() {
            // the repository's own definition, else the mapper's (a legacy
            // policy's merged entry: template, storageOptions ...)
            let mut e = match defs.get(&t).cloned().or_else(|| m.definition(&t)) {
                Some(serde_json::Value::Object(o)) => o,
                _ => serde_json::Map::new(),
            };
            if let Ok(keys) = m.get_keys(&t, None) {
                e.insert(
                    "keys".into(),
                    serde_json::to_value(keys).unwrap_or_default(),
                );
            }
            if let Ok(loc) = m.map(&t, &DataId::new(), false) {
                e.insert("persistable".into(), loc.persistable.into());
                e.insert("storage".into(), loc.storage.into());
            }
            datasets.insert(t, e.into());
        }
        repos.push(serde_json::json!({
            "root": r.root,
            "mapper": r.cfg.mapper,
            "parents": r.parents,
            "datasets": datasets,
        }));
    }
    let v = serde_json::Value::Array(repos);
    if a.json {
        return print_json(&v);
    }
    print!(
        "{}",
        serde_norway::to_string(&v).map_err(|e| CliError::new(e.to_string()))?
    );
    Ok(())
}

// ---------------------------------------------------------------- verify

/// `daf verify`: re-check sizes and checksums of every registered file, and
/// look for what no row accounts for: pending puts (intents), temporary
/// files, unregistered files.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Clean up what is provably garbage: resolve the pending puts of dead
    /// processes (finish or roll back, by checksum) and remove temporary
    /// files of dead processes (and owner-less ones older than an hour).
    /// Never touches registered or unregistered data files.
    #[arg(long)]
    pub repair: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
}

/// Runs `daf verify`. Exit status 3 when a registered file changed or is
/// missing, or garbage remains (pending puts, temporary files of dead
/// processes); unregistered files are listed but are not an error.
pub fn verify(a: VerifyArgs) -> Result<(), CliError> {
    use daf_butler::recovery::{self, StrayKind};
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let root = butler.repositories()[0].root.clone();
    let remote = butler.remote_datastore(0).cloned();
    let reg = butler.registry(0).ok_or_else(|| {
        CliError::new(format!(
            "{} has no file registry (nothing was put or ingested)",
            a.repo.display()
        ))
    })?;
    drop(reg);
    let mut repaired: Vec<serde_json::Value> = Vec::new();
    if a.repair {
        let mut reg = daf_butler::FileRegistry::open(&root, true)?
            .ok_or_else(|| CliError::new("the file registry vanished"))?;
        let report = recovery::repair_in(&mut *reg, &root, remote.as_deref())?;
        for (what, r) in report.resolved {
            repaired.push(serde_json::json!({"pending_put": what, "resolution": r}));
        }
        for p in report.removed {
            repaired.push(serde_json::json!({"removed": p}));
        }
    }
    let reg = butler
        .registry(0)
        .ok_or_else(|| CliError::new("the file registry vanished"))?;
    let recs = reg.all()?;
    let n = recs.len();
    let pending = reg.intents()?;
    let known = recovery::known_paths(&**reg, &root)?;
    // on an object store: objects no row accounts for
    let stray_objects: Vec<PathBuf> = match &remote {
        Some(ds) => recovery::unregistered_objects(&**reg, &**ds)?
            .into_iter()
            .map(|(k, _)| PathBuf::from(format!("{}/{k}", ds.url())))
            .collect(),
        None => Vec::new(),
    };
    let bad = daf_butler::file_registry::verify_records_in(&root, remote.as_deref(), recs);
    drop(reg);
    let strays = recovery::scan_strays(&root, &known);
    let garbage = strays
        .iter()
        .filter(|s| matches!(s.kind, StrayKind::DeadTemp | StrayKind::OldTemp))
        .count();
    let unregistered: Vec<&Path> = strays
        .iter()
        .filter(|s| s.kind == StrayKind::Unregistered)
        .map(|s| s.path.as_path())
        .chain(stray_objects.iter().map(|p| p.as_path()))
        .collect();
    let temps: Vec<&recovery::Stray> = strays
        .iter()
        .filter(|s| s.kind != StrayKind::Unregistered)
        .collect();
    let pending_json: Vec<serde_json::Value> = pending
        .iter()
        .map(|it| {
            serde_json::json!({
                "dataset_type": it.dataset_type, "data_id": it.data_id, "run": it.run,
                "mode": it.mode, "owner": it.owner,
                "owner_state": format!("{:?}", daf_storages::owner::liveness(&it.owner)).to_lowercase(),
            })
        })
        .collect();
    if a.json {
        print_json(&serde_json::json!({
            "checked": n,
            "mismatches": bad,
            "pending_puts": pending_json,
            "temporary_files": temps,
            "unregistered_files": unregistered,
            "repaired": repaired,
        }))?;
    } else {
        for r in &repaired {
            println!("repaired: {r}");
        }
        for m in &bad {
            println!(
                "{}: {} {} (run {:?}): {}",
                m.full_path.display(),
                m.record.dataset_type,
                m.record.data_id,
                m.record.run,
                m.problem
            );
        }
        for it in &pending {
            println!(
                "pending put: {} {} (run {:?}, {}) by {} ({:?})",
                it.dataset_type,
                it.data_id,
                it.run,
                it.mode.as_str(),
                it.owner,
                daf_storages::owner::liveness(&it.owner)
            );
        }
        for t in &temps {
            let what = match t.kind {
                StrayKind::DeadTemp => "temporary file of a dead process",
                StrayKind::OldTemp => "temporary file, owner unknown, over an hour old",
                _ => "temporary file of a running (or remote) writer",
            };
            println!("{}: {what}", t.path.display());
        }
        for u in &unregistered {
            println!("{}: not registered", u.display());
        }
        let unreadable = bad
            .iter()
            .filter(|m| {
                matches!(
                    m.problem,
                    daf_butler::file_registry::Problem::Unreadable { .. }
                )
            })
            .count();
        let unreadable_note = if unreadable > 0 {
            format!(", {unreadable} unreadable file(s)")
        } else {
            String::new()
        };
        println!(
            "{n} file(s) checked, {} mismatch(es){unreadable_note}, {} pending put(s), {} temporary file(s), {} unregistered file(s)",
            bad.len() - unreadable,
            pending.len(),
            temps.len(),
            unregistered.len()
        );
    }
    let dead_pending = pending
        .iter()
        .filter(|it| {
            daf_storages::owner::liveness(&it.owner) == daf_storages::owner::Liveness::Dead
        })
        .count();
    let unreadable = bad
        .iter()
        .filter(|m| {
            matches!(
                m.problem,
                daf_butler::file_registry::Problem::Unreadable { .. }
            )
        })
        .count();
    if unreadable > 0 {
        // Not damage: this user may not read them (a shared repository
        // written under a private umask, or a folder closed to others).
        return Err(CliError {
            message: format!(
                "{unreadable} file(s) could not be read (see above, e.g. permission denied); {} changed or missing",
                bad.len() - unreadable
            ),
            code: 3,
        });
    }
    if !bad.is_empty() {
        return Err(CliError {
            message: format!(
                "{} file(s) changed or missing since they were recorded; restore them \
                 (`daf ingest REPO FILES… --force` puts ingested files back) or remove them \
                 (`daf prune`)",
                bad.len()
            ),
            code: 3,
        });
    }
    if garbage + dead_pending > 0 {
        return Err(CliError {
            message: format!(
                "{dead_pending} pending put(s) of dead processes and {garbage} stale temporary file(s); \
                 `daf verify --repair` cleans them"
            ),
            code: 3,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- export / import

/// `daf export`: write a YAML listing of datasets and their files.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only this dataset type.
    #[arg(long)]
    pub dataset_type: Option<String>,
    /// Only data ids matching this filter.
    #[arg(long = "where")]
    pub where_: Option<String>,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
}

/// Runs `daf export`.
pub fn export(a: ExportArgs) -> Result<(), CliError> {
    let butler = open_with(&a.repo, false, a.legacy.policy.as_deref())?;
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    let mut e = daf_butler::export::export(&butler, 0, &|r| {
        a.dataset_type
            .as_deref()
            .is_none_or(|t| t == r.dataset_type)
            && filter.as_ref().is_none_or(|f| f.matches(&r.data_id))
    })?;
    if butler.registry(0).is_none() {
        // A legacy repository: its datasets of the type as its mapper
        // lists them, checksummed now.
        let dt = a.dataset_type.as_deref().ok_or_else(|| {
            CliError::new(format!(
                "{} has no file registry (a legacy repository): name the datasets to \
                 export with --dataset-type",
                a.repo.display()
            ))
        })?;
        for (full, mut rec) in legacy_datasets(&butler, 0, dt, filter.as_ref()) {
            let (sum, size) = daf_butler::file_registry::checksum_file(&full)
                .map_err(|err| CliError::new(format!("{}: {err}", full.display())))?;
            rec.checksum = sum;
            rec.size = size;
            rec.time_ns = daf_butler::file_registry::now_ns();
            e.datasets.push(rec);
        }
    }
    let text = e.to_yaml();
    match &a.output {
        Some(p) => {
            let mut f = daf_storages::atomic::AtomicFile::create(p)?;
            f.writer()
                .write_all(text.as_bytes())
                .map_err(|e| CliError::new(format!("{}: {e}", p.display())))?;
            f.commit()?;
            eprintln!(
                "exported {} dataset(s) to {}",
                e.datasets.len(),
                p.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `daf import`: bring the datasets of an export listing into a repository.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The repository (created if missing).
    pub repo: PathBuf,
    /// The export file.
    pub file: PathBuf,
    /// How each file gets into the repository.
    #[arg(long, value_enum, default_value_t = TransferArg::Copy)]
    pub transfer: TransferArg,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Mapper policy for a legacy repository.
    #[command(flatten)]
    pub legacy: PolicyArg,
    /// No progress bar (set from the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
}

/// Runs `daf import`.
pub fn import(a: ImportArgs) -> Result<(), CliError> {
    let transfer: Transfer = a.transfer.into();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| CliError::new(format!("{}: {e}", a.file.display())))?;
    let e = Export::from_yaml(&text)
        .map_err(|m| CliError::new(format!("{}: {m}", a.file.display())))?;
    if daf_butler::export::create_for_import(&a.repo, &e)? && !a.json {
        eprintln!(
            "created repository {} (mapper {})",
            a.repo.display(),
            e.mapper.as_deref().unwrap_or("SimpleMapper")
        );
    }
    let butler = open_with(&a.repo, true, a.legacy.policy.as_deref())?;
    let pb = progress(e.datasets.len(), a.json || a.quiet);
    let summary = daf_butler::export::import(&butler, &e, transfer, &|| pb.inc(1))?;
    pb.finish_and_clear();
    report_summary(&summary, a.json, false)
}
