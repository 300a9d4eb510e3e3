#pragma once
// TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293
// section 3.4). a < b means "b is after a" when the two are less than 2^31
// apart, which the window rules guarantee for any pair the engine compares.
//
// Pure values: SMP-safe, usable in any context.
#include <cstdint>

namespace tessera::tcp {

class Seq {
public:
    constexpr Seq() = default;
    constexpr explicit Seq(std::uint32_t v) : m_value(v) {}
    [[nodiscard]] constexpr std::uint32_t value() const { return m_value; }

    constexpr bool operator==(const Seq&) const = default;
    // Signed distance from b to a: positive when a is after b.
    [[nodiscard]] friend constexpr std::int32_t operator-(Seq a, Seq b) {
        return static_cast<std::int32_t>(a.m_value - b.m_value);
    }
    friend constexpr Seq operator+(Seq a, std::uint32_t n) { return Seq(a.m_value + n); }
    friend constexpr Seq operator-(Seq a, std::uint32_t n) { return Seq(a.m_value - n); }
    constexpr Seq& operator+=(std::uint32_t n) { m_value += n; return *this; }
    friend constexpr bool operator<(Seq a, Seq b) { return (a - b) < 0; }
    friend constexpr bool operator<=(Seq a, Seq b) { return (a - b) <= 0; }
    friend constexpr bool operator>(Seq a, Seq b) { return (a - b) > 0; }
    friend constexpr bool operator>=(Seq a, Seq b) { return (a - b) >= 0; }

private:
    std::uint32_t m_value = 0;
};

[[nodiscard]] constexpr Seq seq_max(Seq a, Seq b) { return a < b ? b : a; }
[[nodiscard]] constexpr Seq seq_min(Seq a, Seq b) { return a < b ? a : b; }
// lo <= s < hi (modulo 2^32); an empty range [lo, lo) holds nothing.
[[nodiscard]] constexpr bool in_range(Seq s, Seq lo, Seq hi) { return lo <= s && s < hi; }

} // namespace tessera::tcp
