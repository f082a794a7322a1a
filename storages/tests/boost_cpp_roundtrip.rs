//! Live round trip with C++ Boost: tests/cpp/boost_roundtrip.cpp, compiled
//! against the installed libboost-serialization, reads archives Rust wrote
//! and writes archives Rust reads, for proptest-generated values of the
//! MANIFEST's types, in all three archive kinds. Skipped (with `SKIPPED:`)
//! where g++ or the Boost headers are missing; required in CI.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use daf_storages::boost::{
    ArchiveKind, BoostSerialize, ClassInfo, Exports, IArchive, OArchive, PolyBase, Result,
    SharedPtr,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone)]
enum ShapeV {
    Null,
    Circle(f64),
    Square(f64),
    /// The same object as the previous shape pointer (when it is not null).
    SameAsPrevious,
}

/// A concrete, data-carrying polymorphic base (LSST's `Persistable` pattern).
#[derive(Debug, Clone, PartialEq)]
struct Base {
    tag: i32,
}
impl BoostSerialize for Base {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Base").tracked(true).export("Base")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.field("tag", &self.tag)
    }
    fn load(ar: &mut IArchive<'_>, _v: u32) -> Result<Self> {
        Ok(Base {
            tag: ar.field("tag")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tri {
    base: Base,
    h: f64,
}
impl BoostSerialize for Tri {
    fn class_info() -> ClassInfo {
        ClassInfo::new("Tri").tracked(true).export("Tri")
    }
    fn save(&self, ar: &mut OArchive<'_>) -> Result<()> {
        ar.base("Base", self, &self.base)?;
        ar.field("h", &self.h)
    }
    fn load(ar: &mut IArchive<'_>, _v: u32) -> Result<Self> {
        Ok(Tri {
            base: ar.base("Base")?,
            h: ar.field("h")?,
        })
    }
}

trait Obj: PolyBase + Send + Sync + std::fmt::Debug {
    /// (is a Tri, tag, h bits)
    fn key(&self) -> (bool, i32, u64);
}
daf_storages::boost_poly_class!(Base);
daf_storages::boost_poly_class!(Tri);
impl Obj for Base {
    fn key(&self) -> (bool, i32, u64) {
        (false, self.tag, 0)
    }
}
impl Obj for Tri {
    fn key(&self) -> (bool, i32, u64) {
        (true, self.base.tag, self.h.to_bits())
    }
}

fn all_exports() -> Exports {
    let mut e = shape_exports();
    e.register::<dyn Obj, Base>("Base", |b| Arc::new(b));
    e.register::<dyn Obj, Tri>("Tri", |t| Arc::new(t));
    e
}

#[derive(Debug, Clone)]
struct Bundle {
    b: bool,
    c: i8,
    sc: i8,
    uc: u8,
    sh: i16,
    us: u16,
    i: i32,
    ui: u32,
    l: i64,
    ul: u64,
    ll: i64,
    f: f32,
    d: f64,
    s: String,
    vd: Vec<f64>,
    vi: Vec<i32>,
    vs: Vec<String>,
    vb: Vec<bool>,
    v64: Vec<i64>,
    recs: Vec<Rec>,
    outer: Outer,
    rv: RecV2,
    opt: Option<String>,
    a: Option<Arc<Rec>>,
    a_again: Option<Arc<Rec>>,
    shapes: Vec<Option<Arc<dyn Shape>>>,
    q1: Option<Arc<dyn Obj>>,
    q2: Option<Arc<dyn Obj>>,
    sp1: SharedPtr<Rec>,
    sp2: SharedPtr<Rec>,
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}
fn finite_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("finite", |x| x.is_finite())
}
fn text() -> impl Strategy<Value = String> {
    "[ -~é€\t]{0,12}"
}
fn rec_s() -> impl Strategy<Value = Rec> {
    (
        any::<i32>(),
        text(),
        prop::collection::vec(finite_f64(), 0..4),
    )
        .prop_map(|(id, name, v)| Rec { id, name, v })
}

fn bundle() -> impl Strategy<Value = Bundle> {
    let prims = (
        any::<bool>(),
        any::<i8>(),
        any::<i8>(),
        any::<u8>(),
        any::<i16>(),
        any::<u16>(),
        any::<i32>(),
        any::<u32>(),
        any::<i64>(),
        any::<u64>(),
        any::<i64>(),
        finite_f32(),
    );
    let rest = (
        finite_f64(),
        text(),
        prop::collection::vec(finite_f64(), 0..6),
        prop::collection::vec(any::<i32>(), 0..6),
        prop::collection::vec(text(), 0..4),
        prop::collection::vec(any::<bool>(), 0..6),
        prop::collection::vec(any::<i64>(), 0..6),
        prop::collection::vec(rec_s(), 0..4),
    );
    let objs = (
        (
            rec_s(),
            prop::collection::vec(any::<i32>(), 0..4),
            prop::collection::btree_map(text(), any::<i32>(), 0..4),
            any::<i32>(),
            finite_f64(),
        ),
        (any::<i32>(), text(), finite_f64()),
        prop::option::of(text()),
        prop::option::of(rec_s()),
        0u8..3,
        prop::collection::vec(
            prop_oneof![
                Just(ShapeV::Null),
                finite_f64().prop_map(ShapeV::Circle),
                finite_f64().prop_map(ShapeV::Square),
                Just(ShapeV::SameAsPrevious)
            ],
            3,
        ),
    );
    let lsst = (
        0u8..3,
        any::<i32>(),
        finite_f64(),
        0u8..3,
        prop::option::of(rec_s()),
        0u8..3,
    );
    (prims, rest, objs, lsst).prop_map(|(p, r, o, l)| {
        let ((orec, xs, m, pi, pd), (rid, rname, rextra), opt, a, again, shapes) = o;
        let (q1k, tag, h, q2k, sp, sp2k) = l;
        let q1: Option<Arc<dyn Obj>> = match q1k {
            0 => None,
            1 => Some(Arc::new(Base { tag })),
            _ => Some(Arc::new(Tri {
                base: Base { tag },
                h,
            })),
        };
        let q2: Option<Arc<dyn Obj>> = match q2k {
            0 => None,
            1 => q1.clone(),
            _ => Some(Arc::new(Tri {
                base: Base { tag: -tag },
                h: -h,
            })),
        };
        let sp1 = SharedPtr::from(sp.map(Arc::new));
        let sp2 = match sp2k {
            0 => sp1.clone(),
            1 => SharedPtr::null(),
            _ => SharedPtr::new(rec(7, "seven", &[7.0])),
        };
        let a = a.map(Arc::new);
        let a_again = match again {
            0 => a.clone(),
            1 => None,
            _ => Some(Arc::new(rec(-1, "other", &[1.0]))),
        };
        let mut sv: Vec<Option<Arc<dyn Shape>>> = Vec::new();
        for s in shapes {
            let next: Option<Arc<dyn Shape>> = match s {
                ShapeV::Null => None,
                ShapeV::Circle(r) => Some(Arc::new(Circle { r })),
                ShapeV::Square(s) => Some(Arc::new(Square { s })),
                ShapeV::SameAsPrevious => sv.last().cloned().flatten(),
            };
            sv.push(next);
        }
        Bundle {
            b: p.0,
            c: p.1,
            sc: p.2,
            uc: p.3,
            sh: p.4,
            us: p.5,
            i: p.6,
            ui: p.7,
            l: p.8,
            ul: p.9,
            ll: p.10,
            f: p.11,
            d: r.0,
            s: r.1,
            vd: r.2,
            vi: r.3,
            vs: r.4,
            vb: r.5,
            v64: r.6,
            recs: r.7,
            outer: Outer {
                r: orec,
                xs,
                m: m.into_iter().collect::<BTreeMap<_, _>>(),
                p: (pi, pd),
            },
            rv: RecV2 {
                id: rid,
                name: rname,
                extra: rextra,
            },
            opt,
            a,
            a_again,
            shapes: sv,
            q1,
            q2,
            sp1,
            sp2,
        }
    })
}

fn write_bundle(ar: &mut OArchive<'_>, b: &Bundle) -> Result<()> {
    ar.field("b", &b.b)?;
    ar.field("c", &b.c)?;
    ar.field("sc", &b.sc)?;
    ar.field("uc", &b.uc)?;
    ar.field("sh", &b.sh)?;
    ar.field("us", &b.us)?;
    ar.field("i", &b.i)?;
    ar.field("ui", &b.ui)?;
    ar.field("l", &b.l)?;
    ar.field("ul", &b.ul)?;
    ar.field("ll", &b.ll)?;
    ar.field("f", &b.f)?;
    ar.field("d", &b.d)?;
    ar.field("s", &b.s)?;
    ar.field("vd", &b.vd)?;
    ar.field("vi", &b.vi)?;
    ar.field("vs", &b.vs)?;
    ar.field("vb", &b.vb)?;
    ar.field("v64", &b.v64)?;
    ar.field("recs", &b.recs)?;
    ar.field("outer", &b.outer)?;
    ar.field("rv", &b.rv)?;
    ar.field("opt", &b.opt)?;
    ar.pointer("a", b.a.as_ref())?;
    ar.pointer("a_again", b.a_again.as_ref())?;
    for (i, s) in b.shapes.iter().enumerate() {
        ar.poly_pointer(&format!("s{}", i + 1), s.as_ref())?;
    }
    ar.poly_pointer_concrete::<Base, dyn Obj>("q1", b.q1.as_ref())?;
    ar.poly_pointer_concrete::<Base, dyn Obj>("q2", b.q2.as_ref())?;
    ar.field("sp1", &b.sp1)?;
    ar.field("sp2", &b.sp2)
}

fn read_bundle(ar: &mut IArchive<'_>) -> Result<Bundle> {
    ar.set_exports(all_exports());
    Ok(Bundle {
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
        f: ar.field("f")?,
        d: ar.field("d")?,
        s: ar.field("s")?,
        vd: ar.field("vd")?,
        vi: ar.field("vi")?,
        vs: ar.field("vs")?,
        vb: ar.field("vb")?,
        v64: ar.field("v64")?,
        recs: ar.field("recs")?,
        outer: ar.field("outer")?,
        rv: ar.field("rv")?,
        opt: ar.field("opt")?,
        a: ar.pointer("a")?,
        a_again: ar.pointer("a_again")?,
        shapes: vec![
            ar.poly_pointer("s1")?,
            ar.poly_pointer("s2")?,
            ar.poly_pointer("s3")?,
        ],
        q1: ar.poly_pointer_concrete::<Base, dyn Obj>("q1")?,
        q2: ar.poly_pointer_concrete::<Base, dyn Obj>("q2")?,
        sp1: ar.field("sp1")?,
        sp2: ar.field("sp2")?,
    })
}

fn same_values(x: &Bundle, y: &Bundle) -> bool {
    let ptr = |a: &Option<Arc<Rec>>, b: &Option<Arc<Rec>>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => **a == **b,
        _ => false,
    };
    let shape = |a: &Option<Arc<dyn Shape>>, b: &Option<Arc<dyn Shape>>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.kind().0 == b.kind().0 && a.kind().1.to_bits() == b.kind().1.to_bits()
        }
        _ => false,
    };
    let alias = |a: &Option<Arc<Rec>>, b: &Option<Arc<Rec>>| matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
    let obj = |a: &Option<Arc<dyn Obj>>| a.as_ref().map(|o| o.key());
    let obj_alias = |a: &Option<Arc<dyn Obj>>, b: &Option<Arc<dyn Obj>>| matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
    x.b == y.b
        && (x.c, x.sc, x.uc, x.sh, x.us, x.i, x.ui, x.l, x.ul, x.ll)
            == (y.c, y.sc, y.uc, y.sh, y.us, y.i, y.ui, y.l, y.ul, y.ll)
        && x.f.to_bits() == y.f.to_bits()
        && x.d.to_bits() == y.d.to_bits()
        && x.s == y.s
        && x.vd
            .iter()
            .map(|v| v.to_bits())
            .eq(y.vd.iter().map(|v| v.to_bits()))
        && (&x.vi, &x.vs, &x.vb, &x.v64) == (&y.vi, &y.vs, &y.vb, &y.v64)
        && x.recs == y.recs
        && x.outer == y.outer
        && x.rv == y.rv
        && x.opt == y.opt
        && ptr(&x.a, &y.a)
        && ptr(&x.a_again, &y.a_again)
        && alias(&x.a, &x.a_again) == alias(&y.a, &y.a_again)
        && x.shapes.iter().zip(&y.shapes).all(|(a, b)| shape(a, b))
        && (obj(&x.q1), obj(&x.q2)) == (obj(&y.q1), obj(&y.q2))
        && obj_alias(&x.q1, &x.q2) == obj_alias(&y.q1, &y.q2)
        && ptr(&x.sp1.0, &y.sp1.0)
        && ptr(&x.sp2.0, &y.sp2.0)
        && alias(&x.sp1.0, &x.sp2.0) == alias(&y.sp1.0, &y.sp2.0)
}

