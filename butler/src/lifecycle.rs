//! The end of a dataset's life, and a second chance: removing datasets
//! (`daf prune`, `daf remove-run`) and restoring the file of a registered
//! dataset whose file went missing or changed (`daf ingest --force`).
//!
//! Both follow the put protocol of [`crate::recovery`]: every data id is
//! claimed with an intent before a file is touched.
//!
//! * A **removal** claims each dataset (mode [`IntentMode::Remove`], listing
//!   the files it will delete), drops the rows in one transaction
//!   ([`DatasetRegistry::discard`]), deletes the files, then drops the
//!   intents. Cut short, it is rolled back while the row remains (nothing
//!   happened) and forward once the row is gone (the listed files still
//!   holding the recorded bytes are deleted), so no row is ever left
//!   without its file. Without `purge` no file is listed or deleted: the
//!   rows go and the files stay, unregistered.
//! * A **restore** claims the dataset as a clobber, places the new file
//!   beside the old path under a temporary name, renames it into place and
//!   records the new row, as a put with clobber does.
//!
//! Files are deleted only when they are under the repository root and no
//! other row names them; a file ingested in place (`--transfer direct`)
//! stays where it is.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ButlerError;
use crate::file_registry::{
    checksum_file, now_ns, Claim, DatasetRecord, DatasetRegistry, Intent, IntentMode,
};
use crate::ingest::{transfer_file, Transfer};
use crate::recovery::{recover_intent_in, Resolution};
use daf_storages::datastore::Datastore;

/// What a removal does with a dataset's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// The file is deleted (`purge`).
    Delete,
    /// The file stays, unregistered (no `purge`).
    Keep,
    /// The file stays: it was ingested in place, outside the repository.
    KeepOutside,
    /// The file stays: another row names it too.
    KeepShared,
    /// There is no file to delete (it was already missing).
    Missing,
}

impl FileAction {
    /// A short phrase for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FileAction::Delete => "file deleted",
            FileAction::Keep => "file kept",
            FileAction::KeepOutside => "file kept (ingested in place, outside the repository)",
            FileAction::KeepShared => "file kept (another dataset names it)",
            FileAction::Missing => "file was already missing",
        }
    }
}

/// One dataset a removal drops (or, in a dry run, would drop).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// The row.
    #[serde(flatten)]
    pub record: DatasetRecord,
    /// The full path of its file.
    pub file: PathBuf,
    /// What happens to the file.
    pub file_action: FileAction,
}

/// The outcome of [`remove_datasets`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoveReport {
    /// The datasets removed.
    pub removed: Vec<Removal>,
    /// Datasets left alone, with the reason (another process is writing
    /// them, or their file could not be deleted).
    pub failed: Vec<(Removal, String)>,
}

/// What removing `recs` from the registry `reg` at `root` would do to each
/// file: the plan [`remove_datasets`] carries out (and a dry run prints).
pub fn plan_removal(
    reg: &dyn DatasetRegistry,
    recs: &[DatasetRecord],
    purge: bool,
) -> Result<Vec<Removal>, ButlerError> {
    plan_removal_in(reg, recs, purge, None)
}

/// [`plan_removal`] for a repository whose files are objects of `remote`
/// (`None`: files under the registry's root). A remote file is the object
/// whose key is the row's path; [`Removal::file`] is then its URL.
pub fn plan_removal_in(
    reg: &dyn DatasetRegistry,
    recs: &[DatasetRecord],
    purge: bool,
    remote: Option<&dyn Datastore>,
) -> Result<Vec<Removal>, ButlerError> {
    let going: HashSet<i64> = recs.iter().map(|r| r.id).collect();
    let shared: HashSet<String> = if purge {
        reg.all()?
            .into_iter()
            .filter(|r| !going.contains(&r.id))
            .map(|r| r.path)
            .collect()
    } else {
        HashSet::new()
    };
    recs.iter()
        .map(|r| {
            let outside = Path::new(&r.path).is_absolute()
                || daf_base::path_safety::join_under(reg.root(), "dataset path", &r.path).is_err();
            let (file, present) = match remote {
                Some(ds) if !outside => {
                    let file = PathBuf::from(format!("{}/{}", ds.url(), r.path));
                    // the object is asked for only when it would be deleted
                    let present = if purge && !shared.contains(&r.path) {
                        ds.head(&r.path)?.is_some()
                    } else {
                        true
                    };
                    (file, present)
                }
                _ => {
                    let file = reg.full_path(r);
                    let present = file.symlink_metadata().is_ok();
                    (file, present)
                }
            };
            let file_action = if !purge {
                FileAction::Keep
            } else if outside {
                FileAction::KeepOutside
            } else if shared.contains(&r.path) {
                FileAction::KeepShared
            } else if !present {
                FileAction::Missing
            } else {
                FileAction::Delete
            };
            Ok(Removal {
                record: r.clone(),
                file,
                file_action,
            })
        })
        .collect()
}

