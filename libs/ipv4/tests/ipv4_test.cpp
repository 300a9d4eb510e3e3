#include <cstring>
#include <eth-arp/arp.hpp>
#include <ipv4/test_peer.hpp>
#include <netdev/pair.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {

constexpr std::uint8_t kTestProtocol = 253; // RFC 3692 experimental

struct Delivery {
    std::uint16_t id = 0;
    std::size_t length = 0;
    std::uint32_t sum = 0;
};

struct Seen {
    unsigned calls = 0;
    ipv4::Header header{};
    std::size_t length = 0;
    std::byte first[8]{};
    std::uint32_t sum = 0; // of the whole payload
    Delivery log[8];       // the latest deliveries, calls % 8 the next slot
};
Seen g_seen;

void record(const ipv4::Header& header, netdev::PacketRef packet, void*) {
    g_seen.header = header;
    g_seen.length = packet->length();
    std::memcpy(g_seen.first, packet->bytes(), packet->length() < 8 ? packet->length() : 8);
    g_seen.sum = ipv4::checksum_add(packet->data());
    g_seen.log[g_seen.calls % 8] = {header.id, g_seen.length, g_seen.sum};
    ++g_seen.calls;
}

// Registers the test protocol for the scope.
struct TestProtocol {
    TestProtocol() {
        g_seen = {};
        VERIFY(ipv4::register_protocol(static_cast<ipv4::Protocol>(kTestProtocol), record, nullptr).ok());
    }
    ~TestProtocol() { ipv4::unregister_protocol(static_cast<ipv4::Protocol>(kTestProtocol)); }
};

std::byte g_payload[4000];
void fill_payload() {
    for (std::size_t i = 0; i < sizeof(g_payload); ++i) g_payload[i] = std::byte(i * 7 + 3);
}

// The peer, the test protocol, and the pool and counters at the start.
struct Fixture {
    TestPeer peer;
    bool attached = peer.attach().ok();
    TestProtocol proto;
    std::uint32_t pool = (fill_payload(), TestPeer::settled_pool_free());
    ipv4::Stats before = ipv4::stats();
};

// The RFC 1071 sum the slow, obvious way: 16-bit pairs from the start.
std::uint32_t plain_sum(std::span<const std::byte> bytes, std::uint64_t sum) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
        sum += static_cast<std::uint32_t>(bytes[i]) << (i % 2 ? 0 : 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint32_t>(sum);
}

} // namespace

KTEST(ipv4, checksum_and_text) {
    // RFC 1071's example words sum to ddf2 (complement 220d).
    const std::byte words[] = {std::byte{0x00}, std::byte{0x01}, std::byte{0xf2}, std::byte{0x03},
                               std::byte{0xf4}, std::byte{0xf5}, std::byte{0xf6}, std::byte{0xf7}};
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add(words)), 0x220du);
    // Split sums add up (odd split points excepted: sums are per 16-bit word).
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add({words + 4, 4}, ipv4::checksum_add({words, 4}))), 0x220du);
    // checksum_add sums aligned 64-bit words, four at a time: compare it
    // with a plain 16-bit-pair sum at every alignment and at lengths past
    // the unrolled loop, with odd tails and all-ones data (the carries).
    alignas(8) static std::byte data[160];
    for (unsigned fill = 0; fill < 2; ++fill) {
        for (std::size_t i = 0; i < sizeof data; ++i) data[i] = fill ? std::byte{0xff} : std::byte(i * 37 + 11);
        for (std::size_t offset = 0; offset < 8; ++offset)
            for (std::size_t length = 0; length + offset <= sizeof data; length += 3) {
                // Up to 64 bytes inline (native words at an even address,
                // pairs at an odd one); past that word-wise:
                // both fully folded, so callers can add more spans.
                std::uint32_t sum = ipv4::checksum_add({data + offset, length}, 0x1234);
                EXPECT_TRUE(sum <= 0xffffu);
                EXPECT_EQ(ipv4::checksum_finish(sum), ipv4::checksum_finish(plain_sum({data + offset, length}, 0x1234)));
            }
    }
    char buffer[16];
    EXPECT_TRUE(ipv4::to_string(Address::from(10, 0, 2, 15), buffer) == "10.0.2.15");
    EXPECT_TRUE(ipv4::to_string(Address::broadcast(), buffer) == "255.255.255.255");
    auto a = ipv4::parse("192.168.100.7");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->value, Address::from(192, 168, 100, 7).value);
    EXPECT_FALSE(ipv4::parse("1.2.3").has_value());
    EXPECT_FALSE(ipv4::parse("1.2.3.256").has_value());
    EXPECT_FALSE(ipv4::parse("1.2.3.4.").has_value());
    EXPECT_FALSE(ipv4::parse("").has_value());
    std::byte be[4];
    Address::from(1, 2, 3, 4).store(be);
    EXPECT_EQ(unsigned(be[0]), 1u);
    EXPECT_EQ(Address::load(be).value, 0x01020304u);
}