fn boost_headers() -> bool {
    Path::new("/usr/include/boost/serialization/vector.hpp").exists()
}

/// Compiles tests/cpp/boost_roundtrip.cpp once (rebuilt when the source changes).
fn compile() -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cpp/boost_roundtrip.cpp");
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boost_roundtrip");
    let fresh = match (std::fs::metadata(&exe), std::fs::metadata(&src)) {
        (Ok(e), Ok(s)) => e.modified().unwrap() >= s.modified().unwrap(),
        _ => false,
    };
    if !fresh {
        let out = Command::new("g++")
            .args(["-std=c++17", "-O1", "-o"])
            .arg(&exe)
            .arg(&src)
            .arg("-lboost_serialization")
            .output()
            .expect("run g++");
        assert!(
            out.status.success(),
            "g++ failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    exe
}

#[test]
fn cpp_boost_reads_rust_archives_and_rust_reads_cpp_archives() {
    if !daf_base::testing::available(
        daf_base::testing::have_program("g++") && boost_headers(),
        "g++ or the Boost.Serialization headers (apt-get install g++ libboost-serialization-dev)",
    ) {
        return;
    }
    let exe = compile();
    let mut runner = TestRunner::new(Config::with_cases(48));
    let strategy = bundle();
    let bundles: Vec<Bundle> = (0..48)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for kind in [ArchiveKind::Binary, ArchiveKind::Text, ArchiveKind::Xml] {
        // Write at 18 (Boost 1.74); a newer installed Boost reads it too.
        let mut files = Vec::new();
        for (n, b) in bundles.iter().enumerate() {
            let path = dir.path().join(format!("b{n}.{kind}"));
            let bytes = OArchive::to_bytes(kind, 18, |ar| write_bundle(ar, b)).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            files.push(path);
        }
        let out = Command::new(&exe)
            .arg("echo")
            .arg(kind.name())
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "C++ could not read Rust's {kind} archives: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (n, b) in bundles.iter().enumerate() {
            let cpp = std::fs::read(files[n].with_extension(format!("{kind}.cpp"))).unwrap();
            let mut ar = IArchive::new(&cpp).unwrap_or_else(|e| panic!("{kind} #{n}: {e}"));
            let version = ar.library_version();
            let back = read_bundle(&mut ar)
                .unwrap_or_else(|e| panic!("Rust could not read C++'s {kind} archive #{n}: {e}"));
            ar.finish().unwrap();
            assert!(
                same_values(b, &back),
                "{kind} #{n}: values changed through C++:\n{b:?}\n{back:?}"
            );
            // And Rust writes exactly what C++ wrote, at C++'s version.
            let ours = OArchive::to_bytes(kind, version, |ar| write_bundle(ar, b)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&cpp),
                "{kind} #{n}: bytes differ from C++"
            );
        }
    }
}
