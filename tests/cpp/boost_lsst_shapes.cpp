// boost_lsst_shapes.cpp -- archives of the shapes LSST's C++ wrote that the
// older goldens (tests/data/boost/MANIFEST.md) do not cover:
//
//   concrete_base     polymorphic pointers whose declared class is concrete and
//                     carries data (LSST's Persistable pattern), a null one,
//                     one to an object of the base class itself, a repeat, and
//                     a null pointer to another class before them (Boost
//                     registers a pointer's declared class even when null)
//   shared_ptr        std::shared_ptr<Rec> members: shared, repeated, null
//   propertyset_codes an LSST PropertySet (size_t count, tracked Persistable
//                     base) with every type code: b c y C w W i I l L x X f d s T
//
//   boost_lsst_shapes --generate DIR   writes CASE.{bin,txt,xml} into DIR
//   boost_lsst_shapes --verify FILE... reads each FILE (case and kind from its
//                                      name: CASE.KIND[.anything]) and checks
//                                      every value and every type code
//   boost_lsst_shapes --doubles KIND FILE  reads a std::vector<double> "v" and
//                                      prints it (how Boost reads NaN/inf)
//
// The goldens in tests/data/boost/boost-1.74/lsst and boost-1.81/lsst were
// written by this program built against Debian 12's Boost 1.74 and 1.81;
// storages/tests/boost_lsst_shapes.rs reads them, writes them back
// byte-identically, and runs --verify on archives daf wrote (live, in CI).

#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/archive/xml_iarchive.hpp>
#include <boost/archive/xml_oarchive.hpp>
#include <boost/serialization/base_object.hpp>
#include <boost/serialization/export.hpp>
#include <boost/serialization/nvp.hpp>
#include <boost/serialization/shared_ptr.hpp>
#include <boost/serialization/split_member.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

using boost::serialization::make_nvp;

namespace bst {

struct Rec {
    int id = 0;
    std::string name;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("id", id) & make_nvp("name", name);
    }
};

// Concrete, data-carrying polymorphic base (LSST's Persistable pattern).
struct Persistable {
    virtual ~Persistable() = default;
    int tag = 0;
    template <class A> void serialize(A &ar, unsigned) { ar &make_nvp("tag", tag); }
};

struct Circle : Persistable {
    double r = 0;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("Persistable", boost::serialization::base_object<Persistable>(*this));
        ar &make_nvp("r", r);
    }
};

struct Square : Persistable {
    double s = 0;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("Persistable", boost::serialization::base_object<Persistable>(*this));
        ar &make_nvp("s", s);
    }
};

struct ConcreteBase {
    int x = 0;
    Rec *r0 = nullptr;
    Persistable *p0 = nullptr, *p1 = nullptr, *p2 = nullptr, *p3 = nullptr, *p4 = nullptr;
    template <class A> void io(A &ar) {
        ar &make_nvp("x", x) & make_nvp("r0", r0) & make_nvp("p0", p0) & make_nvp("p1", p1);
        ar &make_nvp("p2", p2) & make_nvp("p3", p3) & make_nvp("p4", p4);
    }
};

struct SharedPtrs {
    std::shared_ptr<Rec> a, b, n, c;
    template <class A> void io(A &ar) {
        ar &make_nvp("a", a) & make_nvp("b", b) & make_nvp("n", n) & make_nvp("c", c);
    }
};

}  // namespace bst

// LSST's daf_base PropertySet layout, as its PropertySetFormatter wrote it.
namespace lsst {

struct Persistable {
    virtual ~Persistable() = default;
    template <class A> void serialize(A &, unsigned) {}
};

struct Item {
    std::string name;
    char type = 0;
    std::vector<bool> b;
    std::vector<char> c;
    std::vector<signed char> y;
    std::vector<unsigned char> C;
    std::vector<short> w;
    std::vector<unsigned short> W;
    std::vector<int> i;
    std::vector<unsigned int> I;
    std::vector<long> l;
    std::vector<unsigned long> L;
    std::vector<long long> x;
    std::vector<unsigned long long> X;
    std::vector<float> f;
    std::vector<double> d;
    std::vector<std::string> s;
    std::vector<std::int64_t> T;  // DateTime: TAI nanoseconds
};

#define LSST_CODES(M) \
    M('b', b) M('c', c) M('y', y) M('C', C) M('w', w) M('W', W) M('i', i) M('I', I) \
    M('l', l) M('L', L) M('x', x) M('X', X) M('f', f) M('d', d) M('s', s) M('T', T)

struct PropertySet : Persistable {
    std::vector<Item> items;
    template <class A> void save(A &ar, unsigned) const {
        ar << make_nvp("base", boost::serialization::base_object<Persistable>(*this));
        const std::size_t nitems = items.size();
        ar << make_nvp("nitems", nitems);
        for (const Item &it : items) {
            ar << make_nvp("name", it.name) << make_nvp("type", it.type);
            switch (it.type) {
#define SAVE_CASE(code, m) \
    case code: ar << make_nvp("value", it.m); break;
                LSST_CODES(SAVE_CASE)
                default: throw std::runtime_error("bad type code");
            }
        }
    }
    template <class A> void load(A &ar, unsigned) {
        ar >> make_nvp("base", boost::serialization::base_object<Persistable>(*this));
        std::size_t nitems = 0;
        ar >> make_nvp("nitems", nitems);
        items.clear();
        for (std::size_t k = 0; k < nitems; ++k) {
            Item it;
            ar >> make_nvp("name", it.name) >> make_nvp("type", it.type);
            switch (it.type) {
#define LOAD_CASE(code, m) \
    case code: ar >> make_nvp("value", it.m); break;
                LSST_CODES(LOAD_CASE)
                default: throw std::runtime_error(std::string("unknown type code ") + it.type);
            }
            items.push_back(std::move(it));
        }
    }
    BOOST_SERIALIZATION_SPLIT_MEMBER()
};

// Never called: like LSST (std::vector<Persistable::Ptr> items of type 'p'),
// the program serializes Persistable pointers, so Boost tracks Persistable.
template <class A> void instantiate_persistable_pointers(A &ar) {
    std::shared_ptr<Persistable> p;
    ar << make_nvp("p", p);
}
template void instantiate_persistable_pointers(boost::archive::text_oarchive &);
template void instantiate_persistable_pointers(boost::archive::binary_oarchive &);
template void instantiate_persistable_pointers(boost::archive::xml_oarchive &);

}  // namespace lsst