KTEST(ipv4, checksum_copy_all_alignments) {
    // checksum_copy must copy exactly what memcpy would and sum what
    // checksum_add would, at every source and destination alignment (the
    // destination-aligned word loop, the merge of two source words, the
    // head and tail bytes at either parity).
    alignas(8) static std::byte source[168], target[176], expected[176];
    for (std::size_t i = 0; i < sizeof source; ++i) source[i] = std::byte(i * 73 + 5);
    for (std::size_t so = 0; so < 8; ++so)
        for (std::size_t to = 0; to < 8; ++to)
            for (std::size_t length = 0; length + 8 <= sizeof source; length += 5) {
                std::memset(target, 0xee, sizeof target);
                std::memset(expected, 0xee, sizeof expected);
                std::memcpy(expected + to, source + so, length);
                std::uint32_t sum = ipv4::checksum_copy({target + to, length}, {source + so, length}, 0x4321);
                ASSERT_EQ(std::memcmp(target, expected, sizeof target), 0);
                ASSERT_EQ(ipv4::checksum_finish(sum), ipv4::checksum_finish(plain_sum({source + so, length}, 0x4321)));
            }
    // A span summed in two pieces split at an odd point: the second
    // piece's sum is re-paired by its offset.
    for (std::size_t split = 0; split <= 40; ++split) {
        std::uint32_t first = ipv4::checksum_add({source, split});
        std::uint32_t second = ipv4::checksum_at_offset(ipv4::checksum_add({source + split, 40 - split}), split);
        EXPECT_EQ(ipv4::checksum_finish(first + second), ipv4::checksum_finish(plain_sum({source, 40}, 0)));
    }
}

KTEST(ipv4, routes_longest_prefix_and_default) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    EXPECT_ERROR(ipv4::route(Address::from(8, 8, 8, 8)), Error::Unreachable);
    EXPECT_ERROR(ipv4::set_default_gateway(Address::from(10, 9, 9, 9)), Error::Unreachable); // not on link
    ASSERT_OK(ipv4::set_default_gateway(Address::from(192, 168, 7, 254)));
    ASSERT_OK(ipv4::add_route(Address::from(10, 1, 0, 0), 16, Address::from(192, 168, 7, 3), peer.stack()));
    ASSERT_OK(ipv4::add_route(Address::from(10, 1, 2, 0), 24, Address::from(192, 168, 7, 4), peer.stack()));
    auto r = ipv4::route(Address::from(10, 1, 2, 9));
    ASSERT_OK(r);
    EXPECT_EQ(r->next_hop.value, Address::from(192, 168, 7, 4).value);
    EXPECT_EQ(r->source.value, TestPeer::kStack.value);
    EXPECT_EQ(r->mtu, 1500u);
    r = ipv4::route(Address::from(10, 1, 3, 9));
    ASSERT_OK(r);
    EXPECT_EQ(r->next_hop.value, Address::from(192, 168, 7, 3).value);
    r = ipv4::route(Address::from(8, 8, 8, 8));
    ASSERT_OK(r);
    EXPECT_EQ(r->next_hop.value, Address::from(192, 168, 7, 254).value);
    r = ipv4::route(TestPeer::kPeer); // connected: the destination itself
    ASSERT_OK(r);
    EXPECT_EQ(r->next_hop.value, TestPeer::kPeer.value);
    EXPECT_TRUE(ipv4::is_local(TestPeer::kStack));
    EXPECT_TRUE(ipv4::is_broadcast(Address::from(192, 168, 7, 255)));
    EXPECT_FALSE(ipv4::is_broadcast(Address::from(192, 168, 7, 25)));
    EXPECT_EQ(*ipv4::prefix_of(peer.stack()), 24u);
    peer.detach(); // removes every route through the interface
    EXPECT_ERROR(ipv4::route(Address::from(8, 8, 8, 8)), Error::Unreachable);
    EXPECT_FALSE(ipv4::default_gateway().has_value());
}

