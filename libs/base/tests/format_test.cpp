#include <base/format.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;

namespace {
template <typename... A>
std::string_view fmt(char (&buf)[128], std::string_view f, const A&... a) {
    return base::format_into(buf, f, a...);
}
} // namespace

KTEST(base_format, integers) {
    char b[128];
    EXPECT_EQ(fmt(b, "{}", 0), std::string_view("0"));
    EXPECT_EQ(fmt(b, "{}", -42), std::string_view("-42"));
    EXPECT_EQ(fmt(b, "{}", 18446744073709551615ull), std::string_view("18446744073709551615"));
    EXPECT_EQ(fmt(b, "{}", static_cast<long long>(-9223372036854775807ll - 1)),
              std::string_view("-9223372036854775808"));
    EXPECT_EQ(fmt(b, "{:x} {:X} {:#x}", 255, 255, 255), std::string_view("ff FF 0xff"));
    EXPECT_EQ(fmt(b, "{:b} {:#b}", 5u, 5u), std::string_view("101 0b101"));
}

KTEST(base_format, width_fill_and_alignment) {
    char b[128];
    EXPECT_EQ(fmt(b, "[{:5}]", 42), std::string_view("[   42]"));
    EXPECT_EQ(fmt(b, "[{:<5}]", 42), std::string_view("[42   ]"));
    EXPECT_EQ(fmt(b, "[{:08x}]", 0xbeefu), std::string_view("[0000beef]"));
    EXPECT_EQ(fmt(b, "[{:#010x}]", 0xbeefu), std::string_view("[0x0000beef]"));
    EXPECT_EQ(fmt(b, "[{:05}]", -42), std::string_view("[-0042]"));
    EXPECT_EQ(fmt(b, "[{:>6}]", "ab"), std::string_view("[    ab]"));
    EXPECT_EQ(fmt(b, "[{:6}]", "ab"), std::string_view("[ab    ]"));
}

KTEST(base_format, other_types) {
    char b[128];
    EXPECT_EQ(fmt(b, "{} {}", true, false), std::string_view("true false"));
    EXPECT_EQ(fmt(b, "{}{}", 'o', 'k'), std::string_view("ok"));
    EXPECT_EQ(fmt(b, "{}", static_cast<const char*>(nullptr)), std::string_view("(null)"));
    EXPECT_EQ(fmt(b, "{}", reinterpret_cast<void*>(0x1234)), std::string_view("0x0000000000001234"));
    EXPECT_EQ(fmt(b, "{}", base::Error::TimedOut), std::string_view("timed out"));
}

KTEST(base_format, braces_and_mismatched_arguments) {
    char b[128];
    EXPECT_EQ(fmt(b, "{{}} {}", 1), std::string_view("{} 1"));
    EXPECT_EQ(fmt(b, "{} {}", 1), std::string_view("1 {?}"));    // too few arguments
    EXPECT_EQ(fmt(b, "{}", 1, 2), std::string_view("1"));        // extra ignored
    EXPECT_EQ(fmt(b, "open {", 1), std::string_view("open {"));  // unterminated
    EXPECT_EQ(fmt(b, "a } b"), std::string_view("a } b"));
}

KTEST(base_format, truncates_at_buffer_end) {
    char small[8];
    base::BufferSink sink(small);
    base::format_to(sink, "{}", "0123456789");
    EXPECT_EQ(sink.view(), std::string_view("01234567"));
    EXPECT_TRUE(sink.truncated());
}
