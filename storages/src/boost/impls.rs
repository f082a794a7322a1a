//! [`BoostSerialize`] for primitives, strings, vectors, maps, pairs and optionals.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use super::iarchive::FromLe;
use super::{ArchiveKind, BoostSerialize, ClassInfo, IArchive, Level, OArchive, Result};

macro_rules! int_impl {
    ($($t:ty),*) => {$(
        impl BoostSerialize for $t {
            const LEVEL: Level = Level::Primitive;
            const ARITHMETIC: bool = true;
            fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
                ar.write_int(*self)
            }
            fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
                ar.read_int::<$t>(stringify!($t))
            }
            fn save_items(items: &[Self], ar: &mut OArchive<'_>) -> Result<()> {
                save_arith(items, ar)
            }
            fn load_items(n: usize, ar: &mut IArchive<'_>) -> Result<Vec<Self>> {
                load_arith(n, ar)
            }
        }
        impl Arith for $t {
            fn from_le_slice(b: &[u8]) -> Self { <$t as FromLe>::from_le(b) }
            fn extend_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
        }
    )*};
}

/// Plain numbers whose every bit pattern is valid.
#[allow(dead_code)] // the byte converters are used on big-endian targets only
trait Arith: BoostSerialize + Copy {
    fn from_le_slice(b: &[u8]) -> Self;
    fn extend_le(self, out: &mut Vec<u8>);
}

int_impl!(i8, u8, i16, u16, i32, u32, i64, u64);

impl Arith for f64 {
    fn from_le_slice(b: &[u8]) -> Self {
        f64::from_bits(<u64 as FromLe>::from_le(b))
    }
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Arith for f32 {
    fn from_le_slice(b: &[u8]) -> Self {
        f32::from_bits(<u32 as FromLe>::from_le(b))
    }
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}

fn save_arith<T: Arith>(items: &[T], ar: &mut OArchive<'_>) -> Result<()> {
    if ar.kind() != ArchiveKind::Binary {
        for it in items {
            ar.field("item", it)?;
        }
        return Ok(());
    }
    #[cfg(target_endian = "little")]
    {
        // SAFETY: T is a plain integer or float type (no padding, every byte
        // initialised); on a little-endian target its memory is exactly the
        // little-endian byte layout Boost's array optimisation writes.
        let bytes = unsafe {
            std::slice::from_raw_parts(items.as_ptr() as *const u8, std::mem::size_of_val(items))
        };
        ar.raw_block(bytes)
    }
    #[cfg(not(target_endian = "little"))]
    {
        let mut out = Vec::with_capacity(std::mem::size_of_val(items));
        for it in items {
            it.extend_le(&mut out);
        }
        ar.raw_block(&out)
    }
}

fn load_arith<T: Arith>(n: usize, ar: &mut IArchive<'_>) -> Result<Vec<T>> {
    if ar.kind() != ArchiveKind::Binary {
        ar.check_count(n, 1, "vector elements")?;
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(ar.field("item")?);
        }
        return Ok(v);
    }
    let size = std::mem::size_of::<T>();
    ar.check_count(n, size, "vector elements")?;
    let bytes = ar.raw_block(n * size, "vector elements")?;
    #[cfg(target_endian = "little")]
    {
        let mut v: Vec<T> = Vec::with_capacity(n);
        // SAFETY: `bytes` holds exactly n * size_of::<T>() bytes (checked by
        // raw_block); T is a plain number type for which every bit pattern is
        // valid, and on a little-endian target the archive's bytes are its
        // memory layout. The capacity is n, so the copy stays in bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr() as *mut u8, n * size);
            v.set_len(n);
        }
        Ok(v)
    }
    #[cfg(not(target_endian = "little"))]
    {
        Ok(bytes.chunks_exact(size).map(T::from_le_slice).collect())
    }
}

impl BoostSerialize for f64 {
    const LEVEL: Level = Level::Primitive;
    const ARITHMETIC: bool = true;
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_f64(*self)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.read_f64()
    }
    fn save_items(items: &[Self], ar: &mut OArchive<'_>) -> Result<()> {
        save_arith(items, ar)
    }
    fn load_items(n: usize, ar: &mut IArchive<'_>) -> Result<Vec<Self>> {
        load_arith(n, ar)
    }
}