KTEST(ipv4, delivers_valid_datagram_trimmed_to_total_length) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto before = f.before;
    peer.send_ip(kTestProtocol, g_payload, 5); // padded to 60 bytes on the wire
    EXPECT_EQ(g_seen.calls, 1u);
    EXPECT_EQ(g_seen.length, 5u);
    EXPECT_EQ(g_seen.header.source.value, TestPeer::kPeer.value);
    EXPECT_EQ(g_seen.header.destination.value, TestPeer::kStack.value);
    EXPECT_EQ(g_seen.header.header_length, 20u);
    EXPECT_EQ(g_seen.header.total_length, 25u);
    EXPECT_TRUE(g_seen.header.interface == &peer.stack());
    EXPECT_EQ(ipv4::stats().delivered, before.delivered + 1);
    // Broadcast is accepted; another host's unicast is not.
    peer.send_ip(kTestProtocol, g_payload, 5, 2, 0, TestPeer::kPeer, Address::from(192, 168, 7, 255));
    EXPECT_EQ(g_seen.calls, 2u);
    peer.send_ip(kTestProtocol, g_payload, 5, 3, 0, TestPeer::kPeer, Address::from(192, 168, 7, 99));
    EXPECT_EQ(g_seen.calls, 2u);
    EXPECT_EQ(ipv4::stats().not_for_us, before.not_for_us + 1);
    // Options are skipped: IHL 6 with a NOP option word.
    peer.send_ip(kTestProtocol, g_payload, 8, 4, 0, TestPeer::kPeer, TestPeer::kStack, [](std::byte* h, std::size_t& n) {
        std::memmove(h + 24, h + 20, 8);
        h[20] = h[21] = h[22] = h[23] = std::byte{1};
        h[0] = std::byte{0x46};
        h[3] = std::byte(unsigned(h[3]) + 4);
        TestPeer::fix_ip_checksum(h);
        n += 4;
    });
    EXPECT_EQ(g_seen.calls, 3u);
    EXPECT_EQ(g_seen.length, 8u);
    EXPECT_EQ(g_seen.header.header_length, 24u);
    EXPECT_EQ(unsigned(g_seen.first[0]), unsigned(g_payload[0]));
}

