#include <cstring>
#include <ipv4/test_peer.hpp>
#include <ktest/ktest.hpp>
#include <udp/udp.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {
std::byte g_data[1800];
std::byte g_buffer[2048];
void fill() {
    for (std::size_t i = 0; i < sizeof(g_data); ++i) g_data[i] = std::byte(i * 5 + 1);
}
} // namespace

KTEST(udp, bind_receive_blocking_nonblocking_timeout) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill();
    udp::Socket s;
    ASSERT_OK(s.bind(4000));
    udp::Socket other;
    EXPECT_ERROR(other.bind(4000), Error::AddressInUse);
    EXPECT_ERROR(s.bind(4001), Error::Busy);
    EXPECT_ERROR(s.receive_from(g_buffer, 0), Error::WouldBlock);
    EXPECT_ERROR(s.receive_from(g_buffer, TestPeer::in_ms(20)), Error::TimedOut);
    peer.send_udp(1234, 4000, g_data, 300);
    auto d = s.receive_from(g_buffer, TestPeer::in_ms(500));
    ASSERT_OK(d);
    EXPECT_EQ(d->length, 300u);
    EXPECT_FALSE(d->truncated);
    EXPECT_EQ(d->source.value, TestPeer::kPeer.value);
    EXPECT_EQ(d->source_port, 1234u);
    EXPECT_EQ(d->destination.value, TestPeer::kStack.value);
    EXPECT_EQ(std::memcmp(g_buffer, g_data, 300), 0);
    // Too small a buffer: cut, and said so.
    peer.send_udp(1234, 4000, g_data, 300);
    d = s.receive_from({g_buffer, 10}, 0);
    ASSERT_OK(d);
    EXPECT_EQ(d->length, 10u);
    EXPECT_TRUE(d->truncated);
    // Zero checksum accepted; a fragmented (reassembled) datagram too.
    peer.send_udp(1234, 4000, g_data, 17, TestPeer::kStack, false);
    d = s.receive_from(g_buffer, 0);
    ASSERT_OK(d);
    EXPECT_EQ(d->length, 17u);
    s.close();
    EXPECT_ERROR(s.receive_from(g_buffer, 0), Error::NotFound);
}

KTEST(udp, send_to_checksum_and_ephemeral_port) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill();
    udp::Socket s;
    ASSERT_OK(s.send_to(TestPeer::kPeer, 53, {g_data, 40}));
    EXPECT_GE(s.port(), udp::kEphemeralFirst);
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    ASSERT_EQ(f.protocol(), 17u);
    ASSERT_EQ(f.l4_length(), 48u);
    const std::byte* u = f.l4();
    EXPECT_EQ(unsigned(u[0]) << 8 | unsigned(u[1]), unsigned(s.port()));
    EXPECT_EQ(unsigned(u[2]) << 8 | unsigned(u[3]), 53u);
    EXPECT_NE(unsigned(u[6]) << 8 | unsigned(u[7]), 0u);
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add(
                  {u, 48}, ipv4::pseudo_header_sum(TestPeer::kStack, TestPeer::kPeer, ipv4::Protocol::Udp, 48))),
              0u);
    EXPECT_EQ(std::memcmp(u + 8, g_data, 40), 0);
    // Larger than the MTU: ipv4 fragments it (UDP sends with DF clear).
    ASSERT_OK(s.send_to(TestPeer::kPeer, 53, {g_data, 1700}));
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_EQ(unsigned(f.l3()[6]) & 0x20, 0x20u);
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_ERROR(s.send_to(TestPeer::kPeer, 53, {g_data, udp::kMaxPayload + 1}), Error::MessageTooLong);
    // Two ephemeral binds differ.
    udp::Socket t;
    ASSERT_OK(t.bind(0));
    EXPECT_NE(t.port(), s.port());
}

KTEST(udp, malformed_dropped_and_counted) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill();
    udp::Socket s;
    ASSERT_OK(s.bind(4000));
    auto pool = TestPeer::settled_pool_free();
    auto before = udp::stats();
    // Bad checksum: flip a payload byte after computing it.
    peer.send_ip(17, g_data, 4, 1, 0, TestPeer::kPeer, TestPeer::kStack); // shorter than a UDP header
    static std::byte u[64];
    auto header = [](std::uint16_t length, std::uint16_t sum) {
        std::memset(u, 0, sizeof(u));
        u[0] = std::byte{0x04}; u[1] = std::byte{0xd2};
        u[2] = std::byte{0x0f}; u[3] = std::byte{0xa0}; // 4000
        u[4] = std::byte(length >> 8); u[5] = std::byte(length);
        u[6] = std::byte(sum >> 8); u[7] = std::byte(sum);
    };
    header(60, 0);          // length field beyond the datagram (40 bytes sent)
    peer.send_ip(17, u, 40);
    header(4, 0);           // length field below the header
    peer.send_ip(17, u, 40);
    header(40, 0x1234);     // wrong checksum
    peer.send_ip(17, u, 40);
    EXPECT_ERROR(s.receive_from(g_buffer, 0), Error::WouldBlock);
    auto after = udp::stats();
    EXPECT_EQ(after.truncated, before.truncated + 2);
    EXPECT_EQ(after.bad_length, before.bad_length + 1);
    EXPECT_EQ(after.bad_checksum, before.bad_checksum + 1);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(udp, queue_bounded_and_freed_on_close) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill();
    auto pool = TestPeer::settled_pool_free();
    auto before = udp::stats();
    {
        udp::Socket s;
        ASSERT_OK(s.bind(4000));
        for (unsigned i = 0; i < CONFIG_UDP_QUEUE + 3; ++i) peer.send_udp(1234, 4000, g_data, 10);
        EXPECT_EQ(s.queued(), unsigned(CONFIG_UDP_QUEUE));
        EXPECT_EQ(udp::stats().queue_full, before.queue_full + 3);
        EXPECT_EQ(netdev::pool_stats().free, pool - CONFIG_UDP_QUEUE);
    } // closed: queued datagrams freed
    EXPECT_EQ(netdev::pool_stats().free, pool);
}

KTEST(udp, broadcast_send_and_receive) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    fill();
    udp::Socket s;
    ASSERT_OK(s.bind(6700));
    peer.send_udp(1234, 6700, g_data, 12, Address::broadcast());
    auto d = s.receive_from(g_buffer, 0);
    ASSERT_OK(d);
    EXPECT_TRUE(d->destination.is_broadcast());
    peer.send_udp(1234, 6700, g_data, 12, Address::from(192, 168, 7, 255));
    d = s.receive_from(g_buffer, 0);
    ASSERT_OK(d);
    EXPECT_EQ(d->destination.value, Address::from(192, 168, 7, 255).value);
    // Send to the limited broadcast on a chosen interface: Ethernet broadcast.
    s.set_interface(&peer.stack());
    ASSERT_OK(s.send_to(Address::broadcast(), 6701, {g_data, 12}));
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_TRUE(std::memcmp(f.bytes, netdev::MacAddress::broadcast().bytes.data(), 6) == 0);
    EXPECT_EQ(Address::load(f.l3() + 16).value, Address::broadcast().value);
    EXPECT_EQ(Address::load(f.l3() + 12).value, TestPeer::kStack.value);
}