/// Removes the datasets `recs` (rows of `reg`, the registry of the
/// repository at `root`): their rows always, their files with `purge` (see
/// the [module docs](self) for which files and how a removal cut short is
/// resolved). A dataset another live process is writing is left alone and
/// reported in [`RemoveReport::failed`]; `Err` only when the registry fails.
pub fn remove_datasets(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    recs: &[DatasetRecord],
    purge: bool,
) -> Result<RemoveReport, ButlerError> {
    remove_datasets_in(reg, root, recs, purge, None)
}

/// [`remove_datasets`] for a repository whose files are objects of
/// `remote` (`None`: files under `root`): the same claims, the same rules
/// for which files go (only objects whose key is the row's path and that
/// no other row names), the rows dropped before any object is deleted, so
/// a removal cut short is resolved as on disk.
pub fn remove_datasets_in(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    recs: &[DatasetRecord],
    purge: bool,
    remote: Option<&dyn Datastore>,
) -> Result<RemoveReport, ButlerError> {
    let mut report = RemoveReport::default();
    let plan = plan_removal_in(reg, recs, purge, remote)?;
    let owner = daf_storages::owner::token().to_string();
    let intent_of = |p: &Removal| Intent {
        id: 0,
        dataset_type: p.record.dataset_type.clone(),
        data_id: p.record.data_id.clone(),
        run: p.record.run.clone(),
        mode: IntentMode::Remove,
        files: if p.file_action == FileAction::Delete {
            vec![(p.record.path.clone(), String::new())]
        } else {
            Vec::new()
        },
        checksum: p.record.checksum.clone(),
        size: p.record.size,
        owner: owner.clone(),
        time_ns: now_ns(),
    };
    // 1. claim; a dead writer's intent is recovered and the claim retried once
    let mut claimed: Vec<(Removal, i64)> = Vec::new();
    let mut pending = plan;
    for attempt in 0..2 {
        if pending.is_empty() {
            break;
        }
        let intents: Vec<Intent> = pending.iter().map(intent_of).collect();
        let claims = reg.claim(&intents)?;
        let mut again = Vec::new();
        for (p, c) in pending.into_iter().zip(claims) {
            match c {
                Claim::Claimed {
                    intent,
                    existing: Some(row),
                } => {
                    let mut p = p;
                    p.record = row;
                    claimed.push((p, intent));
                }
                Claim::Claimed {
                    intent,
                    existing: None,
                } => {
                    // removed meanwhile by another process: nothing to do
                    reg.release(&[intent])?;
                }
                Claim::Busy(holder) => {
                    let r = recover_intent_in(reg, root, remote, &holder)?;
                    if r != Resolution::Skipped && attempt == 0 {
                        again.push(p);
                    } else {
                        let why = format!(
                            "{} {} is being written by another process ({})",
                            holder.dataset_type, holder.data_id, holder.owner
                        );
                        report.failed.push((p, why));
                    }
                }
            }
        }
        pending = again;
    }
    // 2. every row goes in one transaction, with the intents of removals
    // that delete no file
    let rows: Vec<i64> = claimed.iter().map(|(p, _)| p.record.id).collect();
    let (deleting, keeping): (Vec<_>, Vec<_>) = claimed
        .into_iter()
        .partition(|(p, _)| p.file_action == FileAction::Delete);
    let kept_intents: Vec<i64> = keeping.iter().map(|(_, i)| *i).collect();
    reg.discard(&rows, &kept_intents)?;
    report.removed.extend(keeping.into_iter().map(|(p, _)| p));
    // 3. the files go, then their intents
    let mut done = Vec::new();
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for (p, intent) in deleting {
        done.push(intent);
        if let Some(ds) = remote {
            // deleting a missing object is no error
            match ds.delete(&p.record.path) {
                Ok(()) => report.removed.push(p),
                Err(e) => {
                    let why = format!(
                        "its row is gone but {} could not be deleted (it stays, unregistered): {e}",
                        p.file.display()
                    );
                    report.failed.push((p, why));
                }
            }
            continue;
        }
        match std::fs::remove_file(&p.file) {
            Ok(()) => {
                if let Some(d) = p.file.parent() {
                    dirs.insert(d.to_path_buf());
                }
                report.removed.push(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.removed.push(p),
            Err(e) => {
                let why = format!(
                    "its row is gone but {} could not be deleted (it stays, unregistered): {e}",
                    p.file.display()
                );
                report.failed.push((p, why));
            }
        }
    }
    reg.release(&done)?;
    // folders the deletions emptied go too (never the root)
    for d in dirs {
        remove_empty_dirs(root, &d);
    }
    Ok(report)
}

/// Removes `dir` and its parents while they are empty, stopping at `root`.
fn remove_empty_dirs(root: &Path, dir: &Path) {
    let mut d = dir;
    while d != root && d.starts_with(root) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
}

/// A dataset whose file [`restore`] put back.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The file given.
    pub file: PathBuf,
    /// The new row.
    pub record: DatasetRecord,
    /// What was wrong with the old file.
    pub problem: String,
}

/// The state of a registered dataset's file, for [`restore`].
fn file_problem(reg: &dyn DatasetRegistry, rec: &DatasetRecord) -> Option<String> {
    crate::file_registry::verify_records(reg.root(), vec![rec.clone()])
        .into_iter()
        .next()
        .map(|m| m.problem.to_string())
}

/// Puts the file `src` back as the dataset of row `rec` (whose file is
/// missing or changed) in the repository at `root`, by `transfer`, and
/// records it: the new row has `src`'s checksum, size and path as source.
/// Follows the clobber put protocol (intent, temporary file beside the
/// target, rename, one transaction for the row and the intent).
pub fn restore(
    reg: &mut dyn DatasetRegistry,
    root: &Path,
    rec: &DatasetRecord,
    src: &Path,
    transfer: Transfer,
) -> Result<Restored, ButlerError> {
    let src = std::path::absolute(src).map_err(|e| ButlerError::io(src, e))?;
    let problem = file_problem(reg, rec).unwrap_or_else(|| "intact".into());
    let (checksum, size) = checksum_file(&src).map_err(|e| ButlerError::io(&src, e))?;
    let direct = transfer == Transfer::Direct;
    let (path, files) = if direct {
        (src.to_string_lossy().into_owned(), Vec::new())
    } else if Path::new(&rec.path).is_absolute() {
        return Err(ButlerError::repo(
            root,
            format!(
                "{} {} was ingested in place from {}; restore it with --transfer direct",
                rec.dataset_type, rec.data_id, rec.path
            ),
        ));
    } else {
        let (dir, name) = match rec.path.rfind('/') {
            Some(i) => (&rec.path[..=i], &rec.path[i + 1..]),
            None => ("", rec.path.as_str()),
        };
        let staging = format!(
            "{dir}.daf-tmp.{}.{}.{name}",
            daf_storages::owner::token(),
            now_ns()
        );
        (rec.path.clone(), vec![(rec.path.clone(), staging)])
    };
    let intent = Intent {
        id: 0,
        dataset_type: rec.dataset_type.clone(),
        data_id: rec.data_id.clone(),
        run: rec.run.clone(),
        mode: IntentMode::Clobber,
        files: files.clone(),
        checksum: checksum.clone(),
        size,
        owner: daf_storages::owner::token().to_string(),
        time_ns: now_ns(),
    };
    let id = match reg.claim(std::slice::from_ref(&intent))?.remove(0) {
        Claim::Claimed { intent, .. } => intent,
        Claim::Busy(h) => {
            return Err(ButlerError::Busy {
                dataset_type: h.dataset_type.clone(),
                data_id: h.data_id.clone(),
                owner: h.owner.clone(),
                since_s: (now_ns() - h.time_ns) / 1_000_000_000,
            })
        }
    };
    if let Some((rel, staging)) = files.first() {
        let full = daf_base::path_safety::join_under(root, "dataset path", rel)?;
        let tmp = daf_base::path_safety::join_under(root, "dataset path", staging)?;
        let placed = transfer_file(&src, &tmp, transfer)
            .and_then(|()| std::fs::rename(&tmp, &full))
            .map_err(|e| ButlerError::io(&full, e));
        if let Err(e) = placed {
            if transfer == Transfer::Move && tmp.exists() {
                let _ = std::fs::rename(&tmp, &src);
            }
            let _ = std::fs::remove_file(&tmp);
            reg.release(&[id])?;
            return Err(e);
        }
    }
    let new = DatasetRecord {
        id: 0,
        dataset_type: rec.dataset_type.clone(),
        data_id: rec.data_id.clone(),
        run: rec.run.clone(),
        path,
        size,
        checksum,
        time_ns: now_ns(),
        source: Some(src.to_string_lossy().into_owned()),
    };
    let ids = reg.settle(std::slice::from_ref(&new), &[id])?;
    Ok(Restored {
        file: src,
        record: DatasetRecord {
            id: ids.first().copied().unwrap_or_default(),
            ..new
        },
        problem,
    })
}

/// Whether the registered file of `rec` is missing or changed (`Some`
/// problem), i.e. whether [`restore`] applies.
pub fn damaged(reg: &dyn DatasetRegistry, rec: &DatasetRecord) -> Option<String> {
    file_problem(reg, rec)
}
