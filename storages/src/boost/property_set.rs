//! The PropertySet archive layout LSST's `PropertySetFormatter` wrote.
//!
//! A PropertySet is a class object (written by value) holding: its
//! `Persistable` base (an empty class, tracked when the C++ program also
//! wrote `Persistable` pointers, as LSST's did), `nitems` (a `std::size_t` in
//! LSST; an `int` in some programs), then for every leaf, in
//! [`PropertySet::param_names`] order: `name` (`std::string`, dotted),
//! `type` (a one-letter `char` code) and `value` (a `std::vector` of every
//! value). The codes: `b` bool, `c` char, `y` signed char, `C` unsigned char,
//! `w` short, `W` unsigned short, `i` int, `I` unsigned int, `l` long, `L`
//! unsigned long, `x` long long, `X` unsigned long long, `f` float, `d`
//! double, `s` string, `T` DateTime (a vector of TAI nanoseconds as int64).
//! `p` (a `Persistable` pointer) is not supported.
//!
//! Every code survives a read and a write: `c`/`y` are both [`Values::I8`],
//! `l`/`x` both [`Values::I64`] and `L`/`X` both [`Values::U64`], so the
//! reader records the C++ type of leaves with the codes `y`, `l` and `L` as
//! their [`NativeType`] ([`PropertySet::native_type`]) and the writer gives
//! them back their code (C++ `get<long>` works on what daf wrote). Leaves
//! without a native type get `c`, `x` and `X`.

use std::any::TypeId;

use daf_base::{DateTime, NativeType, PropertySet, Timescale, Values};

use super::{ArchiveError, BoostSerialize, ClassInfo, IArchive, OArchive, Result, SharedPtr};

/// Choices the C++ program made that change the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertySetLayout {
    /// `nitems` is a `std::size_t` (LSST; 8 bytes in binary) rather than an `int`.
    pub nitems_size_t: bool,
    /// The `Persistable` base is tracked (its preamble says `tracking_level 1`
    /// and an object id follows), as in LSST's programs.
    pub persistable_tracked: bool,
}

impl Default for PropertySetLayout {
    /// LSST's layout: `size_t` count, tracked `Persistable`.
    fn default() -> Self {
        PropertySetLayout {
            nitems_size_t: true,
            persistable_tracked: true,
        }
    }
}

struct PropertySetClass;
struct PersistableClass;
/// `std::vector<char>`: C++ registers it apart from `std::vector<signed
/// char>` (`Vec<i8>`, type code `y`, as `int8_t` is `signed char`).
struct VecCharClass;
/// `std::vector<long long>`: apart from `std::vector<long>` (`Vec<i64>`,
/// codes `l` and `T`, as `int64_t` is `long` on LP64).
struct VecLongLongClass;
/// `std::vector<unsigned long long>`: apart from `std::vector<unsigned
/// long>` (`Vec<u64>`, code `L`).
struct VecULongLongClass;

const PROPERTY_SET: ClassInfo = ClassInfo::new("PropertySet");

fn persistable_info(tracked: bool) -> ClassInfo {
    ClassInfo::new("Persistable").tracked(tracked)
}

/// The one-letter type code written for `values` of C++ type `native`
/// (when it matches the values' type; else the default code).
pub fn type_code_for(values: &Values, native: Option<NativeType>) -> Result<u8> {
    Ok(match (values, native) {
        (Values::I8(_), Some(NativeType::SignedChar)) => b'y',
        (Values::I64(_), Some(NativeType::Long)) => b'l',
        (Values::U64(_), Some(NativeType::UnsignedLong)) => b'L',
        _ => type_code(values)?,
    })
}

/// The C++ type a type code names, where one value type stands for two.
pub fn native_type_of(code: u8) -> Option<NativeType> {
    Some(match code {
        b'c' => NativeType::Char,
        b'y' => NativeType::SignedChar,
        b'l' => NativeType::Long,
        b'L' => NativeType::UnsignedLong,
        b'x' => NativeType::LongLong,
        b'X' => NativeType::UnsignedLongLong,
        _ => return None,
    })
}

