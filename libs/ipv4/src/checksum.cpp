// The Internet checksum (RFC 1071) and the IPv4 address text form.
#include <ipv4/ipv4.hpp>

namespace tessera::ipv4 {

std::uint32_t checksum_add(std::span<const std::byte> bytes, std::uint32_t sum) {
    // 64-bit accumulator of big-endian 16-bit words: no carry folding in
    // the loop (a 64 KiB datagram adds at most 2^15 words of 2^16).
    std::uint64_t acc = sum;
    const std::byte* p = bytes.data();
    std::size_t n = bytes.size();
    while (n >= 2) {
        acc += static_cast<std::uint32_t>(p[0]) << 8 | static_cast<std::uint32_t>(p[1]);
        p += 2;
        n -= 2;
    }
    if (n) acc += static_cast<std::uint32_t>(p[0]) << 8;
    while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
    // Keep the partial sum below 2^31 so callers may add more spans.
    acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint32_t>(acc);
}

std::uint16_t checksum_finish(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint32_t pseudo_header_sum(Address source, Address destination, Protocol protocol, std::uint16_t length) {
    std::uint32_t s = (source.value >> 16) + (source.value & 0xffff) + (destination.value >> 16) +
                      (destination.value & 0xffff) + static_cast<std::uint32_t>(protocol) + length;
    return s;
}

std::string_view to_string(Address address, std::span<char> out) {
    std::size_t n = 0;
    auto put = [&](char c) { if (n < out.size()) out[n++] = c; };
    for (unsigned i = 0; i < 4; ++i) {
        unsigned v = address.octet(i);
        if (v >= 100) put(static_cast<char>('0' + v / 100));
        if (v >= 10) put(static_cast<char>('0' + v / 10 % 10));
        put(static_cast<char>('0' + v % 10));
        if (i < 3) put('.');
    }
    if (n < out.size()) out[n] = '\0';
    return {out.data(), n};
}

std::optional<Address> parse(std::string_view text) {
    std::uint32_t value = 0;
    unsigned octets = 0;
    std::size_t i = 0;
    while (octets < 4) {
        unsigned v = 0, digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
            v = v * 10 + static_cast<unsigned>(text[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3 || v > 255) return std::nullopt;
        value = value << 8 | v;
        ++octets;
        if (octets < 4) {
            if (i >= text.size() || text[i] != '.') return std::nullopt;
            ++i;
        }
    }
    if (i != text.size()) return std::nullopt;
    return Address{value};
}

} // namespace tessera::ipv4
