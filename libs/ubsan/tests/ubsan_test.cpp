// The report wording, from synthetic check descriptors (the layouts GCC
// emits), and, in report mode, the once-per-site behaviour of real checks.
// The deliberate failures that panic are in apps/crashtest (pytest).
#include "../src/abi.hpp"
#include "../src/describe.hpp"
#include "../src/sites.hpp"
#include <arch/cpu.hpp>
#include <climits>
#include <cstddef>
#include <ktest/ktest.hpp>
#include <ubsan/ubsan.hpp>

using namespace tessera;
using namespace tessera::ubsan;
using abi::ValueHandle;

extern "C" void __ubsan_handle_add_overflow(abi::OverflowData*, ValueHandle, ValueHandle);

namespace {

// A type descriptor followed by its name, as GCC lays them out.
template <std::size_t N>
struct TestType {
    abi::TypeDescriptor descriptor;
    char name[N];
};
static_assert(offsetof(TestType<6>, name) == sizeof(abi::TypeDescriptor));

template <std::size_t N>
constexpr TestType<N> make_type(abi::TypeKind kind, std::uint16_t info, const char (&name)[N]) {
    TestType<N> t = {{kind, info}, {}};
    for (std::size_t i = 0; i < N; ++i) t.name[i] = name[i];
    return t;
}

constexpr std::uint16_t integer_info(bool is_signed, unsigned log2_bits) {
    return static_cast<std::uint16_t>(log2_bits << 1 | (is_signed ? 1 : 0));
}

constinit auto g_int = make_type(abi::TypeKind::Integer, integer_info(true, 5), "'int'");
constinit auto g_uint = make_type(abi::TypeKind::Integer, integer_info(false, 5), "'unsigned int'");
constinit auto g_i8 = make_type(abi::TypeKind::Integer, integer_info(true, 3), "'signed char'");
constinit auto g_u64 = make_type(abi::TypeKind::Integer, integer_info(false, 6), "'long unsigned int'");
constinit auto g_i128 = make_type(abi::TypeKind::Integer, integer_info(true, 7), "'__int128'");
constinit auto g_u32_unknown = make_type(abi::TypeKind::Unknown, 0, "'uint32_t'");
constinit auto g_array = make_type(abi::TypeKind::Unknown, 0, "'int [4]'");
constinit auto g_bool = make_type(abi::TypeKind::Integer, integer_info(false, 3), "'bool'");
constinit auto g_double = make_type(abi::TypeKind::Float, 64, "'double'");

constexpr abi::SourceLocation kLoc = {"libs/ubsan/tests/ubsan_test.cpp", 42, 7};

template <typename F>
std::string_view describe(char (&buffer)[256], F&& f) {
    base::BufferSink sink(buffer);
    f(sink);
    return sink.view();
}

constexpr ValueHandle as_handle(long long v) { return static_cast<ValueHandle>(v); }

} // namespace

KTEST(ubsan, integer_values_in_their_type) {
    char b[256];
    auto value = [&](const abi::TypeDescriptor& t, ValueHandle v) {
        return describe(b, [&](base::Sink& s) { detail::write_value(s, t, v); });
    };
    EXPECT_EQ(value(g_int.descriptor, as_handle(-5)), std::string_view("-5"));
    EXPECT_EQ(value(g_int.descriptor, 0xffffffffu), std::string_view("-1")); // zero-extended still -1
    EXPECT_EQ(value(g_uint.descriptor, 0xffffffffu), std::string_view("4294967295"));
    EXPECT_EQ(value(g_i8.descriptor, 0x80), std::string_view("-128"));
    EXPECT_EQ(value(g_u64.descriptor, ~ValueHandle(0)), std::string_view("18446744073709551615"));
    // 128-bit operands are passed by address.
    __int128 min128 = static_cast<__int128>(static_cast<unsigned __int128>(1) << 127);
    EXPECT_EQ(value(g_i128.descriptor, reinterpret_cast<ValueHandle>(&min128)),
              std::string_view("-170141183460469231731687303715884105728"));
    __int128 small = -7;
    EXPECT_EQ(value(g_i128.descriptor, reinterpret_cast<ValueHandle>(&small)), std::string_view("-7"));
    EXPECT_EQ(value(g_double.descriptor, 0x3ff0000000000000u),
              std::string_view("<64-bit floating-point value, bits 0x3ff0000000000000>"));
}