/// The default one-letter type code written for `values` (`c` for
/// [`Values::I8`], `x` for [`Values::I64`], `X` for [`Values::U64`]).
pub fn type_code(values: &Values) -> Result<u8> {
    Ok(match values {
        Values::Bool(_) => b'b',
        Values::I8(_) => b'c',
        Values::U8(_) => b'C',
        Values::I16(_) => b'w',
        Values::U16(_) => b'W',
        Values::I32(_) => b'i',
        Values::U32(_) => b'I',
        Values::I64(_) => b'x',
        Values::U64(_) => b'X',
        Values::F32(_) => b'f',
        Values::F64(_) => b'd',
        Values::String(_) => b's',
        Values::DateTime(_) => b'T',
        Values::PropertySet(_) => {
            return Err(ArchiveError::Unsupported(
                "nested PropertySet values are written as dotted leaf names".into(),
            ))
        }
    })
}

/// Writes `ps` as the NVP `name` (`propertySet` in LSST's XML archives).
pub fn save_property_set(
    ar: &mut OArchive<'_>,
    name: &str,
    ps: &PropertySet,
    layout: &PropertySetLayout,
) -> Result<()> {
    let addr = ps as *const PropertySet as usize;
    let pinfo = persistable_info(layout.persistable_tracked);
    ar.class_field(
        name,
        TypeId::of::<PropertySetClass>(),
        &PROPERTY_SET,
        addr,
        |ar| {
            ar.class_field(
                "base",
                TypeId::of::<PersistableClass>(),
                &pinfo,
                addr,
                |_| Ok(()),
            )?;
            let names = ps.param_names();
            if layout.nitems_size_t {
                ar.field("nitems", &(names.len() as u64))?;
            } else {
                let n = i32::try_from(names.len()).map_err(|_| {
                    ArchiveError::Unsupported("more than 2^31 items for an int count".into())
                })?;
                ar.field("nitems", &n)?;
            }
            for n in &names {
                let values = ps.values(n).expect("param_names lists existing names");
                ar.field("name", n)?;
                let native = match values {
                    Values::I8(_) | Values::I64(_) | Values::U64(_) => ps.native_type(n),
                    _ => None,
                };
                let code = type_code_for(values, native)?;
                ar.field("type", &(code as i8))?;
                match values {
                    Values::Bool(v) => ar.field("value", v)?,
                    Values::I8(v) if code == b'c' => {
                        ar.field_as("value", TypeId::of::<VecCharClass>(), v)?
                    }
                    Values::I64(v) if code == b'x' => {
                        ar.field_as("value", TypeId::of::<VecLongLongClass>(), v)?
                    }
                    Values::U64(v) if code == b'X' => {
                        ar.field_as("value", TypeId::of::<VecULongLongClass>(), v)?
                    }
                    Values::I8(v) => ar.field("value", v)?,
                    Values::U8(v) => ar.field("value", v)?,
                    Values::I16(v) => ar.field("value", v)?,
                    Values::U16(v) => ar.field("value", v)?,
                    Values::I32(v) => ar.field("value", v)?,
                    Values::U32(v) => ar.field("value", v)?,
                    Values::I64(v) => ar.field("value", v)?,
                    Values::U64(v) => ar.field("value", v)?,
                    Values::F32(v) => ar.field("value", v)?,
                    Values::F64(v) => ar.field("value", v)?,
                    Values::String(v) => ar.field("value", v)?,
                    Values::DateTime(v) => {
                        let ns: Vec<i64> = v.iter().map(|d| d.nsecs(Timescale::Tai)).collect();
                        ar.field("value", &ns)?
                    }
                    Values::PropertySet(_) => unreachable!("type_code rejected it"),
                }
            }
            Ok(())
        },
    )
}

