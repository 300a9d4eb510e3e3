#pragma once
// The TCP header (RFC 9293 section 3.1) and its options: parsing a
// received segment (with every length checked) and building one.
//
// Options understood: MSS (RFC 9293 3.2), window scale and timestamps
// (RFC 7323), SACK-permitted and SACK blocks (RFC 2018). Others are
// skipped by their length. A segment whose option area is inconsistent
// (a length byte of 0 or 1, an option running past the header, a known
// option with the wrong length, a window scale above 14 is clamped as RFC
// 7323 2.3 says) is Malformed: the engine drops and counts it.
//
// Pure functions: SMP-safe, any context.
#include <array>
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <tcp/seq.hpp>

namespace tessera::tcp {

namespace flag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
inline constexpr std::uint8_t kUrg = 0x20;
} // namespace flag

inline constexpr std::size_t kHeaderLength = 20;
inline constexpr std::size_t kMaxHeaderLength = 60;
inline constexpr unsigned kMaxWindowScale = 14; // RFC 7323 2.3
inline constexpr unsigned kMaxSackBlocks = 4;

struct SackBlock {
    Seq left, right; // [left, right)
    constexpr bool operator==(const SackBlock&) const = default;
};

struct Options {
    std::uint16_t mss = 0;             // 0: absent
    bool has_window_scale = false;
    std::uint8_t window_scale = 0;     // clamped to kMaxWindowScale
    bool sack_permitted = false;
    bool has_timestamps = false;
    std::uint32_t ts_value = 0, ts_echo = 0;
    std::uint8_t sack_count = 0;
    std::array<SackBlock, kMaxSackBlocks> sack{};
};

struct Segment {
    std::uint16_t source_port = 0, destination_port = 0;
    Seq seq, ack;
    std::uint8_t flags = 0;
    std::uint16_t window = 0; // as on the wire (not scaled)
    std::uint16_t urgent = 0;
    std::size_t header_length = kHeaderLength;
    Options options;
    std::span<const std::byte> payload;
    // Set by the engine when the payload was already copied into the
    // connection's receive ring while its checksum was summed.
    bool payload_placed = false;
    // The peer's ACKs this one stands for: more than one when the engine
    // merged the pure ACKs of a receive batch (CONFIG_TCP_ACK_MERGE).
    std::uint16_t acks = 1;

    [[nodiscard]] bool has(std::uint8_t f) const { return (flags & f) != 0; }
    // Sequence space occupied: payload plus one each for SYN and FIN.
    [[nodiscard]] std::uint32_t length() const {
        return static_cast<std::uint32_t>(payload.size()) + (has(flag::kSyn) ? 1 : 0) + (has(flag::kFin) ? 1 : 0);
    }
};

// Parses `bytes` (the TCP header and payload, as IP delivered them) into
// `out`, every field of which it sets. Malformed for a short segment, a
// data offset below 5 or past the end, or a bad option area (`out` is then
// partly written). Does not check the checksum. The caller's Segment is
// filled in place: returned by value it would cost a copy (a call to
// memcpy) per segment received.
[[nodiscard]] base::Result<void> parse(std::span<const std::byte> bytes, Segment& out);
// Parses only the option area into `out` (exposed for tests).
[[nodiscard]] base::Result<void> parse_options(std::span<const std::byte> area, Options& out);

// Bytes the options in `o` take on the wire, padded to a multiple of 4.
[[nodiscard]] inline std::size_t options_length(const Options& o) { // inline: twice per segment sent
    std::size_t n = 0;
    if (o.mss) n += 4;
    if (o.has_window_scale) n += 4;          // NOP + 3
    if (o.sack_permitted) n += 4;            // NOP NOP + 2 (or beside the timestamps)
    if (o.has_timestamps) n += 12;           // NOP NOP + 10
    if (o.sack_count) n += 4 + 8 * o.sack_count; // NOP NOP + 2 + 8n
    return n;
}
// Writes the header (with options, checksum field zero) into `out`, which
// must hold at least 20 + options_length(s.options) bytes; returns the
// header length written. s.header_length and s.payload are ignored.
std::size_t build(const Segment& s, std::span<std::byte> out);

// The TCP checksum over the IPv4 pseudo-header (RFC 9293 3.1) and `bytes`
// (header + payload). Verification: checksum(...) == 0 over a received
// segment (the stored checksum included). Addresses in host order.
[[nodiscard]] std::uint16_t checksum(std::uint32_t source, std::uint32_t destination,
                                     std::span<const std::byte> bytes);
// The same for a segment whose payload was summed apart, as it was copied
// (ipv4::checksum_copy): `header` is the TCP header (a multiple of 4
// bytes, so the payload's byte pairs line up), `length` the whole
// segment's length and `payload_sum` the payload's sum from its start.
[[nodiscard]] std::uint16_t checksum(std::uint32_t source, std::uint32_t destination,
                                     std::span<const std::byte> header, std::size_t length,
                                     std::uint32_t payload_sum);
// Stores the checksum at its place in the header at bytes[0].
void fill_checksum(std::uint32_t source, std::uint32_t destination, std::span<std::byte> bytes);
// The same with the payload summed apart (see checksum() above).
void fill_checksum(std::uint32_t source, std::uint32_t destination, std::span<std::byte> header, std::size_t length,
                   std::uint32_t payload_sum);

} // namespace tessera::tcp
