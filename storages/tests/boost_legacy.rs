//! Archives of library versions 3 to 7 (Boost 1.34 to 1.44), the versions
//! LSST's 2007–2009 archives were written at.
//!
//! No Boost that old is at hand, so the goldens are built here byte by byte
//! from the format as Boost's own readers still decode it (the
//! `library_version_type` cases of `basic_binary_iarchive.hpp`, `vector.hpp`,
//! `list.hpp`, `map.hpp`) and from LSST's formatters of the time; each piece
//! is commented. What differs from version 8 on:
//!
//! | field                          | 3     | 4–5   | 6     | 7              | 8+    |
//! |--------------------------------|-------|-------|-------|----------------|-------|
//! | binary header version          | 1 B   | 1 B   | 1 B + 0 | 1 B (+ 0)    | u16   |
//! | binary class version           | u8    | u8    | u16   | u8             | u32   |
//! | binary collection count        | u32   | u32   | u64   | u64            | u64   |
//! | collection item_version        | none  | u32   | u32   | u32            | u32   |
//! | binary vector<arith> item_ver. | none  | u32   | none  | none           | none  |
//!
//! Text archives differ only in the item_version row.

use std::collections::BTreeMap;

use daf_base::PropertySet;
use daf_storages::boost::property_set::{
    load_legacy_property_set, load_property_set, LegacyLayout, PropertySetLayout,
};
use daf_storages::boost::{ArchiveError, ArchiveKind, IArchive, MIN_READ_VERSION};

/// Little-endian byte builder for binary goldens.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn f64(mut self, v: f64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `std::string`: a `size_t` length (8 bytes at every version), then the bytes.
    fn string(self, s: &str) -> Self {
        let mut b = self.u64(s.len() as u64);
        b.0.extend_from_slice(s.as_bytes());
        b
    }
    /// The binary header, the library version written as `version_bytes`.
    fn header(self, version_bytes: &[u8]) -> Self {
        let mut b = self.string("serialization::archive");
        b.0.extend_from_slice(version_bytes);
        // sizeof int, long, float, double on LP64; then int 1 (endianness).
        b.u8(4).u8(8).u8(4).u8(8).i32(1)
    }
}

fn names_layout(bytes: &[u8]) -> PropertySet {
    IArchive::from_bytes(bytes, |ar| {
        load_legacy_property_set(ar, "propertySet", LegacyLayout::Names)
    })
    .unwrap()
}

fn data_property(bytes: &[u8]) -> PropertySet {
    IArchive::from_bytes(bytes, |ar| {
        load_legacy_property_set(ar, "dataProperty", LegacyLayout::DataProperty)
    })
    .unwrap()
}