/// Reads a PropertySet written as the NVP `name`. The `Persistable` base's
/// tracking is read from the archive; only `layout.nitems_size_t` matters
/// (and only for binary archives).
pub fn load_property_set(
    ar: &mut IArchive<'_>,
    name: &str,
    layout: &PropertySetLayout,
) -> Result<PropertySet> {
    let pinfo = persistable_info(layout.persistable_tracked);
    ar.class_field(
        name,
        TypeId::of::<PropertySetClass>(),
        &PROPERTY_SET,
        |ar, _| {
            ar.class_field("base", TypeId::of::<PersistableClass>(), &pinfo, |_, _| {
                Ok(())
            })?;
            let nitems: u64 = if layout.nitems_size_t {
                ar.field::<u64>("nitems")?
            } else {
                let n = ar.field::<i32>("nitems")?;
                u64::try_from(n).map_err(|_| ArchiveError::Malformed {
                    offset: 0,
                    message: format!("negative item count {n}"),
                })?
            };
            ar.check_count(
                usize::try_from(nitems).unwrap_or(usize::MAX),
                3,
                "PropertySet items",
            )?;
            // At most `nitems` top-level names (fewer when names nest);
            // capped, so a corrupt count cannot reserve much.
            let mut ps = PropertySet::with_capacity((nitems as usize).min(1024));
            for _ in 0..nitems {
                let key: String = ar.field("name")?;
                let code = ar.field::<i8>("type")? as u8;
                let values: Values = match code {
                    b'b' => ar.field::<Vec<bool>>("value")?.into(),
                    b'c' => ar
                        .field_as::<Vec<i8>>("value", TypeId::of::<VecCharClass>())?
                        .into(),
                    b'y' => ar.field::<Vec<i8>>("value")?.into(),
                    b'C' => ar.field::<Vec<u8>>("value")?.into(),
                    b'w' => ar.field::<Vec<i16>>("value")?.into(),
                    b'W' => ar.field::<Vec<u16>>("value")?.into(),
                    b'i' => ar.field::<Vec<i32>>("value")?.into(),
                    b'I' => ar.field::<Vec<u32>>("value")?.into(),
                    b'l' => ar.field::<Vec<i64>>("value")?.into(),
                    b'x' => ar
                        .field_as::<Vec<i64>>("value", TypeId::of::<VecLongLongClass>())?
                        .into(),
                    b'L' => ar.field::<Vec<u64>>("value")?.into(),
                    b'X' => ar
                        .field_as::<Vec<u64>>("value", TypeId::of::<VecULongLongClass>())?
                        .into(),
                    b'f' => ar.field::<Vec<f32>>("value")?.into(),
                    b'd' => ar.field::<Vec<f64>>("value")?.into(),
                    b's' => ar.field::<Vec<String>>("value")?.into(),
                    b'T' => Values::DateTime(
                        ar.field::<Vec<i64>>("value")?
                            .into_iter()
                            .map(|ns| DateTime::from_nsecs(ns, Timescale::Tai))
                            .collect(),
                    ),
                    other => {
                        return Err(ArchiveError::Unsupported(format!(
                            "PropertySet item {key:?} has type code {:?}, which is not supported",
                            other as char
                        )))
                    }
                };
                if values.is_empty() {
                    // A PropertySet name always holds at least one value.
                    continue;
                }
                // The default codes (c, x, X) need no record.
                let native = match code {
                    b'y' | b'l' | b'L' => native_type_of(code),
                    _ => None,
                };
                let kept = native.map(|_| key.clone());
                ps.set_owned(key, values)
                    .map_err(|e| ArchiveError::Malformed {
                        offset: 0,
                        message: format!("PropertySet item: {e}"),
                    })?;
                if let (Some(t), Some(k)) = (native, kept) {
                    ps.set_native_type(&k, t)
                        .map_err(|e| ArchiveError::Malformed {
                            offset: 0,
                            message: format!("PropertySet item: {e}"),
                        })?;
                }
            }
            Ok(ps)
        },
    )
}

// ---- legacy layouts (2007–2009) ---------------------------------------------

/// The two layouts LSST's archives had before the `nitems` one that
/// [`load_property_set`] reads; both hold only `bool`, `int`, `double` and
/// `std::string` values (type codes `b`, `i`, `d`, `s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyLayout {
    /// A PropertySet of 2008–2009: its `Persistable` base, `names` (a
    /// `std::vector<std::string>` of every leaf name), then for each name its
    /// `type` code and `value` (a `std::vector` of the values).
    Names,
    /// A DataProperty (PropertySet's predecessor, 2007–2008): its
    /// `Persistable` base, `name` (`std::string`), `isANode` (`bool`), then
    /// for a node its `collection` (a `std::list` of `boost::shared_ptr` to
    /// child DataProperties), else its `type` code and one `value`.
    DataProperty,
}

fn legacy_values(ar: &mut IArchive<'_>, key: &str, code: u8, vector: bool) -> Result<Values> {
    macro_rules! read {
        ($t:ty) => {
            if vector {
                ar.field::<Vec<$t>>("value")?.into()
            } else {
                vec![ar.field::<$t>("value")?].into()
            }
        };
    }
    Ok(match code {
        b'b' => read!(bool),
        b'i' => read!(i32),
        b'd' => read!(f64),
        b's' => read!(String),
        other => {
            return Err(ArchiveError::Unsupported(format!(
                "item {key:?} has type code {:?}, which is not supported in a legacy archive",
                other as char
            )))
        }
    })
}

