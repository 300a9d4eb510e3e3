#pragma once
// The Internet checksum (RFC 1071) for TCP. FIXME: a private copy until
// the ipv4 library's checksum_add/checksum_finish/pseudo_header_sum land;
// then these forward to them.
#include <cstddef>
#include <cstdint>
#include <span>

namespace tessera::tcp::detail {

// Adds 16-bit big-endian words (an odd tail byte padded with zero) to sum,
// unfolded: a 64-bit accumulator cannot overflow for any packet size.
inline std::uint32_t checksum_add(std::span<const std::byte> bytes, std::uint32_t sum = 0) {
    std::uint64_t acc = sum;
    std::size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2)
        acc += static_cast<std::uint32_t>(static_cast<unsigned>(bytes[i]) << 8 | static_cast<unsigned>(bytes[i + 1]));
    if (i < bytes.size()) acc += static_cast<std::uint32_t>(static_cast<unsigned>(bytes[i]) << 8);
    while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
    // Fold to 32 bits the same way a 32-bit sum would: keep the carries.
    acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint32_t>(acc);
}

inline std::uint16_t checksum_finish(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

inline std::uint32_t pseudo_header_sum(std::uint32_t source, std::uint32_t destination, std::uint16_t length) {
    std::uint32_t sum = (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff);
    return sum + 6 /* protocol TCP */ + length;
}

} // namespace tessera::tcp::detail