#[test]
fn oldest_version_read_is_3() {
    assert_eq!(MIN_READ_VERSION, 3);
    let e = IArchive::new(b"22 serialization::archive 2 0 0\n").unwrap_err();
    assert!(
        matches!(e, ArchiveError::VersionNotSupported { found: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("3 to 19"), "{e}");
}

/// A text PropertySet at library version 5 in the layout of the pex_harness
/// `inputoutput` example's input (LSST's PropertySetFormatter of 2008–2009,
/// with a `names` vector), two string names here.
#[test]
fn text_lib5_property_set_names_layout() {
    let text = concat!(
        "22 serialization::archive 5 ",
        "0 0 ",                 // PropertySet: tracking 0, class version 0
        "1 0\n0 ",              // Persistable base: tracked, version 0; object id 0
        "0 0 ",                 // vector<string> (first seen): tracking 0, version 0
        "2 0 ",                 // names: count 2, item_version 0 (present after lib 3)
        "5 visit ",             // names[0]
        "4 note ",              // names[1]
        "115 ",                 // type 's' for "visit"
        "1 0 6 fov391 ",        // value: vector<string> count 1, item_version 0
        "115 ",                 // type 's' for "note"
        "2 0 1 a 8 b c d ef\n", // value: "a", "b c d ef" (spaces kept)
    );
    let ps = names_layout(text.as_bytes());
    assert_eq!(ps.get::<String>("visit").unwrap(), "fov391");
    assert_eq!(
        ps.get_array::<String>("note").unwrap(),
        vec!["a".to_string(), "b c d ef".to_string()]
    );
    assert_eq!(ps.names(), vec!["visit".to_string(), "note".to_string()]);
}

/// The same layout in a binary archive at library version 5: one-byte class
/// versions, four-byte counts, and the item_version that versions 4 and 5
/// wrote even in the array optimisation of `vector<int>`.
#[test]
fn binary_lib5_property_set_names_layout() {
    let b = Bytes::default()
        .header(&[5]) // version 5: one byte
        .u8(0) // PropertySet tracking
        .u8(0) // PropertySet class version (one byte)
        .u8(1) // Persistable tracking
        .u8(0) // Persistable class version
        .u32(0) // object id 0
        .u8(0) // vector<string> tracking
        .u8(0) // vector<string> class version
        .u32(3) // names: count (unsigned int)
        .u32(0) // item_version
        .string("ccd")
        .string("exptime")
        .string("ok")
        .u8(b'i') // type of ccd
        .u32(2) // vector<int>: count
        .u32(0) // item_version (versions 4 and 5 only)
        .i32(13)
        .i32(-7)
        .u8(b'd') // type of exptime
        .u32(1)
        .u32(0)
        .f64(15.5)
        .u8(b'b') // type of ok: vector<bool>, count then one byte each
        .u32(1)
        .u8(1);
    let ps = names_layout(&b.0);
    assert_eq!(ps.get_array::<i32>("ccd").unwrap(), vec![13, -7]);
    assert_eq!(ps.get::<f64>("exptime").unwrap(), 15.5);
    assert!(ps.get::<bool>("ok").unwrap());
}

/// A text DataProperty at library version 3 (no item_version anywhere), in
/// the shape of pex_harness's `tests/inputImage.fov391.0`: a root node whose
/// children are `boost::shared_ptr`s to leaves, plus a nested node here.
#[test]
fn text_lib3_data_property() {
    let text = concat!(
        "22 serialization::archive 3 ",
        "1 0\n0 ",                  // DataProperty: tracked, version 0; object id 0
        "1 0\n1 ",                  // Persistable base: tracked, version 0; object id 1
        "4 root 1 ",                // name "root", isANode true
        "0 0 3 ",                   // std::list (first seen): tracking 0, version 0; count 3
        "0 1 ",                     // boost::shared_ptr (first seen): tracking 0, version 1
        "0\n2\n3 ",                 // px: class id 0 (DataProperty), object 2; its base, object 3
        "3 str 0 115 3 foo ",       // name, leaf, type 's', value
        "0\n4\n5 3 num 0 105 42 ",  // second child: an int
        "0\n6\n7 3 ccd 1 ",         // third child: a node
        "2 ",                       // its list: count 2
        "0\n8\n9 1 n 0 105 13 ",    // ccd.n = 13
        "0\n10\n11 1 n 0 105 14\n", // ccd.n again: appended
    );
    let ps = data_property(text.as_bytes());
    assert_eq!(ps.get::<String>("str").unwrap(), "foo");
    assert_eq!(ps.get::<i32>("num").unwrap(), 42);
    assert_eq!(ps.get_array::<i32>("ccd.n").unwrap(), vec![13, 14]);
}

/// A binary DataProperty at library version 4: one-byte class versions,
/// four-byte counts, and the list's item_version.
#[test]
fn binary_lib4_data_property() {
    let b = Bytes::default()
        .header(&[4])
        .u8(1) // DataProperty tracking
        .u8(0) // its class version
        .u32(0) // object id 0
        .u8(1) // Persistable tracking
        .u8(0) // its class version
        .u32(1) // object id 1
        .string("sample")
        .u8(1) // isANode
        .u8(0) // std::list tracking
        .u8(0) // its class version
        .u32(1) // count (unsigned int)
        .u32(0) // item_version
        .u8(0) // boost::shared_ptr tracking
        .u8(1) // its class version 1
        .u16(0) // px: class id 0 (always 16 bits)
        .u32(2) // object id 2
        .u32(3) // its Persistable base: object id 3
        .string("exptime")
        .u8(0) // leaf
        .u8(b'd')
        .f64(30.0);
    let ps = data_property(&b.0);
    assert_eq!(ps.get::<f64>("exptime").unwrap(), 30.0);
    assert_eq!(ps.names(), vec!["exptime".to_string()]);
}

/// Today's PropertySet layout (an `nitems` count) in binary archives of
/// versions 6 and 7: the header's version byte followed by a zero (always
/// at 6, optional at 7), two-byte (6) or one-byte (7) class versions,
/// eight-byte counts and no item_version in `vector<int>`.
#[test]
fn binary_lib6_and_lib7_nitems_layout() {
    for (lib, version_bytes) in [(6u16, &[6u8, 0][..]), (7, &[7, 0][..]), (7, &[7][..])] {
        let class_version = |b: Bytes| if lib == 6 { b.u16(0) } else { b.u8(0) };
        let mut b = Bytes::default().header(version_bytes).u8(0); // PropertySet tracking
        b = class_version(b);
        b = b.u8(1); // Persistable tracking
        b = class_version(b);
        b = b
            .u32(0) // object id
            .u64(2) // nitems (size_t)
            .string("visit")
            .u8(b'i')
            .u64(1) // vector<int>: count, no item_version
            .i32(391)
            .string("filter")
            .u8(b's')
            .u8(0); // vector<string> tracking
        b = class_version(b);
        b = b.u64(1).u32(0).string("r"); // count, item_version, "r"
        let mut ar = IArchive::new(&b.0).unwrap();
        assert_eq!(ar.library_version(), lib);
        let ps = load_property_set(&mut ar, "propertySet", &PropertySetLayout::default()).unwrap();
        ar.finish().unwrap();
        assert_eq!(ps.get::<i32>("visit").unwrap(), 391, "lib {lib}");
        assert_eq!(ps.get::<String>("filter").unwrap(), "r", "lib {lib}");
    }
}

/// Generic collections: a `std::map<int, std::string>` and a
/// `std::vector<std::string>` in text archives of version 3 (no
/// item_version) and 7 (item_version).
#[test]
fn text_collections_by_version() {
    let v3 = "22 serialization::archive 3 0 0 2 0 0 1 1 a 2 1 b 0 0 1 1 c\n";
    let v7 = "22 serialization::archive 7 0 0 2 0 0 0 1 1 a 2 1 b 0 0 1 0 1 c\n";
    for (lib, text) in [(3, v3), (7, v7)] {
        let (m, v): (BTreeMap<i32, String>, Vec<String>) =
            IArchive::from_bytes(text.as_bytes(), |ar| Ok((ar.field("m")?, ar.field("v")?)))
                .unwrap_or_else(|e| panic!("lib {lib}: {e}"));
        assert_eq!(m.get(&1).map(String::as_str), Some("a"), "lib {lib}");
        assert_eq!(m.get(&2).map(String::as_str), Some("b"), "lib {lib}");
        assert_eq!(v, vec!["c".to_string()], "lib {lib}");
    }
}

/// Legacy archives with unsupported content give typed errors.
#[test]
fn legacy_bad_input_is_an_error() {
    // A DataProperty leaf of type 'p' (a Persistable pointer).
    let text = "22 serialization::archive 3 1 0\n0 1 0\n1 1 x 0 112 0\n";
    let e = IArchive::from_bytes(text.as_bytes(), |ar| {
        load_legacy_property_set(ar, "d", LegacyLayout::DataProperty)
    })
    .unwrap_err();
    assert!(matches!(e, ArchiveError::Unsupported(_)), "{e}");
    // Truncated after the header.
    let e = IArchive::from_bytes(b"22 serialization::archive 5 0 0 1", |ar| {
        load_legacy_property_set(ar, "p", LegacyLayout::Names)
    })
    .unwrap_err();
    assert!(matches!(e, ArchiveError::Truncated { .. }), "{e}");
    // Every prefix of a binary golden fails cleanly.
    let b = Bytes::default()
        .header(&[5])
        .u8(0)
        .u8(0)
        .u8(1)
        .u8(0)
        .u32(0)
        .u8(0)
        .u8(0)
        .u32(1)
        .u32(0)
        .string("a")
        .u8(b'i')
        .u32(1)
        .u32(0)
        .i32(1);
    assert_eq!(names_layout(&b.0).get::<i32>("a").unwrap(), 1);
    for n in 0..b.0.len() {
        assert!(IArchive::from_bytes(&b.0[..n], |ar| {
            load_legacy_property_set(ar, "p", LegacyLayout::Names)
        })
        .is_err());
    }
    let _ = ArchiveKind::Binary;
}
