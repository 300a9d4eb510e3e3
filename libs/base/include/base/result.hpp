#pragma once
// Result<T>: a value or an Error, never both. The only error channel in the
// kernel (no exceptions, no errno). Propagate with TRY():
//
//     Result<Node> find(...) { auto header = TRY(parse_header(blob)); ... }
#include <base/error.hpp>
#include <base/verify.hpp>
#include <new>
#include <type_traits>
#include <utility>

namespace tessera::base {

template <typename T>
class [[nodiscard]] Result {
public:
    using ValueType = T;

    Result(const T& v) : m_ok(true) { new (&m_value) T(v); }
    Result(T&& v) : m_ok(true) { new (&m_value) T(std::move(v)); }
    Result(Error e) : m_ok(false), m_error(e) {}

    Result(const Result& o) : m_ok(o.m_ok) {
        if (m_ok) new (&m_value) T(o.m_value); else m_error = o.m_error;
    }
    Result(Result&& o) : m_ok(o.m_ok) {
        if (m_ok) new (&m_value) T(std::move(o.m_value)); else m_error = o.m_error;
    }
    Result& operator=(const Result& o) {
        if (this != &o) { this->~Result(); new (this) Result(o); }
        return *this;
    }
    Result& operator=(Result&& o) {
        if (this != &o) { this->~Result(); new (this) Result(std::move(o)); }
        return *this;
    }
    ~Result() { if (m_ok) m_value.~T(); }

    [[nodiscard]] bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }

    [[nodiscard]] Error error() const { VERIFY(!m_ok); return m_error; }
    [[nodiscard]] T& value() & { VERIFY(m_ok); return m_value; }
    [[nodiscard]] const T& value() const& { VERIFY(m_ok); return m_value; }
    [[nodiscard]] T&& value() && { VERIFY(m_ok); return std::move(m_value); }
    [[nodiscard]] T value_or(T fallback) const { return m_ok ? m_value : fallback; }

    T* operator->() { return &value(); }
    T& operator*() { return value(); }

    // Used by TRY(): moves the value out of an rvalue result.
    T release_value() { VERIFY(m_ok); return std::move(m_value); }

private:
    bool m_ok;
    union {
        T m_value;
        Error m_error;
    };
};

template <>
class [[nodiscard]] Result<void> {
public:
    using ValueType = void;
    Result() = default;
    Result(Error e) : m_ok(false), m_error(e) {}

    [[nodiscard]] bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    [[nodiscard]] Error error() const { VERIFY(!m_ok); return m_error; }
    void release_value() {}

private:
    bool m_ok = true;
    Error m_error = Error::InvalidArgument;
};

// Returns the error from the enclosing function, or yields the value.
// (GNU statement expression; inside lambdas declare `-> Result<T>`.)
#define TRY(expr)                                              \
    ({                                                         \
        auto _try_result = (expr);                             \
        if (!_try_result.ok()) [[unlikely]]                    \
            return _try_result.error();                        \
        _try_result.release_value();                           \
    })

} // namespace tessera::base
