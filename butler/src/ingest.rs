//! Ingest: bring existing files into a repository and record them in its
//! file registry, with data ids read from FITS headers (through rules that
//! map data-id keys to header cards) or taken from a metadata table (no file
//! opened).
//!
//! Files are processed in parallel. A file already ingested as the same
//! dataset type into the same run (same source path) is skipped; into
//! another run it is ingested again. A file that fails is reported and the
//! others go on.
//! Ingest follows the put protocol of [`crate::recovery`]: every data id is
//! claimed with an intent before its file is placed, and the rows of one
//! call are recorded (and the intents dropped) in one transaction at the
//! end. The run name and every target path are checked with
//! [`daf_base::path_safety`]. A retry after a failure adopts an identical
//! unregistered copy left at the target.
//!
//! Into a repository whose datastore is an object store (`s3://...`), files
//! are uploaded in parallel, each create-only and complete-or-absent, to the
//! key the mapper gives; `copy` keeps the source, `move` deletes it once
//! its upload completed. `hardlink`, `symlink`, `relsymlink` and `direct`
//! are refused with an error naming the two that work: links and recorded
//! local paths cannot live in a bucket.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use daf_base::{DataId, DataIdValue};
use daf_mappers::fits_header::Header;
use daf_mappers::policy::HeaderRule;
use daf_storages::atomic::AtomicFile;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::butler::Butler;
use crate::error::ButlerError;
use crate::file_registry::{checksum_file, now_ns, Claim, DatasetRecord, Intent, IntentMode};
use crate::simple_mapper::normalize_data_id;
use daf_base::path_safety::{check_relative, join_under};

/// How a file gets into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Copy (atomically: temporary file, fsync, rename).
    #[default]
    Copy,
    /// Move (rename; copy and delete across file systems).
    Move,
    /// Hard link.
    Hardlink,
    /// Absolute symbolic link.
    Symlink,
    /// Relative symbolic link.
    Relsymlink,
    /// Leave the file where it is; record its absolute path.
    Direct,
}

impl std::str::FromStr for Transfer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "copy" => Transfer::Copy,
            "move" => Transfer::Move,
            "hardlink" | "link" => Transfer::Hardlink,
            "symlink" => Transfer::Symlink,
            "relsymlink" => Transfer::Relsymlink,
            "direct" => Transfer::Direct,
            other => {
                return Err(format!(
                    "unknown transfer mode {other:?}; use copy, move, hardlink, symlink, relsymlink or direct"
                ))
            }
        })
    }
}

/// Where data ids come from.
#[derive(Debug, Clone)]
pub enum DataIdSource {
    /// Each data-id key from a FITS header card of the primary HDU, through
    /// the mapper policy's header rules (`key → CARD` plus a conversion, the
    /// same rules and conversions `daf registry create` applies):
    ///
    /// ```
    /// use daf_butler::ingest::DataIdSource;
    /// use daf_mappers::policy::HeaderRule;
    /// let ids = DataIdSource::Header(vec![
    ///     ("visit".into(), HeaderRule::card("VISIT")),
    ///     ("taiObs".into(), "MJD-OBS:mjdTaiToUtc".parse().unwrap()),
    /// ]);
    /// # let _ = ids;
    /// ```
    Header(Vec<(String, HeaderRule)>),
    /// A table: file path (as given, or its absolute form) → data id.
    Table(BTreeMap<PathBuf, DataId>),
    /// The keys of the dataset's path template, parsed from each file's
    /// path (as `daf registry create` does), and the header rules of the
    /// mapper policy (`ingest.headerKeys`), which win for the keys they name
    /// (a rule that fails for a key the name gave keeps the name's value).
    /// The template is matched against as many trailing path components as
    /// it has, else its last component against the file name.
    ///
    /// ```
    /// use daf_butler::ingest::DataIdSource;
    /// use daf_mappers::PathTemplate;
    /// let t = PathTemplate::parse("raw/raw_v%(visit)d_f%(filter)s.fits.gz").unwrap();
    /// let ids = DataIdSource::Names { template: t, rules: vec![] };
    /// # let _ = ids;
    /// ```
    Names {
        /// The dataset's path template.
        template: daf_mappers::PathTemplate,
        /// Header rules (they win over the name for their keys).
        rules: Vec<(String, HeaderRule)>,
    },
}

