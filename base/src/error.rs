//! Shared error types.

use thiserror::Error;

/// Errors from [`crate::PropertySet`] access.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PropertyError {
    /// No property of that name exists.
    #[error("property not found: {name}")]
    NotFound {
        /// The dotted name that was looked up.
        name: String,
    },
    /// The property exists but holds another type.
    #[error("type mismatch for property {name}: expected {expected}, found {actual}")]
    TypeMismatch {
        /// The dotted name.
        name: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// The type the property holds.
        actual: &'static str,
    },
    /// The name is not a valid (dotted) property name.
    #[error("invalid property name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A value array was empty where at least one value is required.
    #[error("property {name} holds no values")]
    Empty {
        /// The dotted name.
        name: String,
    },
}
