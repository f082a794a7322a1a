//! [`LogicalLocation`]: a storage location, possibly filled from a template.

use std::fmt;
use std::path::Path;

/// A resolved location string: a file path (optionally with an `[N]` HDU
/// suffix) or a database URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogicalLocation {
    loc: String,
}

impl LogicalLocation {
    /// A location taken literally, with no substitution.
    pub fn literal(loc: impl Into<String>) -> Self {
        LogicalLocation { loc: loc.into() }
    }

    /// The resolved location string.
    pub fn loc_str(&self) -> &str {
        &self.loc
    }

    /// The location as a path.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.loc)
    }
}

impl fmt::Display for LogicalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.loc)
    }
}
