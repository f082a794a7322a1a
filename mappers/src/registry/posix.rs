//! The filesystem registry: no database, the files are the registry.

use std::path::{Path, PathBuf};

use daf_base::{DataId, DataIdValue};

use super::{Lookup, Registry, Row};
use crate::fits_header::{read_header, Header};
use crate::template::{KeyRewrites, PathTemplate};
use crate::MapperError;

/// A registry that globs a dataset's path template under `root` and parses
/// each path back into a data id. Keys the path does not hold are read from
/// the FITS header of the file (the HDU named by a trailing `[%(hdu)d]` when
/// the data id gives it, else the primary HDU).
///
/// Table names are ignored: the template is the schema.
#[derive(Debug, Clone)]
pub struct PosixRegistry {
    root: PathBuf,
    rewrites: KeyRewrites,
}

/// Do two data-id values denote the same key value (`1` = `"1"` = `1.0`)?
pub(crate) fn values_match(a: &DataIdValue, b: &DataIdValue) -> bool {
    match (a, b) {
        (DataIdValue::Str(x), DataIdValue::Str(y)) => x == y,
        (DataIdValue::Str(s), n) | (n, DataIdValue::Str(s)) => match n {
            DataIdValue::Int(i) => s.trim().parse::<i64>().ok() == Some(*i),
            DataIdValue::Float(f) => s.trim().parse::<f64>().ok() == Some(*f),
            DataIdValue::Str(_) => false,
        },
        (x, y) => x.as_f64() == y.as_f64(),
    }
}

impl PosixRegistry {
    /// A filesystem registry rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PosixRegistry {
            root: root.into(),
            rewrites: KeyRewrites::default(),
        }
    }

    /// Uses the policy's key rewrites when narrowing the glob.
    pub fn with_rewrites(mut self, rewrites: KeyRewrites) -> Self {
        self.rewrites = rewrites;
        self
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn es<E: std::error::Error + Send + Sync + 'static>(&self, e: E) -> MapperError {
        MapperError::Registry {
            registry: self.root.display().to_string(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    fn e(&self, m: impl std::fmt::Display) -> MapperError {
        MapperError::Registry {
            registry: self.root.display().to_string(),
            message: m.to_string(),
            source: None,
        }
    }

    /// Every file matching `template` under the root, with its parsed data id,
    /// sorted by path.
    pub fn scan(
        &self,
        template: &PathTemplate,
        known: &DataId,
    ) -> Result<Vec<(String, DataId)>, MapperError> {
        let pattern = format!(
            "{}/{}",
            glob::Pattern::escape(&self.root.to_string_lossy()),
            template.glob_pattern(known, &self.rewrites)
        );
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let mut out = Vec::new();
        for entry in glob::glob_with(&pattern, opts).map_err(|e| self.es(e))? {
            let path = entry.map_err(|e| self.es(e))?;
            if !path.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(&self.root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if let Some(id) = template.parse_path(&rel) {
                out.push((rel, id));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl Registry for PosixRegistry {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn has_tables(&self) -> bool {
        false
    }

    fn lookup_query(&self, query: &Lookup<'_>) -> Result<Vec<Row>, MapperError> {
        let text = query
            .template
            .ok_or_else(|| self.e("a filesystem registry needs the dataset's template"))?;
        if query.valid_range.is_some() {
            return Err(self.e("a filesystem registry has no calibration validity ranges"));
        }
        let template = PathTemplate::parse(text)?;
        let hdu_key = template.hdu_key().map(str::to_string);
        let mut rows: Vec<Row> = Vec::new();
        for (rel, mut id) in self.scan(&template, query.data_id)? {
            let hdu = hdu_key
                .as_ref()
                .and_then(|k| query.data_id.get(k))
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            if let Some(k) = &hdu_key {
                id.insert(k.clone(), hdu);
            }
            let mut header: Option<Header> = None;
            let mut get = |key: &str, id: &DataId| -> Result<Option<DataIdValue>, MapperError> {
                if let Some(v) = id.get(key) {
                    return Ok(Some(v.clone()));
                }
                if header.is_none() {
                    let h = read_header(&self.root.join(&rel), hdu.max(0) as usize)
                        .map_err(|e| self.e(format!("{rel}: {e}")))?;
                    header = Some(h);
                }
                Ok(header
                    .as_ref()
                    .and_then(|h| h.get(key))
                    .and_then(|v| v.to_data_id_value()))
            };
            let mut keep = true;
            for (k, want) in query.data_id.iter() {
                match get(k, &id)? {
                    Some(have) if values_match(&have, want) => {}
                    _ => {
                        keep = false;
                        break;
                    }
                }
            }
            if !keep {
                continue;
            }
            let mut row = Vec::with_capacity(query.properties.len());
            for p in query.properties {
                match get(p, &id)? {
                    Some(v) => row.push(v),
                    None => {
                        return Err(self.e(format!(
                            "{rel}: key {p:?} is neither in the path nor in the FITS header"
                        )))
                    }
                }
            }
            rows.push(row);
        }
        super::sort_rows(&mut rows);
        rows.dedup();
        Ok(rows)
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, MapperError> {
        Err(self.e(format!(
            "a filesystem registry has no tables (asked for {table:?})"
        )))
    }
}
