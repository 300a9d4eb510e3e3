#pragma once
// Stack canaries. With CONFIG_LIB_STACKPROT every kernel object is built
// with -fstack-protector-strong (or -all): a protected function stores
// __stack_chk_guard between its locals and its saved registers on entry
// and calls __stack_chk_fail() if the copy changed by the time it returns.
// This library defines both, seeds the guard at boot (before any protected
// frame that could return is live) and reports a smashed stack through the
// panic path. Nothing here needs calling; the queries are for tests and
// diagnostics.
#include <cstddef>
#include <cstdint>

namespace tessera::stackprot {

enum class SeedSource : std::uint8_t {
    None,         // not seeded (yet): the guard is still 0
    RngSeed,      // /chosen/rng-seed mixed with the time and cycle counters
    CountersOnly, // no rng-seed in the device tree: guessable, warned at boot
};

struct SeedInfo {
    SeedSource source;
    std::size_t rng_seed_bytes;
};

// Written once, on the boot hart, before other harts run; read-only after.
SeedInfo seed_info();

} // namespace tessera::stackprot
