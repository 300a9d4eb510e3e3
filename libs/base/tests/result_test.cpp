#include <base/result.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;
using base::Error;
using base::Result;

namespace {
Result<int> half(int x) {
    if (x % 2) return Error::InvalidArgument;
    return x / 2;
}
Result<int> quarter(int x) {
    int h = TRY(half(x));
    return TRY(half(h));
}
Result<void> check_even(int x) {
    TRY(half(x));
    return {};
}
struct Counted {
    static inline int live = 0;
    int v;
    explicit Counted(int value) : v(value) { ++live; }
    Counted(const Counted& o) : v(o.v) { ++live; }
    Counted(Counted&& o) : v(o.v) { ++live; }
    ~Counted() { --live; }
};
} // namespace

KTEST(base_result, value_and_error) {
    auto ok = half(8);
    ASSERT_OK(ok);
    EXPECT_EQ(ok.value(), 4);
    auto bad = half(3);
    EXPECT_ERROR(bad, Error::InvalidArgument);
    EXPECT_EQ(bad.value_or(-1), -1);
}

KTEST(base_result, try_propagates_first_error) {
    EXPECT_EQ(quarter(12).value(), 3);
    EXPECT_ERROR(quarter(6), Error::InvalidArgument); // 6/2 = 3 is odd
    EXPECT_ERROR(quarter(5), Error::InvalidArgument);
    EXPECT_OK(check_even(4));
    EXPECT_ERROR(check_even(5), Error::InvalidArgument);
}

KTEST(base_result, destroys_contained_value_once) {
    Counted::live = 0;
    {
        Result<Counted> r(Counted(7));
        EXPECT_EQ(Counted::live, 1);
        Result<Counted> copy = r;
        EXPECT_EQ(Counted::live, 2);
        copy = Result<Counted>(Error::NotFound);
        EXPECT_EQ(Counted::live, 1);
        EXPECT_EQ(r.value().v, 7);
    }
    EXPECT_EQ(Counted::live, 0);
}

KTEST(base_result, error_names_are_distinct) {
    EXPECT_EQ(base::error_name(Error::NoMemory), std::string_view("out of memory"));
    EXPECT_NE(base::error_name(Error::Malformed), base::error_name(Error::NotFound));
}
