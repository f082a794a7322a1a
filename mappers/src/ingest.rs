//! Registry creation (`daf registry create`): builds `registry.sqlite3` from
//! a folder of raw FITS files, reading headers only and in parallel, or from a
//! metadata table (TSV/CSV, one row per file) without opening any file.
//!
//! Keys come from the file path first (parsed with the ingest template,
//! by default the `raw` template) and then from the header rules of the
//! policy's `ingest.headerKeys` section (see [`IngestPolicy`]).
//!
//! The registry is written to a temporary file next to the target and renamed
//! into place only when complete, so a failed run never leaves a half-built
//! registry behind.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use daf_base::{DataIdValue, DateTime, Timescale};
use rayon::prelude::*;

use crate::fits_header::{read_header, Header, HeaderValue};
use crate::policy::{Conversion, HeaderRule, IngestPolicy, MapperPolicy};
use crate::registry::{validate_identifier, ColumnType, Registry, Row, SqliteRegistry};
use crate::template::PathTemplate;
use crate::{KeyType, MapperError};

/// Rows ready to be written: column names, their types and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Column types.
    pub types: Vec<ColumnType>,
    /// One row per file.
    pub rows: Vec<Row>,
}

impl IngestTable {
    /// The table with every value coerced to its column's type.
    fn coerced(columns: Vec<String>, types: Vec<ColumnType>, rows: Vec<Row>) -> Self {
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .zip(&types)
                    .map(|(v, t)| coerce(v, *t))
                    .collect()
            })
            .collect();
        IngestTable {
            columns,
            types,
            rows,
        }
    }
}

/// What was built.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSummary {
    /// The registry file written.
    pub path: PathBuf,
    /// Rows in the main table.
    pub rows: usize,
    /// Rows in the per-visit table (0 without one).
    pub visit_rows: usize,
}

fn err(what: impl std::fmt::Display, m: impl std::fmt::Display) -> MapperError {
    MapperError::Registry {
        registry: what.to_string(),
        message: m.to_string(),
        source: None,
    }
}

/// The effective ingest settings: the policy's `ingest` section, with the
/// template defaulting to the `raw` dataset's.
pub fn effective_ingest(
    policy: &MapperPolicy,
) -> Result<(IngestPolicy, PathTemplate), MapperError> {
    let ingest = policy.ingest.clone().unwrap_or_else(|| IngestPolicy {
        table: "raw".into(),
        ..Default::default()
    });
    let template = match &ingest.template {
        Some(t) => PathTemplate::parse(t)?,
        None => policy
            .datasets
            .get(&ingest.table)
            .or_else(|| policy.datasets.get("raw"))
            .and_then(|d| d.template.clone())
            .ok_or_else(|| {
                MapperError::Policy(format!(
                    "{}: key ingest.template: no ingest template and no raw template",
                    policy.source
                ))
            })?,
    };
    Ok((ingest, template))
}

/// Every file under `root` matching `template`, sorted, with its path keys.
pub fn find_files(
    root: &Path,
    template: &PathTemplate,
) -> Result<Vec<(PathBuf, daf_base::DataId)>, MapperError> {
    let reg = crate::PosixRegistry::new(root);
    Ok(reg
        .scan(template, &daf_base::DataId::new())?
        .into_iter()
        .map(|(rel, id)| (root.join(rel), id))
        .collect())
}

fn mjd_to_iso(mjd: f64, scale: Timescale) -> String {
    let ns = ((mjd - 40_587.0) * 86_400e9).round() as i64;
    let t = DateTime::from_nsecs(ns, Timescale::Tai);
    let s = t.to_iso(scale);
    s.strip_suffix('Z').map(str::to_string).unwrap_or(s)
}

