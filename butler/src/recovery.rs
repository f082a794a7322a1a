//! The put protocol's other half: resolving pending puts (intents) left by
//! a process that died, and finding the garbage a repair may remove.
//!
//! ## The put protocol
//! A put (or ingest) of one dataset into one output repository:
//! 1. **stage**: the object is written to a staging file beside its final
//!    path (`.daf-tmp.OWNER.N.NAME`, through the storages' own temporary
//!    file, fsync and rename) and checksummed;
//! 2. **claim**: one registry transaction records an intent (dataset type,
//!    data id, run, mode, final and staging paths, the new checksum, the
//!    owner process) — unique per (dataset type, data id, run), so only one
//!    writer at a time works on a data id — and reads the dataset's row;
//!    a writer that finds another's intent waits for it (or recovers it, if
//!    its owner is dead);
//! 3. **decide**: a new put of a data id that has a row, or an unregistered
//!    file of other content, gets [`ButlerError::Exists`] (an unregistered
//!    file of the same content is adopted); a backup hard-links the old file
//!    to `path~N`;
//! 4. **rename** the staging file over the final path;
//! 5. **settle**: one transaction records the row and removes the intent.
//!
//! A put is acknowledged only after step 5. A crash leaves an intent, which
//! [`recover_intent`] resolves by the final file's checksum: if it holds the
//! new content, a clobber or backup (and an ingest by move) is rolled
//! forward (its row recorded); a new put (or an ingest that left its source
//! in place) is rolled back (the unacknowledged file removed, so a retry is
//! not blocked). Otherwise the rename never happened: the staging file and a
//! redundant backup link are removed, and the intent dropped. Either way the
//! registry and the files agree afterwards. Recovery runs when a butler
//! opens an output repository, when a put finds a dead writer's intent, and
//! in `daf verify --repair`; it acts only on intents whose owner is dead
//! ([`daf_storages::owner::liveness`]), after taking them over in the
//! registry so that two recoverers never act on one intent.
//!
//! ## Removals
//! `daf prune` and `daf remove-run` ([`crate::lifecycle`]) use the same
//! intents: a removal claims each data id (mode [`IntentMode::Remove`],
//! listing the files it deletes), drops the rows in one transaction,
//! deletes the files, then drops the intents. A removal cut short is rolled
//! back while its row remains, forward (its files deleted) once the row is
//! gone; no row is ever left without its file.

use std::path::{Path, PathBuf};

use daf_storages::datastore::Datastore;
use daf_storages::owner::{self, Liveness};
use serde::Serialize;

use crate::error::ButlerError;
use crate::file_registry::{
    checksum_file, now_ns, DatasetRecord, DatasetRegistry, Intent, IntentMode,
};

/// How a pending put was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The new file was in place: its row was recorded.
    RolledForward,
    /// The put was undone: staging (and, for a new put, its unacknowledged
    /// file) removed, intent dropped.
    RolledBack,
    /// The owner is alive (or on another host), or another process took the
    /// intent over first: left alone.
    Skipped,
}

/// The full paths of an intent's (final, staging) files, skipping any that
/// is not safely under `root`.
fn intent_paths(root: &Path, it: &Intent) -> Vec<(PathBuf, Option<PathBuf>)> {
    it.files
        .iter()
        .filter_map(|(f, s)| {
            let f = daf_base::path_safety::join_under(root, "intent path", f).ok()?;
            let s = if s.is_empty() {
                None
            } else {
                daf_base::path_safety::join_under(root, "intent path", s).ok()
            };
            Some((f, s))
        })
        .collect()
}

fn remove_quietly(p: &Path) {
    let _ = std::fs::remove_file(p);
}