/// The data id `template` gives for the file at `path`: the template matched
/// against as many trailing components of `path` as it has, else its last
/// component matched against the file name. `None` when neither matches.
pub fn data_id_from_name(template: &daf_mappers::PathTemplate, path: &Path) -> Option<DataId> {
    let text = path.to_string_lossy();
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
    let depth = template
        .file_pieces()
        .iter()
        .map(|p| match p {
            daf_mappers::template::Piece::Literal(l) => l.matches('/').count(),
            _ => 0,
        })
        .sum::<usize>()
        + 1;
    if parts.len() >= depth {
        let tail = parts[parts.len() - depth..].join("/");
        if let Some(id) = template.parse_path(&tail) {
            return Some(id);
        }
    }
    // the last component of the template against the file name
    let last = template.text().rsplit('/').next().unwrap_or_default();
    let last = daf_mappers::PathTemplate::parse(last).ok()?;
    last.parse_path(parts.last()?)
}

/// Options of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The dataset type of the files.
    pub dataset_type: String,
    /// The transfer mode.
    pub transfer: Transfer,
    /// Where data ids come from.
    pub ids: DataIdSource,
    /// The run to record.
    pub run: String,
}

/// What happened to each file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    /// Files ingested.
    pub ingested: Vec<PathBuf>,
    /// Files skipped because they were ingested before.
    pub skipped: Vec<PathBuf>,
    /// Files that failed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ingested, {} skipped (already ingested), {} failed",
            self.ingested.len(),
            self.skipped.len(),
            self.failed.len()
        )
    }
}

/// Reads a metadata table: a header line naming `path` and the data-id keys,
/// then one line per file; tab- or comma-separated.
///
/// ```
/// let t = daf_butler::ingest::read_table("path,visit,filter\na.fits,1,g\n".as_bytes()).unwrap();
/// assert_eq!(t[std::path::Path::new("a.fits")], daf_base::data_id!{visit: "1", filter: "g"});
/// ```
pub fn read_table(r: impl Read) -> Result<BTreeMap<PathBuf, DataId>, String> {
    let mut lines = io::BufReader::new(r).lines();
    let header = match lines.next() {
        Some(l) => l.map_err(|e| e.to_string())?,
        None => return Err("empty metadata table".into()),
    };
    let sep = if header.contains('\t') { '\t' } else { ',' };
    let cols: Vec<String> = header.split(sep).map(|s| s.trim().to_string()).collect();
    let pi = cols
        .iter()
        .position(|c| c == "path")
        .ok_or("metadata table has no `path` column")?;
    let mut out = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(sep).map(str::trim).collect();
        if cells.len() != cols.len() {
            return Err(format!(
                "metadata table line {}: {} cells, header has {}",
                n + 2,
                cells.len(),
                cols.len()
            ));
        }
        let mut id = DataId::new();
        for (c, v) in cols.iter().zip(&cells) {
            if c != "path" {
                id.insert(c.as_str(), *v);
            }
        }
        out.insert(PathBuf::from(cells[pi]), id);
    }
    Ok(out)
}

/// The primary-HDU header cards of a FITS file (plain or gzip), as data-id
/// values (`T`/`F` as 1/0; cards with no value left out). Reads header blocks
/// only, through [`daf_mappers::fits_header`].
pub fn read_primary_header(path: &Path) -> io::Result<BTreeMap<String, DataIdValue>> {
    let header = primary_header(path)?;
    let mut out = BTreeMap::new();
    for (key, value) in header.cards() {
        if let Some(v) = value.to_data_id_value() {
            out.entry(key).or_insert(v);
        }
    }
    Ok(out)
}

/// The primary header of `path`, with a plain message for a file that is
/// not FITS.
fn primary_header(path: &Path) -> io::Result<Header> {
    daf_mappers::fits_header::read_header(path, 0).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            let detail = e.to_string();
            let detail = detail
                .strip_prefix("not a valid FITS file: ")
                .unwrap_or(&detail);
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a FITS file: {detail}"),
            )
        } else {
            e
        }
    })
}

