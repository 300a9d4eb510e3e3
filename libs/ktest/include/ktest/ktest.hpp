#pragma once
// In-kernel tests. A case is a function registered at compile time in the
// .ktest_cases section, so adding a test never means editing a list:
//
//     KTEST(base, parse_hex) {
//         auto v = base::parse_unsigned("0x1f");
//         ASSERT_OK(v);
//         EXPECT_EQ(v.value(), 31u);
//     }
//
// EXPECT_* records a failure and continues; ASSERT_* records it and returns
// from the case. Each failure prints a KTAP diagnostic with file:line and
// the values involved. Cases run one after another on the boot hart.
#include <base/format.hpp>
#include <base/result.hpp>
#include <cstdint>
#include <type_traits>

namespace tessera::ktest {

// Deterministic pseudo-random numbers for tests (xorshift64*): the same
// sequence on every run, so a failure can be reproduced.
class Random {
public:
    explicit constexpr Random(std::uint64_t seed = 0x9e3779b97f4a7c15ull) : m_state(seed ? seed : 1) {}
    std::uint64_t next() {
        m_state ^= m_state >> 12;
        m_state ^= m_state << 25;
        m_state ^= m_state >> 27;
        return m_state * 0x2545f4914f6cdd1dull;
    }

private:
    std::uint64_t m_state;
};

class Context {
public:
    void fail(const char* file, int line, std::string_view what);
    template <typename A, typename B>
    void fail_compare(const char* file, int line, std::string_view what, const A& a, const B& b);
    void skip(std::string_view reason);
    [[nodiscard]] bool failed() const { return m_failures != 0; }
    [[nodiscard]] bool skipped() const { return m_skipped; }
    [[nodiscard]] std::string_view skip_reason() const { return m_skip_reason; }

private:
    unsigned m_failures = 0;
    bool m_skipped = false;
    std::string_view m_skip_reason;
};

struct Case {
    const char* suite;
    const char* name;
    void (*run)(Context&);
    const char* file;
    int line;
};

struct Summary {
    unsigned passed = 0;
    unsigned failed = 0;
    unsigned skipped = 0;
};

// Runs every case whose "suite.name" matches `filter` (a glob; empty = all)
// and prints KTAP on the console.
Summary run(std::string_view filter);
// Prints "ktest-case suite.name" for each registered case.
void list();
// What the ktest app does: honours ktest.filter= and ktest.list boot
// options; returns the exit status (0 all passed, 1 otherwise).
int main_from_boot_options();

namespace detail {
void print_value(base::Sink& sink, const char* label, std::span<const base::FormatArg> value);
template <typename T>
void describe(base::Sink& sink, const char* label, const T& v) {
    if constexpr (std::is_constructible_v<base::FormatArg, const T&>) {
        const base::FormatArg arg(v);
        print_value(sink, label, {&arg, 1});
    } else {
        print_value(sink, label, {});
    }
}
void report(const char* file, int line, std::string_view what, void (*details)(base::Sink&, const void*), const void* ctx);
} // namespace detail

template <typename A, typename B>
void Context::fail_compare(const char* file, int line, std::string_view what, const A& a, const B& b) {
    ++m_failures;
    struct Values { const A& a; const B& b; } values{a, b};
    detail::report(file, line, what, [](base::Sink& sink, const void* p) {
        auto* v = static_cast<const Values*>(p);
        detail::describe(sink, "left", v->a);
        detail::describe(sink, "right", v->b);
    }, &values);
}

} // namespace tessera::ktest

#define KTEST_CONCAT2(a, b) a##b
#define KTEST_CONCAT(a, b) KTEST_CONCAT2(a, b)

#define KTEST(suite, name)                                                                         \
    static void ktest_fn_##suite##_##name(::tessera::ktest::Context& ktest_context);               \
    [[gnu::used, gnu::section(".ktest_cases")]] static constinit const ::tessera::ktest::Case      \
        ktest_case_##suite##_##name = {#suite, #name, &ktest_fn_##suite##_##name, __FILE__,        \
                                       __LINE__};                                                   \
    static void ktest_fn_##suite##_##name([[maybe_unused]] ::tessera::ktest::Context& ktest_context)

