// The C++ Boost.Serialization peer of `daf bench boost --peers`: one timed
// operation per run, on the same data daf's side uses, printing the seconds
// measured around the archive work (file open to close).
//
//   boost_peer vec-write|vec-read   PATH N   (N doubles, binary archive)
//   boost_peer rec-write|rec-read   PATH N   (N SmallRec, binary archive)
//   boost_peer txt-write|txt-read   PATH N   (N doubles, text archive)
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

struct SmallRec {
    int i;
    double x;
    std::string s;
    template <class A> void serialize(A& a, const unsigned int) { a & i & x & s; }
};

static std::vector<double> doubles(size_t n) {
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = double(i) * 0.25 + 1.0 / 3.0;
    return v;
}

static std::vector<SmallRec> records(size_t n) {
    std::vector<SmallRec> v(n);
    char buf[16];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "s%07zu", i % 10000000);
        v[i] = SmallRec{int(i), double(i) * 0.5, buf};
    }
    return v;
}

template <class OA, class T> static double write(const char* path, const T& value) {
    auto t = std::chrono::steady_clock::now();
    {
        std::ofstream ofs(path, std::ios::binary);
        OA oa(ofs);
        oa << value;
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

template <class IA, class T> static double read(const char* path, size_t n) {
    auto t = std::chrono::steady_clock::now();
    T value;
    {
        std::ifstream ifs(path, std::ios::binary);
        IA ia(ifs);
        ia >> value;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    if (value.size() != n) {
        std::fprintf(stderr, "read %zu items, expected %zu\n", value.size(), n);
        std::exit(2);
    }
    return s;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: boost_peer MODE PATH N\n");
        return 1;
    }
    std::string mode = argv[1];
    const char* path = argv[2];
    size_t n = std::strtoull(argv[3], nullptr, 10);
    double s;
    using namespace boost::archive;
    if (mode == "vec-write") s = write<binary_oarchive>(path, doubles(n));
    else if (mode == "vec-read") s = read<binary_iarchive, std::vector<double>>(path, n);
    else if (mode == "rec-write") s = write<binary_oarchive>(path, records(n));
    else if (mode == "rec-read") s = read<binary_iarchive, std::vector<SmallRec>>(path, n);
    else if (mode == "txt-write") s = write<text_oarchive>(path, doubles(n));
    else if (mode == "txt-read") s = read<text_iarchive, std::vector<double>>(path, n);
    else {
        std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
        return 1;
    }
    std::printf("%.9f\n", s);
    return 0;
}
