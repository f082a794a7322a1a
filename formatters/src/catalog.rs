//! [`SourceCatalog`]: rows of typed columns with the schema carried along.

use daf_base::PropertySet;

use crate::error::FormatterError;
use crate::Result;

/// The type of one catalog column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FieldType {
    /// 64-bit integer (ids).
    I64,
    /// 32-bit integer.
    I32,
    /// 64-bit float (coordinates).
    F64,
    /// 32-bit float (fluxes).
    F32,
    /// A boolean flag.
    Flag,
    /// A variable-length UTF-8 string.
    String,
}

/// One column's definition.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Column type.
    pub field_type: FieldType,
    /// Free-text description.
    pub doc: String,
    /// Unit (`"deg"`, `"count"`, ... or empty).
    pub unit: String,
}

impl Field {
    /// A field with no doc or unit.
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        Field {
            name: name.into(),
            field_type,
            doc: String::new(),
            unit: String::new(),
        }
    }
}

/// One cell value.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Cell {
    I64(i64),
    I32(i32),
    F64(f64),
    F32(f32),
    Flag(bool),
    String(String),
}

impl Cell {
    /// The cell's type.
    pub fn field_type(&self) -> FieldType {
        match self {
            Cell::I64(_) => FieldType::I64,
            Cell::I32(_) => FieldType::I32,
            Cell::F64(_) => FieldType::F64,
            Cell::F32(_) => FieldType::F32,
            Cell::Flag(_) => FieldType::Flag,
            Cell::String(_) => FieldType::String,
        }
    }
}

/// Column storage.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Column {
    I64(Vec<i64>),
    I32(Vec<i32>),
    F64(Vec<f64>),
    F32(Vec<f32>),
    Flag(Vec<bool>),
    String(Vec<String>),
}

impl Column {
    fn new(t: FieldType) -> Column {
        match t {
            FieldType::I64 => Column::I64(Vec::new()),
            FieldType::I32 => Column::I32(Vec::new()),
            FieldType::F64 => Column::F64(Vec::new()),
            FieldType::F32 => Column::F32(Vec::new()),
            FieldType::Flag => Column::Flag(Vec::new()),
            FieldType::String => Column::String(Vec::new()),
        }
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::I64(v) => v.len(),
            Column::I32(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::Flag(v) => v.len(),
            Column::String(v) => v.len(),
        }
    }
    /// True with no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell at `row`.
    pub fn cell(&self, row: usize) -> Option<Cell> {
        Some(match self {
            Column::I64(v) => Cell::I64(*v.get(row)?),
            Column::I32(v) => Cell::I32(*v.get(row)?),
            Column::F64(v) => Cell::F64(*v.get(row)?),
            Column::F32(v) => Cell::F32(*v.get(row)?),
            Column::Flag(v) => Cell::Flag(*v.get(row)?),
            Column::String(v) => Cell::String(v.get(row)?.clone()),
        })
    }
    fn push(&mut self, c: Cell) -> std::result::Result<(), Cell> {
        match (self, c) {
            (Column::I64(v), Cell::I64(x)) => v.push(x),
            (Column::I32(v), Cell::I32(x)) => v.push(x),
            (Column::F64(v), Cell::F64(x)) => v.push(x),
            (Column::F32(v), Cell::F32(x)) => v.push(x),
            (Column::Flag(v), Cell::Flag(x)) => v.push(x),
            (Column::String(v), Cell::String(x)) => v.push(x),
            (_, c) => return Err(c),
        }
        Ok(())
    }
}

/// A table of sources: a schema, one column per field, and metadata.
///
/// ```
/// use daf_formatters::catalog::{SourceCatalog, Field, FieldType, Cell};
/// let mut cat = SourceCatalog::new(vec![
///     Field::new("id", FieldType::I64),
///     Field::new("ra", FieldType::F64),
///     Field::new("flux", FieldType::F32),
/// ]);
/// cat.push_row(vec![Cell::I64(1), Cell::F64(10.5), Cell::F32(3.0)]).unwrap();
/// assert_eq!(cat.len(), 1);
/// assert_eq!(cat.cell(0, "ra"), Some(Cell::F64(10.5)));
/// assert!(cat.push_row(vec![Cell::I64(2)]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SourceCatalog {
    fields: Vec<Field>,
    columns: Vec<Column>,
    /// Free-form metadata (FITS header cards, provenance ...).
    pub metadata: PropertySet,
}

crate::impl_persistable!(SourceCatalog, "SourceCatalog");

impl SourceCatalog {
    /// An empty catalog with this schema.
    pub fn new(fields: Vec<Field>) -> Self {
        let columns = fields.iter().map(|f| Column::new(f.field_type)).collect();
        SourceCatalog {
            fields,
            columns,
            metadata: PropertySet::new(),
        }
    }

    /// Builds a catalog from whole columns (all of equal length, matching types).
    pub fn from_columns(fields: Vec<Field>, columns: Vec<Column>) -> Result<Self> {
        let invalid = |m: String| FormatterError::Invalid {
            persistable: "SourceCatalog".into(),
            message: m,
        };
        if fields.len() != columns.len() {
            return Err(invalid(format!(
                "{} fields but {} columns",
                fields.len(),
                columns.len()
            )));
        }
        let n = columns.first().map_or(0, Column::len);
        for (f, c) in fields.iter().zip(&columns) {
            if std::mem::discriminant(&Column::new(f.field_type)) != std::mem::discriminant(c) {
                return Err(invalid(format!(
                    "column {} does not hold {:?}",
                    f.name, f.field_type
                )));
            }
            if c.len() != n {
                return Err(invalid(format!(
                    "column {} has {} rows, expected {n}",
                    f.name,
                    c.len()
                )));
            }
        }
        Ok(SourceCatalog {
            fields,
            columns,
            metadata: PropertySet::new(),
        })
    }

    /// The schema.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The columns, in schema order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// True with no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of the field named `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.field_index(name).map(|i| &self.columns[i])
    }

    /// The cell at (`row`, column `name`).
    pub fn cell(&self, row: usize, name: &str) -> Option<Cell> {
        self.column(name)?.cell(row)
    }

    /// Appends one row; cells in schema order with matching types.
    pub fn push_row(&mut self, row: Vec<Cell>) -> Result<()> {
        if row.len() != self.fields.len() {
            return Err(FormatterError::Invalid {
                persistable: "SourceCatalog".into(),
                message: format!(
                    "row has {} cells, schema has {} fields",
                    row.len(),
                    self.fields.len()
                ),
            });
        }
        for (i, (f, c)) in self.fields.iter().zip(&row).enumerate() {
            if f.field_type != c.field_type() {
                return Err(FormatterError::Invalid {
                    persistable: "SourceCatalog".into(),
                    message: format!(
                        "cell {i} ({}) is {:?}, expected {:?}",
                        f.name,
                        c.field_type(),
                        f.field_type
                    ),
                });
            }
        }
        for (col, c) in self.columns.iter_mut().zip(row) {
            col.push(c).expect("types checked above");
        }
        Ok(())
    }
}
