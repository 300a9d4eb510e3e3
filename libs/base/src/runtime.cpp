// C and C++ runtime support for a freestanding kernel: the memory and string
// functions GCC emits calls to, and the C++ ABI hooks (pure virtual calls,
// guard variables for function-local statics).
#include <atomic>
#include <new>
#include <base/verify.hpp>
#include <base/word_copy.hpp>
#include <cstddef>
#include <cstdint>

// GCC would turn these loops back into calls to themselves.
#define RUNTIME_FN extern "C" __attribute__((optimize("no-tree-loop-distribute-patterns")))

namespace {
using tessera::base::kWordMask;
using tessera::base::Word;
} // namespace

RUNTIME_FN HOT_LOOP void* memcpy(void* __restrict dst, const void* __restrict src, std::size_t n) {
    tessera::base::copy_words(static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), n,
                              [](unsigned char) {}, [](Word) {});
    return dst;
}

RUNTIME_FN void* memmove(void* dst, const void* src, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    auto* s = static_cast<const unsigned char*>(src);
    if (d == s || n == 0) return dst;
    if (d < s || d >= s + n) return memcpy(dst, src, n);
    // Overlapping with dst after src: copy backwards.
    while (n--) d[n] = s[n];
    return dst;
}

RUNTIME_FN void* memset(void* dst, int c, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    while (n && (reinterpret_cast<std::uintptr_t>(d) & kWordMask)) { *d++ = static_cast<unsigned char>(c); --n; }
    std::uint64_t word = 0x0101010101010101ull * static_cast<unsigned char>(c);
    for (; n >= 8; n -= 8, d += 8) *reinterpret_cast<Word*>(d) = word;
    while (n--) *d++ = static_cast<unsigned char>(c);
    return dst;
}

RUNTIME_FN int memcmp(const void* a, const void* b, std::size_t n) {
    auto* x = static_cast<const unsigned char*>(a);
    auto* y = static_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < n; ++i)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

RUNTIME_FN std::size_t strlen(const char* s) {
    std::size_t n = 0;
    while (s[n]) ++n;
    return n;
}

RUNTIME_FN int strcmp(const char* a, const char* b) {
    while (*a && *a == *b) { ++a; ++b; }
    return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
}

extern "C" void __cxa_pure_virtual() {
    PANIC("pure virtual function called");
}

// The kernel never exits, so static destructors are never run; registering
// them is a no-op (we compile with -fno-use-cxa-atexit).
extern "C" int atexit(void (*)()) { return 0; }

// Guard variables (Itanium C++ ABI 3.3.2): compiler-generated code tests
// byte 0 ("initialized"); we keep the "in progress" flag in the upper 32-bit
// word, where RV64A has a native compare-and-swap. Several harts may race
// for the same static; the losers spin until the winner releases.
namespace {
std::atomic_ref<std::uint8_t> guard_done(std::uint64_t* g) {
    return std::atomic_ref<std::uint8_t>(*reinterpret_cast<std::uint8_t*>(g));
}
std::atomic_ref<std::uint32_t> guard_busy(std::uint64_t* g) {
    return std::atomic_ref<std::uint32_t>(reinterpret_cast<std::uint32_t*>(g)[1]);
}
} // namespace

extern "C" int __cxa_guard_acquire(std::uint64_t* g) {
    for (;;) {
        if (guard_done(g).load(std::memory_order_acquire)) return 0;
        std::uint32_t expected = 0;
        if (guard_busy(g).compare_exchange_weak(expected, 1, std::memory_order_acquire)) {
            if (guard_done(g).load(std::memory_order_acquire)) { // lost a race with release
                guard_busy(g).store(0, std::memory_order_release);
                return 0;
            }
            return 1;
        }
    }
}

extern "C" void __cxa_guard_release(std::uint64_t* g) {
    guard_done(g).store(1, std::memory_order_release);
    guard_busy(g).store(0, std::memory_order_release);
}

extern "C" void __cxa_guard_abort(std::uint64_t* g) { guard_busy(g).store(0, std::memory_order_release); }

// Deleting destructors of classes with virtual destructors reference these
// even when nothing is ever deleted; the kernel heap (mm issue) replaces
// them. Until then a delete is a bug.
__attribute__((weak)) void operator delete(void*) noexcept { PANIC("operator delete without a heap"); }
__attribute__((weak)) void operator delete(void*, std::size_t) noexcept { PANIC("operator delete without a heap"); }

RUNTIME_FN void* memchr(const void* s, int c, std::size_t n) {
    auto* p = static_cast<const unsigned char*>(s);
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] == static_cast<unsigned char>(c)) return const_cast<unsigned char*>(p + i);
    return nullptr;
}

// libstdc++'s header-only parts (string_view::substr, span::at ...) report
// misuse through these. Without exceptions, misuse is a bug: panic.
namespace std {
[[noreturn]] void __throw_out_of_range_fmt(const char*, ...) { PANIC("std: index out of range"); }
[[noreturn]] void __throw_out_of_range(const char*) { PANIC("std: index out of range"); }
[[noreturn]] void __throw_length_error(const char*) { PANIC("std: length error"); }
[[noreturn]] void __throw_logic_error(const char*) { PANIC("std: logic error"); }
[[noreturn]] void __throw_invalid_argument(const char*) { PANIC("std: invalid argument"); }
[[noreturn]] void __throw_bad_optional_access() { PANIC("std: bad optional access"); }
[[noreturn]] void __throw_bad_function_call() { PANIC("std: bad function call"); }
[[noreturn]] void __throw_bad_alloc() { PANIC("std: bad alloc"); }
[[noreturn]] void __throw_bad_array_new_length() { PANIC("std: bad array new length"); }
} // namespace std

// The tag object of `new (std::nothrow)`; libstdc++ would define it.
namespace std {
const nothrow_t nothrow{};
} // namespace std
