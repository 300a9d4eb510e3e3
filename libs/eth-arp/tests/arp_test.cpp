#include <base/endian.hpp>
#include <cstring>
#include <eth-arp/arp.hpp>
#include <ipv4/test_peer.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {

// An ARP frame from the peer.
void arp_frame(TestPeer& peer, std::uint16_t op, Address sender, Address target, netdev::MacAddress destination,
               std::size_t cut = 28, std::uint16_t htype = 1) {
    std::byte f[64] = {};
    peer.ethernet(f, destination, 0x0806);
    std::byte* b = f + 14;
    b[0] = std::byte(htype >> 8); b[1] = std::byte(htype);
    b[2] = std::byte{0x08}; b[3] = std::byte{0};
    b[4] = std::byte{6}; b[5] = std::byte{4};
    b[6] = std::byte{0}; b[7] = std::byte(op);
    std::memcpy(b + 8, peer.peer_mac().bytes.data(), 6);
    sender.store(b + 14);
    target.store(b + 24);
    peer.inject(f, 14 + cut);
}

// Sends a small IP datagram from the stack to `to` (ARP has to resolve it).
base::Result<void> send_to(Address to) {
    auto p = netdev::allocate();
    VERIFY(p.ok());
    std::memset(p.value()->put(8), 0, 8);
    return ipv4::send(std::move(p.value()), Address::any(), to, static_cast<ipv4::Protocol>(253));
}

} // namespace

KTEST(eth_arp, gratuitous_on_configure_and_reply_to_requests) {
    TestPeer peer;
    ASSERT_OK(peer.attach(false, false));
    ASSERT_OK(ipv4::configure(peer.stack(), TestPeer::kStack, 24));
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0806, TestPeer::in_ms(500)));
    EXPECT_TRUE(std::memcmp(f.bytes, netdev::MacAddress::broadcast().bytes.data(), 6) == 0);
    EXPECT_EQ(base::load_be16(f.l3() + 6), 1u);
    EXPECT_EQ(Address::load(f.l3() + 14).value, TestPeer::kStack.value); // sender = target = ours
    EXPECT_EQ(Address::load(f.l3() + 24).value, TestPeer::kStack.value);
    auto before = eth_arp::stats();
    arp_frame(peer, 1, TestPeer::kPeer, TestPeer::kStack, netdev::MacAddress::broadcast());
    ASSERT_TRUE(peer.next_of(f, 0x0806, TestPeer::in_ms(500)));
    EXPECT_EQ(base::load_be16(f.l3() + 6), 2u);
    EXPECT_TRUE(std::memcmp(f.l3() + 8, peer.stack().mac().bytes.data(), 6) == 0);
    EXPECT_EQ(Address::load(f.l3() + 14).value, TestPeer::kStack.value);
    EXPECT_TRUE(std::memcmp(f.l3() + 18, peer.peer_mac().bytes.data(), 6) == 0);
    // The requester was cached (it asked for us); requests for others are not answered.
    EXPECT_TRUE(eth_arp::lookup(peer.stack(), TestPeer::kPeer.value).has_value());
    arp_frame(peer, 1, Address::from(192, 168, 7, 9), Address::from(192, 168, 7, 10), netdev::MacAddress::broadcast());
    EXPECT_FALSE(peer.next_of(f, 0x0806, TestPeer::in_ms(50)));
    EXPECT_FALSE(eth_arp::lookup(peer.stack(), Address::from(192, 168, 7, 9).value).has_value());
    auto after = eth_arp::stats();
    EXPECT_EQ(after.replies_sent, before.replies_sent + 1);
    EXPECT_EQ(after.requests_received, before.requests_received + 2);
}