KTEST(ipv4, malformed_headers_dropped_and_counted) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto pool = f.pool;
    const auto before = f.before;
    using Mutate = void (*)(std::byte*, std::size_t&);
    const Mutate cases[] = {
        [](std::byte* h, std::size_t&) { h[11] = std::byte(unsigned(h[11]) ^ 0x55); },             // checksum
        [](std::byte* h, std::size_t& n) { n = 14 + 12; },                                          // truncated header
        [](std::byte* h, std::size_t&) { h[0] = std::byte{0x44}; TestPeer::fix_ip_checksum(h); },      // IHL 4
        [](std::byte* h, std::size_t&) { h[0] = std::byte{0x65}; TestPeer::fix_ip_checksum(h); },      // version 6
        [](std::byte* h, std::size_t&) { h[2] = std::byte{0x05}; h[3] = std::byte{0xdc}; TestPeer::fix_ip_checksum(h); }, // length lie 1500
        [](std::byte* h, std::size_t&) { h[2] = std::byte{0}; h[3] = std::byte{12}; TestPeer::fix_ip_checksum(h); }, // total < IHL
        [](std::byte* h, std::size_t&) { h[8] = std::byte{0}; TestPeer::fix_ip_checksum(h); },        // TTL 0
        [](std::byte* h, std::size_t&) { h[0] = std::byte{0x4f}; TestPeer::fix_ip_checksum(h); },      // IHL 60 > frame
    };
    for (Mutate m : cases) peer.send_ip(kTestProtocol, g_payload, 20, 7, 0, TestPeer::kPeer, TestPeer::kStack, m);
    // A source that is not a unicast host is refused too (RFC 1122
    // 3.2.1.3): limited broadcast, the link's directed broadcast,
    // multicast, 0/8 and loopback.
    peer.send_ip(kTestProtocol, g_payload, 20, 8, 0, Address::broadcast(), TestPeer::kStack);
    peer.send_ip(kTestProtocol, g_payload, 20, 9, 0, Address::from(192, 168, 7, 255), TestPeer::kStack);
    peer.send_ip(kTestProtocol, g_payload, 20, 10, 0, Address::from(224, 0, 0, 1), TestPeer::kStack);
    peer.send_ip(kTestProtocol, g_payload, 20, 11, 0, Address::any(), TestPeer::kStack);
    peer.send_ip(kTestProtocol, g_payload, 20, 12, 0, Address::from(0, 1, 2, 3), TestPeer::kStack);
    peer.send_ip(kTestProtocol, g_payload, 20, 13, 0, Address::from(127, 0, 0, 1), TestPeer::kStack);
    auto after = ipv4::stats();
    EXPECT_EQ(g_seen.calls, 0u);
    // The frame cut inside the IP header is padded to 60 bytes by the
    // link (zeros), so it fails the checksum instead: a bad checksum twice.
    EXPECT_EQ(after.bad_checksum, before.bad_checksum + 2);
    // Truncated: IHL 60 beyond the frame and the 1500-byte length lie.
    EXPECT_EQ(after.truncated, before.truncated + 2);
    EXPECT_EQ(after.bad_header_length, before.bad_header_length + 1);
    EXPECT_EQ(after.bad_version, before.bad_version + 1);
    EXPECT_EQ(after.bad_total_length, before.bad_total_length + 1);
    EXPECT_EQ(after.ttl_expired, before.ttl_expired + 1);
    EXPECT_EQ(after.bad_source, before.bad_source + 6);
    EXPECT_EQ(after.delivered, before.delivered);
    EXPECT_GE(peer.stack().counters().rx_errors, 14u);
    // And a healthy one still goes through.
    peer.send_ip(kTestProtocol, g_payload, 20);
    EXPECT_EQ(g_seen.calls, 1u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

namespace {
// Sends g_payload[0, total) as fragments of `chunk` bytes in the order given by `order` (indices).
void send_fragments(TestPeer& peer, std::uint16_t id, std::size_t total, std::size_t chunk, const unsigned* order,
                    unsigned count) {
    for (unsigned k = 0; k < count; ++k) {
        std::size_t offset = order[k] * chunk;
        std::size_t n = total - offset < chunk ? total - offset : chunk;
        bool more = offset + n < total;
        peer.send_ip(kTestProtocol, g_payload + offset, n, id,
                     static_cast<std::uint16_t>((more ? 0x2000 : 0) | offset / 8));
    }
}
} // namespace

KTEST(ipv4, reassembly_in_and_out_of_order) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto pool = f.pool;
    const auto before = f.before;
    const unsigned in_order[] = {0, 1, 2, 3};
    send_fragments(peer, 100, 1800, 480, in_order, 4);
    ASSERT_EQ(g_seen.calls, 1u);
    EXPECT_EQ(g_seen.length, 1800u);
    EXPECT_EQ(g_seen.sum, ipv4::checksum_add({g_payload, 1800}));
    EXPECT_EQ(g_seen.header.total_length, 1820u);
    EXPECT_FALSE(g_seen.header.more_fragments);
    const unsigned shuffled[] = {3, 1, 0, 2};
    send_fragments(peer, 101, 1000, 256, shuffled, 4);
    ASSERT_EQ(g_seen.calls, 2u);
    EXPECT_EQ(g_seen.length, 1000u);
    EXPECT_EQ(g_seen.sum, ipv4::checksum_add({g_payload, 1000}));
    auto after = ipv4::stats();
    EXPECT_EQ(after.reassembled, before.reassembled + 2);
    EXPECT_EQ(after.fragments_received, before.fragments_received + 8);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

// Property: however a datagram is cut (at multiples of 8, within the
// 16-fragment limit) and in whatever order its fragments come, mixed
// with those of up to two others, it is delivered once, whole, and
// nothing is held afterwards.
KTEST(ipv4, reassembly_of_random_cuts_in_random_order) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    ktest::Random random(0xf7a6e3d2c1b0ull);
    auto below = [&](std::size_t n) { return static_cast<std::size_t>(random.next() % n); };
    struct Piece {
        std::uint16_t id;
        std::size_t base, offset, length;
        bool more;
    };
    struct Datagram {
        std::uint16_t id;
        std::size_t base, length;
    };
    unsigned expected = 0;
    for (unsigned round = 0; round < 150; ++round) {
        Piece pieces[3 * 16];
        Datagram datagrams[3];
        unsigned count = 0, concurrent = 1 + static_cast<unsigned>(below(3));
        for (unsigned d = 0; d < concurrent; ++d) {
            std::size_t length = 16 + below(1920 - 16 + 1);
            std::size_t base = below(sizeof(g_payload) - length + 1);
            auto id = static_cast<std::uint16_t>(0x5000 + round * 4 + d);
            datagrams[d] = {id, base, length};
            // Up to 13 cut points, multiples of 8, inside the datagram,
            // and one wherever a fragment would outgrow a frame (1480
            // bytes): 16 fragments at most.
            bool cut[1920 / 8] = {};
            for (std::size_t k = 0, cuts = 1 + below(13); k < cuts; ++k) cut[1 + below((length - 1) / 8)] = true;
            std::size_t start = 0;
            for (std::size_t at = 8; at <= length; at += 8) {
                if (at < length && !cut[at / 8] && at + 8 - start <= 1480) continue;
                pieces[count++] = {id, base, start, at - start, at < length};
                start = at;
            }
            if (start < length) pieces[count++] = {id, base, start, length - start, false};
        }
        for (unsigned i = count; i > 1; --i) std::swap(pieces[i - 1], pieces[below(i)]); // Fisher-Yates
        unsigned calls = g_seen.calls;
        for (unsigned i = 0; i < count; ++i) {
            const Piece& p = pieces[i];
            f.peer.send_ip(kTestProtocol, g_payload + p.base + p.offset, p.length, p.id,
                           static_cast<std::uint16_t>((p.more ? 0x2000 : 0) | p.offset / 8));
        }
        ASSERT_EQ(g_seen.calls, calls + concurrent);
        for (unsigned d = 0; d < concurrent; ++d) {
            const Datagram& want = datagrams[d];
            bool found = false;
            for (unsigned k = calls; k < g_seen.calls; ++k) {
                const Delivery& got = g_seen.log[k % 8];
                if (got.id != want.id) continue;
                found = true;
                EXPECT_EQ(got.length, want.length);
                EXPECT_EQ(got.sum, ipv4::checksum_add({g_payload + want.base, want.length}));
            }
            EXPECT_TRUE(found);
        }
        expected += concurrent;
    }
    auto after = ipv4::stats();
    EXPECT_EQ(after.reassembly_overlaps, f.before.reassembly_overlaps);
    EXPECT_EQ(after.reassembly_no_room, f.before.reassembly_no_room);
    EXPECT_EQ(after.reassembled - f.before.reassembled, expected); // every one had 2 fragments at least
    EXPECT_EQ(TestPeer::settled_pool_free(), f.pool);
}

