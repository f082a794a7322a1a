// boost_roundtrip.cpp -- the C++ side of daf's live Boost round trip.
//
//   boost_roundtrip echo KIND IN... : reads each IN (a `Bundle` archive of
//   KIND = binary | text | xml, written by daf) and writes the values it read
//   to IN.cpp with the same kind, using the installed Boost.Serialization.
//
// daf's test (storages/tests/boost_cpp_roundtrip.rs) compiles this with
// g++ -lboost_serialization, then checks that C++ read what Rust wrote (the
// echo has the same values) and that Rust reads what C++ wrote (and that the
// bytes are identical to Rust's own archive of the same values).

#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/archive/xml_iarchive.hpp>
#include <boost/archive/xml_oarchive.hpp>
#include <boost/optional.hpp>
#include <boost/serialization/base_object.hpp>
#include <boost/serialization/export.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/nvp.hpp>
#include <boost/serialization/optional.hpp>
#include <boost/serialization/shared_ptr.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/serialization/version.hpp>

using boost::serialization::make_nvp;

namespace rt {

struct Rec {
    int id = 0;
    std::string name;
    std::vector<double> v;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("id", id) & make_nvp("name", name) & make_nvp("v", v);
    }
};

struct Outer {
    Rec r;
    std::vector<int> xs;
    std::map<std::string, int> m;
    std::pair<int, double> p;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("r", r) & make_nvp("xs", xs) & make_nvp("m", m) & make_nvp("p", p);
    }
};

struct RecV2 {
    int id = 0;
    std::string name;
    double extra = 0;
    template <class A> void serialize(A &ar, unsigned version) {
        ar &make_nvp("id", id) & make_nvp("name", name);
        if (version >= 2) ar &make_nvp("extra", extra);
    }
};

struct Shape {
    virtual ~Shape() = default;
    virtual double size() const = 0;
    template <class A> void serialize(A &, unsigned) {}
};

struct Circle : Shape {
    double r = 0;
    double size() const override { return r; }
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("Shape", boost::serialization::base_object<Shape>(*this)) & make_nvp("r", r);
    }
};

struct Square : Shape {
    double s = 0;
    double size() const override { return s; }
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("Shape", boost::serialization::base_object<Shape>(*this)) & make_nvp("s", s);
    }
};

// A concrete, data-carrying polymorphic base (LSST's Persistable pattern):
// Boost registers it before the classes its pointers point to.
struct Base {
    virtual ~Base() = default;
    int tag = 0;
    template <class A> void serialize(A &ar, unsigned) { ar &make_nvp("tag", tag); }
};

struct Tri : Base {
    double h = 0;
    template <class A> void serialize(A &ar, unsigned) {
        ar &make_nvp("Base", boost::serialization::base_object<Base>(*this)) & make_nvp("h", h);
    }
};

// Everything daf's proptest generates, in write order.
struct Bundle {
    bool b = false;
    char c = 0;
    signed char sc = 0;
    unsigned char uc = 0;
    short sh = 0;
    unsigned short us = 0;
    int i = 0;
    unsigned int ui = 0;
    long l = 0;
    unsigned long ul = 0;
    long long ll = 0;
    float f = 0;
    double d = 0;
    std::string s;
    std::vector<double> vd;
    std::vector<int> vi;
    std::vector<std::string> vs;
    std::vector<bool> vb;
    std::vector<std::int64_t> v64;
    std::vector<Rec> recs;
    Outer outer;
    RecV2 rv;
    boost::optional<std::string> opt;
    Rec *a = nullptr;
    Rec *a_again = nullptr;
    Shape *s1 = nullptr;
    Shape *s2 = nullptr;
    Shape *s3 = nullptr;
    Base *q1 = nullptr;
    Base *q2 = nullptr;
    std::shared_ptr<Rec> sp1, sp2;

    template <class A> void io(A &ar) {
        ar &make_nvp("b", b) & make_nvp("c", c) & make_nvp("sc", sc) & make_nvp("uc", uc);
        ar &make_nvp("sh", sh) & make_nvp("us", us) & make_nvp("i", i) & make_nvp("ui", ui);
        ar &make_nvp("l", l) & make_nvp("ul", ul) & make_nvp("ll", ll) & make_nvp("f", f);
        ar &make_nvp("d", d) & make_nvp("s", s);
        ar &make_nvp("vd", vd) & make_nvp("vi", vi) & make_nvp("vs", vs) & make_nvp("vb", vb);
        ar &make_nvp("v64", v64) & make_nvp("recs", recs) & make_nvp("outer", outer);
        ar &make_nvp("rv", rv) & make_nvp("opt", opt);
        ar &make_nvp("a", a) & make_nvp("a_again", a_again);
        ar &make_nvp("s1", s1) & make_nvp("s2", s2) & make_nvp("s3", s3);
        ar &make_nvp("q1", q1) & make_nvp("q2", q2) & make_nvp("sp1", sp1) & make_nvp("sp2", sp2);
    }
};

} // namespace rt

BOOST_CLASS_VERSION(rt::RecV2, 3)
BOOST_SERIALIZATION_ASSUME_ABSTRACT(rt::Shape)
BOOST_CLASS_EXPORT_GUID(rt::Circle, "Circle")
BOOST_CLASS_EXPORT_GUID(rt::Square, "Square")
BOOST_CLASS_EXPORT_GUID(rt::Base, "Base")
BOOST_CLASS_EXPORT_GUID(rt::Tri, "Tri")

template <class IA, class OA> static void echo(const std::string &in) {
    rt::Bundle b;
    {
        std::ifstream is(in, std::ios::binary);
        if (!is) throw std::runtime_error("cannot open " + in);
        IA ia(is);
        b.io(ia);
    }
    {
        std::ofstream os(in + ".cpp", std::ios::binary);
        OA oa(os);
        b.io(oa);
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || std::string(argv[1]) != "echo") {
        std::cerr << "usage: boost_roundtrip echo binary|text|xml FILE...\n";
        return 2;
    }
    const std::string kind = argv[2];
    try {
        for (int k = 3; k < argc; ++k) {
            if (kind == "binary")
                echo<boost::archive::binary_iarchive, boost::archive::binary_oarchive>(argv[k]);
            else if (kind == "text")
                echo<boost::archive::text_iarchive, boost::archive::text_oarchive>(argv[k]);
            else if (kind == "xml")
                echo<boost::archive::xml_iarchive, boost::archive::xml_oarchive>(argv[k]);
            else {
                std::cerr << "unknown kind " << kind << "\n";
                return 2;
            }
        }
    } catch (const std::exception &e) {
        std::cerr << "boost_roundtrip: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
