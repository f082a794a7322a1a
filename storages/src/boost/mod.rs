//! A Boost.Serialization archive engine: binary, text and XML archives that
//! C++ `boost::archive::{binary,text,xml}_{o,i}archive` read and write.
//!
//! A Rust type takes part by implementing [`BoostSerialize`]: it states its
//! class traits ([`ClassInfo`]: class version, tracking, export name) and its
//! members in order, through [`OArchive::field`] and [`IArchive::field`]:
//!
//! ```
//! use daf_storages::boost::{
//!     ArchiveKind, BoostSerialize, ClassInfo, IArchive, OArchive, Result,
//! };
//!
//! #[derive(Debug, PartialEq)]
//! struct Rec { id: i32, name: String, v: Vec<f64> }
//!
//! impl BoostSerialize for Rec {
//!     fn class_info() -> ClassInfo { ClassInfo::new("Rec") }
//!     fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
//!         ar.field("id", &self.id)?;
//!         ar.field("name", &self.name)?;
//!         ar.field("v", &self.v)
//!     }
//!     fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
//!         Ok(Rec { id: ar.field("id")?, name: ar.field("name")?, v: ar.field("v")? })
//!     }
//! }
//!
//! let r = Rec { id: 1, name: "one".into(), v: vec![0.5] };
//! let bytes = OArchive::to_bytes(ArchiveKind::Text, 18, |ar| ar.field("r", &r)).unwrap();
//! assert_eq!(
//!     std::str::from_utf8(&bytes).unwrap(),
//!     "22 serialization::archive 18 0 0 1 3 one 1 0 5.00000000000000000e-01\n"
//! );
//! let back: Rec = IArchive::from_bytes(&bytes, |ar| ar.field("r")).unwrap();
//! assert_eq!(back, r);
//! ```
//!
//! What is covered: the header (and `no_header`), primitives, strings,
//! vectors (the raw-block array optimisation of binary archives for
//! arithmetic elements, count + item_version + elements otherwise),
//! `Vec<bool>`, maps, pairs, `boost::optional` (as [`Option`]), nested
//! classes, base classes ([`OArchive::base`]), class versions, tracked
//! objects, raw pointers ([`OArchive::pointer`], null included),
//! `std::shared_ptr` members ([`SharedPtr`]) and polymorphic pointers
//! resolved through export names ([`Exports`]), whether their declared class
//! is abstract ([`OArchive::poly_pointer`]) or concrete, like LSST's
//! `Persistable` ([`OArchive::poly_pointer_concrete`]: C++ registers the
//! declared class first, which shifts the class ids). Written library
//! versions: 18 (Boost 1.73–1.75) and 19 (Boost 1.76–1.83); read: 3 to 19.
//!
//! Floating-point NaN and ±infinity: binary archives hold them exactly.
//! Text and XML archives write them as `nan`, `inf` and `-inf`, as C++
//! Boost does, and daf reads them back — but Boost 1.74's text and XML
//! readers cannot (they fail with "input stream error", even on archives
//! Boost itself wrote). Archives meant for C++ can refuse them on write:
//! [`OArchive::set_finite_only`] (policy key `finite_only` of the Boost
//! storages).
//!
//! Whether C++ Boost tracks a class depends on the whole program (a class is
//! tracked when some code anywhere serialises it through a pointer); in Rust
//! each class states it in its [`ClassInfo`], and an archive may override it
//! per type ([`OArchive::set_tracking`]). Readers obey the flag they find.

mod error;
mod iarchive;
mod impls;
mod oarchive;
pub mod property_set;
mod text;

use std::any::TypeId;

pub use error::ArchiveError;
pub use iarchive::{Exports, IArchive};
pub use impls::SharedPtr;
pub use oarchive::OArchive;

/// Result alias for archive operations.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// The signature every Boost archive header carries.
pub const SIGNATURE: &str = "serialization::archive";

