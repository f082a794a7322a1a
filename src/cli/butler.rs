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

use super::CliError;

/// Parses `key=value` into a data-id item (integer, float or string).
fn parse_kv(s: &str) -> Result<(String, DataIdValue), String> {
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
fn open(repo: &Path, writable: bool) -> Result<Butler, CliError> {
    let b = if writable {
        Butler::builder().output(repo)
    } else {
        Butler::builder().input(repo)
    };
    let fallback = Repository::open(repo, daf_butler::repository::Mode::Read)
        .ok()
        .and_then(|r| {
            r.cfg
                .mapper_args
                .get("policy")
                .and_then(|v| v.as_str())
                .map(|p| r.root.join(p))
        });
    b.mapper_factory(daf_butler::camera_mapper_factory(BTreeMap::new(), fallback))
        .build()
        .map_err(|e| CliError::new(e.to_string()))
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

fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
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
    let mapper = a.mapper.clone().unwrap_or_else(|| "SimpleMapper".into());
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
    /// copy, move, hardlink, symlink, relsymlink or direct.
    #[arg(long, default_value = "copy")]
    pub transfer: String,
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
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf ingest`.
pub fn ingest(a: IngestArgs) -> Result<(), CliError> {
    let transfer: Transfer = a.transfer.parse().map_err(CliError::new)?;
    let ids = match &a.table {
        Some(t) => {
            let f = std::fs::File::open(t)
                .map_err(|e| CliError::new(format!("{}: {e}", t.display())))?;
            DataIdSource::Table(
                ingest::read_table(f)
                    .map_err(|e| CliError::new(format!("{}: {e}", t.display())))?,
            )
        }
        None if a.keys.is_empty() => DataIdSource::Header(policy_rules(&a.repo)?),
        None => DataIdSource::Header(key_rules(&a.keys)?),
    };
    let butler = open(&a.repo, true)?;
    let opts = IngestOptions {
        dataset_type: a.dataset_type.clone(),
        transfer,
        ids,
        run: a.run.clone(),
    };
    let pb = progress(a.files.len(), a.json);
    let summary = ingest::ingest(&butler, &a.files, &opts, &|| pb.inc(1))?;
    pb.finish_and_clear();
    report_summary(&summary, a.json)
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

/// The header rules of the repository's mapper policy (`ingest.headerKeys`
/// of the policy named by `mapperArgs.policy`), with their conversions: the
/// rules `daf registry create` applies.
fn policy_rules(repo: &Path) -> Result<Vec<(String, HeaderRule)>, CliError> {
    let none = || {
        CliError::new(
            "say where data ids come from: --key KEY=HEADERCARD[:CONVERSION] (repeatable), \
             --table FILE, or a mapper policy with an ingest.headerKeys section",
        )
    };
    let r = Repository::open(repo, daf_butler::repository::Mode::Read)?;
    let Some(policy) = r.cfg.mapper_args.get("policy").and_then(|v| v.as_str()) else {
        return Err(none());
    };
    let policy = daf_mappers::MapperPolicy::load(&r.root.join(policy), None)?;
    match policy.ingest {
        Some(ingest) if !ingest.header_keys.is_empty() => Ok(ingest.header_keys),
        _ => Err(none()),
    }
}

fn report_summary(summary: &IngestSummary, json: bool) -> Result<(), CliError> {
    if json {
        print_json(summary)?;
    } else {
        for (f, why) in &summary.failed {
            eprintln!("failed: {}: {why}", f.display());
        }
        println!("{summary}");
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
}

/// Runs `daf query`.
pub fn query(a: QueryArgs) -> Result<(), CliError> {
    let butler = open(&a.repo, false)?;
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    if !a.keys.is_empty() {
        let dt = a.dataset_type.as_deref().ok_or_else(|| {
            CliError::new("--keys needs --dataset-type (the dataset type whose keys to list)")
        })?;
        let keys: Vec<&str> = a.keys.iter().map(String::as_str).collect();
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
}

/// Runs `daf get`. Any read error (and a `--verify` mismatch) makes the
/// exit status non-zero, after the summary is printed.
pub fn get(a: GetArgs) -> Result<(), CliError> {
    let butler = open(&a.repo, false)?;
    let id = data_id(&a.data_id);
    let found = butler.locate(&a.dataset_type, &id, a.run.as_deref())?;
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
                        failure = Some(CliError {
                            message: format!(
                                "{}: {} (the file changed since it was recorded)",
                                m.full_path.display(),
                                m.problem
                            ),
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
            } else if let Some((shape, header)) = describe_image(obj.as_ref()) {
                summary.insert("shape".into(), serde_json::json!(shape));
                if let Some(h) = header {
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
}

/// Runs `daf dump-policy`.
pub fn dump_policy(a: DumpPolicyArgs) -> Result<(), CliError> {
    let butler = open(&a.repo, false)?;
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
            let mut e = match defs.get(&t) {
                Some(serde_json::Value::Object(o)) => o.clone(),
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
}

/// Runs `daf verify`. Exit status 3 when a registered file changed or is
/// missing, or garbage remains (pending puts, temporary files of dead
/// processes); unregistered files are listed but are not an error.
pub fn verify(a: VerifyArgs) -> Result<(), CliError> {
    use daf_butler::recovery::{self, StrayKind};
    let butler = open(&a.repo, false)?;
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
        println!(
            "{n} file(s) checked, {} mismatch(es), {} pending put(s), {} temporary file(s), {} unregistered file(s)",
            bad.len(),
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
    if !bad.is_empty() {
        return Err(CliError {
            message: format!(
                "{} file(s) changed or missing since they were recorded; restore them or put/ingest them again",
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
}

/// Runs `daf export`.
pub fn export(a: ExportArgs) -> Result<(), CliError> {
    let butler = open(&a.repo, false)?;
    let filter = a.where_.as_deref().map(parse_where).transpose()?;
    let e = daf_butler::export::export(&butler, 0, &|r| {
        a.dataset_type
            .as_deref()
            .is_none_or(|t| t == r.dataset_type)
            && filter.as_ref().is_none_or(|f| f.matches(&r.data_id))
    })?;
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
    /// copy, move, hardlink, symlink, relsymlink or direct.
    #[arg(long, default_value = "copy")]
    pub transfer: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `daf import`.
pub fn import(a: ImportArgs) -> Result<(), CliError> {
    let transfer: Transfer = a.transfer.parse().map_err(CliError::new)?;
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| CliError::new(format!("{}: {e}", a.file.display())))?;
    let e = Export::from_yaml(&text)
        .map_err(|m| CliError::new(format!("{}: {m}", a.file.display())))?;
    let butler = open(&a.repo, true)?;
    let pb = progress(e.datasets.len(), a.json);
    let summary = daf_butler::export::import(&butler, &e, transfer, &|| pb.inc(1))?;
    pb.finish_and_clear();
    report_summary(&summary, a.json)
}
