//! Lazy reads: [`Butler::get_deferred`] finds a dataset now and reads it
//! later, whole, as a component or as a cut-out, through a
//! [`DeferredDatasetHandle`] (Gen3's `DeferredDatasetHandle`).
//!
//! Resolving does everything a `get` does before it opens a file: alias
//! resolution, the search through the repository chain, the file registry
//! lookup and the mapper's templated path. The handle keeps the answer (a
//! [`ResolvedDataset`], plain data that can outlive the borrow and be kept
//! next to a shared butler). Each read first checks that what was found is
//! still there — every file present, the registry row still the same row,
//! the file still its recorded size — and fails with
//! [`ButlerError::Vanished`] otherwise, rather than reading whatever a
//! later put left at the path.

use std::path::{Path, PathBuf};

use daf_base::{DataId, PropertySet};
use daf_formatters::{FormatterError, Persistable};

use super::{lock, remote_key, strip_hdu, Butler, GetOptions, Located};
use crate::error::ButlerError;

/// A dataset found by [`Butler::resolve`]: where it is, not yet read.
#[derive(Debug, Clone)]
pub struct ResolvedDataset {
    /// The dataset type as asked, aliases resolved (`"calexp"`, or
    /// `"calexp.metadata"` for a component).
    pub dataset_type: String,
    /// The stored dataset type (`"calexp"`).
    pub base: String,
    /// The component named in the dataset type, if any.
    pub component: Option<String>,
    /// The data id as asked.
    pub requested: DataId,
    /// The run asked for, if any.
    pub run: Option<String>,
    /// Where it was found.
    pub located: Located,
}

impl ResolvedDataset {
    /// The full data id of the dataset found (the mapper's, or the
    /// registry row's).
    pub fn data_id(&self) -> &DataId {
        &self.located.location.data_id
    }

    /// The file of the dataset (the first one, for datasets of several).
    pub fn path(&self) -> Option<PathBuf> {
        let first = self.located.location.locations.first()?;
        let file = strip_hdu(first);
        Some(if Path::new(file).is_absolute() {
            PathBuf::from(file)
        } else {
            self.located.location.root.join(file)
        })
    }

    /// The run of the registry row found (`""` when none was named), if
    /// the file registry answered.
    pub fn found_run(&self) -> Option<&str> {
        self.located.record.as_ref().map(|r| r.run.as_str())
    }
}

/// A dataset found now and read later, as often as wanted, whole, as a
/// component or as a cut-out (Gen3's `DeferredDatasetHandle`). Made by
/// [`Butler::get_deferred`].
///
/// ```
/// use daf_base::{DataId, PropertySet};
/// use daf_butler::{Butler, GetOptions};
/// use daf_butler::simple_mapper::{SimpleDataset, SimpleMapper};
/// # let dir = tempfile::tempdir().unwrap();
/// let m = SimpleMapper::new([("meta", SimpleDataset::new("m/v%(visit)d.boost", "PropertySet", "BoostStorage"))]).unwrap();
/// daf_butler::Repository::create(dir.path(), Some("SimpleMapper"), m.to_args(), &[]).unwrap();
/// let b = Butler::builder().output(dir.path()).build().unwrap();
/// let id = DataId::new().with("visit", 1);
/// let mut ps = PropertySet::new();
/// ps.set("exptime", 15.0).unwrap();
/// b.put(&ps, "meta", &id).unwrap();
///
/// let h = b.get_deferred("meta", &id, &GetOptions::default()).unwrap(); // located, not read
/// let back: PropertySet = h.get().unwrap();                            // read now
/// assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
/// ```
#[derive(Debug, Clone)]
pub struct DeferredDatasetHandle<'a> {
    butler: &'a Butler,
    resolved: ResolvedDataset,
    params: PropertySet,
}

impl<'a> DeferredDatasetHandle<'a> {
    /// What was found.
    pub fn resolved(&self) -> &ResolvedDataset {
        &self.resolved
    }

    /// The read parameters given to [`Butler::get_deferred`] (a cut-out's
    /// box), applied under those of each read.
    pub fn params(&self) -> &PropertySet {
        &self.params
    }

    /// The full data id of the dataset.
    pub fn data_id(&self) -> &DataId {
        self.resolved.data_id()
    }

    /// The dataset's file.
    pub fn path(&self) -> Option<PathBuf> {
        self.resolved.path()
    }

    /// Reads the dataset as `T`.
    pub fn get<T: Persistable>(&self) -> Result<T, ButlerError> {
        self.get_with(None, &GetOptions::default())
    }

    /// Reads the dataset, or its `component` (`"metadata"`, `"image"`,
    /// `"mask"`, `"variance"`), as `T`, with read parameters (a cut-out:
    /// [`GetOptions::bbox`]). `opts.run` must be unset or the run the
    /// handle was made for.
    pub fn get_with<T: Persistable>(
        &self,
        component: Option<&str>,
        opts: &GetOptions,
    ) -> Result<T, ButlerError> {
        let obj = self.get_dyn(component, opts)?;
        super::downcast(obj)
    }

