//! The fixture cases of tests/data/boost/MANIFEST.md as Rust types, shared by
//! the golden, bad-input and live C++ round-trip tests.
#![allow(dead_code, clippy::excessive_precision)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use daf_base::PropertySet;
use daf_storages::boost::property_set::{load_property_set, save_property_set, PropertySetLayout};
use daf_storages::boost::{
    BoostSerialize, ClassInfo, Exports, IArchive, OArchive, PolyBase, Result,
};

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/boost")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub id: i32,
    pub name: String,
    pub v: Vec<f64>,
}

impl BoostSerialize for Rec {
    fn class_info() -> ClassInfo {
        // Tracked: the C++ program also writes Rec through pointers.
        ClassInfo::new("Rec").tracked(true)
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("id", &self.id)?;
        ar.field("name", &self.name)?;
        ar.field("v", &self.v)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok(Rec {
            id: ar.field("id")?,
            name: ar.field("name")?,
            v: ar.field("v")?,
        })
    }
}

pub fn rec(id: i32, name: &str, v: &[f64]) -> Rec {
    Rec {
        id,
        name: name.into(),
        v: v.to_vec(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outer {
    pub r: Rec,
    pub xs: Vec<i32>,
    pub m: BTreeMap<String, i32>,
    pub p: (i32, f64),
}

impl BoostSerialize for Outer {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Outer")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("r", &self.r)?;
        ar.field("xs", &self.xs)?;
        ar.field("m", &self.m)?;
        ar.field("p", &self.p)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok(Outer {
            r: ar.field("r")?,
            xs: ar.field("xs")?,
            m: ar.field("m")?,
            p: ar.field("p")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecV2 {
    pub id: i32,
    pub name: String,
    pub extra: f64,
}

impl BoostSerialize for RecV2 {
    fn class_info() -> ClassInfo {
        ClassInfo::new("RecV2").version(3)
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("id", &self.id)?;
        ar.field("name", &self.name)?;
        ar.field("extra", &self.extra)
    }
    fn load(ar: &mut IArchive<'_>, version: u32) -> Result<Self> {
        let id = ar.field("id")?;
        let name = ar.field("name")?;
        // Versions before 2 had no `extra`.
        let extra = if version >= 2 {
            ar.field("extra")?
        } else {
            0.0
        };
        Ok(RecV2 { id, name, extra })
    }
}

pub trait Shape: PolyBase + Send + Sync + std::fmt::Debug {
    fn area(&self) -> f64;
    fn kind(&self) -> (&'static str, f64);
}

/// The abstract base: no data, appears as a base-class preamble.
pub struct ShapeBase;
impl BoostSerialize for ShapeBase {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Shape")
    }
    fn save(&self, _ar: &mut OArchive<'_>) -> Result<()> {
        Ok(())
    }
    fn load(_ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        Ok(ShapeBase)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Circle {
    pub r: f64,
}
impl BoostSerialize for Circle {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Circle").tracked(true).export("Circle")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.base("Shape", self, &ShapeBase)?;
        ar.field("r", &self.r)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.base::<ShapeBase>("Shape")?;
        Ok(Circle { r: ar.field("r")? })
    }
}
daf_storages::boost_poly_class!(Circle);
impl Shape for Circle {
    fn area(&self) -> f64 {
        std::f64::consts::PI * self.r * self.r
    }
    fn kind(&self) -> (&'static str, f64) {
        ("Circle", self.r)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Square {
    pub s: f64,
}
impl BoostSerialize for Square {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Square").tracked(true).export("Square")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.base("Shape", self, &ShapeBase)?;
        ar.field("s", &self.s)
    }
    fn load(ar: &mut IArchive<'_>, _version: u32) -> Result<Self> {
        ar.base::<ShapeBase>("Shape")?;
        Ok(Square { s: ar.field("s")? })
    }
}
daf_storages::boost_poly_class!(Square);
impl Shape for Square {
    fn area(&self) -> f64 {
        self.s * self.s
    }
    fn kind(&self) -> (&'static str, f64) {
        ("Square", self.s)
    }
}

pub fn shape_exports() -> Exports {
    let mut e = Exports::new();
    e.register::<dyn Shape, Circle>("Circle", |c| Arc::new(c));
    e.register::<dyn Shape, Square>("Square", |s| Arc::new(s));
    e
}

#[derive(Debug, Clone, PartialEq)]
pub struct Primitives {
    pub b: bool,
    pub c: i8,
    pub sc: i8,
    pub uc: u8,
    pub sh: i16,
    pub us: u16,
    pub i: i32,
    pub ui: u32,
    pub l: i64,
    pub ul: u64,
    pub ll: i64,
    pub f1: f32,
    pub f2: f32,
    pub d1: f64,
    pub d2: f64,
    pub s: String,
    pub e: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub vd: Vec<f64>,
    pub vi: Vec<i32>,
    pub vs: Vec<String>,
    pub vb: Vec<bool>,
    pub v64: Vec<i64>,
}

/// One fixture case: its values, as read or to be written.
#[derive(Debug, Clone)]
pub enum Case {
    Primitives(Primitives),
    Vectors(Vectors),
    Record(Rec, Rec),
    RecordVector(Vec<Rec>, Vec<Rec>),
    Nested(Outer),
    Versioned(RecV2),
    /// a, a_again, null
    Pointers(Option<Arc<Rec>>, Option<Arc<Rec>>, Option<Arc<Rec>>),
    /// v (shared so pointers can point at it), a, a_again, null
    PointersAfterValue(
        Arc<Rec>,
        Option<Arc<Rec>>,
        Option<Arc<Rec>>,
        Option<Arc<Rec>>,
    ),
    Polymorphic(Vec<Option<Arc<dyn Shape>>>),
    PropertySet(PropertySet, PropertySetLayout),
    LargeDoubles(Vec<f64>),
    Strings(Vec<(String, String)>),
    FloatEdge(Vec<f64>, Vec<f32>),
}

fn opt_eq<T: PartialEq>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => **x == **y,
        _ => false,
    }
}

impl PartialEq for Case {
    fn eq(&self, other: &Case) -> bool {
        use Case::*;
        match (self, other) {
            (Primitives(a), Primitives(b)) => {
                a.b == b.b
                    && a.c == b.c
                    && a.sc == b.sc
                    && a.uc == b.uc
                    && a.sh == b.sh
                    && a.us == b.us
                    && a.i == b.i
                    && a.ui == b.ui
                    && a.l == b.l
                    && a.ul == b.ul
                    && a.ll == b.ll
                    && a.f1.to_bits() == b.f1.to_bits()
                    && a.f2.to_bits() == b.f2.to_bits()
                    && a.d1.to_bits() == b.d1.to_bits()
                    && a.d2.to_bits() == b.d2.to_bits()
                    && a.s == b.s
                    && a.e == b.e
            }
            (Vectors(a), Vectors(b)) => a == b,
            (Record(a1, a2), Record(b1, b2)) => a1 == b1 && a2 == b2,
            (RecordVector(a1, a2), RecordVector(b1, b2)) => a1 == b1 && a2 == b2,
            (Nested(a), Nested(b)) => a == b,
            (Versioned(a), Versioned(b)) => a == b,
            (Pointers(a, b, c), Pointers(x, y, z)) => {
                opt_eq(a, x) && opt_eq(b, y) && opt_eq(c, z) && same_ptr(a, b) == same_ptr(x, y)
            }
            (PointersAfterValue(v, a, b, c), PointersAfterValue(v2, x, y, z)) => {
                **v == **v2
                    && opt_eq(a, x)
                    && opt_eq(b, y)
                    && opt_eq(c, z)
                    && points_to(a, v) == points_to(x, v2)
                    && points_to(b, v) == points_to(y, v2)
            }
            (Polymorphic(a), Polymorphic(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| match (x, y) {
                        (None, None) => true,
                        (Some(x), Some(y)) => {
                            x.kind().0 == y.kind().0 && x.kind().1.to_bits() == y.kind().1.to_bits()
                        }
                        _ => false,
                    })
            }
            (PropertySet(a, _), PropertySet(b, _)) => a == b,
            (LargeDoubles(a), LargeDoubles(b)) => a == b,
            (Strings(a), Strings(b)) => a == b,
            (FloatEdge(a, af), FloatEdge(b, bf)) => {
                a.iter()
                    .map(|x| x.to_bits())
                    .eq(b.iter().map(|x| x.to_bits()))
                    && af
                        .iter()
                        .map(|x| x.to_bits())
                        .eq(bf.iter().map(|x| x.to_bits()))
            }
            _ => false,
        }
    }
}

fn same_ptr<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if Arc::ptr_eq(x, y))
}
fn points_to<T>(a: &Option<Arc<T>>, v: &Arc<T>) -> bool {
    matches!(a, Some(x) if Arc::ptr_eq(x, v))
}

pub const CASES: [&str; 13] = [
    "primitives",
    "vectors",
    "record",
    "record_vector",
    "nested",
    "versioned",
    "pointers",
    "pointers_after_value",
    "polymorphic",
    "propertyset",
    "propertyset_lsst",
    "large_doubles",
    "strings",
];
pub const ALL_CASES: [&str; 14] = [
    "primitives",
    "vectors",
    "record",
    "record_vector",
    "nested",
    "versioned",
    "pointers",
    "pointers_after_value",
    "polymorphic",
    "propertyset",
    "propertyset_lsst",
    "large_doubles",
    "strings",
    "float_edge",
];

pub use daf_base::testing::manifest_property_set;

/// The values the MANIFEST lists for `case` (`variant` is "", "rec-untracked"
/// or "persistable-tracked").
pub fn expected(case: &str, variant: &str) -> Case {
    let ps_layout = |size_t: bool| PropertySetLayout {
        nitems_size_t: size_t,
        persistable_tracked: variant == "persistable-tracked",
    };
    match case {
        "primitives" => Case::Primitives(Primitives {
            b: true,
            c: 65,
            sc: -5,
            uc: 200,
            sh: -1234,
            us: 60000,
            i: 42,
            ui: 4_000_000_000,
            l: -9_000_000_000,
            ul: 18_000_000_000_000_000_000,
            ll: -3,
            f1: 1.5,
            f2: 0.1,
            d1: 0.1,
            d2: -2.5e300,
            s: "hello".into(),
            e: String::new(),
        }),
        "vectors" => Case::Vectors(Vectors {
            vd: vec![1.0, 2.5, -3.0],
            vi: vec![],
            vs: vec!["a".into(), "bc".into(), "".into()],
            vb: vec![true, false, true],
            v64: vec![1, -2, 3],
        }),
        "record" => Case::Record(rec(1, "one", &[0.5, -1.25]), rec(2, "two", &[])),
        "record_vector" => Case::RecordVector(
            vec![
                rec(10, "a", &[1.0]),
                rec(11, "bc", &[]),
                rec(12, "", &[2.0, 3.0]),
            ],
            vec![],
        ),
        "nested" => Case::Nested(Outer {
            r: rec(5, "inner", &[9.5]),
            xs: vec![1, 2, 3],
            m: [("alpha".to_string(), 1), ("beta".to_string(), -2)]
                .into_iter()
                .collect(),
            p: (7, 0.75),
        }),
        "versioned" => Case::Versioned(RecV2 {
            id: 3,
            name: "v2".into(),
            extra: 6.5,
        }),
        "pointers" => {
            let a = Arc::new(rec(7, "ptr", &[3.25]));
            Case::Pointers(Some(a.clone()), Some(a), None)
        }
        "pointers_after_value" => {
            let v = Arc::new(rec(8, "val", &[0.25]));
            Case::PointersAfterValue(v.clone(), Some(v.clone()), Some(v), None)
        }
        "polymorphic" => Case::Polymorphic(vec![
            Some(Arc::new(Circle { r: 1.0 })),
            Some(Arc::new(Square { s: 2.0 })),
            Some(Arc::new(Circle { r: 3.0 })),
        ]),
        "propertyset" => Case::PropertySet(manifest_property_set(), ps_layout(false)),
        "propertyset_lsst" => Case::PropertySet(manifest_property_set(), ps_layout(true)),
        "large_doubles" => Case::LargeDoubles((0..1000).map(|i| i as f64 * 0.25).collect()),
        "strings" => Case::Strings(
            [
                ("escaped", "a<b>&\"'"),
                ("space", "two words"),
                ("newline", "line1\nline2"),
                ("tab", "tab\there"),
                ("padded", " lead and trail "),
                ("utf8", "é€"),
                ("empty", ""),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ),
        "float_edge" => Case::FloatEdge(
            vec![
                -0.0,
                1.0 / 3.0,
                1e22,
                123456789.125,
                1e-5,
                2.2250738585072014e-308,
                4.9406564584124654e-324,
                1.7976931348623157e308,
            ],
            vec![
                -0.0,
                1.0 / 3.0,
                16777216.0,
                3.40282347e38,
                1.17549435e-38,
                1.4e-45,
            ],
        ),
        other => panic!("unknown case {other}"),
    }
}

/// Writes `case` with the same NVP names and order as golden.cpp.
pub fn write_case(ar: &mut OArchive<'_>, case: &Case, variant: &str) -> Result<()> {
    if variant == "rec-untracked" {
        ar.set_tracking::<Rec>(false);
    }
    match case {
        Case::Primitives(p) => {
            ar.field("b", &p.b)?;
            ar.field("c", &p.c)?;
            ar.field("sc", &p.sc)?;
            ar.field("uc", &p.uc)?;
            ar.field("sh", &p.sh)?;
            ar.field("us", &p.us)?;
            ar.field("i", &p.i)?;
            ar.field("ui", &p.ui)?;
            ar.field("l", &p.l)?;
            ar.field("ul", &p.ul)?;
            ar.field("ll", &p.ll)?;
            ar.field("f1", &p.f1)?;
            ar.field("f2", &p.f2)?;
            ar.field("d1", &p.d1)?;
            ar.field("d2", &p.d2)?;
            ar.field("s", &p.s)?;
            ar.field("e", &p.e)
        }
        Case::Vectors(v) => {
            ar.field("vd", &v.vd)?;
            ar.field("vi", &v.vi)?;
            ar.field("vs", &v.vs)?;
            ar.field("vb", &v.vb)?;
            ar.field("v64", &v.v64)
        }
        Case::Record(a, b) => {
            ar.field("r1", a)?;
            ar.field("r2", b)
        }
        Case::RecordVector(a, b) => {
            ar.field("recs", a)?;
            ar.field("none", b)
        }
        Case::Nested(o) => ar.field("outer", o),
        Case::Versioned(r) => ar.field("rv", r),
        Case::Pointers(a, b, c) => {
            ar.pointer("a", a.as_ref())?;
            ar.pointer("a_again", b.as_ref())?;
            ar.pointer("null", c.as_ref())
        }
        Case::PointersAfterValue(v, a, b, c) => {
            ar.field("v", &**v)?;
            ar.pointer("a", a.as_ref())?;
            ar.pointer("a_again", b.as_ref())?;
            ar.pointer("null", c.as_ref())
        }
        Case::Polymorphic(shapes) => {
            for (i, s) in shapes.iter().enumerate() {
                ar.poly_pointer(&format!("s{}", i + 1), s.as_ref())?;
            }
            Ok(())
        }
        Case::PropertySet(ps, layout) => save_property_set(ar, "propertySet", ps, layout),
        Case::LargeDoubles(v) => ar.field("values", v),
        Case::Strings(v) => {
            for (k, s) in v {
                ar.field(k, s)?;
            }
            Ok(())
        }
        Case::FloatEdge(d, f) => {
            for x in d {
                ar.field("d", x)?;
            }
            for x in f {
                ar.field("f", x)?;
            }
            Ok(())
        }
    }
}

/// Reads `case` (the same order as [`write_case`]).
pub fn read_case(ar: &mut IArchive<'_>, case: &str, variant: &str) -> Result<Case> {
    Ok(match case {
        "primitives" => Case::Primitives(Primitives {
            b: ar.field("b")?,
            c: ar.field("c")?,
            sc: ar.field("sc")?,
            uc: ar.field("uc")?,
            sh: ar.field("sh")?,
            us: ar.field("us")?,
            i: ar.field("i")?,
            ui: ar.field("ui")?,
            l: ar.field("l")?,
            ul: ar.field("ul")?,
            ll: ar.field("ll")?,
            f1: ar.field("f1")?,
            f2: ar.field("f2")?,
            d1: ar.field("d1")?,
            d2: ar.field("d2")?,
            s: ar.field("s")?,
            e: ar.field("e")?,
        }),
        "vectors" => Case::Vectors(Vectors {
            vd: ar.field("vd")?,
            vi: ar.field("vi")?,
            vs: ar.field("vs")?,
            vb: ar.field("vb")?,
            v64: ar.field("v64")?,
        }),
        "record" => Case::Record(ar.field("r1")?, ar.field("r2")?),
        "record_vector" => Case::RecordVector(ar.field("recs")?, ar.field("none")?),
        "nested" => Case::Nested(ar.field("outer")?),
        "versioned" => Case::Versioned(ar.field("rv")?),
        "pointers" => Case::Pointers(
            ar.pointer("a")?,
            ar.pointer("a_again")?,
            ar.pointer("null")?,
        ),
        "pointers_after_value" => Case::PointersAfterValue(
            ar.field_shared("v")?,
            ar.pointer("a")?,
            ar.pointer("a_again")?,
            ar.pointer("null")?,
        ),
        "polymorphic" => {
            ar.set_exports(shape_exports());
            Case::Polymorphic(vec![
                ar.poly_pointer::<dyn Shape>("s1")?,
                ar.poly_pointer::<dyn Shape>("s2")?,
                ar.poly_pointer::<dyn Shape>("s3")?,
            ])
        }
        "propertyset" | "propertyset_lsst" => {
            let layout = PropertySetLayout {
                nitems_size_t: case == "propertyset_lsst",
                persistable_tracked: variant == "persistable-tracked",
            };
            Case::PropertySet(load_property_set(ar, "propertySet", &layout)?, layout)
        }
        "large_doubles" => Case::LargeDoubles(ar.field("values")?),
        "strings" => {
            let names = [
                "escaped", "space", "newline", "tab", "padded", "utf8", "empty",
            ];
            let mut v = Vec::new();
            for n in names {
                v.push((n.to_string(), ar.field::<String>(n)?));
            }
            Case::Strings(v)
        }
        "float_edge" => {
            let mut d = Vec::new();
            for _ in 0..8 {
                d.push(ar.field::<f64>("d")?);
            }
            let mut f = Vec::new();
            for _ in 0..6 {
                f.push(ar.field::<f32>("f")?);
            }
            Case::FloatEdge(d, f)
        }
        other => panic!("unknown case {other}"),
    })
}

/// Every fixture: (folder, variant, case, library version).
pub fn fixtures() -> Vec<(String, &'static str, &'static str, u16)> {
    let mut out = Vec::new();
    for (folder, version) in [("boost-1.74", 18u16), ("boost-1.81", 19)] {
        for case in ALL_CASES {
            out.push((folder.to_string(), "", case, version));
        }
        for case in ["record", "record_vector", "nested"] {
            out.push((
                format!("{folder}/rec-untracked"),
                "rec-untracked",
                case,
                version,
            ));
        }
        for case in ["propertyset", "propertyset_lsst"] {
            out.push((
                format!("{folder}/persistable-tracked"),
                "persistable-tracked",
                case,
                version,
            ));
        }
    }
    out
}
