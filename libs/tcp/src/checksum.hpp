#pragma once
// The TCP checksum's pieces: ipv4's Internet checksum (RFC 1071) and
// pseudo-header sum, named for this library's use.
#include <ipv4/ipv4.hpp>

namespace tessera::tcp::detail {

inline std::uint32_t checksum_add(std::span<const std::byte> bytes, std::uint32_t sum = 0) {
    return ipv4::checksum_add(bytes, sum);
}
inline std::uint16_t checksum_finish(std::uint32_t sum) { return ipv4::checksum_finish(sum); }
inline std::uint32_t pseudo_header_sum(std::uint32_t source, std::uint32_t destination, std::uint16_t length) {
    return ipv4::pseudo_header_sum(ipv4::Address{source}, ipv4::Address{destination}, ipv4::Protocol::Tcp, length);
}

} // namespace tessera::tcp::detail