KTEST(ubsan, arithmetic_overflow) {
    char b[256];
    abi::OverflowData data = {kLoc, &g_int.descriptor};
    const char* title = nullptr;
    EXPECT_EQ(describe(b, [&](base::Sink& s) { title = detail::describe_overflow(s, data, '+', INT_MAX, 1); }),
              std::string_view("signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'"));
    EXPECT_EQ(std::string_view(title), std::string_view("UBSan: signed integer overflow"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_overflow(s, data, '*', as_handle(-65536), 65536); }),
              std::string_view("signed integer overflow: -65536 * 65536 cannot be represented in type 'int'"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_negate_overflow(s, data, as_handle(INT_MIN)); }),
              std::string_view("signed integer overflow: negation of -2147483648 cannot be represented in type 'int'"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { title = detail::describe_divrem_overflow(s, data, 7, 0); }),
              std::string_view("division by zero"));
    EXPECT_EQ(std::string_view(title), std::string_view("UBSan: division by zero"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_divrem_overflow(s, data, as_handle(INT_MIN), as_handle(-1)); }),
              std::string_view("signed integer overflow: division of -2147483648 by -1 cannot be represented in type 'int'"));
}

KTEST(ubsan, shifts) {
    char b[256];
    abi::ShiftOutOfBoundsData data = {kLoc, &g_int.descriptor, &g_int.descriptor};
    auto shift = [&](long long lhs, long long rhs) {
        return describe(b, [&](base::Sink& s) { detail::describe_shift_out_of_bounds(s, data, as_handle(lhs), as_handle(rhs)); });
    };
    EXPECT_EQ(shift(1, -3), std::string_view("shift out of bounds: shift exponent -3 is negative"));
    EXPECT_EQ(shift(1, 40), std::string_view("shift out of bounds: shift exponent 40 is too large for 32-bit type 'int'"));
    EXPECT_EQ(shift(-2, 3), std::string_view("shift out of bounds: left shift of negative value -2"));
    EXPECT_EQ(shift(0x40000000, 2),
              std::string_view("shift out of bounds: left shift of 1073741824 by 2 places cannot be represented in type 'int'"));
}

KTEST(ubsan, type_mismatch) {
    char b[256];
    abi::TypeMismatchData load4 = {kLoc, &g_u32_unknown.descriptor, 2, abi::TypeCheckKind::Load};
    abi::TypeMismatchData store4 = {kLoc, &g_u32_unknown.descriptor, 2, abi::TypeCheckKind::Store};
    const char* title = nullptr;
    EXPECT_EQ(describe(b, [&](base::Sink& s) { title = detail::describe_type_mismatch(s, load4, 0x80001001); }),
              std::string_view("load of misaligned address 0x80001001 for type 'uint32_t', which requires 4 byte alignment"));
    EXPECT_EQ(std::string_view(title), std::string_view("UBSan: misaligned access"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { title = detail::describe_type_mismatch(s, store4, 0); }),
              std::string_view("store to null pointer of type 'uint32_t'"));
    EXPECT_EQ(std::string_view(title), std::string_view("UBSan: null pointer use"));
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_type_mismatch(s, load4, 0x80001000); }),
              std::string_view("load of address 0x80001000 with insufficient space for an object of type 'uint32_t'"));
}

KTEST(ubsan, other_checks) {
    char b[256];
    abi::OutOfBoundsData oob = {kLoc, &g_array.descriptor, &g_int.descriptor};
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_out_of_bounds(s, oob, 4); }),
              std::string_view("array index out of bounds: index 4 out of bounds for type 'int [4]'"));
    abi::InvalidValueData invalid = {kLoc, &g_bool.descriptor};
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_load_invalid_value(s, invalid, 2); }),
              std::string_view("invalid value: load of value 2, which is not a valid value for type 'bool'"));
    abi::NonNullArgData nonnull = {kLoc, {nullptr, 0, 0}, 2};
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_nonnull_arg(s, nonnull); }),
              std::string_view("null pointer passed as argument 2, which is declared to never be null"));
    abi::InvalidBuiltinData ctz = {kLoc, abi::BuiltinCheckKind::CtzPassedZero};
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_invalid_builtin(s, ctz); }),
              std::string_view("passing zero to __builtin_ctz(), which is not a valid argument"));
    abi::VlaBoundData vla = {kLoc, &g_int.descriptor};
    EXPECT_EQ(describe(b, [&](base::Sink& s) { detail::describe_vla_bound(s, vla, as_handle(-1)); }),
              std::string_view("variable length array bound evaluates to non-positive value -1"));
}

KTEST(ubsan, pointer_overflow) {
    char b[256];
    auto overflow = [&](ValueHandle base, ValueHandle result) {
        return describe(b, [&](base::Sink& s) { detail::describe_pointer_overflow(s, base, result); });
    };
    EXPECT_EQ(overflow(0, 0), std::string_view("pointer overflow: applying zero offset to null pointer"));
    EXPECT_EQ(overflow(0, 0x10), std::string_view("pointer overflow: applying non-zero offset 0x10 to null pointer"));
    EXPECT_EQ(overflow(0x10, 0),
              std::string_view("pointer overflow: applying non-zero offset to non-null pointer 0x10 produced null pointer"));
    EXPECT_EQ(overflow(0x7ffffffffffffff0, 0x10),
              std::string_view("pointer overflow: addition of unsigned offset to 0x7ffffffffffffff0 overflowed to 0x10"));
    EXPECT_EQ(overflow(0x10, 0x20),
              std::string_view("pointer overflow: subtraction of unsigned offset from 0x10 overflowed to 0x20"));
    EXPECT_EQ(overflow(0x7ffffffffffffff0, 0x8000000000000010),
              std::string_view("pointer overflow: pointer index expression with base 0x7ffffffffffffff0 overflowed to "
                               "0x8000000000000010"));
}

