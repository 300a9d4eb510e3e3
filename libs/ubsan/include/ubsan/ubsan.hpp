#pragma once
// Undefined-behaviour sanitizer runtime. With CONFIG_LIB_UBSAN every kernel
// object is compiled with -fsanitize=undefined; a failed check calls one of
// the __ubsan_handle_* functions of this library, which prints
//
//     *** UBSan: signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'
//         at apps/crashtest/main.cpp:50:59
//
// and then panics (CONFIG_UBSAN_MODE_PANIC, exit status 70) or, in
// CONFIG_UBSAN_MODE_REPORT, goes on (each check site reports once).
// Nothing here needs calling: the compiler calls the handlers. The
// counters are for tests and statistics pages.
#include <cstdint>

namespace tessera::ubsan {

struct Stats {
    std::uint64_t reports; // reports printed
    std::uint64_t repeats; // failed checks at sites that had already reported (report mode)
    std::uint64_t nested;  // failed checks inside the report path itself, not reported
};

// SMP-safe (relaxed atomic counters: each is exact, the three are not a
// consistent snapshot).
Stats stats();

} // namespace tessera::ubsan