/// Converts a header card's value by `how` (the conversions of
/// [`Conversion`]); the message of an error says what did not fit.
///
/// ```
/// use daf_base::DataIdValue;
/// use daf_mappers::fits_header::HeaderValue;
/// use daf_mappers::ingest::convert;
/// use daf_mappers::policy::Conversion;
/// assert_eq!(convert(&HeaderValue::Str(" 42".into()), Conversion::Int), Ok(DataIdValue::Int(42)));
/// assert_eq!(
///     convert(&HeaderValue::Float(51544.0), Conversion::MjdTaiToTai),
///     Ok(DataIdValue::Str("2000-01-01T00:00:00.000000000".into()))
/// );
/// assert!(convert(&HeaderValue::Str("x".into()), Conversion::Float).is_err());
/// ```
pub fn convert(v: &HeaderValue, how: Conversion) -> Result<DataIdValue, String> {
    let num = || v.as_f64().ok_or_else(|| format!("{v:?} is not a number"));
    Ok(match how {
        Conversion::Int => match v {
            HeaderValue::Int(i) => DataIdValue::Int(*i),
            HeaderValue::Str(s) => DataIdValue::Int(
                s.trim()
                    .parse()
                    .map_err(|_| format!("{s:?} is not an integer"))?,
            ),
            _ => DataIdValue::Int(num()? as i64),
        },
        Conversion::Float => match v {
            HeaderValue::Str(s) => DataIdValue::Float(
                s.trim()
                    .parse()
                    .map_err(|_| format!("{s:?} is not a number"))?,
            ),
            _ => DataIdValue::Float(num()?),
        },
        Conversion::String => DataIdValue::Str(match v {
            HeaderValue::Str(s) => s.clone(),
            HeaderValue::Int(i) => i.to_string(),
            HeaderValue::Float(f) => f.to_string(),
            HeaderValue::Bool(b) => {
                if *b {
                    "T".into()
                } else {
                    "F".into()
                }
            }
            HeaderValue::Undefined => return Err("undefined value".into()),
        }),
        Conversion::MjdTaiToUtc => DataIdValue::Str(mjd_to_iso(num()?, Timescale::Utc)),
        Conversion::MjdTaiToTai => DataIdValue::Str(mjd_to_iso(num()?, Timescale::Tai)),
        Conversion::None => v
            .to_data_id_value()
            .ok_or_else(|| "undefined value".to_string())?,
    })
}

impl HeaderRule {
    /// This rule's value in `header`: the card, converted. The message of an
    /// error names the card (`header has no MJD-OBS card`, `header card
    /// MJD-OBS: "x" is not a number`).
    pub fn apply(&self, header: &Header) -> Result<DataIdValue, String> {
        let v = header
            .get(&self.header)
            .ok_or_else(|| format!("header has no {} card", self.header))?;
        convert(&v, self.convert).map_err(|m| format!("header card {}: {m}", self.header))
    }
}

fn column_type_of(values: impl Iterator<Item = DataIdValue>) -> ColumnType {
    let mut t: Option<ColumnType> = None;
    for v in values {
        let vt = match v {
            DataIdValue::Int(_) => ColumnType::Int,
            DataIdValue::Float(_) => ColumnType::Float,
            DataIdValue::Str(_) => ColumnType::Text,
        };
        t = Some(match (t, vt) {
            (None, x) => x,
            (Some(a), b) if a == b => a,
            (Some(ColumnType::Int), ColumnType::Float)
            | (Some(ColumnType::Float), ColumnType::Int) => ColumnType::Float,
            _ => ColumnType::Text,
        });
    }
    t.unwrap_or(ColumnType::Text)
}

fn coerce(v: DataIdValue, t: ColumnType) -> DataIdValue {
    match (t, v) {
        (ColumnType::Float, DataIdValue::Int(i)) => DataIdValue::Float(i as f64),
        (ColumnType::Text, DataIdValue::Int(i)) => DataIdValue::Str(i.to_string()),
        (ColumnType::Text, DataIdValue::Float(f)) => DataIdValue::Str(f.to_string()),
        (_, v) => v,
    }
}

