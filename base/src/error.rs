//! Shared error types.

use thiserror::Error;

/// A boxed driver error (rusqlite, sqlx, mysql, I/O, object_store ...) kept
/// as the `source()` of a typed error, for crates that must not expose the
/// driver's type in their API. Downcast it to the driver's error type to
/// inspect it (e.g. `e.downcast_ref::<rusqlite::Error>()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from [`crate::PropertySet`] access.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
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
