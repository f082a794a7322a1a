//! Database support of the formatters: writing a [`PropertySet`] as one row,
//! and a [`SourceCatalog`] as a table, through [`DbStorage`] and
//! [`DbTsvStorage`]; reading a catalog back.
//!
//! Kept apart from the formatter types so that formatters supporting other
//! storages (Boost, FITS) can call these functions for the database ones.
//!
//! Policy keys (the formatter's sub-policy):
//! - PropertySet: `TableName` (else additional data `itemName`), `KeyList`
//!   (strings `column=key`; without it every leaf name, dots becoming `_`).
//! - SourceCatalog: `TableNamePattern` (e.g. `Source_%(visit)`, filled from
//!   additional data; `%05d(visit)` zero-pads), else `TableName`, else
//!   `itemName`; `TemplateTableName` (the table is created from it when
//!   missing); `OrderBy` (columns to order rows by on reading).

use daf_base::{Policy, PropertySet, Values};
use daf_storages::db::{DbStorage, DbTsvStorage, DbValue};
use daf_storages::{Storage, StorageError};

use crate::catalog::{Cell, Column, Field, FieldType, SourceCatalog};
use crate::error::FormatterError;
use crate::Result;

/// Is `storage` one of the database storages?
pub fn is_db_storage(storage: &dyn Storage) -> bool {
    storage.as_any().is::<DbStorage>() || storage.as_any().is::<DbTsvStorage>()
}

/// The insert calls shared by both database storages.
enum Sink<'a> {
    Row(&'a mut DbStorage),
    Tsv(&'a mut DbTsvStorage),
}

impl Sink<'_> {
    fn of(storage: &mut dyn Storage) -> Option<Sink<'_>> {
        let name = storage.storage_name().to_string();
        let any = storage.as_any_mut();
        if name == "DbTsvStorage" {
            any.downcast_mut::<DbTsvStorage>().map(Sink::Tsv)
        } else {
            any.downcast_mut::<DbStorage>().map(Sink::Row)
        }
    }
    fn db(&mut self) -> &mut DbStorage {
        match self {
            Sink::Row(d) => d,
            Sink::Tsv(t) => t,
        }
    }
    fn set_table(&mut self, t: &str) -> std::result::Result<(), StorageError> {
        match self {
            Sink::Row(d) => d.set_table_for_insert(t),
            Sink::Tsv(d) => d.set_table_for_insert(t),
        }
    }
    fn set(&mut self, c: &str, v: DbValue) -> std::result::Result<(), StorageError> {
        match self {
            Sink::Row(d) => d.set_value(c, v),
            Sink::Tsv(d) => d.set_value(c, v),
        }
    }
    fn insert(&mut self) -> std::result::Result<(), StorageError> {
        match self {
            Sink::Row(d) => d.insert_row(),
            Sink::Tsv(d) => d.insert_row(),
        }
    }
}

fn unsupported(persistable: &str, storage: &dyn Storage) -> FormatterError {
    FormatterError::UnsupportedStorage {
        persistable: persistable.into(),
        storage: storage.storage_name().into(),
    }
}

fn invalid(persistable: &str, message: String) -> FormatterError {
    FormatterError::Invalid {
        persistable: persistable.into(),
        message,
    }
}

/// The last value under `name` as a database value (`None` for a nested set).
fn last_value(v: &Values, name: &str) -> Result<Option<DbValue>> {
    let i = v.len().saturating_sub(1);
    Ok(Some(match v {
        Values::Bool(x) => DbValue::Bool(x[i]),
        Values::I8(x) => DbValue::I8(x[i]),
        Values::U8(x) => DbValue::I16(x[i].into()),
        Values::I16(x) => DbValue::I16(x[i]),
        Values::U16(x) => DbValue::I32(x[i].into()),
        Values::I32(x) => DbValue::I32(x[i]),
        Values::U32(x) => DbValue::I64(x[i].into()),
        Values::I64(x) => DbValue::I64(x[i]),
        Values::U64(x) => DbValue::I64(i64::try_from(x[i]).map_err(|_| {
            invalid(
                "PropertySet",
                format!("{name} = {} does not fit a BIGINT column", x[i]),
            )
        })?),
        Values::F32(x) => DbValue::F32(x[i]),
        Values::F64(x) => DbValue::F64(x[i]),
        Values::String(x) => DbValue::String(x[i].clone()),
        Values::DateTime(x) => DbValue::I64(x[i].nsecs(daf_base::Timescale::Tai)),
        Values::PropertySet(_) => return Ok(None),
    }))
}