impl BoostSerialize for f32 {
    const LEVEL: Level = Level::Primitive;
    const ARITHMETIC: bool = true;
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_f32(*self)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.read_f32()
    }
    fn save_items(items: &[Self], ar: &mut OArchive<'_>) -> Result<()> {
        save_arith(items, ar)
    }
    fn load_items(n: usize, ar: &mut IArchive<'_>) -> Result<Vec<Self>> {
        load_arith(n, ar)
    }
}

impl BoostSerialize for bool {
    const LEVEL: Level = Level::Primitive;
    const ARITHMETIC: bool = true;
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_bool(*self)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.read_bool()
    }
}

/// `std::size_t` (8 bytes on LP64).
impl BoostSerialize for usize {
    const LEVEL: Level = Level::Primitive;
    const ARITHMETIC: bool = true;
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_int(*self as u64)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        let v = ar.read_int::<u64>("size_t")?;
        usize::try_from(v)
            .map_err(|_| super::ArchiveError::Unsupported(format!("size_t {v} does not fit")))
    }
}

impl BoostSerialize for String {
    const LEVEL: Level = Level::Primitive;
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_string(self.as_bytes())
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        let b = ar.read_string()?;
        String::from_utf8(b).map_err(|e| super::ArchiveError::Malformed {
            offset: 0,
            message: format!("string is not UTF-8: {e}"),
        })
    }
}

/// `std::vector<T>`.
impl<T: BoostSerialize> BoostSerialize for Vec<T> {
    const LEVEL: Level = if T::ARITHMETIC {
        Level::Serializable
    } else {
        Level::ClassInfo
    };
    fn class_info() -> ClassInfo {
        ClassInfo::new("std::vector")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_count(self.len())?;
        let is_bool = TypeId::of::<T>() == TypeId::of::<bool>();
        if has_item_version::<T>(is_bool, ar.kind()) {
            ar.write_item_version(item_version::<T>())?;
        }
        T::save_items(self, ar)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        let n = ar.read_count()?;
        let is_bool = TypeId::of::<T>() == TypeId::of::<bool>();
        let lib = ar.library_version();
        // Library version 3 wrote no item_version; the binary array
        // optimisation of versions 4 and 5 wrote one (Boost's
        // BOOST_SERIALIZATION_VECTOR_VERSIONED).
        let versioned_array =
            T::ARITHMETIC && !is_bool && ar.kind() == ArchiveKind::Binary && (4..=5).contains(&lib);
        if ar.has_item_version() && (versioned_array || has_item_version::<T>(is_bool, ar.kind())) {
            ar.read_item_version()?;
        }
        T::load_items(n, ar)
    }
}

/// `vector<bool>` never has an item_version; arithmetic vectors have none in
/// binary archives (the array optimisation).
fn has_item_version<T: BoostSerialize>(is_bool: bool, kind: ArchiveKind) -> bool {
    !(is_bool || (T::ARITHMETIC && kind == ArchiveKind::Binary))
}

fn item_version<T: BoostSerialize>() -> u32 {
    if T::LEVEL == Level::ClassInfo {
        T::class_info().version
    } else {
        0
    }
}

struct MapItem<K, V>(PhantomData<fn() -> (K, V)>);

const PAIR: ClassInfo = ClassInfo::new("std::pair");

