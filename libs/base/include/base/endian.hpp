#pragma once
// Big-endian (network order) loads and stores at any alignment, for
// protocol headers built and parsed in place in packet buffers.
#include <cstddef>
#include <cstdint>

namespace tessera::base {

constexpr std::uint16_t load_be16(const std::byte* p) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8 | std::to_integer<unsigned>(p[1]));
}
constexpr std::uint32_t load_be32(const std::byte* p) {
    return std::uint32_t(load_be16(p)) << 16 | load_be16(p + 2);
}
constexpr void store_be16(std::byte* p, std::uint16_t v) {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v);
}
constexpr void store_be32(std::byte* p, std::uint32_t v) {
    store_be16(p, static_cast<std::uint16_t>(v >> 16));
    store_be16(p + 2, static_cast<std::uint16_t>(v));
}

} // namespace tessera::base