/// The newest archive library version this engine reads (Boost 1.76–1.83).
pub const MAX_READ_VERSION: u16 = 19;
/// The oldest archive library version this engine reads (3, Boost 1.34,
/// as LSST's 2007–2009 archives were). Versions 3 to 7 differ from 8 on in
/// a few widths and fields (see [`IArchive`]): binary class versions are one
/// byte (3–5, 7) or two (6), binary collection counts four bytes (3–5), and
/// version 3 writes no collection item_version.
pub const MIN_READ_VERSION: u16 = 3;
/// The archive library versions this engine writes.
pub const WRITE_VERSIONS: [u16; 2] = [18, 19];
/// The library version written when none is chosen: 18 (Boost 1.74, the
/// Boost of Debian 12 and of LSST's last C++ stacks), which every Boost from
/// 1.73 on reads. Version 19 (Boost 1.76 and later) is refused by Boost
/// 1.74's binary and text readers ("unsupported version").
pub const DEFAULT_VERSION: u16 = 18;

/// The three archive kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// `binary_oarchive`: native little-endian LP64 bytes.
    Binary,
    /// `text_oarchive`: space-separated decimal tokens.
    Text,
    /// `xml_oarchive`: elements named by the members' NVP names.
    Xml,
}

impl ArchiveKind {
    /// `"binary"`, `"text"` or `"xml"`.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveKind::Binary => "binary",
            ArchiveKind::Text => "text",
            ArchiveKind::Xml => "xml",
        }
    }

    /// Parses `binary`, `text` or `xml` (case-insensitive).
    pub fn parse(s: &str) -> Option<ArchiveKind> {
        match s.to_ascii_lowercase().as_str() {
            "binary" | "bin" => Some(ArchiveKind::Binary),
            "text" | "txt" => Some(ArchiveKind::Text),
            "xml" => Some(ArchiveKind::Xml),
            _ => None,
        }
    }

    /// Detects the kind from an archive's first bytes (archives with a header only).
    pub fn detect(bytes: &[u8]) -> Option<ArchiveKind> {
        let mut b = bytes;
        if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
            b = &b[3..];
        }
        if b.len() >= 30 && b[..8] == 22u64.to_le_bytes() && &b[8..30] == SIGNATURE.as_bytes() {
            return Some(ArchiveKind::Binary);
        }
        let start = b
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(b.len());
        let t = &b[start..];
        if t.starts_with(b"22 serialization::archive") {
            Some(ArchiveKind::Text)
        } else if t.starts_with(b"<?xml") || t.starts_with(b"<boost_serialization") {
            Some(ArchiveKind::Xml)
        } else {
            None
        }
    }
}

impl std::fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Maps a Boost release (`"1.74"`, `"1.81"`) or an archive library version
/// (`"18"`, `"19"`) to the archive library version.
///
/// ```
/// use daf_storages::boost::library_version_for;
/// assert_eq!(library_version_for("1.74"), Some(18));
/// assert_eq!(library_version_for("1.81.0"), Some(19));
/// assert_eq!(library_version_for("19"), Some(19));
/// assert_eq!(library_version_for("1.20"), None);
/// ```
pub fn library_version_for(s: &str) -> Option<u16> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u16>() {
        return (MIN_READ_VERSION..=20).contains(&v).then_some(v);
    }
    let mut parts = s.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    if major != 1 {
        return None;
    }
    Some(match minor {
        45 => 8,
        46..=52 => 9,
        53..=55 => 10,
        56..=57 => 11,
        58 => 12,
        59 => 13,
        60..=63 => 14,
        64..=65 => 15,
        66..=67 => 16,
        68..=72 => 17,
        73..=75 => 18,
        76..=83 => 19,
        84.. => 20,
        _ => return None,
    })
}

/// Boost's implementation level of a type: how much the archive says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `primitive_type`: numbers and strings; no class id, no preamble.
    Primitive,
    /// `object_serializable`: takes a class id but never writes a preamble
    /// (vectors of arithmetic types).
    Serializable,
    /// `object_class_info` (the default for classes): a preamble (tracking,
    /// version) the first time the class appears.
    ClassInfo,
}

/// The Boost class traits of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassInfo {
    /// A readable name for messages (the C++ class name).
    pub name: &'static str,
    /// `BOOST_CLASS_VERSION` (default 0).
    pub version: u32,
    /// Whether objects are tracked (object ids, repeated objects become references).
    pub tracked: bool,
    /// `BOOST_CLASS_EXPORT_GUID` name, for classes written through polymorphic pointers.
    pub export: Option<&'static str>,
}

