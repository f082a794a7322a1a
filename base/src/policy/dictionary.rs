//! Policy dictionaries: definitions of the names a policy may hold, their
//! types, defaults and limits, and validation against them.

use std::fmt;

/// The kind of one validation problem (LSST's `ValidationError` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    /// A value has the wrong type.
    WrongType,
    /// A required name (`minOccurs` ≥ 1) is absent.
    MissingRequired,
    /// More values than `maxOccurs`.
    TooManyValues,
    /// Fewer values than `minOccurs` (but at least one).
    ArrayTooShort,
    /// A value is not among the `allowed` values.
    ValueDisallowed,
    /// A value is outside `min`/`max`.
    ValueOutOfRange,
    /// A name the dictionary does not define.
    UnknownName,
}

impl ProblemCode {
    /// The LSST spelling (`WRONG_TYPE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::WrongType => "WRONG_TYPE",
            ProblemCode::MissingRequired => "MISSING_REQUIRED",
            ProblemCode::TooManyValues => "TOO_MANY_VALUES",
            ProblemCode::ArrayTooShort => "ARRAY_TOO_SHORT",
            ProblemCode::ValueDisallowed => "VALUE_DISALLOWED",
            ProblemCode::ValueOutOfRange => "VALUE_OUT_OF_RANGE",
            ProblemCode::UnknownName => "UNKNOWN_NAME",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub code: ProblemCode,
    /// The dotted name it concerns.
    pub name: String,
    /// Details for the reader.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.name, self.detail)
    }
}

/// Every problem validation found, in policy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The problems (never empty).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy validation found {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}
