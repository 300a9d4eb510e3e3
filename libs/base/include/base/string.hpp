#pragma once
// Small string helpers over std::string_view (no allocation).
#include <base/result.hpp>
#include <cstdint>
#include <span>
#include <string_view>

namespace tessera::base {

// Writes the digits of v into `out` (at least 65 bytes for base 2) and
// returns a view of them.
std::string_view format_unsigned(std::span<char> out, unsigned long long v, unsigned base,
                                 bool upper = false);

// Parses a whole string as an unsigned number: decimal, or hex with "0x".
// Rejects empty input, stray characters and overflow.
Result<std::uint64_t> parse_unsigned(std::string_view text);

std::string_view trim(std::string_view text);

// Splits off the first token delimited by `sep` (runs of it count as one);
// `rest` receives what follows.
std::string_view next_token(std::string_view& rest, char sep = ' ');

// Looks up `key` in a kernel command line of space-separated `key=value`
// words (`key` alone yields an empty value). NotFound if absent.
Result<std::string_view> cmdline_value(std::string_view cmdline, std::string_view key);

// Shell-style pattern match supporting '*' and '?' (for test filters).
bool glob_match(std::string_view pattern, std::string_view text);

} // namespace tessera::base
