// TCP header and option parsing/building (RFC 9293 3.1, 3.2; RFC 7323;
// RFC 2018). Every read is bounds-checked against the received length.
#include <base/endian.hpp>
#include <cstring>
#include <tcp/segment.hpp>
#include "checksum.hpp"

namespace tessera::tcp {

namespace {
using base::Error;

namespace kind {
constexpr std::uint8_t kEnd = 0, kNop = 1, kMss = 2, kWindowScale = 3, kSackPermitted = 4, kSack = 5,
                       kTimestamps = 8;
}
} // namespace

base::Result<void> parse_options(std::span<const std::byte> area, Options& o) {
    // Every field but the unused SACK blocks, one store each: a fresh
    // Options would be copied in with a call to memcpy.
    o.mss = 0;
    o.has_window_scale = false;
    o.window_scale = 0;
    o.sack_permitted = false;
    o.has_timestamps = false;
    o.ts_value = o.ts_echo = 0;
    o.sack_count = 0;
    std::size_t i = 0;
    while (i < area.size()) {
        auto k = static_cast<std::uint8_t>(area[i]);
        if (k == kind::kEnd) break;
        if (k == kind::kNop) { ++i; continue; }
        if (i + 1 >= area.size()) return Error::Malformed; // no length byte
        std::size_t len = static_cast<std::uint8_t>(area[i + 1]);
        if (len < 2 || i + len > area.size()) return Error::Malformed;
        const std::byte* v = area.data() + i + 2;
        switch (k) {
        case kind::kMss:
            if (len != 4) return Error::Malformed;
            o.mss = base::load_be16(v);
            break;
        case kind::kWindowScale:
            if (len != 3) return Error::Malformed;
            o.has_window_scale = true;
            o.window_scale = static_cast<std::uint8_t>(v[0]);
            if (o.window_scale > kMaxWindowScale) o.window_scale = kMaxWindowScale; // RFC 7323 2.3
            break;
        case kind::kSackPermitted:
            if (len != 2) return Error::Malformed;
            o.sack_permitted = true;
            break;
        case kind::kSack: {
            if (len < 10 || (len - 2) % 8 != 0) return Error::Malformed;
            std::size_t n = (len - 2) / 8;
            if (n > kMaxSackBlocks) return Error::Malformed;
            o.sack_count = static_cast<std::uint8_t>(n);
            for (std::size_t b = 0; b < n; ++b)
                o.sack[b] = {Seq(base::load_be32(v + 8 * b)), Seq(base::load_be32(v + 8 * b + 4))};
            break;
        }
        case kind::kTimestamps:
            if (len != 10) return Error::Malformed;
            o.has_timestamps = true;
            o.ts_value = base::load_be32(v);
            o.ts_echo = base::load_be32(v + 4);
            break;
        default: break; // unknown: skipped by its length
        }
        i += len;
    }
    return {};
}

base::Result<void> parse(std::span<const std::byte> bytes, Segment& s) {
    if (bytes.size() < kHeaderLength) return Error::Malformed;
    const std::byte* h = bytes.data();
    s.source_port = base::load_be16(h);
    s.destination_port = base::load_be16(h + 2);
    s.seq = Seq(base::load_be32(h + 4));
    s.ack = Seq(base::load_be32(h + 8));
    std::size_t offset = (static_cast<unsigned>(h[12]) >> 4) * 4;
    if (offset < kHeaderLength || offset > bytes.size()) return Error::Malformed;
    s.header_length = offset;
    s.flags = static_cast<std::uint8_t>(h[13]) & 0x3f;
    s.window = base::load_be16(h + 14);
    s.urgent = base::load_be16(h + 18);
    TRY(parse_options(bytes.subspan(kHeaderLength, offset - kHeaderLength), s.options));
    s.payload = bytes.subspan(offset);
    s.payload_placed = false;
    s.acks = 1;
    return {};
}

std::size_t build(const Segment& s, std::span<std::byte> out) {
    std::size_t length = kHeaderLength + options_length(s.options);
    VERIFY(length <= kMaxHeaderLength && out.size() >= length);
    std::byte* h = out.data();
    base::store_be16(h, s.source_port);
    base::store_be16(h + 2, s.destination_port);
    base::store_be32(h + 4, s.seq.value());
    base::store_be32(h + 8, s.ack.value());
    h[12] = static_cast<std::byte>((length / 4) << 4);
    h[13] = static_cast<std::byte>(s.flags);
    base::store_be16(h + 14, s.window);
    base::store_be16(h + 16, 0);
    base::store_be16(h + 18, s.urgent);
    std::byte* p = h + kHeaderLength;
    auto put = [&](std::uint8_t b) { *p++ = static_cast<std::byte>(b); };
    const Options& o = s.options;
    if (o.mss) {
        put(kind::kMss); put(4);
        base::store_be16(p, o.mss); p += 2;
    }
    if (o.has_window_scale) {
        put(kind::kNop); put(kind::kWindowScale); put(3); put(o.window_scale);
    }
    if (o.sack_permitted) {
        put(kind::kNop); put(kind::kNop); put(kind::kSackPermitted); put(2);
    }
    if (o.has_timestamps) {
        put(kind::kNop); put(kind::kNop); put(kind::kTimestamps); put(10);
        base::store_be32(p, o.ts_value); base::store_be32(p + 4, o.ts_echo); p += 8;
    }
    if (o.sack_count) {
        VERIFY(o.sack_count <= kMaxSackBlocks);
        put(kind::kNop); put(kind::kNop); put(kind::kSack); put(static_cast<std::uint8_t>(2 + 8 * o.sack_count));
        for (unsigned b = 0; b < o.sack_count; ++b) {
            base::store_be32(p, o.sack[b].left.value()); base::store_be32(p + 4, o.sack[b].right.value()); p += 8;
        }
    }
    VERIFY(static_cast<std::size_t>(p - h) == length);
    return length;
}

namespace {
// Inlined into each public form: every segment sent and received takes
// one, and a call is dearer than this body (header sums are inline).
[[gnu::always_inline]] inline std::uint16_t checksum_of(std::uint32_t source, std::uint32_t destination,
                                                        std::span<const std::byte> header, std::size_t length,
                                                        std::uint32_t payload_sum) {
    // The payload's pairs start on an even offset (a zero sum has no pairs).
    VERIFY(header.size() % 2 == 0 || payload_sum == 0);
    std::uint32_t sum = detail::pseudo_header_sum(source, destination, static_cast<std::uint16_t>(length));
    return detail::checksum_finish(detail::checksum_add(header, sum + payload_sum));
}
} // namespace

std::uint16_t checksum(std::uint32_t source, std::uint32_t destination, std::span<const std::byte> header,
                       std::size_t length, std::uint32_t payload_sum) {
    return checksum_of(source, destination, header, length, payload_sum);
}

std::uint16_t checksum(std::uint32_t source, std::uint32_t destination, std::span<const std::byte> bytes) {
    return checksum_of(source, destination, bytes, bytes.size(), 0);
}

void fill_checksum(std::uint32_t source, std::uint32_t destination, std::span<std::byte> header, std::size_t length,
                   std::uint32_t payload_sum) {
    VERIFY(header.size() >= kHeaderLength);
    base::store_be16(header.data() + 16, 0);
    base::store_be16(header.data() + 16, checksum_of(source, destination, header, length, payload_sum));
}

void fill_checksum(std::uint32_t source, std::uint32_t destination, std::span<std::byte> bytes) {
    fill_checksum(source, destination, bytes, bytes.size(), 0);
}

} // namespace tessera::tcp