/// Reads the rows of `files` (path keys + header rules) in parallel;
/// `progress` is called once per file.
pub fn rows_from_headers(
    files: &[(PathBuf, daf_base::DataId)],
    ingest: &IngestPolicy,
    template: &PathTemplate,
    progress: &(dyn Fn() + Sync),
) -> Result<IngestTable, MapperError> {
    let mut columns: Vec<String> = template
        .keys()
        .iter()
        .filter(|(k, _)| template.hdu_key() != Some(k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    for (k, _) in &ingest.header_keys {
        if !columns.contains(k) {
            columns.push(k.clone());
        }
    }
    for c in &columns {
        validate_identifier(c)?;
    }
    let need_header = ingest
        .header_keys
        .iter()
        .any(|(k, _)| template.keys().iter().all(|(tk, _)| tk != k));
    let rows: Vec<Result<Row, MapperError>> = files
        .par_iter()
        .map(|(path, id)| {
            let header = if need_header {
                Some(read_header(path, 0).map_err(|e| err(path.display(), e))?)
            } else {
                None
            };
            let mut row = Vec::with_capacity(columns.len());
            for c in &columns {
                if let Some(v) = id.get(c) {
                    row.push(v.clone());
                    continue;
                }
                let (_, rule) = ingest
                    .header_keys
                    .iter()
                    .find(|(k, _)| k == c)
                    .ok_or_else(|| err(path.display(), format!("no value for key {c:?}")))?;
                let header = header
                    .as_ref()
                    .ok_or_else(|| err(path.display(), format!("no header read for key {c:?}")))?;
                row.push(
                    rule.apply(header)
                        .map_err(|m| err(path.display(), format!("{m} (for key {c:?})")))?,
                );
            }
            progress();
            Ok(row)
        })
        .collect();
    let rows: Vec<Row> = rows.into_iter().collect::<Result<_, _>>()?;
    let template_types: HashMap<&str, KeyType> = template
        .keys()
        .iter()
        .map(|(k, t)| (k.as_str(), *t))
        .collect();
    let types: Vec<ColumnType> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let rule = ingest
                .header_keys
                .iter()
                .find(|(k, _)| k == c)
                .map(|(_, r)| r.convert);
            match (template_types.get(c.as_str()), rule) {
                (Some(KeyType::Int), _) | (None, Some(Conversion::Int)) => ColumnType::Int,
                (Some(KeyType::Float), _) | (None, Some(Conversion::Float)) => ColumnType::Float,
                (Some(KeyType::Str), _)
                | (
                    None,
                    Some(Conversion::String | Conversion::MjdTaiToUtc | Conversion::MjdTaiToTai),
                ) => ColumnType::Text,
                _ => column_type_of(rows.iter().map(|r| r[i].clone())),
            }
        })
        .collect();
    Ok(IngestTable::coerced(columns, types, rows))
}