/// Writes `ps` as one row of a table through a database storage.
pub fn write_property_set(
    ps: &PropertySet,
    storage: &mut dyn Storage,
    additional_data: &PropertySet,
    policy: Option<&Policy>,
) -> Result<()> {
    let table = match policy.filter(|p| p.exists("TableName")) {
        Some(p) => p.get::<String>("TableName")?,
        None if additional_data.exists("itemName") => additional_data.get::<String>("itemName")?,
        None => {
            return Err(invalid(
                "PropertySet",
                "no table name: set policy TableName or additional data itemName".into(),
            ))
        }
    };
    let columns: Vec<(String, String)> = match policy.filter(|p| p.exists("KeyList")) {
        Some(p) => p
            .get_array::<String>("KeyList")?
            .iter()
            .map(|e| match e.split_once('=') {
                Some((c, k)) => Ok((c.trim().to_string(), k.trim().to_string())),
                None => Err(invalid(
                    "PropertySet",
                    format!("KeyList entry {e:?} is not column=key"),
                )),
            })
            .collect::<Result<_>>()?,
        None => ps
            .param_names()
            .into_iter()
            .map(|k| (k.replace('.', "_"), k))
            .collect(),
    };
    let st_name = storage.storage_name().to_string();
    let mut sink = Sink::of(storage).ok_or_else(|| FormatterError::UnsupportedStorage {
        persistable: "PropertySet".into(),
        storage: st_name,
    })?;
    sink.set_table(&table)?;
    for (col, key) in &columns {
        let v = match ps.values(key) {
            Some(v) => last_value(v, key)?.unwrap_or(DbValue::Null),
            None => DbValue::Null,
        };
        sink.set(col, v)?;
    }
    sink.insert()?;
    Ok(())
}

