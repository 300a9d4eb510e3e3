#pragma once
// Type-safe formatting with `{}` placeholders, in the spirit of std::format
// but without allocation: text goes to a Sink a character run at a time.
//
//   {}       natural form        {:x} {:X}  hex         {:#x}  0x-prefixed
//   {:08x}   zero-padded width   {:>6} {:<6} aligned    {:c}   integer as char
//   {:b}     binary              {{ and }}  literal braces
//
// The templates only pack arguments into FormatArg records; one out-of-line
// vformat() does the work, so each call site costs a few instructions.
#include <base/error.hpp>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace tessera::base {

class Sink {
public:
    virtual void write(std::string_view text) = 0;

protected:
    ~Sink() = default;
};

struct FormatArg {
    enum class Kind : std::uint8_t { Signed, Unsigned, Bool, Char, String, Pointer };
    Kind kind;
    union {
        long long s;
        unsigned long long u;
        bool b;
        char c;
        std::string_view str;
        const void* ptr;
    };

    template <std::signed_integral T>
        requires(!std::same_as<T, char>)
    FormatArg(T v) : kind(Kind::Signed), s(v) {}
    template <std::unsigned_integral T>
        requires(!std::same_as<T, bool>)
    FormatArg(T v) : kind(Kind::Unsigned), u(v) {}
    FormatArg(bool v) : kind(Kind::Bool), b(v) {}
    FormatArg(char v) : kind(Kind::Char), c(v) {}
    FormatArg(std::string_view v) : kind(Kind::String), str(v) {}
    FormatArg(const char* v) : kind(Kind::String), str(v ? std::string_view(v) : "(null)") {}
    FormatArg(char* v) : FormatArg(static_cast<const char*>(v)) {}
    FormatArg(Error e) : kind(Kind::String), str(error_name(e)) {}
    template <typename T>
        requires std::is_enum_v<T>
    FormatArg(T v) : FormatArg(static_cast<std::underlying_type_t<T>>(v)) {}
    template <typename T>
        requires(!std::same_as<std::remove_cv_t<T>, char>)
    FormatArg(T* p) : kind(Kind::Pointer), ptr(p) {}
    FormatArg(std::nullptr_t) : kind(Kind::Pointer), ptr(nullptr) {}
};

void vformat(Sink& sink, std::string_view fmt, std::span<const FormatArg> args);

template <typename... Args>
void format_to(Sink& sink, std::string_view fmt, const Args&... args) {
    if constexpr (sizeof...(Args) == 0) {
        vformat(sink, fmt, {});
    } else {
        const FormatArg packed[] = {FormatArg(args)...};
        vformat(sink, fmt, packed);
    }
}

// Formats into caller-provided storage; output that does not fit is cut off
// (and truncated() says so), never written past the end.
class BufferSink final : public Sink {
public:
    explicit BufferSink(std::span<char> storage) : m_storage(storage) {}
    void write(std::string_view text) override;
    [[nodiscard]] std::string_view view() const { return {m_storage.data(), m_length}; }
    [[nodiscard]] bool truncated() const { return m_truncated; }
    void clear() { m_length = 0; m_truncated = false; }

private:
    std::span<char> m_storage;
    std::size_t m_length = 0;
    bool m_truncated = false;
};

template <typename... Args>
std::string_view format_into(std::span<char> storage, std::string_view fmt, const Args&... args) {
    BufferSink sink(storage);
    format_to(sink, fmt, args...);
    return sink.view();
}

} // namespace tessera::base
