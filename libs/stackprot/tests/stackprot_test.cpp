// The canary's shape and derivation. That it differs from boot to boot,
// and that an overflow is caught, is checked from outside the machine
// (test/test_hardening.py): a kernel cannot compare itself across boots,
// and a caught overflow stops it.
#include "../src/canary.hpp"
#include <ktest/ktest.hpp>
#include <stackprot/stackprot.hpp>

using namespace tessera;
using namespace tessera::stackprot;

extern "C" std::uintptr_t __stack_chk_guard;

namespace {

constexpr std::uint8_t kSeedA[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

// Every canary ends in a zero byte and is never the unseeded 0.
static_assert(detail::derive_canary({}, 0, 0) != 0);
static_assert((detail::derive_canary({}, 0, 0) & 0xff) == 0);
static_assert((detail::derive_canary(kSeedA, 123, 456) & 0xff) == 0);

unsigned differing_bits(std::uint64_t a, std::uint64_t b) { return static_cast<unsigned>(__builtin_popcountll(a ^ b)); }

// A function the protector instruments (a local array) that uses its
// array within bounds: its check must pass on return.
[[gnu::noinline]] unsigned checksum_on_stack(unsigned n) {
    char buffer[64];
    for (unsigned i = 0; i < sizeof(buffer); ++i) buffer[i] = static_cast<char>(i * n);
    unsigned sum = 0;
    for (char c : buffer) sum += static_cast<unsigned char>(c);
    return sum;
}

} // namespace

KTEST(stackprot, canary_is_seeded_and_shaped) {
    EXPECT_NE(__stack_chk_guard, 0u);
    EXPECT_EQ(__stack_chk_guard & 0xff, 0u);
    SeedInfo info = seed_info();
    EXPECT_NE(static_cast<int>(info.source), static_cast<int>(SeedSource::None));
    if (info.source == SeedSource::RngSeed) EXPECT_GT(info.rng_seed_bytes, 0u);
}

KTEST(stackprot, every_input_changes_the_canary) {
    std::uint64_t base = detail::derive_canary(kSeedA, 1000, 2000);
    std::uint8_t seed[32];
    for (unsigned i = 0; i < sizeof(seed); ++i) seed[i] = kSeedA[i];
    // One flipped bit anywhere in the seed, or a tick of either counter,
    // changes about half of the 56 free bits (avalanche), never none.
    for (unsigned byte = 0; byte < sizeof(seed); byte += 5) {
        seed[byte] ^= 0x10;
        unsigned d = differing_bits(base, detail::derive_canary(seed, 1000, 2000));
        EXPECT_GT(d, 12u);
        EXPECT_LT(d, 44u);
        seed[byte] ^= 0x10;
    }
    EXPECT_GT(differing_bits(base, detail::derive_canary(kSeedA, 1001, 2000)), 12u);
    EXPECT_GT(differing_bits(base, detail::derive_canary(kSeedA, 1000, 2001)), 12u);
    // The seed's length counts: a trailing zero byte is not ignored.
    std::uint8_t zeros[9] = {};
    EXPECT_NE(detail::derive_canary({zeros, 8}, 0, 0), detail::derive_canary({zeros, 9}, 0, 0));
}

KTEST(stackprot, protected_functions_return_normally) {
    EXPECT_EQ(checksum_on_stack(0), 0u);
    EXPECT_EQ(checksum_on_stack(1), 2016u); // 0 + 1 + ... + 63
}
