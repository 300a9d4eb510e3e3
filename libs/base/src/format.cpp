#include <base/format.hpp>
#include <base/string.hpp>

namespace tessera::base {

namespace {

struct Spec {
    char type = 0;       // 0, 'x', 'X', 'b', 'c', 'd', 'p', 's'
    char align = 0;      // 0, '<', '>'
    char fill = ' ';
    bool alternate = false;
    unsigned width = 0;
};

// Parses the text between ':' and '}'. Unknown characters are ignored rather
// than trusted: a bad format string must not take the kernel down.
Spec parse_spec(std::string_view s) {
    Spec spec;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '<' || s[i] == '>')) spec.align = s[i++];
    if (i < s.size() && s[i] == '#') { spec.alternate = true; ++i; }
    if (i < s.size() && s[i] == '0') { spec.fill = '0'; ++i; }
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && spec.width < 256)
        spec.width = spec.width * 10 + unsigned(s[i++] - '0');
    if (i < s.size()) spec.type = s[i];
    return spec;
}

void pad(Sink& sink, char fill, std::size_t count) {
    char chunk[16];
    for (auto& c : chunk) c = fill;
    while (count > 0) {
        std::size_t n = count < sizeof(chunk) ? count : sizeof(chunk);
        sink.write({chunk, n});
        count -= n;
    }
}

void emit(Sink& sink, const Spec& spec, std::string_view prefix, std::string_view body) {
    std::size_t len = prefix.size() + body.size();
    std::size_t padding = spec.width > len ? spec.width - len : 0;
    if (spec.fill == '0' && spec.align == 0) {
        // Zero padding goes between the sign/prefix and the digits.
        sink.write(prefix);
        pad(sink, '0', padding);
        sink.write(body);
        return;
    }
    bool left = spec.align == '<';
    if (!left) pad(sink, spec.fill, padding);
    sink.write(prefix);
    sink.write(body);
    if (left) pad(sink, spec.fill, padding);
}

void emit_unsigned(Sink& sink, const Spec& spec, unsigned long long v, bool negative) {
    unsigned base = 10;
    bool upper = false;
    std::string_view prefix = negative ? "-" : "";
    switch (spec.type) {
    case 'x': base = 16; if (spec.alternate) prefix = "0x"; break;
    case 'X': base = 16; upper = true; if (spec.alternate) prefix = "0x"; break;
    case 'b': base = 2; if (spec.alternate) prefix = "0b"; break;
    case 'p': base = 16; prefix = "0x"; break;
    default: break;
    }
    char digits[66];
    emit(sink, spec, prefix, format_unsigned(digits, v, base, upper));
}

void emit_arg(Sink& sink, const Spec& spec, const FormatArg& arg) {
    using Kind = FormatArg::Kind;
    switch (arg.kind) {
    case Kind::Signed:
        if (spec.type == 'c') {
            char c = char(arg.s);
            emit(sink, spec, "", {&c, 1});
        } else if (arg.s < 0 && spec.type != 'x' && spec.type != 'X' && spec.type != 'b') {
            emit_unsigned(sink, spec, 0ull - static_cast<unsigned long long>(arg.s), true);
        } else {
            emit_unsigned(sink, spec, static_cast<unsigned long long>(arg.s), false);
        }
        break;
    case Kind::Unsigned:
        if (spec.type == 'c') {
            char c = char(arg.u);
            emit(sink, spec, "", {&c, 1});
        } else {
            emit_unsigned(sink, spec, arg.u, false);
        }
        break;
    case Kind::Bool:
        emit(sink, spec, "", arg.b ? "true" : "false");
        break;
    case Kind::Char:
        if (spec.type == 'x' || spec.type == 'X' || spec.type == 'd')
            emit_unsigned(sink, spec, static_cast<unsigned char>(arg.c), false);
        else
            emit(sink, spec, "", {&arg.c, 1});
        break;
    case Kind::String: {
        Spec s = spec;
        if (s.align == 0) s.align = '<';
        emit(sink, s, "", arg.str);
        break;
    }
    case Kind::Pointer: {
        Spec s = spec;
        s.type = 'p';
        if (s.width == 0) { s.width = 18; s.fill = '0'; }
        emit_unsigned(sink, s, reinterpret_cast<unsigned long long>(arg.ptr), false);
        break;
    }
    }
}

} // namespace

void vformat(Sink& sink, std::string_view fmt, std::span<const FormatArg> args) {
    std::size_t next_arg = 0;
    std::size_t i = 0;
    while (i < fmt.size()) {
        // A plain scan: string_view::find_first_of calls memchr per character.
        std::size_t special = i;
        while (special < fmt.size() && fmt[special] != '{' && fmt[special] != '}') ++special;
        if (special == fmt.size()) {
            sink.write(fmt.substr(i));
            return;
        }
        if (special > i) sink.write(fmt.substr(i, special - i));
        i = special;
        char c = fmt[i];
        if (i + 1 < fmt.size() && fmt[i + 1] == c) { // "{{" or "}}"
            sink.write({&fmt[i], 1});
            i += 2;
            continue;
        }
        if (c == '}') { // stray '}': print it as is
            sink.write("}");
            ++i;
            continue;
        }
        std::size_t close = fmt.find('}', i);
        if (close == std::string_view::npos) {
            sink.write(fmt.substr(i));
            return;
        }
        std::string_view inside = fmt.substr(i + 1, close - i - 1);
        Spec spec;
        if (!inside.empty() && inside[0] == ':') spec = parse_spec(inside.substr(1));
        if (next_arg < args.size())
            emit_arg(sink, spec, args[next_arg++]);
        else
            sink.write("{?}"); // more placeholders than arguments
        i = close + 1;
    }
}

void BufferSink::write(std::string_view text) {
    std::size_t room = m_storage.size() - m_length;
    std::size_t n = text.size() <= room ? text.size() : room;
    for (std::size_t k = 0; k < n; ++k) m_storage[m_length + k] = text[k];
    m_length += n;
    if (n < text.size()) m_truncated = true;
}

} // namespace tessera::base
