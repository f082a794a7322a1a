//! [`ArchiveError`].

use thiserror::Error;

/// What can go wrong reading or writing a Boost archive.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A NaN or infinity written to a text or XML archive with
    /// [`super::OArchive::set_finite_only`] on: Boost 1.74's text and XML
    /// readers cannot read them back.
    #[error("{value} refused in a {kind} archive meant for C++ (finite_only): Boost 1.74's text and XML readers cannot read NaN or infinity; use a binary archive or finite values")]
    NonFinite {
        /// The value, as text (`NaN`, `inf`, `-inf`).
        value: String,
        /// The archive kind (`text` or `xml`).
        kind: String,
    },
    /// The archive ended before a value was complete.
    #[error("archive truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Byte offset of the read.
        offset: usize,
        /// What was being read.
        what: String,
    },
    /// The archive was written by a newer Boost than this reader supports.
    #[error("archive library version {found} is newer than {supported}, the newest this reader supports")]
    UnsupportedVersion {
        /// The version in the archive.
        found: u16,
        /// The newest version supported.
        supported: u16,
    },
    /// A library version this engine does not read or write.
    #[error("archive library version {found} is not supported (supported: {supported})")]
    VersionNotSupported {
        /// The version asked for.
        found: u16,
        /// The supported range, as text.
        supported: String,
    },
    /// A count or length larger than the bytes left in the archive.
    #[error("{what} of {len} at byte {offset} exceeds the {remaining} bytes left in the archive")]
    LengthTooLarge {
        /// What the length counts.
        what: String,
        /// The length read.
        len: u64,
        /// Byte offset of the length.
        offset: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// The bytes do not form a valid archive.
    #[error("malformed archive at byte {offset}: {message}")]
    Malformed {
        /// Byte offset.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A polymorphic pointer names a class with no registered export.
    #[error("unknown export name {name:?} (registered: {known})")]
    UnknownExport {
        /// The class name found in the archive.
        name: String,
        /// The registered export names.
        known: String,
    },
    /// A class id that the archive never introduced.
    #[error("unknown class id {class_id} at byte {offset}")]
    UnknownClassId {
        /// The id.
        class_id: i64,
        /// Byte offset.
        offset: usize,
    },
    /// An object was saved through a pointer and then by value (Boost's `pointer_conflict`).
    #[error("pointer conflict: object of class {class} saved by value after it was saved through a pointer")]
    PointerConflict {
        /// The class name.
        class: String,
    },
    /// Something this engine cannot express (e.g. a polymorphic class with no export name).
    #[error("{0}")]
    Unsupported(String),
    /// An I/O error of the sink.
    #[error("I/O error writing the archive: {0}")]
    Io(#[from] std::io::Error),
}
