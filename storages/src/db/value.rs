//! [`DbValue`]: one cell, and the conversions of the supported Rust types.

use daf_base::{DateTime, Timescale};

use super::error::DbError;

/// The kinds of value daf writes to and reads from databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbKind {
    /// `bool`.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `String`.
    String,
    /// `daf_base::DateTime`, stored as BIGINT nanoseconds TAI.
    DateTime,
}

/// One cell value, as bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum DbValue {
    Null,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    String(String),
    /// An instant: BIGINT nanoseconds TAI on SQLite and PostgreSQL and in
    /// `BIGINT` columns; a UTC `DATETIME` in MariaDB/MySQL `DATETIME` columns.
    DateTime(DateTime),
}

impl DbValue {
    /// A short name of what the value holds (for error messages).
    pub fn kind_name(&self) -> &'static str {
        match self {
            DbValue::Null => "NULL",
            DbValue::Bool(_) => "a boolean",
            DbValue::I8(_) | DbValue::I16(_) | DbValue::I32(_) | DbValue::I64(_) => "an integer",
            DbValue::F32(_) | DbValue::F64(_) => "a float",
            DbValue::String(_) => "a string",
            DbValue::DateTime(_) => "a date-time",
        }
    }

    fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            DbValue::I8(v) => v.into(),
            DbValue::I16(v) => v.into(),
            DbValue::I32(v) => v.into(),
            DbValue::I64(v) => v,
            DbValue::DateTime(d) => d.nsecs(Timescale::Tai),
            _ => return None,
        })
    }

    /// Writes the value in PostgreSQL/MySQL text-TSV form (`\N` for NULL;
    /// backslash, tab, newline and carriage return escaped; NaN and
    /// infinities as `NaN`, `Infinity`, `-Infinity`).
    pub fn write_tsv(&self, out: &mut Vec<u8>) {
        self.write_tsv_with(out, false)
    }

    /// [`DbValue::write_tsv`]; with `finite_only` NaN and infinities are
    /// written as `\N` (MariaDB/MySQL, which have neither: the float policy
    /// in [`crate::db`]).
    pub fn write_tsv_with(&self, out: &mut Vec<u8>, finite_only: bool) {
        let mut ib = itoa::Buffer::new();
        let mut fb = ryu::Buffer::new();
        match self {
            DbValue::Null => out.extend_from_slice(b"\\N"),
            DbValue::Bool(b) => out.push(if *b { b'1' } else { b'0' }),
            DbValue::I8(v) => out.extend_from_slice(ib.format(*v).as_bytes()),
            DbValue::I16(v) => out.extend_from_slice(ib.format(*v).as_bytes()),
            DbValue::I32(v) => out.extend_from_slice(ib.format(*v).as_bytes()),
            DbValue::I64(v) => out.extend_from_slice(ib.format(*v).as_bytes()),
            DbValue::DateTime(d) => {
                out.extend_from_slice(ib.format(d.nsecs(Timescale::Tai)).as_bytes())
            }
            // Near f32::MAX the shortest text (3.4028235e38) exceeds FLT_MAX
            // when a server reads it as a double first (MariaDB refuses it):
            // write the f32's exact value as a double instead.
            DbValue::F32(v) if v.is_finite() && v.abs() > 3.4e38 => {
                out.extend_from_slice(fb.format_finite(f64::from(*v)).as_bytes())
            }
            // Shortest text that parses back to the same value.
            DbValue::F32(v) if v.is_finite() => {
                out.extend_from_slice(fb.format_finite(*v).as_bytes())
            }
            DbValue::F64(v) if v.is_finite() => {
                out.extend_from_slice(fb.format_finite(*v).as_bytes())
            }
            DbValue::F32(_) | DbValue::F64(_) if finite_only => out.extend_from_slice(b"\\N"),
            DbValue::F32(_) | DbValue::F64(_) => {
                let v = match *self {
                    DbValue::F32(x) => f64::from(x),
                    DbValue::F64(x) => x,
                    _ => unreachable!(),
                };
                out.extend_from_slice(if v.is_nan() {
                    b"NaN"
                } else if v > 0.0 {
                    b"Infinity"
                } else {
                    b"-Infinity"
                });
            }
            DbValue::String(s) => {
                let bytes = s.as_bytes();
                if !bytes
                    .iter()
                    .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
                {
                    out.extend_from_slice(bytes);
                    return;
                }
                for &b in bytes {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
        }
    }
}

/// Rust types that can be bound as column values (`set_column::<T>`).
pub trait ToDbValue {
    /// The kind of value.
    const KIND: DbKind;
    /// Converts to a bound value.
    fn to_db_value(self) -> DbValue;
}

/// Rust types that can be read from a result column (`get_column_by_pos::<T>`).
pub trait FromDbValue: Sized {
    /// The type's name in error messages.
    const NAME: &'static str;
    /// Converts a non-NULL value; `None` when it cannot be represented.
    fn from_db_value(v: &DbValue) -> Option<Self>;
    /// Converts, with a [`DbError::WrongType`] naming `column` on failure.
    fn convert(v: &DbValue, column: &str) -> Result<Self, DbError> {
        Self::from_db_value(v).ok_or_else(|| DbError::WrongType {
            column: column.to_string(),
            expected: Self::NAME,
            actual: match v {
                DbValue::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
                DbValue::Null => "NULL".into(),
                DbValue::String(_) => "a string".into(),
                other => format!("{} ({other:?})", other.kind_name()),
            },
        })
    }
}

macro_rules! int_impl {
    ($t:ty, $var:ident, $kind:ident, $name:literal) => {
        impl ToDbValue for $t {
            const KIND: DbKind = DbKind::$kind;
            fn to_db_value(self) -> DbValue {
                DbValue::$var(self)
            }
        }
        impl FromDbValue for $t {
            const NAME: &'static str = $name;
            fn from_db_value(v: &DbValue) -> Option<Self> {
                v.as_i64().and_then(|x| <$t>::try_from(x).ok())
            }
        }
    };
}
int_impl!(i8, I8, I8, "i8");
int_impl!(i16, I16, I16, "i16");
int_impl!(i32, I32, I32, "i32");
int_impl!(i64, I64, I64, "i64");

impl ToDbValue for bool {
    const KIND: DbKind = DbKind::Bool;
    fn to_db_value(self) -> DbValue {
        DbValue::Bool(self)
    }
}
impl FromDbValue for bool {
    const NAME: &'static str = "bool";
    fn from_db_value(v: &DbValue) -> Option<Self> {
        match v {
            DbValue::Bool(b) => Some(*b),
            _ => match v.as_i64()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            },
        }
    }
}

