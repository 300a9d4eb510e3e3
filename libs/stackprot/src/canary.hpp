#pragma once
// Turning boot-time entropy into a canary value. Pure, so the in-kernel
// tests can check its properties.
#include <cstdint>
#include <span>

namespace tessera::stackprot::detail {

// splitmix64's output function: a bijection of 64-bit words in which every
// input bit affects every output bit. Absorbing input as h = mix(h ^ word)
// therefore never loses entropy already in h (up to the 64 bits it holds).
// Not a cryptographic hash; it does not need to be: the unpredictability
// comes from the inputs, and the canary is never shown.
constexpr std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The low byte is always zero. RISC-V is little-endian, so that is the
// canary byte at the lowest address, the first one an overflow from the
// locals below reaches: a string copy running past a buffer (strcpy, an
// unterminated copy) cannot write the canary back intact without writing a
// NUL, which ends the copy; and a string read running into the canary
// (printing an unterminated buffer) stops before leaking the other seven
// bytes. It costs 8 of the 64 bits, as in glibc.
inline constexpr std::uint64_t kLowByteMask = ~std::uint64_t(0xff);
// Used if the mixing ever yields 0 (then low byte cleared), so that the
// canary is never the value it had before seeding.
inline constexpr std::uint64_t kFallbackCanary = 0x2f5a'9c31'e47b'd600ull;

constexpr std::uint64_t derive_canary(std::span<const std::uint8_t> seed, std::uint64_t time,
                                      std::uint64_t cycles) {
    std::uint64_t h = 0x6a09e667f3bcc909ull; // fractional bits of sqrt(2)
    for (std::size_t i = 0; i < seed.size(); i += 8) {
        std::uint64_t word = 0;
        for (std::size_t j = 0; j < 8 && i + j < seed.size(); ++j) word |= std::uint64_t(seed[i + j]) << (8 * j);
        h = mix(h ^ word);
    }
    h = mix(h ^ seed.size());
    h = mix(h ^ time);
    h = mix(h ^ cycles);
    std::uint64_t canary = h & kLowByteMask;
    return canary != 0 ? canary : kFallbackCanary;
}

} // namespace tessera::stackprot::detail