KTEST(ubsan, site_keys_and_set) {
    // Same location through different copies of the file name: one key.
    char copy[] = "libs/base/include/base/result.hpp";
    std::uint64_t key = detail::site_key("libs/base/include/base/result.hpp", 42, 7);
    EXPECT_EQ(detail::site_key(copy, 42, 7), key);
    EXPECT_NE(detail::site_key(copy, 42, 8), key);
    EXPECT_NE(detail::site_key(copy, 43, 7), key);
    EXPECT_NE(detail::site_key("libs/base/include/base/result.cpp", 42, 7), key);
    EXPECT_NE(detail::site_key(nullptr, 0, 0), 0u);

    using Set = detail::SiteSet<4>;
    static constinit Set set; // a fresh table, not the runtime's
    // 5, 9 and 13 share home slot 1 (key % 4): each probes further; 2
    // finds its home taken by 9 and wraps round to slot 0.
    EXPECT_EQ(static_cast<int>(set.insert(5)), static_cast<int>(Set::Insert::New));
    EXPECT_EQ(static_cast<int>(set.insert(5)), static_cast<int>(Set::Insert::Present));
    EXPECT_EQ(static_cast<int>(set.insert(9)), static_cast<int>(Set::Insert::New));
    EXPECT_EQ(static_cast<int>(set.insert(13)), static_cast<int>(Set::Insert::New));
    EXPECT_EQ(static_cast<int>(set.insert(2)), static_cast<int>(Set::Insert::New));
    EXPECT_EQ(static_cast<int>(set.insert(3)), static_cast<int>(Set::Insert::Full));
    EXPECT_EQ(static_cast<int>(set.insert(13)), static_cast<int>(Set::Insert::Present));
}

// Report mode only: the first failure at a site is reported, later ones
// are counted; panic mode would stop the machine here.
KTEST(ubsan, a_site_reports_once) {
#if CONFIG_UBSAN_MODE_REPORT
    abi::OverflowData data = {{"libs/ubsan/tests/ubsan_test.cpp", 1, 1}, &g_int.descriptor};
    Stats before = stats();
    __ubsan_handle_add_overflow(&data, INT_MAX, 1);
    __ubsan_handle_add_overflow(&data, INT_MAX, 2);
    Stats after = stats();
    EXPECT_EQ(after.reports - before.reports, 1u);
    EXPECT_EQ(after.repeats - before.repeats, 1u);
    EXPECT_EQ(data.loc.column, abi::kColumnReported);
#else
    KTEST_SKIP("UBSAN_MODE_PANIC: a report stops the machine");
#endif
}

// With interrupts off the report bypasses klog (its lock may be held by
// the failing code) and goes to the console directly.
KTEST(ubsan, reports_with_interrupts_off) {
#if CONFIG_UBSAN_MODE_REPORT
    abi::OverflowData data = {{"libs/ubsan/tests/ubsan_test.cpp", 2, 1}, &g_int.descriptor};
    bool were_enabled = arch::irqs_enabled();
    Stats before = stats();
    {
        arch::IrqGuard irqs_off;
        __ubsan_handle_add_overflow(&data, INT_MAX, 3);
        EXPECT_FALSE(arch::irqs_enabled());
    }
    EXPECT_EQ(stats().reports - before.reports, 1u);
    EXPECT_EQ(arch::irqs_enabled(), were_enabled);
#else
    KTEST_SKIP("UBSAN_MODE_PANIC: a report stops the machine");
#endif
}

// GCC gives each unrolled copy of the loop body its own descriptor: the
// location, not the descriptor, must decide.
KTEST(ubsan, a_real_check_reports_once) {
#if CONFIG_UBSAN_MODE_REPORT
    volatile int source = INT_MAX; // the compiler cannot fold the overflow away
    volatile int sink = 0;
    Stats before = stats();
    for (int i = 0; i < 2; ++i) sink = source + 1; // one site, two failures
    Stats after = stats();
    EXPECT_EQ(after.reports - before.reports, 1u);
    EXPECT_EQ(after.repeats - before.repeats, 1u);
    EXPECT_EQ(sink, INT_MIN); // what the hardware computed
#else
    KTEST_SKIP("UBSAN_MODE_PANIC: a report stops the machine");
#endif
}