KTEST(ipv4, overlapping_fragments_drop_the_datagram) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto pool = f.pool;
    const auto before = f.before;
    peer.send_ip(kTestProtocol, g_payload, 256, 200, 0x2000 | 0);      // [0, 256)
    peer.send_ip(kTestProtocol, g_payload + 128, 256, 200, 0x2000 | 16); // [128, 384): overlaps
    peer.send_ip(kTestProtocol, g_payload + 384, 100, 200, 48);         // last: [384, 484)
    EXPECT_EQ(g_seen.calls, 0u);
    auto after = ipv4::stats();
    EXPECT_EQ(after.reassembly_overlaps, before.reassembly_overlaps + 1);
    // A duplicate counts as an overlap too; the last fragment that arrived
    // after the drop started a new datagram, which times out.
    peer.send_ip(kTestProtocol, g_payload + 384, 100, 200, 48);
    EXPECT_EQ(ipv4::stats().reassembly_overlaps, before.reassembly_overlaps + 2);
    EXPECT_EQ(g_seen.calls, 0u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(ipv4, last_fragment_before_data_beyond_it_drops_the_datagram) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto pool = f.pool;
    const auto before = f.before;
    // [16, 24) with MF, then a "last" fragment [8, 16): 16 bytes held, a
    // total of 16, but [0, 8) never came. Byte counts match; the datagram
    // is not complete (it would carry 8 stale bytes of a pool buffer).
    peer.send_ip(kTestProtocol, g_payload + 16, 8, 210, 0x2000 | 2);
    peer.send_ip(kTestProtocol, g_payload + 8, 8, 210, 1);
    EXPECT_EQ(g_seen.calls, 0u);
    EXPECT_EQ(ipv4::stats().reassembled, before.reassembled);
    EXPECT_EQ(ipv4::stats().reassembly_overlaps, before.reassembly_overlaps + 1);
    // Both orders: the last fragment first, then one ending beyond it.
    peer.send_ip(kTestProtocol, g_payload + 8, 8, 211, 1);
    peer.send_ip(kTestProtocol, g_payload + 16, 8, 211, 0x2000 | 2);
    EXPECT_EQ(g_seen.calls, 0u);
    EXPECT_EQ(ipv4::stats().reassembly_overlaps, before.reassembly_overlaps + 2);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(ipv4, fragments_dropped_when_their_interface_is_unregistered) {
    // Fragments came in on an interface that then goes away (a test's
    // Pair, a hot-unplugged NIC): their slots and pool buffers are freed
    // at once by netdev's unregister hook, not at the reassembly timeout,
    // and a later fragment on another interface cannot complete a
    // datagram with them (its header would name a dead interface).
    TestProtocol proto;
    fill_payload();
    const auto before = ipv4::stats();
    TestPeer first;
    ASSERT_OK(first.attach());
    const auto pool = TestPeer::settled_pool_free();
    first.send_ip(kTestProtocol, g_payload, 256, 220, 0x2000 | 0);
    first.send_ip(kTestProtocol, g_payload + 512, 256, 221, 0x2000 | 64);
    netdev::flush();
    EXPECT_EQ(netdev::pool_stats().free, pool - 2); // one buffer per slot
    first.detach();
    EXPECT_EQ(ipv4::stats().reassembly_interface_gone, before.reassembly_interface_gone + 2);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
    TestPeer second;
    ASSERT_OK(second.attach());
    second.send_ip(kTestProtocol, g_payload + 256, 100, 220, 32); // the rest of 220
    netdev::flush();
    EXPECT_EQ(g_seen.calls, 0u);
    EXPECT_EQ(ipv4::stats().reassembled, before.reassembled);
    second.detach(); // its own incomplete datagram goes the same way
    EXPECT_EQ(ipv4::stats().reassembly_interface_gone, before.reassembly_interface_gone + 3);
    EXPECT_EQ(ipv4::stats().reassembly_timeouts, before.reassembly_timeouts);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(ipv4, address_routes_and_neighbours_go_with_an_unregistered_interface) {
    // An interface unregistered while configured (no deconfigure first):
    // ipv4's and eth-arp's unregister hooks drop its address, its routes
    // and its ARP entries, so nothing points at it once it may be gone.
    netdev::Pair pair("gone0", "gone1");
    ASSERT_OK(pair.attach());
    const auto stack = Address::from(10, 77, 0, 1), peer = Address::from(10, 77, 0, 2);
    ASSERT_OK(ipv4::configure(pair.a(), stack, 24));
    ASSERT_OK(eth_arp::add_static(pair.a(), peer.value, pair.b().mac()));
    netdev::flush();
    EXPECT_TRUE(ipv4::prefix_of(pair.a()).has_value());
    EXPECT_TRUE(eth_arp::lookup(pair.a(), peer.value).has_value());
    pair.detach();
    EXPECT_FALSE(ipv4::prefix_of(pair.a()).has_value());
    EXPECT_FALSE(eth_arp::lookup(pair.a(), peer.value).has_value());
    auto packet = netdev::allocate();
    ASSERT_OK(packet);
    ASSERT_TRUE(packet.value()->put(8) != nullptr);
    EXPECT_ERROR(ipv4::send(std::move(packet.value()), stack, peer, static_cast<ipv4::Protocol>(kTestProtocol)),
                 base::Error::Unreachable); // no route through it is left
}

KTEST(ipv4, incomplete_fragments_freed_at_timeout) {
    Fixture f;
    ASSERT_TRUE(f.attached);
    auto& peer = f.peer;
    const auto pool = f.pool;
    const auto before = f.before;
    peer.send_ip(kTestProtocol, g_payload, 256, 300, 0x2000 | 0);
    peer.send_ip(kTestProtocol, g_payload + 512, 256, 301, 0x2000 | 64);
    netdev::flush();
    EXPECT_EQ(netdev::pool_stats().free, pool - 2); // one buffer per slot
    sched::sleep_for_ns((CONFIG_IPV4_REASSEMBLY_TIMEOUT_MS + 300) * 1'000'000ull);
    netdev::flush();
    EXPECT_EQ(ipv4::stats().reassembly_timeouts, before.reassembly_timeouts + 2);
    EXPECT_EQ(g_seen.calls, 0u);
    EXPECT_EQ(netdev::pool_stats().free, pool);
    // More datagrams than slots: the extra ones are refused, counted.
    for (unsigned i = 0; i < CONFIG_IPV4_REASSEMBLY_SLOTS + 2; ++i)
        peer.send_ip(kTestProtocol, g_payload, 64, static_cast<std::uint16_t>(400 + i), 0x2000);
    EXPECT_EQ(ipv4::stats().reassembly_no_room, before.reassembly_no_room + 2);
    sched::sleep_for_ns((CONFIG_IPV4_REASSEMBLY_TIMEOUT_MS + 300) * 1'000'000ull);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

namespace {
// Sends 100 payload bytes through `path` and returns the frame's
// destination MAC (or all zeros if none came out).
netdev::MacAddress send_by_path(TestPeer& peer, ipv4::Path& path, Address to) {
    auto p = netdev::allocate();
    VERIFY(p.ok());
    std::memcpy(p.value()->put(100), g_payload, 100);
    netdev::MacAddress mac{};
    if (!ipv4::send(path, std::move(p.value()), TestPeer::kStack, to, static_cast<ipv4::Protocol>(kTestProtocol)).ok())
        return mac;
    TestPeer::Frame f;
    if (!peer.next_of(f, 0x0800, TestPeer::in_ms(500))) return mac;
    VERIFY(ipv4::checksum_finish(ipv4::checksum_add({f.l3(), 20})) == 0 && f.ip_total() == 120 &&
           Address::load(f.l3() + 16).value == to.value);
    std::memcpy(mac.bytes.data(), f.bytes, 6);
    return mac;
}
} // namespace

KTEST(ipv4, a_path_skips_the_lookups_until_a_route_or_neighbour_changes) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill_payload();
    ipv4::Path path;
    const auto peer_mac = peer.peer_mac();
    // The first datagram takes send()'s way and fills the path; the next
    // go by it.
    auto before = ipv4::stats();
    EXPECT_TRUE(send_by_path(peer, path, TestPeer::kPeer) == peer_mac);
    EXPECT_NE(path.generation, 0u);
    EXPECT_TRUE(send_by_path(peer, path, TestPeer::kPeer) == peer_mac);
    EXPECT_TRUE(send_by_path(peer, path, TestPeer::kPeer) == peer_mac);
    auto after = ipv4::stats();
    EXPECT_EQ(after.sent - before.sent, 3u);
    EXPECT_EQ(after.sent_by_path - before.sent_by_path, 2u);
    // The neighbour's MAC changes: the next datagram goes to the new one.
    const netdev::MacAddress moved{{0x02, 0, 0, 0, 0, 7}};
    ASSERT_OK(eth_arp::add_static(peer.stack(), TestPeer::kPeer.value, moved));
    EXPECT_TRUE(send_by_path(peer, path, TestPeer::kPeer) == moved);
    EXPECT_TRUE(send_by_path(peer, path, TestPeer::kPeer) == moved);
    // Through a gateway; then a more specific route through another.
    const Address far = Address::from(10, 1, 2, 3), gw1 = Address::from(192, 168, 7, 3), gw2 = Address::from(192, 168, 7, 4);
    const netdev::MacAddress mac1{{0x02, 0, 0, 0, 0, 3}};
    const netdev::MacAddress mac2{{0x02, 0, 0, 0, 0, 4}};
    ASSERT_OK(eth_arp::add_static(peer.stack(), gw1.value, mac1));
    ASSERT_OK(eth_arp::add_static(peer.stack(), gw2.value, mac2));
    ASSERT_OK(ipv4::add_route(Address::from(10, 1, 0, 0), 16, gw1, peer.stack()));
    EXPECT_TRUE(send_by_path(peer, path, far) == mac1);
    EXPECT_TRUE(send_by_path(peer, path, far) == mac1);
    ASSERT_OK(ipv4::add_route(Address::from(10, 1, 2, 0), 24, gw2, peer.stack()));
    EXPECT_TRUE(send_by_path(peer, path, far) == mac2);
    // The address goes: no route, nothing sent, the path stays empty.
    ipv4::deconfigure(peer.stack());
    netdev::flush();
    EXPECT_TRUE(send_by_path(peer, path, far) == netdev::MacAddress{});
    EXPECT_EQ(path.generation, 0u);
}

KTEST(ipv4, output_header_fragmentation_and_df) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill_payload();
    auto make = [](std::size_t n) {
        auto p = netdev::allocate();
        VERIFY(p.ok());
        std::memcpy(p.value()->put(n), g_payload, n);
        return std::move(p.value());
    };
    ASSERT_OK(ipv4::send(make(100), Address::any(), TestPeer::kPeer, static_cast<ipv4::Protocol>(kTestProtocol)));
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_EQ(f.ip_total(), 120u);
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add({f.l3(), 20})), 0u);
    EXPECT_EQ(Address::load(f.l3() + 12).value, TestPeer::kStack.value);
    EXPECT_EQ(Address::load(f.l3() + 16).value, TestPeer::kPeer.value);
    EXPECT_EQ(unsigned(f.l3()[6]) & 0x40, 0x40u); // DF
    EXPECT_TRUE(std::memcmp(f.bytes, peer.peer_mac().bytes.data(), 6) == 0);
    EXPECT_ERROR(ipv4::send(make(1600), Address::any(), TestPeer::kPeer, static_cast<ipv4::Protocol>(kTestProtocol)),
                 Error::MessageTooLong);
    ipv4::SendOptions fragment;
    fragment.dont_fragment = false;
    ASSERT_OK(ipv4::send(make(1600), Address::any(), TestPeer::kPeer, static_cast<ipv4::Protocol>(kTestProtocol), fragment));
    TestPeer::Frame a, b;
    ASSERT_TRUE(peer.next_of(a, 0x0800, TestPeer::in_ms(500)));
    ASSERT_TRUE(peer.next_of(b, 0x0800, TestPeer::in_ms(500)));
    EXPECT_EQ(a.ip_total(), 1500u);
    EXPECT_EQ(unsigned(a.l3()[6]) & 0x20, 0x20u); // MF
    EXPECT_EQ(b.ip_total(), 20u + 1600 - 1480);
    EXPECT_EQ((unsigned(b.l3()[6]) << 8 | unsigned(b.l3()[7])) & 0x1fff, 1480u / 8);
    EXPECT_EQ(std::memcmp(b.l4(), g_payload + 1480, 120), 0);
    EXPECT_ERROR(ipv4::send(make(10), Address::any(), Address::from(8, 8, 8, 8), ipv4::Protocol::Udp), Error::Unreachable);
}