fn add_values(ps: &mut PropertySet, key: &str, values: Values) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    ps.add(key, values).map_err(|e| ArchiveError::Malformed {
        offset: 0,
        message: format!("item {key:?}: {e}"),
    })
}

/// One DataProperty as read: a named leaf or a node of children.
struct DataPropertyNode {
    name: String,
    value: DpValue,
}

enum DpValue {
    Leaf(Values),
    Node(Vec<SharedPtr<DataPropertyNode>>),
}

/// `std::list<boost::shared_ptr<DataProperty>>`: a count, an item_version
/// (not in library version 3), then the pointers.
struct DpChildren(Vec<SharedPtr<DataPropertyNode>>);

impl BoostSerialize for DpChildren {
    fn class_info() -> ClassInfo {
        ClassInfo::new("std::list")
    }
    fn save(&self, _ar: &mut OArchive<'_>) -> Result<()> {
        Err(ArchiveError::Unsupported(
            "DataProperty archives are read only".into(),
        ))
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        let n = ar.read_count()?;
        if ar.has_item_version() {
            ar.read_item_version()?;
        }
        ar.check_count(n, 1, "DataProperty children")?;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(ar.field("item")?);
        }
        Ok(DpChildren(v))
    }
}

impl BoostSerialize for DataPropertyNode {
    fn class_info() -> ClassInfo {
        // Written through shared pointers, so tracked.
        ClassInfo::new("DataProperty").tracked(true)
    }
    fn save(&self, _ar: &mut OArchive<'_>) -> Result<()> {
        Err(ArchiveError::Unsupported(
            "DataProperty archives are read only".into(),
        ))
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.class_field(
            "base",
            TypeId::of::<PersistableClass>(),
            &persistable_info(true),
            |_, _| Ok(()),
        )?;
        let name: String = ar.field("name")?;
        let value = if ar.field::<bool>("isANode")? {
            DpValue::Node(ar.field::<DpChildren>("collection")?.0)
        } else {
            let code = ar.field::<i8>("type")? as u8;
            DpValue::Leaf(legacy_values(ar, &name, code, false)?)
        };
        Ok(DataPropertyNode { name, value })
    }
}

fn flatten(
    node: &DataPropertyNode,
    prefix: &str,
    ps: &mut PropertySet,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(ArchiveError::Malformed {
            offset: 0,
            message: "DataProperty nesting too deep".into(),
        });
    }
    let key = if prefix.is_empty() {
        node.name.clone()
    } else {
        format!("{prefix}.{}", node.name)
    };
    match &node.value {
        DpValue::Leaf(v) => add_values(ps, &key, v.clone()),
        DpValue::Node(children) => {
            for c in children.iter().filter_map(|c| c.get()) {
                flatten(c, &key, ps, depth + 1)?;
            }
            Ok(())
        }
    }
}

/// Reads a PropertySet written as the NVP `name` in one of the
/// [`LegacyLayout`]s. A DataProperty's root name is dropped: its children
/// become the PropertySet's names (a nested node's children get dotted
/// names), and children of the same name append their values in order.
pub fn load_legacy_property_set(
    ar: &mut IArchive<'_>,
    name: &str,
    layout: LegacyLayout,
) -> Result<PropertySet> {
    match layout {
        LegacyLayout::DataProperty => {
            let root: DataPropertyNode = ar.field(name)?;
            let mut ps = PropertySet::new();
            match &root.value {
                DpValue::Leaf(v) => add_values(&mut ps, &root.name, v.clone())?,
                DpValue::Node(children) => {
                    for c in children.iter().filter_map(|c| c.get()) {
                        flatten(c, "", &mut ps, 0)?;
                    }
                }
            }
            Ok(ps)
        }
        LegacyLayout::Names => ar.class_field(
            name,
            TypeId::of::<PropertySetClass>(),
            &PROPERTY_SET,
            |ar, _| {
                ar.class_field(
                    "base",
                    TypeId::of::<PersistableClass>(),
                    &persistable_info(true),
                    |_, _| Ok(()),
                )?;
                let names: Vec<String> = ar.field("names")?;
                let mut ps = PropertySet::with_capacity(names.len().min(1024));
                for key in &names {
                    let code = ar.field::<i8>("type")? as u8;
                    let values = legacy_values(ar, key, code, true)?;
                    add_values(&mut ps, key, values)?;
                }
                Ok(ps)
            },
        ),
    }
}