fn data_id_for(path: &Path, abs: &Path, opts: &IngestOptions) -> Result<DataId, String> {
    match &opts.ids {
        DataIdSource::Table(t) => t
            .get(path)
            .or_else(|| t.get(abs))
            .cloned()
            .ok_or_else(|| "not listed in the metadata table".to_string()),
        DataIdSource::Header(rules) => {
            let h = primary_header(path).map_err(|e| e.to_string())?;
            let mut id = DataId::new();
            for (key, rule) in rules {
                let v = rule
                    .apply(&h)
                    .map_err(|m| format!("{m} (for data-id key {key:?})"))?;
                id.insert(key.as_str(), v);
            }
            Ok(id)
        }
        DataIdSource::Names { template, rules } => {
            // A name that does not match leaves every key to the header rules.
            let mut id = match data_id_from_name(template, abs) {
                Some(id) => id,
                None if !rules.is_empty() => DataId::new(),
                None => {
                    return Err(format!(
                        "the file name does not match the template {:?}",
                        template.text()
                    ))
                }
            };
            // The policy's header rules, where it has them, win (the files
            // may be named otherwise); a rule that fails for a key the name
            // gave keeps the name's value.
            if !rules.is_empty() {
                let h = primary_header(path).map_err(|e| e.to_string())?;
                for (key, rule) in rules {
                    match rule.apply(&h) {
                        Ok(v) => id.insert(key.as_str(), v),
                        Err(_) if id.contains_key(key) => {}
                        Err(m) => return Err(format!("{m} (for data-id key {key:?})")),
                    }
                }
            }
            Ok(id)
        }
    }
}

/// The data id `opts` gives the file `f` for a dataset of
/// `opts.dataset_type` in output `out` of `butler` (typed as its mapper
/// says): the id an ingest of `f` records.
pub fn file_data_id(
    butler: &Butler,
    out: usize,
    f: &Path,
    opts: &IngestOptions,
) -> Result<DataId, String> {
    let keys = butler
        .mapper(out)
        .get_keys(&opts.dataset_type, None)
        .map_err(|e| e.to_string())?;
    let abs = absolute(f).map_err(|e| e.to_string())?;
    let raw = data_id_for(f, &abs, opts)?;
    let extra_keys_ok = matches!(opts.ids, DataIdSource::Header(_));
    normalize_data_id(&opts.dataset_type, &raw, &keys, extra_keys_ok).map_err(|e| e.to_string())
}

/// The part of `id` the mapper knows (all of it when the mapper names no
/// keys): what makes two data ids the same dataset, and what a path is made
/// from. Extra header keys such as an observation time are recorded, but do
/// not hide a second file for the same visit.
fn known_part(id: &DataId, keys: &BTreeMap<String, daf_mappers::KeyType>) -> DataId {
    if keys.is_empty() {
        return id.clone();
    }
    id.iter()
        .filter(|(k, _)| keys.contains_key(*k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn identity(id: &DataId, keys: &BTreeMap<String, daf_mappers::KeyType>) -> String {
    crate::file_registry::canonical_data_id(&known_part(id, keys))
}

/// Puts `src` at `dst` by `mode` (nothing for [`Transfer::Direct`]); an
/// existing `dst` is an error.
pub fn transfer_file(src: &Path, dst: &Path, mode: Transfer) -> io::Result<()> {
    if mode == Transfer::Direct || src == dst {
        return Ok(());
    }
    if dst.exists() || dst.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", dst.display()),
        ));
    }
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p)?;
    }
    match mode {
        Transfer::Copy => copy_atomic(src, dst),
        Transfer::Move => match std::fs::rename(src, dst) {
            Ok(()) => Ok(()),
            Err(_) => {
                copy_atomic(src, dst)?;
                std::fs::remove_file(src)
            }
        },
        Transfer::Hardlink => std::fs::hard_link(src, dst),
        Transfer::Symlink => symlink(src, dst),
        Transfer::Relsymlink => {
            // both sides absolute, so a relative destination (`DEST/...`)
            // still gets a link relative to its own folder
            let src = std::path::absolute(src)?;
            let dst_abs = std::path::absolute(dst)?;
            let base = dst_abs.parent().unwrap_or(Path::new("/"));
            symlink(&relative(&src, base), dst)
        }
        Transfer::Direct => Ok(()),
    }
}