/// `std::map<K, V>` (items in key order, each a `std::pair<const K, V>`).
impl<K: BoostSerialize + Ord, V: BoostSerialize> BoostSerialize for BTreeMap<K, V> {
    fn class_info() -> ClassInfo {
        ClassInfo::new("std::map")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.write_count(self.len())?;
        ar.write_item_version(PAIR.version)?;
        let tid = TypeId::of::<MapItem<K, V>>();
        for (k, v) in self {
            ar.class_field("item", tid, &PAIR, k as *const K as usize, |ar| {
                ar.field("first", k)?;
                ar.field("second", v)
            })?;
        }
        Ok(())
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        let n = ar.read_count()?;
        if ar.has_item_version() {
            ar.read_item_version()?;
        }
        ar.check_count(n, 1, "map items")?;
        let tid = TypeId::of::<MapItem<K, V>>();
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let (k, v) = ar.class_field("item", tid, &PAIR, |ar, _| {
                Ok((ar.field::<K>("first")?, ar.field::<V>("second")?))
            })?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// `std::pair<A, B>`.
impl<A: BoostSerialize, B: BoostSerialize> BoostSerialize for (A, B) {
    fn class_info() -> ClassInfo {
        PAIR
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("first", &self.0)?;
        ar.field("second", &self.1)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok((ar.field("first")?, ar.field("second")?))
    }
}

/// `boost::optional<T>` (class version 1: `initialized`, then `value`).
impl<T: BoostSerialize> BoostSerialize for Option<T> {
    fn class_info() -> ClassInfo {
        ClassInfo::new("boost::optional").version(1)
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("initialized", &self.is_some())?;
        if let Some(v) = self {
            ar.field("value", v)?;
        }
        Ok(())
    }
    fn load(ar: &mut IArchive<'_>, version: u32) -> Result<Self> {
        if !ar.field::<bool>("initialized")? {
            return Ok(None);
        }
        if version == 0 && ar.library_version() > 3 {
            ar.read_item_version()?;
        }
        Ok(Some(ar.field("value")?))
    }
}

/// A `std::shared_ptr<T>` member as Boost (1.56 and later, including 1.74
/// and 1.81) writes it: an object of its own class — class version 1,
/// untracked — whose one member `px` is a raw pointer to `T` (null, a new
/// object, or a reference to one written before, which readers give back as
/// the same shared `Arc`). Class `T` should be tracked
/// ([`ClassInfo::tracked`]), as C++ tracks every class it serializes
/// through pointers.
///
/// ```
/// use std::sync::Arc;
/// use daf_storages::boost::{ArchiveKind, BoostSerialize, ClassInfo, IArchive, OArchive, Result, SharedPtr};
/// #[derive(Debug, PartialEq)]
/// struct Rec { id: i32 }
/// impl BoostSerialize for Rec {
///     fn class_info() -> ClassInfo { ClassInfo::new("Rec").tracked(true) }
///     fn save(&self, ar: &mut OArchive<'_>) -> Result<()> { ar.field("id", &self.id) }
///     fn load(ar: &mut IArchive<'_>, _v: u32) -> Result<Self> { Ok(Rec { id: ar.field("id")? }) }
/// }
/// let a = SharedPtr::new(Rec { id: 9 });
/// let bytes = OArchive::to_bytes(ArchiveKind::Text, 18, |ar| {
///     ar.field("a", &a)?;
///     ar.field("b", &a.clone())?;
///     ar.field("n", &SharedPtr::<Rec>::null())
/// })
/// .unwrap();
/// // What C++ writes for three std::shared_ptr<Rec> members a, b = a, n = nullptr.
/// assert_eq!(
///     std::str::from_utf8(&bytes).unwrap(),
///     "22 serialization::archive 18 0 1 1 1 0\n0 9 1 0 -1\n"
/// );
/// let (a2, b2, n2): (SharedPtr<Rec>, SharedPtr<Rec>, SharedPtr<Rec>) =
///     IArchive::from_bytes(&bytes, |ar| Ok((ar.field("a")?, ar.field("b")?, ar.field("n")?))).unwrap();
/// assert!(Arc::ptr_eq(a2.get().unwrap(), b2.get().unwrap()));
/// assert_eq!(a2.get().unwrap().id, 9);
/// assert!(n2.get().is_none());
/// ```
#[derive(Debug)]
pub struct SharedPtr<T>(pub Option<std::sync::Arc<T>>);

impl<T> Clone for SharedPtr<T> {
    fn clone(&self) -> Self {
        SharedPtr(self.0.clone())
    }
}

impl<T> Default for SharedPtr<T> {
    fn default() -> Self {
        SharedPtr(None)
    }
}

impl<T> SharedPtr<T> {
    /// A pointer to a new object.
    pub fn new(v: T) -> Self {
        SharedPtr(Some(std::sync::Arc::new(v)))
    }
    /// The null pointer.
    pub fn null() -> Self {
        SharedPtr(None)
    }
    /// The object pointed to, if any.
    pub fn get(&self) -> Option<&std::sync::Arc<T>> {
        self.0.as_ref()
    }
}

impl<T> From<Option<std::sync::Arc<T>>> for SharedPtr<T> {
    fn from(p: Option<std::sync::Arc<T>>) -> Self {
        SharedPtr(p)
    }
}

impl<T: BoostSerialize> BoostSerialize for SharedPtr<T> {
    fn class_info() -> ClassInfo {
        ClassInfo::new("std::shared_ptr").version(1)
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.pointer("px", self.0.as_ref())
    }
    fn load(ar: &mut IArchive<'_>, version: u32) -> Result<Self> {
        if version < 1 {
            return Err(super::ArchiveError::Unsupported(
                "std::shared_ptr of class version 0 (Boost before 1.56 wrote boost::shared_ptr's old layout)".into(),
            ));
        }
        Ok(SharedPtr(ar.pointer("px")?))
    }
}