BOOST_CLASS_EXPORT_GUID(bst::Persistable, "bst::Persistable")
BOOST_CLASS_EXPORT_GUID(bst::Circle, "bst::Circle")
BOOST_CLASS_EXPORT_GUID(bst::Square, "bst::Square")
BOOST_CLASS_EXPORT_GUID(lsst::Persistable, "lsst::daf::base::Persistable")

namespace {

struct Check {
    std::string file;
    int failures = 0;
    void expect(bool ok, const std::string &what) {
        if (!ok) {
            std::cerr << file << ": " << what << "\n";
            ++failures;
        }
    }
};

lsst::PropertySet expected_property_set() {
    lsst::PropertySet ps;
    auto add = [&](const char *name, char type, auto fill) {
        lsst::Item it;
        it.name = name;
        it.type = type;
        fill(it);
        ps.items.push_back(std::move(it));
    };
    add("flag", 'b', [](lsst::Item &it) { it.b = {true, false}; });
    add("ch", 'c', [](lsst::Item &it) { it.c = {'a'}; });
    add("sch", 'y', [](lsst::Item &it) { it.y = {-5}; });
    add("uch", 'C', [](lsst::Item &it) { it.C = {200}; });
    add("sh", 'w', [](lsst::Item &it) { it.w = {-300}; });
    add("ush", 'W', [](lsst::Item &it) { it.W = {60000}; });
    add("i", 'i', [](lsst::Item &it) { it.i = {-70000, 3}; });
    add("ui", 'I', [](lsst::Item &it) { it.I = {4000000000u}; });
    add("visit", 'l', [](lsst::Item &it) { it.l = {-5000000000L, 7}; });
    add("ul", 'L', [](lsst::Item &it) { it.L = {10000000000000000000UL}; });
    add("ll", 'x', [](lsst::Item &it) { it.x = {-6000000000LL}; });
    add("ull", 'X', [](lsst::Item &it) { it.X = {18000000000000000000ULL}; });
    add("f", 'f', [](lsst::Item &it) { it.f = {1.5f}; });
    add("ra", 'd', [](lsst::Item &it) { it.d = {2.25, -0.125}; });
    add("filter", 's', [](lsst::Item &it) { it.s = {"r", "two words"}; });
    add("obs.date", 'T', [](lsst::Item &it) { it.T = {1234567890123456789LL}; });
    add("obs.exptime", 'l', [](lsst::Item &it) { it.l = {30}; });
    return ps;
}

bool same_item(const lsst::Item &a, const lsst::Item &b) {
    return a.name == b.name && a.type == b.type && a.b == b.b && a.c == b.c && a.y == b.y &&
           a.C == b.C && a.w == b.w && a.W == b.W && a.i == b.i && a.I == b.I && a.l == b.l &&
           a.L == b.L && a.x == b.x && a.X == b.X && a.f == b.f && a.d == b.d && a.s == b.s &&
           a.T == b.T;
}

template <class OA> void write_case(const std::string &name, std::ostream &os) {
    OA oa(os);
    if (name == "concrete_base") {
        bst::Circle c;
        c.tag = 7;
        c.r = 2.5;
        bst::Persistable plain;
        plain.tag = 8;
        bst::Square sq;
        sq.tag = 9;
        sq.s = -1.25;
        bst::ConcreteBase v;
        v.x = 42;
        v.p1 = &c;
        v.p2 = &plain;
        v.p3 = &c;
        v.p4 = &sq;
        v.io(oa);
    } else if (name == "shared_ptr") {
        bst::SharedPtrs v;
        v.a = std::make_shared<bst::Rec>(bst::Rec{5, "five"});
        v.b = v.a;
        v.c = std::make_shared<bst::Rec>(bst::Rec{6, "six"});
        v.io(oa);
    } else if (name == "propertyset_codes") {
        const lsst::PropertySet ps = expected_property_set();
        oa << make_nvp("propertySet", ps);
    } else {
        throw std::runtime_error("unknown case " + name);
    }
}

template <class IA> void verify_case(const std::string &name, std::istream &is, Check &ck) {
    IA ia(is);
    if (name == "concrete_base") {
        bst::ConcreteBase v;
        v.io(ia);
        auto *c = dynamic_cast<bst::Circle *>(v.p1);
        auto *sq = dynamic_cast<bst::Square *>(v.p4);
        ck.expect(v.x == 42, "x == 42");
        ck.expect(v.r0 == nullptr, "r0 null");
        ck.expect(v.p0 == nullptr, "p0 null");
        ck.expect(c && c->tag == 7 && c->r == 2.5, "p1 Circle(tag 7, r 2.5)");
        ck.expect(v.p2 && typeid(*v.p2) == typeid(bst::Persistable) && v.p2->tag == 8,
                  "p2 Persistable(tag 8)");
        ck.expect(v.p3 == v.p1, "p3 is p1");
        ck.expect(sq && sq->tag == 9 && sq->s == -1.25, "p4 Square(tag 9, s -1.25)");
    } else if (name == "shared_ptr") {
        bst::SharedPtrs v;
        v.io(ia);
        ck.expect(v.a && v.a->id == 5 && v.a->name == "five", "a Rec(5, five)");
        ck.expect(v.b == v.a, "b shares a");
        ck.expect(!v.n, "n null");
        ck.expect(v.c && v.c->id == 6 && v.c->name == "six" && v.c != v.a, "c Rec(6, six)");
    } else if (name == "propertyset_codes") {
        lsst::PropertySet ps;
        ia >> make_nvp("propertySet", ps);
        const lsst::PropertySet want = expected_property_set();
        ck.expect(ps.items.size() == want.items.size(), "item count");
        for (std::size_t k = 0; k < ps.items.size() && k < want.items.size(); ++k)
            ck.expect(same_item(ps.items[k], want.items[k]),
                      "item " + want.items[k].name + " (type '" + want.items[k].type +
                          "') differs: found name " + ps.items[k].name + " type '" +
                          ps.items[k].type + "'");
    } else {
        throw std::runtime_error("unknown case " + name);
    }
}

const char *kCases[] = {"concrete_base", "shared_ptr", "propertyset_codes"};

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: boost_lsst_shapes --generate DIR | --verify FILE...\n";
        return 2;
    }
    const std::string mode = argv[1];
    int failures = 0;
    try {
        if (mode == "--doubles" && argc == 4) {
            const std::string kind = argv[2];
            std::ifstream is(argv[3], std::ios::binary);
            std::vector<double> v;
            if (kind == "binary") {
                boost::archive::binary_iarchive ia(is);
                ia >> make_nvp("v", v);
            } else if (kind == "text") {
                boost::archive::text_iarchive ia(is);
                ia >> make_nvp("v", v);
            } else {
                boost::archive::xml_iarchive ia(is);
                ia >> make_nvp("v", v);
            }
            for (double d : v) std::cout << d << "\n";
            return 0;
        }
        if (mode == "--generate") {
            const std::string dir = argv[2];
            for (const char *c : kCases) {
                std::ofstream b(dir + "/" + c + ".bin", std::ios::binary);
                write_case<boost::archive::binary_oarchive>(c, b);
                std::ofstream t(dir + "/" + c + ".txt", std::ios::binary);
                write_case<boost::archive::text_oarchive>(c, t);
                std::ofstream x(dir + "/" + c + ".xml", std::ios::binary);
                write_case<boost::archive::xml_oarchive>(c, x);
            }
        } else if (mode == "--verify") {
            for (int k = 2; k < argc; ++k) {
                const std::string path = argv[k];
                const std::string base = path.substr(path.find_last_of('/') + 1);
                const std::size_t dot = base.find('.');
                const std::string name = base.substr(0, dot);
                const std::string kind = base.substr(dot + 1, 3);
                std::ifstream is(path, std::ios::binary);
                if (!is) throw std::runtime_error("cannot open " + path);
                Check ck{path};
                try {
                    if (kind == "bin")
                        verify_case<boost::archive::binary_iarchive>(name, is, ck);
                    else if (kind == "txt")
                        verify_case<boost::archive::text_iarchive>(name, is, ck);
                    else if (kind == "xml")
                        verify_case<boost::archive::xml_iarchive>(name, is, ck);
                    else
                        throw std::runtime_error("unknown kind " + kind);
                } catch (const std::exception &e) {
                    ck.expect(false, std::string("exception: ") + e.what());
                }
                failures += ck.failures;
            }
        } else {
            std::cerr << "unknown mode " << mode << "\n";
            return 2;
        }
    } catch (const std::exception &e) {
        std::cerr << "boost_lsst_shapes: " << e.what() << "\n";
        return 1;
    }
    return failures == 0 ? 0 : 1;
}