/// Splits one delimited line, honouring double quotes (`""` inside quotes).
fn split_line(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.is_empty() {
            quoted = true;
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn parse_cell(s: &str) -> DataIdValue {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        DataIdValue::Int(i)
    } else if let Ok(f) = t.parse::<f64>() {
        DataIdValue::Float(f)
    } else {
        DataIdValue::Str(t.to_string())
    }
}

/// Reads a metadata table: TSV (`.tsv`, `.txt`) or CSV (`.csv`), a header
/// line of column names, then one row per file. A column named `path`,
/// `file` or `filename` is dropped (the registry holds keys, not paths).
/// Column types are inferred (all integers → integer, all numbers → float,
/// else text). An empty cell is an error.
pub fn rows_from_table(path: &Path) -> Result<IngestTable, MapperError> {
    let delim = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => ',',
        _ => '\t',
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(path.display(), e))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, head) = lines
        .next()
        .ok_or_else(|| err(path.display(), "empty metadata table"))?;
    let names: Vec<String> = split_line(head, delim)
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect();
    let keep: Vec<usize> = (0..names.len())
        .filter(|i| !matches!(names[*i].as_str(), "path" | "file" | "filename"))
        .collect();
    let columns: Vec<String> = keep.iter().map(|i| names[*i].clone()).collect();
    let mut seen = HashSet::new();
    for c in &columns {
        validate_identifier(c)
            .map_err(|_| err(path.display(), format!("line 1: bad column name {c:?}")))?;
        if !seen.insert(c.clone()) {
            return Err(err(
                path.display(),
                format!("line 1: column {c:?} appears twice"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        let cells = split_line(line, delim);
        if cells.len() != names.len() {
            return Err(err(
                path.display(),
                format!(
                    "line {}: {} fields, expected {}",
                    n + 1,
                    cells.len(),
                    names.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(keep.len());
        for &i in &keep {
            if cells[i].trim().is_empty() {
                return Err(err(
                    path.display(),
                    format!("line {}: empty value for {:?}", n + 1, names[i]),
                ));
            }
            row.push(parse_cell(&cells[i]));
        }
        rows.push(row);
    }
    let types: Vec<ColumnType> = (0..columns.len())
        .map(|i| column_type_of(rows.iter().map(|r: &Row| r[i].clone())))
        .collect();
    Ok(IngestTable::coerced(columns, types, rows))
}

/// Writes `table` (and the optional per-visit table) into a new SQLite
/// registry at `out`, atomically (temp file, then rename). An existing
/// registry at `out` is replaced only on success.
pub fn write_registry(
    out: &Path,
    ingest: &IngestPolicy,
    table: &IngestTable,
) -> Result<IngestSummary, MapperError> {
    let name = validate_identifier(&ingest.table)?;
    let unique = ingest.unique.clone();
    // Duplicates in the unique columns are reported with their values.
    if !unique.is_empty() {
        let idx: Vec<usize> = unique
            .iter()
            .map(|u| {
                table.columns.iter().position(|c| c == u).ok_or_else(|| {
                    err(
                        out.display(),
                        format!("unique column {u:?} is not a registry column"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let mut seen = HashSet::new();
        for r in &table.rows {
            let k: Vec<String> = idx.iter().map(|i| r[*i].to_string()).collect();
            if !seen.insert(k.clone()) {
                return Err(err(
                    out.display(),
                    format!("two rows have {unique:?} = {k:?}"),
                ));
            }
        }
    }
    let file = daf_storages::atomic::AtomicFile::create(out).map_err(|e| err(out.display(), e))?;
    let tmp = file.temp_path().to_path_buf();
    let visit_rows;
    {
        let reg = SqliteRegistry::create_bulk(&tmp)?;
        let cols: Vec<(String, ColumnType)> = table
            .columns
            .iter()
            .cloned()
            .zip(table.types.iter().copied())
            .collect();
        reg.create_table(name, &cols, &unique)?;
        reg.insert_rows(name, &table.columns, &table.rows)?;
        visit_rows = match &ingest.visit_table {
            None => 0,
            Some(vt) => {
                // Visit keys the table lacks are left out (a metadata table
                // may carry fewer columns than the headers would give).
                let keys: Vec<String> = if ingest.visit_keys.is_empty() {
                    table
                        .columns
                        .iter()
                        .filter(|c| c.as_str() != "id")
                        .cloned()
                        .collect()
                } else {
                    ingest
                        .visit_keys
                        .iter()
                        .filter(|k| table.columns.contains(k))
                        .cloned()
                        .collect()
                };
                if keys.is_empty() {
                    return Err(err(out.display(), "no visit key is a registry column"));
                }
                let idx: Vec<usize> = keys
                    .iter()
                    .map(|k| {
                        table.columns.iter().position(|c| c == k).ok_or_else(|| {
                            err(
                                out.display(),
                                format!("visit key {k:?} is not a registry column"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let mut seen = HashSet::new();
                let mut rows = Vec::new();
                for r in &table.rows {
                    if seen.insert(r[idx[0]].to_string()) {
                        rows.push(idx.iter().map(|i| r[*i].clone()).collect::<Row>());
                    }
                }
                let vcols: Vec<(String, ColumnType)> = idx
                    .iter()
                    .map(|i| (table.columns[*i].clone(), table.types[*i]))
                    .collect();
                reg.create_table(vt, &vcols, &keys[..1])?;
                reg.insert_rows(vt, &keys, &rows)?;
                rows.len()
            }
        };
        reg.finish_bulk()?;
    }
    file.commit().map_err(|e| err(out.display(), e))?;
    Ok(IngestSummary {
        path: out.to_path_buf(),
        rows: table.rows.len(),
        visit_rows,
    })
}

/// Builds the registry of the raw files under `root` (headers only, in
/// parallel on rayon's pool). `progress(done, total)` is called as files are
/// read. The unique index defaults to the template's keys.
pub fn create_from_files(
    policy: &MapperPolicy,
    root: &Path,
    out: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<IngestSummary, MapperError> {
    let (mut ingest, template) = effective_ingest(policy)?;
    let files = find_files(root, &template)?;
    if files.is_empty() {
        return Err(err(
            root.display(),
            format!("no files match the ingest template {:?}", template.text()),
        ));
    }
    let total = files.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(64) || n == total {
            progress(n, total);
        }
    };
    let table = rows_from_headers(&files, &ingest, &template, &tick)?;
    if ingest.unique.is_empty() {
        ingest.unique = template
            .keys()
            .iter()
            .filter(|(k, _)| template.hdu_key() != Some(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
    }
    write_registry(out, &ingest, &table)
}

/// Builds the registry from a metadata table (see [`rows_from_table`])
/// without opening any data file. The unique index is `ingest.unique` (none
/// by default).
pub fn create_from_table(
    policy: &MapperPolicy,
    table_path: &Path,
    out: &Path,
) -> Result<IngestSummary, MapperError> {
    let ingest = policy.ingest.clone().unwrap_or_else(|| IngestPolicy {
        table: "raw".into(),
        ..Default::default()
    });
    let table = rows_from_table(table_path)?;
    write_registry(out, &ingest, &table)
}