impl ClassInfo {
    /// Version 0, untracked, not exported.
    pub const fn new(name: &'static str) -> ClassInfo {
        ClassInfo {
            name,
            version: 0,
            tracked: false,
            export: None,
        }
    }
    /// Sets the class version.
    pub const fn version(mut self, version: u32) -> ClassInfo {
        self.version = version;
        self
    }
    /// Marks the class tracked (`tracking_level 1`).
    pub const fn tracked(mut self, tracked: bool) -> ClassInfo {
        self.tracked = tracked;
        self
    }
    /// Sets the export name (implies nothing about tracking).
    pub const fn export(mut self, name: &'static str) -> ClassInfo {
        self.export = Some(name);
        self
    }
}

/// A type that Boost archives can hold.
///
/// User classes implement [`BoostSerialize::class_info`], [`BoostSerialize::save`]
/// and [`BoostSerialize::load`]; the defaults make them `object_class_info`
/// classes. Primitive types, strings, `Vec`, `BTreeMap`, tuples (as
/// `std::pair`) and `Option` (as `boost::optional`) are implemented here.
pub trait BoostSerialize: Sized + 'static {
    /// The implementation level.
    const LEVEL: Level = Level::ClassInfo;
    /// True for arithmetic types whose vectors use the binary raw-block optimisation.
    const ARITHMETIC: bool = false;

    /// The class traits (used for [`Level::ClassInfo`] types).
    fn class_info() -> ClassInfo {
        ClassInfo::new(std::any::type_name::<Self>())
    }

    /// Writes the members, in order, with [`OArchive::field`].
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()>;

    /// Reads the members written by a class of `version`.
    fn load(ar: &mut IArchive<'_>, version: u32) -> Result<Self>;

    /// Writes the elements of a vector (after its count and item_version).
    /// Arithmetic types override this with a raw block for binary archives.
    fn save_items(items: &[Self], ar: &mut OArchive<'_>) -> Result<()> {
        for it in items {
            ar.field("item", it)?;
        }
        Ok(())
    }

    /// Reads `n` vector elements.
    fn load_items(n: usize, ar: &mut IArchive<'_>) -> Result<Vec<Self>> {
        ar.check_count(n, 1, "vector elements")?;
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(ar.field("item")?);
        }
        Ok(v)
    }
}

/// A base class of a polymorphic hierarchy (a `dyn Trait`), for pointers
/// resolved through export names.
///
/// Implement it for `dyn YourTrait` by giving every concrete class a way to
/// write itself: see the `polymorphic` case in the crate's golden tests.
pub trait PolyBase: 'static {
    /// The concrete class's traits (its export name must be set).
    fn dyn_class_info(&self) -> ClassInfo;
    /// The concrete class's type id.
    fn dyn_type_id(&self) -> TypeId;
    /// Writes the concrete object's members.
    fn dyn_save(&self, ar: &mut OArchive<'_>) -> Result<()>;
}

/// Implements [`PolyBase`] for a concrete class that implements
/// [`BoostSerialize`] (with an export name in its [`ClassInfo`]).
///
/// ```
/// use daf_storages::boost::{BoostSerialize, ClassInfo, IArchive, OArchive, PolyBase, Result};
/// trait Shape: PolyBase + Send + Sync {}
/// struct Circle { r: f64 }
/// impl BoostSerialize for Circle {
///     fn class_info() -> ClassInfo { ClassInfo::new("Circle").tracked(true).export("Circle") }
///     fn save(&self, ar: &mut OArchive<'_>) -> Result<()> { ar.field("r", &self.r) }
///     fn load(ar: &mut IArchive<'_>, _v: u32) -> Result<Self> { Ok(Circle { r: ar.field("r")? }) }
/// }
/// daf_storages::boost_poly_class!(Circle);
/// impl Shape for Circle {}
/// ```
#[macro_export]
macro_rules! boost_poly_class {
    ($t:ty) => {
        impl $crate::boost::PolyBase for $t {
            fn dyn_class_info(&self) -> $crate::boost::ClassInfo {
                <$t as $crate::boost::BoostSerialize>::class_info()
            }
            fn dyn_type_id(&self) -> ::std::any::TypeId {
                ::std::any::TypeId::of::<$t>()
            }
            fn dyn_save(&self, ar: &mut $crate::boost::OArchive<'_>) -> $crate::boost::Result<()> {
                <$t as $crate::boost::BoostSerialize>::save(self, ar)
            }
        }
    };
}
