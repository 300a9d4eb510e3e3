#include <base/string.hpp>

namespace tessera::base {

std::string_view format_unsigned(std::span<char> out, unsigned long long v, unsigned base,
                                 bool upper) {
    VERIFY(base >= 2 && base <= 16 && out.size() >= 65);
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::size_t pos = out.size();
    do {
        out[--pos] = digits[v % base];
        v /= base;
    } while (v != 0);
    return {out.data() + pos, out.size() - pos};
}

Result<std::uint64_t> parse_unsigned(std::string_view text) {
    unsigned base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    if (text.empty()) return Error::Malformed;
    std::uint64_t value = 0;
    for (char c : text) {
        unsigned d;
        if (c >= '0' && c <= '9') d = unsigned(c - '0');
        else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
        else return Error::Malformed;
        if (d >= base) return Error::Malformed;
        if (value > (UINT64_MAX - d) / base) return Error::Overflow;
        value = value * base + d;
    }
    return value;
}

std::string_view trim(std::string_view text) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    return text;
}

std::string_view next_token(std::string_view& rest, char sep) {
    while (!rest.empty() && rest.front() == sep) rest.remove_prefix(1);
    std::size_t end = rest.find(sep);
    std::string_view token = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    return token;
}

Result<std::string_view> cmdline_value(std::string_view cmdline, std::string_view key) {
    while (!cmdline.empty()) {
        std::string_view word = next_token(cmdline);
        std::size_t eq = word.find('=');
        std::string_view name = word.substr(0, eq);
        if (name == key)
            return eq == std::string_view::npos ? std::string_view{} : word.substr(eq + 1);
    }
    return Error::NotFound;
}

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative matcher with one backtrack point: linear in practice and
    // never recursive, so a hostile pattern cannot exhaust the stack.
    std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

} // namespace tessera::base