/// Fills `%(key)` / `%05d(key)` / `%s(key)` from `data`.
pub fn fill_pattern(pattern: &str, data: &PropertySet) -> Result<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let spec_len = after.find('(').unwrap_or(0);
        let spec = &after[..spec_len];
        let ok_spec = spec
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'd' || c == 's');
        let close = after.find(')');
        match (
            after.starts_with(spec) && ok_spec && after[spec_len..].starts_with('('),
            close,
        ) {
            (true, Some(close)) => {
                let key = &after[spec_len + 1..close];
                let v = data.values(key).ok_or_else(|| {
                    invalid(
                        "SourceCatalog",
                        format!("pattern {pattern:?} needs additional data {key:?}"),
                    )
                })?;
                let text = v.text_at(v.len().saturating_sub(1)).unwrap_or_default();
                let digits = spec.trim_end_matches(['d', 's']);
                let width: usize = digits.parse().unwrap_or(0);
                if digits.starts_with('0') {
                    out.push_str(&format!("{text:0>width$}"));
                } else {
                    out.push_str(&format!("{text:>width$}"));
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn catalog_table(additional_data: &PropertySet, policy: Option<&Policy>) -> Result<String> {
    if let Some(p) = policy {
        if p.exists("TableNamePattern") {
            return fill_pattern(&p.get::<String>("TableNamePattern")?, additional_data);
        }
        if p.exists("TableName") {
            return Ok(p.get::<String>("TableName")?);
        }
    }
    if additional_data.exists("itemName") {
        return Ok(additional_data.get::<String>("itemName")?);
    }
    Err(invalid(
        "SourceCatalog",
        "no table name: set policy TableNamePattern or TableName, or additional data itemName"
            .into(),
    ))
}

/// Writes every row of `cat` to its table (created from the policy's
/// `TemplateTableName` if it does not exist).
pub fn write_catalog(
    cat: &SourceCatalog,
    storage: &mut dyn Storage,
    additional_data: &PropertySet,
    policy: Option<&Policy>,
) -> Result<()> {
    let table = catalog_table(additional_data, policy)?;
    let mut sink = Sink::of(storage).ok_or_else(|| FormatterError::UnsupportedStorage {
        persistable: "SourceCatalog".into(),
        storage: "non-database storage".into(),
    })?;
    if let Some(p) = policy.filter(|p| p.exists("TemplateTableName")) {
        let template = p.get::<String>("TemplateTableName")?;
        sink.db()
            .create_table_from_template(&table, &template, true)?;
    }
    let names: Vec<&str> = cat.fields().iter().map(|f| f.name.as_str()).collect();
    let cols = cat.columns();
    let cell = |col: &Column, row: usize| match col {
        Column::I64(v) => DbValue::I64(v[row]),
        Column::I32(v) => DbValue::I32(v[row]),
        Column::F64(v) => DbValue::F64(v[row]),
        Column::F32(v) => DbValue::F32(v[row]),
        Column::Flag(v) => DbValue::Bool(v[row]),
        Column::String(v) => DbValue::String(v[row].clone()),
    };
    let fill = |row: usize, out: &mut Vec<DbValue>| {
        out.extend(cols.iter().map(|c| cell(c, row)));
        Ok(())
    };
    match &mut sink {
        // SQLite: one prepared statement for every row.
        Sink::Row(db) => db.insert_rows(&table, &names, cat.len(), fill)?,
        Sink::Tsv(tsv) => tsv.insert_rows(&table, &names, cat.len(), fill)?,
    };
    Ok(())
}

fn field_type_of(type_name: &str) -> Option<FieldType> {
    let t = type_name.to_ascii_uppercase();
    let base = t.split('(').next().unwrap_or("").trim();
    Some(match base {
        "BIGINT" | "INT8" | "INTEGER" | "BIGINT UNSIGNED" => FieldType::I64,
        "INT" | "INT4" | "INT2" | "SMALLINT" | "MEDIUMINT" | "TINYINT" | "INT UNSIGNED" => {
            FieldType::I32
        }
        "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" => FieldType::F64,
        "REAL" | "FLOAT4" | "FLOAT" => FieldType::F32,
        "BOOLEAN" | "BOOL" => FieldType::Flag,
        "TEXT" | "VARCHAR" | "CHAR" | "BPCHAR" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" => {
            FieldType::String
        }
        _ => return None,
    })
}

/// Reads a catalog back from its table: the schema comes from the column
/// types the database reports.
pub fn read_catalog(
    storage: &mut dyn Storage,
    additional_data: &PropertySet,
    policy: Option<&Policy>,
) -> Result<SourceCatalog> {
    let table = catalog_table(additional_data, policy)?;
    let st_name = storage.storage_name().to_string();
    let mut sink = Sink::of(storage).ok_or_else(|| FormatterError::UnsupportedStorage {
        persistable: "SourceCatalog".into(),
        storage: st_name,
    })?;
    let db = sink.db();
    if !db.table_exists(&table)? {
        return Err(StorageError::NotFound {
            what: format!("catalog table {table}"),
        }
        .into());
    }
    db.set_table_for_query(&table)?;
    if let Some(p) = policy.filter(|p| p.exists("OrderBy")) {
        db.order_by(&p.get::<String>("OrderBy")?)?;
    }
    db.query()?;
    let fields: Vec<Field> = db
        .result_columns()
        .iter()
        .zip(db.result_types())
        .map(|(c, t)| {
            field_type_of(t)
                .map(|ft| Field::new(c.clone(), ft))
                .ok_or_else(|| {
                    invalid(
                        "SourceCatalog",
                        format!("column {c} has type {t:?}, not a catalog type"),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let mut cat = SourceCatalog::new(fields.clone());
    let mut row = Vec::with_capacity(fields.len());
    while db.next()? {
        row.clear();
        for (i, f) in fields.iter().enumerate() {
            let c = match f.field_type {
                FieldType::I64 => Cell::I64(db.get_column_by_pos(i)?),
                FieldType::I32 => Cell::I32(db.get_column_by_pos(i)?),
                FieldType::F64 => Cell::F64(db.get_column_by_pos(i)?),
                FieldType::F32 => Cell::F32(db.get_column_by_pos(i)?),
                FieldType::Flag => Cell::Flag(db.get_column_by_pos(i)?),
                FieldType::String => Cell::String(db.get_column_by_pos(i)?),
            };
            row.push(c);
        }
        cat.push_row(std::mem::take(&mut row))?;
    }
    db.finish_query();
    Ok(cat)
}

/// The error for a non-database storage (for formatters delegating here).
pub fn not_db(persistable: &str, storage: &dyn Storage) -> FormatterError {
    unsupported(persistable, storage)
}
