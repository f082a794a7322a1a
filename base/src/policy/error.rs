//! [`PolicyError`]: everything that can go wrong loading, dumping or
//! validating a policy.

use std::path::PathBuf;

use thiserror::Error;

use super::dictionary::ValidationError;

/// Errors from loading, dumping or checking a [`super::Policy`].
///
/// Syntax errors name the file (or the source name given to a `from_*_str`
/// function), the 1-based line number and the offending line's text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid PAF or YAML (or not UTF-8).
    #[error("{file}:{line}: {message}: {text:?}")]
    Syntax {
        /// The file or source name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The offending line (trimmed).
        text: String,
        /// What is wrong.
        message: String,
    },
    /// Valid syntax that the format does not support (such as a PAF integer
    /// beyond 32 bits, LSST's `UnsupportedSyntax`).
    #[error("{file}:{line}: unsupported: {message}: {text:?}")]
    Unsupported {
        /// The file or source name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The offending line (trimmed).
        text: String,
        /// What is unsupported.
        message: String,
    },
    /// An `@file` (PAF) or `!include` (YAML) could not be resolved or read.
    #[error("{file}:{line}: cannot include {target}: {reason}")]
    Include {
        /// The including file.
        file: String,
        /// 1-based line number of the include.
        line: usize,
        /// The resolved path of the included file.
        target: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// A file includes itself, directly or through other files.
    #[error("include cycle: {}", .chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    IncludeCycle {
        /// The chain of files, ending with the one included a second time.
        chain: Vec<PathBuf>,
    },
    /// The file extension does not say which format to use.
    #[error("cannot tell the policy format of {path}: use .paf, .policy, .yaml or .yml (or a `#<?cfg paf policy ?>` header)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The policy holds a value that the requested text format cannot
    /// represent so that it loads back equal.
    #[error("cannot write {name} as {format}: {reason}")]
    Unrepresentable {
        /// The dotted name of the value.
        name: String,
        /// `"PAF"` or `"YAML"`.
        format: &'static str,
        /// Why not.
        reason: String,
    },
    /// A dictionary is malformed (LSST's `BAD_DEFINITION` / DictionaryError).
    #[error("bad dictionary definition {name}: {reason}")]
    BadDefinition {
        /// The dotted name of the definition.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Validation against a dictionary found problems (all of them listed).
    #[error(transparent)]
    Validation(#[from] ValidationError),
}

impl PolicyError {
    /// The 1-based line number, for errors tied to a line.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Syntax { line, .. }
            | PolicyError::Unsupported { line, .. }
            | PolicyError::Include { line, .. } => Some(*line),
            _ => None,
        }
    }
}