KTEST(eth_arp, resolves_queued_packets_on_reply) {
    TestPeer peer;
    ASSERT_OK(peer.attach(false));
    auto pool = TestPeer::settled_pool_free();
    ASSERT_OK(send_to(TestPeer::kPeer));
    ASSERT_OK(send_to(TestPeer::kPeer));
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next(f, TestPeer::in_ms(500)));
    ASSERT_EQ(f.ethertype(), 0x0806u); // a request, not the datagrams
    EXPECT_EQ(Address::load(f.l3() + 24).value, TestPeer::kPeer.value);
    EXPECT_EQ(eth_arp::stats().pending_packets, 2u);
    arp_frame(peer, 2, TestPeer::kPeer, TestPeer::kStack, peer.stack().mac());
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_TRUE(std::memcmp(f.bytes, peer.peer_mac().bytes.data(), 6) == 0);
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_EQ(eth_arp::stats().pending_packets, 0u);
    // Resolved now: straight out.
    ASSERT_OK(send_to(TestPeer::kPeer));
    ASSERT_TRUE(peer.next(f, TestPeer::in_ms(500)));
    EXPECT_EQ(f.ethertype(), 0x0800u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(eth_arp, retries_then_fails_freeing_bounded_queue) {
    TestPeer peer;
    ASSERT_OK(peer.attach(false));
    auto pool = TestPeer::settled_pool_free();
    auto before = eth_arp::stats();
    Address ghost = Address::from(192, 168, 7, 77);
    for (unsigned i = 0; i < CONFIG_ETH_ARP_PENDING; ++i) ASSERT_OK(send_to(ghost));
    EXPECT_ERROR(send_to(ghost), Error::NoMemory); // the queue is bounded
    unsigned requests = 0;
    TestPeer::Frame f;
    while (peer.next_of(f, 0x0806, TestPeer::in_ms(CONFIG_ETH_ARP_RETRY_MS * 3 / 2 + 200))) ++requests;
    EXPECT_EQ(requests, unsigned(CONFIG_ETH_ARP_RETRIES));
    auto after = eth_arp::stats();
    EXPECT_EQ(after.failed, before.failed + 1);
    EXPECT_EQ(after.pending_dropped, before.pending_dropped + CONFIG_ETH_ARP_PENDING + 1);
    EXPECT_EQ(after.pending_packets, 0u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}

KTEST(eth_arp, garbage_ignored_and_counted) {
    TestPeer peer;
    ASSERT_OK(peer.attach(false));
    auto before = eth_arp::stats();
    arp_frame(peer, 1, TestPeer::kPeer, TestPeer::kStack, netdev::MacAddress::broadcast(), 28, 6);  // hardware type
    arp_frame(peer, 9, TestPeer::kPeer, TestPeer::kStack, netdev::MacAddress::broadcast());         // opcode
    {
        std::byte f[64] = {};                                                                       // sizes 6/16
        peer.ethernet(f, netdev::MacAddress::broadcast(), 0x0806);
        f[15] = std::byte{1}; f[16] = std::byte{8}; f[18] = std::byte{6}; f[19] = std::byte{16}; f[21] = std::byte{1};
        peer.inject(f, 60);
    }
    TestPeer::Frame out;
    EXPECT_FALSE(peer.next_of(out, 0x0806, TestPeer::in_ms(50)));
    auto after = eth_arp::stats();
    EXPECT_EQ(after.malformed, before.malformed + 3);
    EXPECT_FALSE(eth_arp::lookup(peer.stack(), TestPeer::kPeer.value).has_value());
}

KTEST(eth_arp, entries_age_out) {
    TestPeer peer;
    ASSERT_OK(peer.attach(false));
    arp_frame(peer, 1, TestPeer::kPeer, TestPeer::kStack, netdev::MacAddress::broadcast());
    ASSERT_TRUE(eth_arp::lookup(peer.stack(), TestPeer::kPeer.value).has_value());
    auto before = eth_arp::stats();
    sched::sleep_for_ns((CONFIG_ETH_ARP_TIMEOUT_S * 1000ull + 300) * 1'000'000);
    netdev::flush();
    EXPECT_FALSE(eth_arp::lookup(peer.stack(), TestPeer::kPeer.value).has_value());
    EXPECT_EQ(eth_arp::stats().expired, before.expired + 1);
}