fn copy_atomic(src: &Path, dst: &Path) -> io::Result<()> {
    let mut f = AtomicFile::create(dst).map_err(io::Error::other)?;
    let mut r = std::fs::File::open(src)?;
    io::copy(&mut r, f.writer())?;
    f.commit().map_err(io::Error::other)?;
    Ok(())
}

#[cfg(unix)]
fn symlink(src: &Path, dst: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(src, dst)
}
#[cfg(not(unix))]
fn symlink(_src: &Path, _dst: &Path) -> io::Result<()> {
    Err(io::Error::other("symbolic links are not supported here"))
}

fn relative(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Puts the file of `plan` at `dst`. An unregistered file already at `dst`
/// (left by an earlier attempt that failed before recording it) is adopted
/// when it holds the same bytes, and refused otherwise. A symbolic link
/// given to [`Transfer::Move`] is resolved: the file it points to is copied
/// in and the link removed (moving the link itself would leave a relative
/// link dangling); the file it points to stays where it is.
fn place(
    src: &Path,
    dst: &Path,
    mode: Transfer,
    link_source: bool,
    rec: &DatasetRecord,
) -> Result<(), String> {
    if mode != Transfer::Direct && dst.symlink_metadata().is_ok() {
        let same = checksum_file(dst).is_ok_and(|(c, n)| c == rec.checksum && n == rec.size);
        if !same {
            return Err(format!(
                "{} exists, is not registered and differs from this file; move it away \
                 (`daf verify` lists unregistered files)",
                dst.display()
            ));
        }
        if mode == Transfer::Move {
            std::fs::remove_file(src).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    if mode == Transfer::Move && link_source {
        transfer_file(src, dst, Transfer::Copy).map_err(|e| e.to_string())?;
        return std::fs::remove_file(src).map_err(|e| e.to_string());
    }
    transfer_file(src, dst, mode).map_err(|e| e.to_string())
}

/// Refuses the transfer modes that cannot put a file into the object store
/// at `url`: only `copy` and `move` (upload, then remove the source) can.
pub(crate) fn check_remote_transfer(url: String, mode: Transfer) -> Result<(), String> {
    match mode {
        Transfer::Copy | Transfer::Move => Ok(()),
        other => Err(format!(
            "transfer mode {} cannot bring files into the object store {url}: \
             links and direct paths only exist on a local disk; use --transfer copy \
             (upload) or move (upload, then delete the source)",
            format!("{other:?}").to_lowercase()
        )),
    }
}

/// Uploads `src` to the key `rec.path` of `ds`, create-only (an object that
/// appears there meanwhile is never replaced). An unregistered object
/// already at the key (left by an earlier attempt) is adopted when it holds
/// the same bytes, and refused otherwise. [`Transfer::Move`] removes the
/// source after the upload completed.
pub(crate) fn upload(
    ds: &dyn daf_storages::datastore::Datastore,
    src: &Path,
    mode: Transfer,
    rec: &DatasetRecord,
) -> Result<(), String> {
    use daf_storages::datastore::{DatastoreError, PutMode};
    match ds.put_file(&rec.path, src, PutMode::Create) {
        Ok(_) => {}
        Err(DatastoreError::AlreadyExists { .. }) => {
            let same = ds
                .checksum(&rec.path)
                .is_ok_and(|(c, n)| c == rec.checksum && n == rec.size);
            if !same {
                return Err(format!(
                    "{}/{} exists, is not registered and differs from this file; remove it \
                     (`daf verify` lists unregistered objects)",
                    ds.url(),
                    rec.path
                ));
            }
        }
        Err(e) => return Err(e.to_string()),
    }
    if mode == Transfer::Move {
        std::fs::remove_file(src).map_err(|e| format!("{}: {e}", src.display()))?;
    }
    Ok(())
}

fn absolute(p: &Path) -> io::Result<PathBuf> {
    std::path::absolute(p)
}

/// The index of the first output repository of `butler` (where ingest and
/// import write), or [`ButlerError::ReadOnly`].
pub(crate) fn first_output(butler: &Butler) -> Result<usize, ButlerError> {
    butler
        .output_indices()
        .first()
        .copied()
        .ok_or_else(|| ButlerError::ReadOnly {
            root: butler
                .repositories()
                .first()
                .map(|r| r.root.clone())
                .unwrap_or_default(),
        })
}

/// Ingests `files` into the first output of `butler`. `progress` is called
/// once per file processed (for a progress bar).
pub fn ingest(
    butler: &Butler,
    files: &[PathBuf],
    opts: &IngestOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<IngestSummary, ButlerError> {
    let out = first_output(butler)?;
    check_relative("run", &opts.run)?;
    let remote = butler.remote_datastore(out).cloned();
    if let Some(ds) = &remote {
        check_remote_transfer(ds.url(), opts.transfer)
            .map_err(|m| ButlerError::repo(&butler.repositories()[out].root, m))?;
    }
    let repo = &butler.repositories()[out];
    let root = repo.root.clone();
    let mapper = butler.mapper(out).clone();
    let keys = mapper.get_keys(&opts.dataset_type, None)?;
    // Sources already ingested as this type into this run (a file ingested
    // into another run, or as another type, is ingested again), and the
    // (type, id) already present in the run.
    let (known_sources, known_ids) = {
        let reg = butler.registry(out).expect("outputs have a registry");
        let recs = reg.find_matching(Some(&opts.dataset_type), &DataId::new(), Some(&opts.run))?;
        let mut srcs = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for r in recs {
            ids.insert(identity(&r.data_id, &keys));
            if let Some(s) = r.source {
                srcs.insert(s);
            }
        }
        (srcs, Mutex::new(ids))
    };
    // 1. (parallel) data id, target and checksum of each file
    struct Plan {
        file: PathBuf,
        rec: DatasetRecord,
        src: PathBuf,
        dst: PathBuf,
        link_source: bool,
    }
    enum Step {
        Plan(Box<Plan>),
        Skipped(PathBuf),
        Failed(PathBuf, String),
    }
    let steps: Vec<Step> = files
        .par_iter()
        .map(|f| {
            let r = (|| -> Result<Step, String> {
                let abs = absolute(f).map_err(|e| e.to_string())?;
                let src_key = abs.to_string_lossy().into_owned();
                if known_sources.contains(&src_key) {
                    return Ok(Step::Skipped(f.clone()));
                }
                if !abs.is_file() {
                    return Err(if abs.symlink_metadata().is_ok() {
                        "a symbolic link to nothing (dangling)".into()
                    } else {
                        "no such file".into()
                    });
                }
                let link_source = abs.symlink_metadata().is_ok_and(|m| m.is_symlink());
                let raw_id = data_id_for(f, &abs, opts)?;
                // Header rules may add keys the mapper does not know (a
                // registry column such as taiObs): they are recorded as
                // converted; the mapper's own keys are typed as it says.
                let extra_keys_ok = matches!(
                    opts.ids,
                    DataIdSource::Header(_) | DataIdSource::Names { .. }
                );
                let id = normalize_data_id(&opts.dataset_type, &raw_id, &keys, extra_keys_ok)
                    .map_err(|e| e.to_string())?;
                let canon = identity(&id, &keys);
                if !known_ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(canon)
                {
                    return Err(format!(
                        "{} {id} is already in the repository (from another file)",
                        opts.dataset_type
                    ));
                }
                let (stored, rel) = if opts.transfer == Transfer::Direct {
                    (abs.clone(), src_key.clone())
                } else {
                    let loc = mapper
                        .map(&opts.dataset_type, &known_part(&id, &keys), true)
                        .map_err(|e| e.to_string())?;
                    let l = loc.locations.first().ok_or("mapper gave no location")?;
                    let l = match l.rfind('[') {
                        Some(i) if l.ends_with(']') => &l[..i],
                        _ => l.as_str(),
                    };
                    let rel = if opts.run.is_empty() {
                        l.to_string()
                    } else {
                        format!("{}/{l}", opts.run)
                    };
                    let stored =
                        join_under(&root, "ingest target", &rel).map_err(|e| e.to_string())?;
                    (stored, rel)
                };
                // checksum the source before a move takes it away
                let (checksum, size) = checksum_file(&abs).map_err(|e| e.to_string())?;
                Ok(Step::Plan(Box::new(Plan {
                    file: f.clone(),
                    rec: DatasetRecord {
                        id: 0,
                        dataset_type: opts.dataset_type.clone(),
                        data_id: id,
                        run: opts.run.clone(),
                        path: rel,
                        size,
                        checksum,
                        time_ns: now_ns(),
                        source: Some(src_key),
                    },
                    src: abs,
                    dst: stored,
                    link_source,
                })))
            })();
            r.unwrap_or_else(|m| Step::Failed(f.clone(), m))
        })
        .collect();
    let mut summary = IngestSummary::default();
    let mut plans = Vec::new();
    for s in steps {
        match s {
            Step::Plan(p) => plans.push(*p),
            Step::Skipped(f) => {
                progress();
                summary.skipped.push(f)
            }
            Step::Failed(f, m) => {
                progress();
                summary.failed.push((f, m))
            }
        }
    }
    // 2. claim every data id (one transaction): another writer's pending
    // put or an existing row makes that file fail
    let mode = if opts.transfer == Transfer::Move {
        IntentMode::IngestMove
    } else {
        IntentMode::Ingest
    };
    let intents: Vec<Intent> = plans
        .iter()
        .map(|p| Intent {
            id: 0,
            dataset_type: p.rec.dataset_type.clone(),
            data_id: p.rec.data_id.clone(),
            run: p.rec.run.clone(),
            mode,
            files: vec![(p.rec.path.clone(), String::new())],
            checksum: p.rec.checksum.clone(),
            size: p.rec.size,
            owner: daf_storages::owner::token().to_string(),
            time_ns: now_ns(),
        })
        .collect();
    let claims = butler
        .registry(out)
        .expect("outputs have a registry")
        .claim(&intents)?;
    let mut release = Vec::new();
    let mut go = Vec::new();
    for (p, c) in plans.into_iter().zip(claims) {
        match c {
            Claim::Claimed {
                intent,
                existing: None,
            } => go.push((p, intent)),
            Claim::Claimed {
                intent,
                existing: Some(r),
            } => {
                release.push(intent);
                progress();
                summary.failed.push((
                    p.file,
                    format!(
                        "{} {} is already in the repository (at {})",
                        r.dataset_type, r.data_id, r.path
                    ),
                ));
            }
            Claim::Busy(h) => {
                progress();
                summary.failed.push((
                    p.file,
                    format!(
                        "{} {} is being written by another process ({})",
                        h.dataset_type, h.data_id, h.owner
                    ),
                ));
            }
        }
    }
    // 3. (parallel) transfer, or adopt an identical unregistered copy left
    // by an earlier attempt
    let results: Vec<Result<(), String>> = go
        .par_iter()
        .map(|(p, _)| {
            let r = match &remote {
                Some(ds) => upload(&**ds, p.src.as_path(), opts.transfer, &p.rec),
                None => place(
                    p.src.as_path(),
                    &p.dst,
                    opts.transfer,
                    p.link_source,
                    &p.rec,
                ),
            };
            progress();
            r
        })
        .collect();
    let mut recs = Vec::new();
    let mut done = Vec::new();
    for ((p, intent), r) in go.into_iter().zip(results) {
        match r {
            Ok(()) => {
                recs.push(p.rec);
                done.push(intent);
                summary.ingested.push(p.file);
            }
            Err(m) => {
                release.push(intent);
                summary.failed.push((p.file, m));
            }
        }
    }
    // 4. rows recorded and intents dropped in one transaction
    let mut reg = butler.registry(out).expect("outputs have a registry");
    let _ = reg.release(&release);
    reg.settle(&recs, &done)?;
    Ok(summary)
}