    /// Reads the dataset or a component as its stored type (see
    /// [`DeferredDatasetHandle::get_with`]).
    pub fn get_dyn(
        &self,
        component: Option<&str>,
        opts: &GetOptions,
    ) -> Result<Box<dyn Persistable>, ButlerError> {
        if let Some(run) = &opts.run {
            if self.resolved.run.as_deref() != Some(run.as_str())
                && self.resolved.found_run() != Some(run.as_str())
            {
                return Err(ButlerError::BadDataId {
                    dataset_type: self.resolved.dataset_type.clone(),
                    data_id: self.resolved.requested.clone(),
                    message: format!(
                        "this handle was resolved in run {:?}; make another handle for run {run:?}",
                        self.resolved.found_run().unwrap_or("")
                    ),
                });
            }
        }
        let mut params = self.params.clone();
        if !opts.params.is_empty() {
            params
                .merge_replace(&opts.params)
                .map_err(FormatterError::from)?;
        }
        self.butler.get_resolved(&self.resolved, component, &params)
    }
}

impl Butler {
    /// Finds `dataset_type` for `data_id` (in `run`, else the newest) as a
    /// `get` would, without reading it. Fails now, as `get` would, if there
    /// is no such dataset.
    pub fn resolve(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        run: Option<&str>,
    ) -> Result<ResolvedDataset, ButlerError> {
        let resolved = self.resolve_alias(dataset_type)?;
        let (base, component) = self.split_component(&resolved);
        let located = self.locate(base, data_id, run)?;
        Ok(ResolvedDataset {
            dataset_type: resolved.to_string(),
            base: base.to_string(),
            component: component.map(str::to_string),
            requested: data_id.clone(),
            run: run.map(str::to_string),
            located,
        })
    }

    /// A handle that reads the dataset later: the location is resolved
    /// now (an error now if there is no dataset), the file is read at each
    /// [`DeferredDatasetHandle::get`]. `opts.params` (e.g. a cut-out box)
    /// apply to every read of the handle, under the read's own.
    pub fn get_deferred(
        &self,
        dataset_type: &str,
        data_id: &DataId,
        opts: &GetOptions,
    ) -> Result<DeferredDatasetHandle<'_>, ButlerError> {
        Ok(DeferredDatasetHandle {
            butler: self,
            resolved: self.resolve(dataset_type, data_id, opts.run.as_deref())?,
            params: opts.params.clone(),
        })
    }

    /// Reads a dataset [`Butler::resolve`] found, or its `component`, with
    /// read parameters `params`: [`ButlerError::Vanished`] if its file is
    /// gone, or replaced or removed since it was resolved. A component
    /// given here replaces none; a handle resolved for a component (the
    /// dataset type `calexp.metadata`) takes no other.
    pub fn get_resolved(
        &self,
        r: &ResolvedDataset,
        component: Option<&str>,
        params: &PropertySet,
    ) -> Result<Box<dyn Persistable>, ButlerError> {
        let component = match (r.component.as_deref(), component) {
            (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
                return Err(ButlerError::BadDataId {
                    dataset_type: r.dataset_type.clone(),
                    data_id: r.requested.clone(),
                    message: format!(
                        "the handle is for component {a:?}; resolve {} to read component {b:?}",
                        r.base
                    ),
                })
            }
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let name = match component {
            Some(c) if r.component.is_none() => format!("{}.{c}", r.base),
            _ => r.dataset_type.clone(),
        };
        self.check_still_there(r)?;
        self.read_located(
            &name,
            &r.base,
            component,
            &r.requested,
            r.located.clone(),
            params,
        )
    }

    /// Is what `r` found still there, unchanged?
    fn check_still_there(&self, r: &ResolvedDataset) -> Result<(), ButlerError> {
        let vanished = |path: PathBuf, why: String| ButlerError::Vanished {
            dataset_type: r.dataset_type.clone(),
            data_id: r.data_id().clone(),
            path,
            message: why,
        };
        let loc = &r.located.location;
        let remote = self.remotes.get(r.located.repo).and_then(Option::as_ref);
        let mut first_size = None;
        for (n, l) in loc.locations.iter().enumerate() {
            let file = strip_hdu(l);
            let full = if Path::new(file).is_absolute() {
                PathBuf::from(file)
            } else {
                loc.root.join(file)
            };
            let size = match remote {
                Some(ds) => ds
                    .head(&remote_key(&loc.root, &full.to_string_lossy())?)?
                    .map(|m| m.size),
                None => match std::fs::metadata(&full) {
                    Ok(m) => Some(m.len()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(ButlerError::io(&full, e)),
                },
            };
            let Some(size) = size else {
                return Err(vanished(
                    full,
                    "the file was removed after the handle was made".into(),
                ));
            };
            if n == 0 {
                first_size = Some((full, size));
            }
        }
        let Some(rec) = &r.located.record else {
            return Ok(());
        };
        let Some((path, size)) = first_size else {
            return Ok(());
        };
        if let Some(reg) = self.registries.get(r.located.repo).and_then(Option::as_ref) {
            let now = lock(reg).find(&r.base, &rec.data_id, Some(&rec.run))?;
            match now {
                None => {
                    return Err(vanished(
                        path,
                        "its registry row was removed after the handle was made".into(),
                    ))
                }
                Some(now) if now.id != rec.id || now.checksum != rec.checksum => {
                    return Err(vanished(
                        path,
                        "it was replaced by a later put after the handle was made; make a new handle to read the new dataset".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        if size != rec.size {
            return Err(vanished(
                path,
                format!(
                    "the file holds {size} bytes where the registry recorded {}",
                    rec.size
                ),
            ));
        }
        Ok(())
    }
}