// Operands are copied: `f().value()` would otherwise dangle.
#define KTEST_CHECK_BINOP_(a, op, b, on_fail)                                                      \
    do {                                                                                           \
        const auto ktest_a_ = (a);                                                                 \
        const auto ktest_b_ = (b);                                                                 \
        if (!(ktest_a_ op ktest_b_)) {                                                             \
            ktest_context.fail_compare(__FILE__, __LINE__, #a " " #op " " #b, ktest_a_, ktest_b_); \
            on_fail;                                                                               \
        }                                                                                          \
    } while (0)

#define KTEST_CHECK_(cond, text, on_fail)                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ktest_context.fail(__FILE__, __LINE__, text);                                          \
            on_fail;                                                                               \
        }                                                                                          \
    } while (0)

// Result checks evaluate their expression once (it may have side effects)
// and print the error actually returned.
#define KTEST_CHECK_OK_(r, on_fail)                                                                \
    do {                                                                                           \
        const auto& ktest_r_ = (r);                                                                \
        if (!ktest_r_.ok()) {                                                                      \
            ktest_context.fail_compare(__FILE__, __LINE__, "expected success: " #r, ktest_r_.error(), \
                                       "success");                                                 \
            on_fail;                                                                               \
        }                                                                                          \
    } while (0)

#define KTEST_CHECK_ERROR_(r, e, on_fail)                                                          \
    do {                                                                                           \
        const auto& ktest_r_ = (r);                                                                \
        if (ktest_r_.ok()) {                                                                       \
            ktest_context.fail(__FILE__, __LINE__, "expected error " #e ", got success: " #r);     \
            on_fail;                                                                               \
        } else if (ktest_r_.error() != (e)) {                                                      \
            ktest_context.fail_compare(__FILE__, __LINE__, "expected error " #e ": " #r,          \
                                       ktest_r_.error(), (e));                                     \
            on_fail;                                                                               \
        }                                                                                          \
    } while (0)

#define EXPECT_TRUE(c) KTEST_CHECK_((c), "expected true: " #c, (void)0)
#define EXPECT_FALSE(c) KTEST_CHECK_(!(c), "expected false: " #c, (void)0)
#define EXPECT_EQ(a, b) KTEST_CHECK_BINOP_(a, ==, b, (void)0)
#define EXPECT_NE(a, b) KTEST_CHECK_BINOP_(a, !=, b, (void)0)
#define EXPECT_LT(a, b) KTEST_CHECK_BINOP_(a, <, b, (void)0)
#define EXPECT_LE(a, b) KTEST_CHECK_BINOP_(a, <=, b, (void)0)
#define EXPECT_GT(a, b) KTEST_CHECK_BINOP_(a, >, b, (void)0)
#define EXPECT_GE(a, b) KTEST_CHECK_BINOP_(a, >=, b, (void)0)
#define EXPECT_OK(r) KTEST_CHECK_OK_(r, (void)0)
#define EXPECT_ERROR(r, e) KTEST_CHECK_ERROR_(r, e, (void)0)

#define ASSERT_TRUE(c) KTEST_CHECK_((c), "expected true: " #c, return)
#define ASSERT_FALSE(c) KTEST_CHECK_(!(c), "expected false: " #c, return)
#define ASSERT_EQ(a, b) KTEST_CHECK_BINOP_(a, ==, b, return)
#define ASSERT_NE(a, b) KTEST_CHECK_BINOP_(a, !=, b, return)
#define ASSERT_LT(a, b) KTEST_CHECK_BINOP_(a, <, b, return)
#define ASSERT_LE(a, b) KTEST_CHECK_BINOP_(a, <=, b, return)
#define ASSERT_GT(a, b) KTEST_CHECK_BINOP_(a, >, b, return)
#define ASSERT_GE(a, b) KTEST_CHECK_BINOP_(a, >=, b, return)
#define ASSERT_OK(r) KTEST_CHECK_OK_(r, return)
#define ASSERT_ERROR(r, e) KTEST_CHECK_ERROR_(r, e, return)

#define KTEST_SKIP(reason)              \
    do {                                \
        ktest_context.skip(reason);     \
        return;                         \
    } while (0)