KTEST(ipv4, fragmenting_for_an_absurd_mtu_is_refused) {
    // A driver may report any MTU (virtio-net takes the device's word for
    // it). Below 28 the fragment size rounds down to zero: the loop sent
    // empty fragments forever. RFC 791 asks for 68; below that, refuse.
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill_payload();
    const auto pool = TestPeer::settled_pool_free();
    const auto before = ipv4::stats();
    ipv4::SendOptions fragment;
    fragment.dont_fragment = false;
    for (std::uint32_t mtu : {0u, 8u, 24u, 27u, 67u}) {
        peer.stack().set_mtu(mtu);
        auto p = netdev::allocate();
        VERIFY(p.ok());
        std::memcpy(p.value()->put(100), g_payload, 100);
        EXPECT_ERROR(ipv4::send(std::move(p.value()), Address::any(), TestPeer::kPeer,
                                static_cast<ipv4::Protocol>(kTestProtocol), fragment),
                     Error::MessageTooLong);
    }
    EXPECT_EQ(ipv4::stats().fragments_sent, before.fragments_sent);
    EXPECT_EQ(ipv4::stats().too_long, before.too_long + 5);
    // 68 still fragments: 48 bytes per fragment.
    peer.stack().set_mtu(68);
    auto p = netdev::allocate();
    VERIFY(p.ok());
    std::memcpy(p.value()->put(100), g_payload, 100);
    EXPECT_OK(ipv4::send(std::move(p.value()), Address::any(), TestPeer::kPeer,
                         static_cast<ipv4::Protocol>(kTestProtocol), fragment));
    EXPECT_EQ(ipv4::stats().fragments_sent, before.fragments_sent + 3);
    peer.stack().set_mtu(1500);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}
