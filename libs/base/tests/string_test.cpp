#include <base/string.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;
using base::Error;

KTEST(base_string, parse_unsigned) {
    EXPECT_EQ(base::parse_unsigned("0").value(), 0u);
    EXPECT_EQ(base::parse_unsigned("1234").value(), 1234u);
    EXPECT_EQ(base::parse_unsigned("0x1F").value(), 31u);
    EXPECT_EQ(base::parse_unsigned("18446744073709551615").value(), 18446744073709551615ull);
    EXPECT_ERROR(base::parse_unsigned("18446744073709551616"), Error::Overflow);
    EXPECT_ERROR(base::parse_unsigned(""), Error::Malformed);
    EXPECT_ERROR(base::parse_unsigned("0x"), Error::Malformed);
    EXPECT_ERROR(base::parse_unsigned("12a"), Error::Malformed);
    EXPECT_ERROR(base::parse_unsigned("-1"), Error::Malformed);
}

KTEST(base_string, cmdline_lookup) {
    std::string_view cmdline = "  ktest.filter=base.*  quiet crash=load ";
    EXPECT_EQ(base::cmdline_value(cmdline, "ktest.filter").value(), std::string_view("base.*"));
    EXPECT_EQ(base::cmdline_value(cmdline, "crash").value(), std::string_view("load"));
    EXPECT_TRUE(base::cmdline_value(cmdline, "quiet").ok());
    EXPECT_EQ(base::cmdline_value(cmdline, "quiet").value(), std::string_view(""));
    EXPECT_ERROR(base::cmdline_value(cmdline, "ktest"), Error::NotFound);
    EXPECT_ERROR(base::cmdline_value("", "x"), Error::NotFound);
}

KTEST(base_string, glob) {
    EXPECT_TRUE(base::glob_match("*", ""));
    EXPECT_TRUE(base::glob_match("base.*", "base.format"));
    EXPECT_TRUE(base::glob_match("*.parse_?nsigned", "base_string.parse_unsigned"));
    EXPECT_TRUE(base::glob_match("a*b*c", "axxbyyc"));
    EXPECT_FALSE(base::glob_match("a*b*c", "axxbyy"));
    EXPECT_FALSE(base::glob_match("base", "base.x"));
    // Pathological pattern stays linear-ish and terminates.
    EXPECT_FALSE(base::glob_match("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

KTEST(base_string, trim_and_tokens) {
    EXPECT_EQ(base::trim("  x y \r\n"), std::string_view("x y"));
    std::string_view rest = "a,,b,c";
    EXPECT_EQ(base::next_token(rest, ','), std::string_view("a"));
    EXPECT_EQ(base::next_token(rest, ','), std::string_view("b"));
    EXPECT_EQ(base::next_token(rest, ','), std::string_view("c"));
    EXPECT_TRUE(rest.empty());
}