/// `path~N` files that are hard links of `path` itself (a backup link made
/// by a put whose rename never happened).
#[cfg(unix)]
fn redundant_backups(path: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in 1..10_000 {
        let b = PathBuf::from(format!("{}~{n}", path.display()));
        match std::fs::metadata(&b) {
            Ok(bm) if bm.ino() == m.ino() && bm.dev() == m.dev() => out.push(b),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}
#[cfg(not(unix))]
fn redundant_backups(_path: &Path) -> Vec<PathBuf> {
    Vec::new()
}

/// Resolves the intent `it` (whose owner must be dead, or this process
/// undoing its own put) — see the module docs. The caller has taken it
/// over ([`DatasetRegistry::take_over`]) or owns it.
pub fn resolve_intent(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    resolve_intent_in(reg, root, None, it)
}

/// [`resolve_intent`] for a repository whose final files are objects of
/// `remote` (staging files are still local, under `root`). The object under
/// the final key is checksummed; an endpoint that cannot answer is an error
/// and the intent stays (nothing is decided on a guess).
pub fn resolve_intent_in(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    remote: Option<&dyn Datastore>,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    if it.mode == IntentMode::Remove {
        return match remote {
            None => resolve_removal(reg, root, it),
            Some(ds) => resolve_removal_remote(reg, ds, it),
        };
    }
    let Some(ds) = remote else {
        return resolve_local(reg, root, it);
    };
    // staging files live in the folder
    for (_, s) in &it.files {
        if !s.is_empty() {
            if let Ok(p) = daf_base::path_safety::join_under(root, "intent path", s) {
                remove_quietly(&p);
            }
        }
    }
    let key0 = it.files.first().map(|(f, _)| f.as_str()).unwrap_or("");
    let renamed = match ds.head(key0) {
        Ok(None) => false,
        Ok(Some(m)) if m.size != it.size => false,
        Ok(Some(_)) => {
            let (sum, size) = ds.checksum(key0)?;
            sum == it.checksum && size == it.size
        }
        Err(daf_storages::datastore::DatastoreError::BadKey { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    let forward = matches!(
        it.mode,
        IntentMode::Clobber | IntentMode::Backup | IntentMode::IngestMove
    );
    if renamed && forward {
        reg.settle(&[record_of(it)], &[it.id])?;
        return Ok(Resolution::RolledForward);
    }
    if renamed {
        let row = reg.find(&it.dataset_type, &it.data_id, Some(&it.run))?;
        if row.is_none() {
            for (f, _) in &it.files {
                ds.delete(f)?;
            }
        }
    } else if it.mode == IntentMode::Backup && !key0.is_empty() {
        // the upload never happened: a backup copy identical to the object
        // (the newest `key~N`) is redundant
        if let Some(b) = newest_backup(ds, key0)? {
            let same = match (ds.checksum(key0), ds.checksum(&b)) {
                (Ok(a), Ok(c)) => a == c,
                _ => false,
            };
            if same {
                ds.delete(&b)?;
            }
        }
    }
    reg.release(&[it.id])?;
    Ok(Resolution::RolledBack)
}

/// The highest-numbered `key~N` in `ds`, if any.
fn newest_backup(ds: &dyn Datastore, key: &str) -> Result<Option<String>, ButlerError> {
    let mut last = None;
    for n in 1..10_000 {
        let b = format!("{key}~{n}");
        if ds.head(&b)?.is_none() {
            break;
        }
        last = Some(b);
    }
    Ok(last)
}

/// The registry row a settled put of `it` records (its first file, now).
pub(crate) fn record_of(it: &Intent) -> DatasetRecord {
    DatasetRecord {
        id: 0,
        dataset_type: it.dataset_type.clone(),
        data_id: it.data_id.clone(),
        run: it.run.clone(),
        path: it.files[0].0.clone(),
        size: it.size,
        checksum: it.checksum.clone(),
        time_ns: now_ns(),
        source: None,
    }
}

fn resolve_local(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    let paths = intent_paths(root, it);
    for (_, s) in &paths {
        if let Some(s) = s {
            remove_quietly(s);
        }
    }
    let renamed = paths
        .first()
        .and_then(|(f, _)| checksum_file(f).ok())
        .is_some_and(|(sum, size)| sum == it.checksum && size == it.size);
    let forward = matches!(
        it.mode,
        IntentMode::Clobber | IntentMode::Backup | IntentMode::IngestMove
    );
    if renamed && forward {
        reg.settle(&[record_of(it)], &[it.id])?;
        return Ok(Resolution::RolledForward);
    }
    if renamed {
        // A new put or an ingest that kept its source: never acknowledged,
        // so its file goes (a retry then starts afresh). The intent held the
        // data id, so no row can point at the file.
        let row = reg.find(&it.dataset_type, &it.data_id, Some(&it.run))?;
        if row.is_none() {
            for (f, _) in &paths {
                remove_quietly(f);
            }
        }
    } else if it.mode == IntentMode::Backup {
        if let Some((f, _)) = paths.first() {
            for b in redundant_backups(f) {
                remove_quietly(&b);
            }
        }
    }
    reg.release(&[it.id])?;
    Ok(Resolution::RolledBack)
}

/// A removal ([`IntentMode::Remove`]) drops its rows first (one
/// transaction), then deletes its files, then drops its intents. While the
/// row is still there nothing happened: the removal is rolled back (the
/// intent dropped; run it again). Once the row is gone it is rolled forward:
/// the listed files still holding the recorded bytes are deleted, and the
/// intent dropped. No row is ever left without its file.
fn resolve_removal(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    if reg
        .find(&it.dataset_type, &it.data_id, Some(&it.run))?
        .is_some()
    {
        reg.release(&[it.id])?;
        return Ok(Resolution::RolledBack);
    }
    for (k, (f, _)) in intent_paths(root, it).into_iter().enumerate() {
        let ours = k > 0
            || checksum_file(&f).is_ok_and(|(sum, size)| sum == it.checksum && size == it.size);
        if ours {
            remove_quietly(&f);
        }
    }
    reg.release(&[it.id])?;
    Ok(Resolution::RolledForward)
}

/// [`resolve_removal`] for a repository whose files are objects of `ds`.
fn resolve_removal_remote(
    reg: &mut dyn DatasetRegistry,
    ds: &dyn Datastore,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    if reg
        .find(&it.dataset_type, &it.data_id, Some(&it.run))?
        .is_some()
    {
        reg.release(&[it.id])?;
        return Ok(Resolution::RolledBack);
    }
    for (k, (f, _)) in it.files.iter().enumerate() {
        let ours = k > 0
            || ds
                .checksum(f)
                .is_ok_and(|(sum, size)| sum == it.checksum && size == it.size);
        if ours {
            ds.delete(f)?;
        }
    }
    reg.release(&[it.id])?;
    Ok(Resolution::RolledForward)
}

/// Resolves `it` if its owner is dead: takes it over in the registry (so
/// that only one process acts on it), then [`resolve_intent`].
pub fn recover_intent(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    recover_intent_in(reg, root, None, it)
}

/// [`recover_intent`] for a repository whose files are in `remote`.
pub fn recover_intent_in(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    remote: Option<&dyn Datastore>,
    it: &Intent,
) -> Result<Resolution, ButlerError> {
    if owner::liveness(&it.owner) != Liveness::Dead {
        return Ok(Resolution::Skipped);
    }
    if !reg.take_over(it.id, &it.owner, owner::token())? {
        return Ok(Resolution::Skipped);
    }
    resolve_intent_in(reg, root, remote, it)
}

/// Resolves every pending put of a dead owner in `reg`; returns each intent
/// with its resolution.
pub fn recover_all(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
) -> Result<Vec<(Intent, Resolution)>, ButlerError> {
    recover_all_in(reg, root, None)
}

/// [`recover_all`] for a repository whose files are in `remote`.
pub fn recover_all_in(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    remote: Option<&dyn Datastore>,
) -> Result<Vec<(Intent, Resolution)>, ButlerError> {
    let mut out = Vec::new();
    for it in reg.intents()? {
        let r = recover_intent_in(reg, root, remote, &it)?;
        out.push((it, r));
    }
    Ok(out)
}

/// A file in a repository that no registry row accounts for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stray {
    /// The full path.
    pub path: PathBuf,
    /// What it is.
    pub kind: StrayKind,
}

/// What kind of stray file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrayKind {
    /// A daf temporary or staging file whose writer is dead: garbage.
    DeadTemp,
    /// A daf temporary or staging file of a live writer, another host's
    /// writer, or of unknown owner younger than an hour.
    LiveTemp,
    /// A daf temporary file without owner (older daf), older than an hour.
    OldTemp,
    /// A regular file with no registry row (not a `~N` backup).
    Unregistered,
}

/// Files of the repository at `root` that are not registered: temporary
/// files (with their owners' state) and unregistered data files. `known`
/// holds the full paths of every registered file and of every pending put's
/// files. The registry's own files, the repository configuration, `~N`
/// backups and dot-directories are not listed; neither are symbolic links
/// to directories (parents).
pub fn scan_strays(root: &Path, known: &std::collections::HashSet<PathBuf>) -> Vec<Stray> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let hour = std::time::Duration::from_secs(3600);
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !name.starts_with('.') {
                    stack.push(path);
                }
                continue;
            }
            if let Some(tok) = owner::temp_file_owner(&name) {
                let kind = match tok.map(owner::liveness) {
                    Some(Liveness::Dead) => StrayKind::DeadTemp,
                    Some(_) => StrayKind::LiveTemp,
                    None => {
                        let old = e
                            .metadata()
                            .ok()
                            .and_then(|m| m.modified().ok())
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|age| age > hour);
                        if old {
                            StrayKind::OldTemp
                        } else {
                            StrayKind::LiveTemp
                        }
                    }
                };
                out.push(Stray { path, kind });
                continue;
            }
            if dir == root && (is_repo_file(&name)) {
                continue;
            }
            if is_backup_name(&name) || (ft.is_symlink() && path.is_dir()) {
                continue;
            }
            if !known.contains(&path) {
                out.push(Stray {
                    path,
                    kind: StrayKind::Unregistered,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Files of a repository root that are not datasets.
fn is_repo_file(name: &str) -> bool {
    name.starts_with(crate::file_registry::REGISTRY_FILE)
        || name == crate::repository::CFG_FILE
        || name.starts_with("registry.")
        || name == "_parent"
        || name == "_mapper"
        || name.starts_with('.')
}

/// `NAME~N`: a backup kept by `put` with backup.
fn is_backup_name(name: &str) -> bool {
    name.rsplit_once('~')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What [`repair`] did and what remains.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Pending puts of dead processes, and how each was resolved.
    pub resolved: Vec<(String, Resolution)>,
    /// Temporary files removed (their writers are dead, or they have no
    /// owner and are over an hour old).
    pub removed: Vec<PathBuf>,
}

/// Cleans what is provably garbage in the repository at `root` with
/// registry `reg`: resolves the pending puts of dead processes
/// ([`recover_all`]) and removes temporary files of dead writers (and
/// owner-less ones over an hour old). Registered and unregistered data
/// files are never touched. `daf verify --repair` runs this.
pub fn repair(reg: &mut dyn DatasetRegistry, root: &Path) -> Result<RepairReport, ButlerError> {
    repair_in(reg, root, None)
}

/// [`repair`] for a repository whose files are in `remote`: pending puts
/// are resolved by the checksum of the object under their final key (an
/// orphan object of a put that died between upload and settle is rolled
/// back, or forward for a clobber); local temporary (staging) files of dead
/// writers are removed. Objects are never removed except an intent's own.
pub fn repair_in(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    remote: Option<&dyn Datastore>,
) -> Result<RepairReport, ButlerError> {
    let mut report = RepairReport::default();
    for (it, r) in recover_all_in(reg, root, remote)? {
        if r != Resolution::Skipped {
            report.resolved.push((
                format!(
                    "{} {} (run {:?}, {})",
                    it.dataset_type,
                    it.data_id,
                    it.run,
                    it.mode.as_str()
                ),
                r,
            ));
        }
    }
    for s in scan_strays(root, &known_paths(reg, root)?) {
        if matches!(s.kind, StrayKind::DeadTemp | StrayKind::OldTemp)
            && std::fs::remove_file(&s.path).is_ok()
        {
            report.removed.push(s.path);
        }
    }
    Ok(report)
}

/// The full paths of every registered file and of every pending put's
/// final files (what [`scan_strays`] must not call unregistered).
pub fn known_paths(
    reg: &dyn DatasetRegistry,
    root: &Path,
) -> Result<std::collections::HashSet<PathBuf>, ButlerError> {
    let mut known: std::collections::HashSet<PathBuf> =
        reg.all()?.iter().map(|r| reg.full_path(r)).collect();
    for it in reg.intents()? {
        for (f, _) in &it.files {
            known.insert(root.join(f));
        }
    }
    Ok(known)
}

/// Objects of `ds` that no registry row or pending put accounts for (`~N`
/// backups left out), as `(key, size)`.
pub fn unregistered_objects(
    reg: &dyn DatasetRegistry,
    ds: &dyn Datastore,
) -> Result<Vec<(String, u64)>, ButlerError> {
    let mut known: std::collections::HashSet<String> =
        reg.all()?.into_iter().map(|r| r.path).collect();
    for it in reg.intents()? {
        for (f, _) in it.files {
            known.insert(f);
        }
    }
    Ok(ds
        .list("")?
        .into_iter()
        .filter(|m| {
            let name = m.key.rsplit('/').next().unwrap_or(&m.key);
            !known.contains(&m.key) && !is_backup_name(name)
        })
        .map(|m| (m.key, m.size))
        .collect())
}