impl ToDbValue for f64 {
    const KIND: DbKind = DbKind::F64;
    fn to_db_value(self) -> DbValue {
        DbValue::F64(self)
    }
}
/// NULL reads as NaN (the float policy in [`crate::db`]: a backend without
/// NaN stores it as NULL).
impl FromDbValue for f64 {
    const NAME: &'static str = "f64";
    fn from_db_value(v: &DbValue) -> Option<Self> {
        match *v {
            DbValue::Null => Some(f64::NAN),
            DbValue::F64(x) => Some(x),
            DbValue::F32(x) => Some(x.into()),
            _ => v.as_i64().map(|i| i as f64),
        }
    }
}
impl ToDbValue for f32 {
    const KIND: DbKind = DbKind::F32;
    fn to_db_value(self) -> DbValue {
        DbValue::F32(self)
    }
}
/// NULL reads as NaN, as for `f64`.
impl FromDbValue for f32 {
    const NAME: &'static str = "f32";
    fn from_db_value(v: &DbValue) -> Option<Self> {
        match *v {
            DbValue::Null => Some(f32::NAN),
            DbValue::F64(x) => Some(x as f32),
            DbValue::F32(x) => Some(x),
            _ => v.as_i64().map(|i| i as f32),
        }
    }
}

impl ToDbValue for String {
    const KIND: DbKind = DbKind::String;
    fn to_db_value(self) -> DbValue {
        DbValue::String(self)
    }
}
impl ToDbValue for &str {
    const KIND: DbKind = DbKind::String;
    fn to_db_value(self) -> DbValue {
        DbValue::String(self.to_string())
    }
}
impl FromDbValue for String {
    const NAME: &'static str = "String";
    fn from_db_value(v: &DbValue) -> Option<Self> {
        match v {
            DbValue::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl ToDbValue for DateTime {
    const KIND: DbKind = DbKind::DateTime;
    fn to_db_value(self) -> DbValue {
        DbValue::DateTime(self)
    }
}
impl FromDbValue for DateTime {
    const NAME: &'static str = "DateTime";
    fn from_db_value(v: &DbValue) -> Option<Self> {
        match v {
            DbValue::DateTime(d) => Some(*d),
            DbValue::String(s) => DateTime::parse_iso(s, Timescale::Utc).ok(),
            _ => v.as_i64().map(|n| DateTime::from_nsecs(n, Timescale::Tai)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(i8::convert(&DbValue::I64(-5), "c").unwrap(), -5);
        assert!(matches!(
            i8::convert(&DbValue::I64(300), "c"),
            Err(DbError::WrongType { .. })
        ));
        assert!(matches!(
            i64::convert(&DbValue::String("1".into()), "c"),
            Err(DbError::WrongType { .. })
        ));
        assert!(String::convert(&DbValue::I64(1), "c").is_err());
        assert!(bool::convert(&DbValue::I64(1), "c").unwrap());
        let mut out = Vec::new();
        DbValue::String("a\tb\nc\\N\r".into()).write_tsv(&mut out);
        assert_eq!(out, b"a\\tb\\nc\\\\N\\r");
    }
}
