#include <cstring>
#include <dhcp/dhcp.hpp>
#include <ipv4/test_peer.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {

constexpr Address kOffered = Address::from(192, 168, 7, 50);

struct Message {
    std::uint8_t type = 0;
    std::uint32_t xid = 0;
    Address ciaddr, requested, server;
    Address ip_destination;
    bool broadcast_flag = false;
    time::Ticks sent_at = 0;
};

// The next DHCP message the client sent (captured UDP 68 -> 67).
bool next_message(TestPeer& peer, Message& out, std::uint64_t ms) {
    TestPeer::Frame f;
    while (peer.next_of(f, 0x0800, TestPeer::in_ms(ms))) {
        if (f.protocol() != 17) continue;
        const std::byte* u = f.l4();
        if ((unsigned(u[2]) << 8 | unsigned(u[3])) != 67) continue;
        const std::byte* m = u + 8;
        std::size_t n = f.l4_length() - 8;
        out = {};
        out.ip_destination = Address::load(f.l3() + 16);
        out.sent_at = f.sent_at;
        out.xid = std::uint32_t(m[4]) << 24 | std::uint32_t(m[5]) << 16 | std::uint32_t(m[6]) << 8 | std::uint32_t(m[7]);
        out.broadcast_flag = (unsigned(m[10]) & 0x80) != 0;
        out.ciaddr = Address::load(m + 12);
        for (std::size_t i = 240; i + 1 < n && m[i] != std::byte{255};) {
            if (m[i] == std::byte{0}) { ++i; continue; }
            unsigned code = unsigned(m[i]), len = unsigned(m[i + 1]);
            if (code == 53) out.type = std::uint8_t(m[i + 2]);
            if (code == 50) out.requested = Address::load(m + i + 2);
            if (code == 54) out.server = Address::load(m + i + 2);
            i += 2 + len;
        }
        return true;
    }
    return false;
}

// A server reply of `type` for `xid`, lease/T1/T2 in seconds. `damage` cuts the options.
// `server` goes in option 54 (none if any()), `netmask` in option 1.
void reply(TestPeer& peer, std::uint8_t type, std::uint32_t xid, std::uint32_t lease, std::uint32_t t1, std::uint32_t t2,
           Address destination = Address::broadcast(), bool damage = false, Address yiaddr = kOffered,
           Address server = TestPeer::kPeer, std::uint32_t netmask = 0xffffff00u) {
    static std::byte m[300];
    std::memset(m, 0, sizeof(m));
    m[0] = std::byte{2}; m[1] = std::byte{1}; m[2] = std::byte{6};
    m[4] = std::byte(xid >> 24); m[5] = std::byte(xid >> 16); m[6] = std::byte(xid >> 8); m[7] = std::byte(xid);
    if (type != 6) yiaddr.store(m + 16);
    std::memcpy(m + 28, peer.stack().mac().bytes.data(), 6);
    m[236] = std::byte{99}; m[237] = std::byte{130}; m[238] = std::byte{83}; m[239] = std::byte{99};
    std::size_t i = 240;
    auto option = [&](std::uint8_t code, std::uint32_t v, std::size_t len) {
        m[i++] = std::byte{code};
        m[i++] = std::byte(len);
        for (std::size_t k = 0; k < len; ++k) m[i++] = std::byte(v >> (8 * (len - 1 - k)));
    };
    option(53, type, 1);
    if (!server.is_any()) option(54, server.value, 4);
    if (type != 6) {
        option(1, netmask, 4);
        option(3, TestPeer::kPeer.value, 4);
        option(6, Address::from(192, 168, 7, 53).value, 4);
        option(51, lease, 4);
        option(58, t1, 4);
        option(59, t2, 4);
    }
    if (damage) {
        m[i++] = std::byte{6};
        m[i++] = std::byte{200}; // runs past the end
    } else {
        m[i++] = std::byte{255};
    }
    peer.send_udp(67, 68, m, damage ? i : 300, destination);
}

struct Guard {
    ~Guard() {
        dhcp::stop();
        ipv4::clear_default_gateway();
        ipv4::set_dns_server(Address::any());
    }
};

// A peer with no address configured, a started client, and its first
// DISCOVER (in `discover`); the client stops before the peer goes.
struct Started {
    TestPeer peer;
    bool attached = peer.attach(true, false).ok();
    Guard guard;
    dhcp::Stats before = dhcp::stats();
    Message discover;
    bool ok = attached && dhcp::start(peer.stack()).ok() && next_message(peer, discover, 2000) && discover.type == 1;
};

// Lets the client thread take what was queued for it.
void settle() {
    netdev::flush();
    sched::sleep_for_ns(50'000'000);
}

} // namespace

KTEST(dhcp, discover_offer_request_ack_configures) {
    TestPeer peer;
    ASSERT_OK(peer.attach(true, false));
    Guard guard;
    auto before = dhcp::stats();
    ASSERT_OK(dhcp::start(peer.stack()));
    EXPECT_ERROR(dhcp::start(peer.stack()), Error::Busy);
    Message m;
    ASSERT_TRUE(next_message(peer, m, 2000));
    EXPECT_EQ(m.type, 1u); // DISCOVER
    EXPECT_TRUE(m.ip_destination.is_broadcast());
    EXPECT_TRUE(m.broadcast_flag);
    // A reply for another xid and a malformed one are ignored.
    reply(peer, 2, m.xid + 1, 30, 10, 20);
    reply(peer, 2, m.xid, 30, 10, 20, Address::broadcast(), true);
    reply(peer, 2, m.xid, 30, 10, 20);
    ASSERT_TRUE(next_message(peer, m, 2000));
    EXPECT_EQ(m.type, 3u); // REQUEST
    EXPECT_EQ(m.requested.value, kOffered.value);
    EXPECT_EQ(m.server.value, TestPeer::kPeer.value);
    reply(peer, 5, m.xid, 30, 10, 20);
    auto lease = dhcp::wait_bound(TestPeer::in_ms(2000));
    ASSERT_OK(lease);
    EXPECT_EQ(lease->address.value, kOffered.value);
    EXPECT_EQ(lease->prefix_length, 24u);
    EXPECT_EQ(lease->t1_seconds, 10u);
    EXPECT_EQ(*ipv4::address_of(peer.stack()), kOffered);
    EXPECT_EQ(*ipv4::default_gateway(), TestPeer::kPeer);
    EXPECT_EQ(*ipv4::dns_server(), Address::from(192, 168, 7, 53));
    EXPECT_TRUE(dhcp::state() == dhcp::State::Bound);
    auto after = dhcp::stats();
    EXPECT_EQ(after.malformed, before.malformed + 1);
    EXPECT_EQ(after.ignored, before.ignored + 1);
    EXPECT_EQ(after.acks, before.acks + 1);
}

KTEST(dhcp, renew_at_t1_then_nak_starts_over) {
    TestPeer peer;
    ASSERT_OK(peer.attach(true, false));
    Guard guard;
    ASSERT_OK(dhcp::start(peer.stack()));
    Message m;
    ASSERT_TRUE(next_message(peer, m, 2000));
    reply(peer, 2, m.xid, 8, 2, 6);
    ASSERT_TRUE(next_message(peer, m, 2000));
    reply(peer, 5, m.xid, 8, 2, 6);
    ASSERT_OK(dhcp::wait_bound(TestPeer::in_ms(2000)));
    time::Ticks bound = time::now();
    // T1 = 2 s: a unicast REQUEST from our address (ciaddr), no requested-IP option.
    ASSERT_TRUE(next_message(peer, m, 4000));
    EXPECT_GE(time::to_ns(time::now() - bound), 1'500'000'000u);
    EXPECT_EQ(m.type, 3u);
    EXPECT_EQ(m.ciaddr.value, kOffered.value);
    EXPECT_EQ(m.ip_destination.value, TestPeer::kPeer.value);
    EXPECT_TRUE(m.requested.is_any());
    reply(peer, 5, m.xid, 8, 2, 6, kOffered);
    sched::sleep_for_ns(200'000'000);
    EXPECT_EQ(dhcp::stats().renewals >= 1, true);
    // Next renewal gets a NAK: the address goes, DISCOVER again.
    ASSERT_TRUE(next_message(peer, m, 4000));
    EXPECT_EQ(m.type, 3u);
    reply(peer, 6, m.xid, 0, 0, 0, kOffered);
    ASSERT_TRUE(next_message(peer, m, 4000));
    EXPECT_EQ(m.type, 1u);
    EXPECT_FALSE(ipv4::address_of(peer.stack()).has_value());
}

KTEST(dhcp, retransmits_with_backoff) {
    TestPeer peer;
    ASSERT_OK(peer.attach(true, false));
    Guard guard;
    ASSERT_OK(dhcp::start(peer.stack()));
    Message m;
    time::Ticks at[3];
    for (auto& t : at) {
        ASSERT_TRUE(next_message(peer, m, 10 * CONFIG_DHCP_INITIAL_TIMEOUT_MS));
        EXPECT_EQ(m.type, 1u);
        // When the client sent it: the test thread's own wake-up, later by
        // a varying amount, could shrink a gap below the jitter's bound.
        t = m.sent_at;
    }
    // Gaps: the initial timeout, then double, each ±jitter (≤ 1 s and ≤ a quarter).
    std::uint64_t g1 = time::to_ns(at[1] - at[0]) / 1'000'000, g2 = time::to_ns(at[2] - at[1]) / 1'000'000;
    constexpr std::uint64_t base = CONFIG_DHCP_INITIAL_TIMEOUT_MS;
    EXPECT_GE(g1, base * 3 / 4);
    EXPECT_LE(g1, base * 5 / 4 + 50);
    EXPECT_GE(g2, base * 2 * 3 / 4);
    EXPECT_LE(g2, base * 2 * 5 / 4 + 50);
    EXPECT_GE(dhcp::stats().retransmissions, 2u);
}

KTEST(dhcp, offer_or_ack_of_an_unusable_address_is_ignored) {
    // yiaddr 0.0.0.0, 255.255.255.255, multicast or loopback is no lease:
    // such an OFFER or ACK is malformed (counted, ignored), never "bound".
    Started t;
    ASSERT_TRUE(t.ok);
    Message m = t.discover;
    const Address bad[] = {Address::any(), Address::broadcast(), Address::from(224, 0, 0, 1), Address::from(127, 0, 0, 1)};
    for (Address a : bad) reply(t.peer, 2, m.xid, 30, 10, 20, Address::broadcast(), false, a);
    reply(t.peer, 2, m.xid, 30, 10, 20);
    ASSERT_TRUE(next_message(t.peer, m, 2000));
    ASSERT_EQ(m.type, 3u); // REQUEST, for the good offer
    EXPECT_EQ(m.requested.value, kOffered.value);
    for (Address a : bad) reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, a);
    settle();
    EXPECT_FALSE(dhcp::lease().has_value());
    EXPECT_EQ(dhcp::stats().malformed, t.before.malformed + 8);
    reply(t.peer, 5, m.xid, 30, 10, 20);
    auto lease = dhcp::wait_bound(TestPeer::in_ms(2000));
    ASSERT_OK(lease);
    EXPECT_EQ(lease->address.value, kOffered.value);
}

KTEST(dhcp, ack_or_nak_from_another_server_is_ignored) {
    // RFC 2131 3.1/4.4.1: the REQUEST names the server whose OFFER we
    // took; an ACK or NAK from any other server is not an answer to it.
    // An OFFER or ACK without a server identifier is refused as well.
    constexpr Address kOther = Address::from(192, 168, 7, 99);
    Started t;
    ASSERT_TRUE(t.ok);
    Message m = t.discover;
    reply(t.peer, 2, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, Address::any()); // no server id
    reply(t.peer, 2, m.xid, 30, 10, 20);
    ASSERT_TRUE(next_message(t.peer, m, 2000));
    ASSERT_EQ(m.type, 3u); // REQUEST, naming the server
    EXPECT_EQ(m.server.value, TestPeer::kPeer.value);
    reply(t.peer, 6, m.xid, 0, 0, 0, Address::broadcast(), false, kOffered, kOther);  // NAK, another server
    reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, kOther); // ACK, another server
    reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, Address::any()); // ACK, no server id
    settle();
    EXPECT_FALSE(dhcp::lease().has_value());
    EXPECT_TRUE(dhcp::state() == dhcp::State::Requesting);
    auto mid = dhcp::stats();
    EXPECT_EQ(mid.wrong_server, t.before.wrong_server + 4);
    EXPECT_EQ(mid.naks, t.before.naks);
    EXPECT_EQ(mid.acks, t.before.acks);
    reply(t.peer, 5, m.xid, 30, 10, 20);
    auto lease = dhcp::wait_bound(TestPeer::in_ms(2000));
    ASSERT_OK(lease);
    EXPECT_EQ(lease->server.value, TestPeer::kPeer.value);
    EXPECT_EQ(dhcp::stats().acks, t.before.acks + 1);
}

KTEST(dhcp, non_contiguous_netmask_is_refused) {
    // A subnet mask with holes (255.0.255.0) or none (0.0.0.0) gives no
    // usable prefix: such an OFFER or ACK is refused, counted.
    Started t;
    ASSERT_TRUE(t.ok);
    Message m = t.discover;
    reply(t.peer, 2, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, TestPeer::kPeer, 0xff00ff00u);
    reply(t.peer, 2, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, TestPeer::kPeer, 0);
    reply(t.peer, 2, m.xid, 30, 10, 20);
    ASSERT_TRUE(next_message(t.peer, m, 2000));
    ASSERT_EQ(m.type, 3u);
    reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, TestPeer::kPeer, 0xffffff01u);
    reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, TestPeer::kPeer, 0x7fffff00u);
    settle();
    EXPECT_FALSE(dhcp::lease().has_value());
    EXPECT_EQ(dhcp::stats().bad_netmask, t.before.bad_netmask + 4);
    // A contiguous mask other than /24 is taken as its prefix length.
    reply(t.peer, 5, m.xid, 30, 10, 20, Address::broadcast(), false, kOffered, TestPeer::kPeer, 0xfffff000u);
    auto lease = dhcp::wait_bound(TestPeer::in_ms(2000));
    ASSERT_OK(lease);
    EXPECT_EQ(lease->prefix_length, 20u);
    EXPECT_EQ(*ipv4::prefix_of(t.peer.stack()), 20u);
}

KTEST(dhcp, survives_random_corruption_of_replies) {
    // Whatever the client sends (DISCOVER or REQUEST), it gets a batch of
    // mutants of the right reply (OFFER or ACK for its xid): bytes
    // overwritten (option codes and lengths included), cut short,
    // trailing garbage. Bound by a mutant or not, the client is restarted
    // and goes on. No crash, no hang, the pool back where it started.
    TestPeer peer;
    ASSERT_OK(peer.attach(true, false));
    Guard guard;
    ktest::Random random(0xd4c9f022ull);
    const auto pool = TestPeer::settled_pool_free();
    static std::byte valid[300], mutant[400];
    unsigned mutants = 0, restarts = 0;
    ASSERT_OK(dhcp::start(peer.stack()));
    for (unsigned rounds = 0; mutants < 2000 && rounds < 400; ++rounds) {
        Message m;
        if (!next_message(peer, m, 3000) || (m.type != 1 && m.type != 3)) continue;
        // The valid reply, as reply() builds it (captured, not sent).
        std::uint8_t type = m.type == 1 ? 2 : 5;
        std::memset(valid, 0, sizeof(valid));
        valid[0] = std::byte{2}; valid[1] = std::byte{1}; valid[2] = std::byte{6};
        for (unsigned k = 0; k < 4; ++k) valid[4 + k] = std::byte(m.xid >> (24 - 8 * k));
        kOffered.store(valid + 16);
        std::memcpy(valid + 28, peer.stack().mac().bytes.data(), 6);
        const unsigned char options[] = {99, 130, 83, 99, 53, 1, type, 54, 4, 192, 168, 7, 2, 1, 4, 255, 255, 255, 0,
                                         3, 4, 192, 168, 7, 2, 6, 4, 192, 168, 7, 53, 51, 4, 0, 0, 0, 30,
                                         58, 4, 0, 0, 0, 10, 59, 4, 0, 0, 0, 20, 255};
        std::memcpy(valid + 236, options, sizeof(options));
        const std::size_t n = 236 + sizeof(options);
        for (unsigned k = 0; k < 40; ++k, ++mutants) {
            std::memcpy(mutant, valid, sizeof(valid));
            std::size_t length = 300;
            // Mostly the options (where the parser works), now and then anywhere.
            std::size_t from = random.next() % 8 == 0 ? 0 : 240;
            for (unsigned f = 0, flips = 1 + random.next() % 6; f < flips; ++f)
                mutant[from + random.next() % (n - from)] = std::byte(random.next());
            if (random.next() % 4 == 0) length = random.next() % (n + 1);
            if (random.next() % 16 == 0) {
                length = 300 + random.next() % (sizeof(mutant) - 300);
                for (std::size_t i = 300; i < length; ++i) mutant[i] = std::byte(random.next());
            }
            peer.send_udp(67, 68, mutant, length, Address::broadcast());
        }
        netdev::flush();
        sched::sleep_for_ns(20'000'000);
        if (dhcp::lease()) { // a mutant was a usable ACK: start over
            dhcp::stop();
            ipv4::deconfigure(peer.stack());
            ASSERT_OK(eth_arp::add_static(peer.stack(), TestPeer::kPeer.value, peer.peer_mac()));
            ASSERT_OK(dhcp::start(peer.stack()));
            ++restarts;
        }
    }
    dhcp::stop();
    ipv4::deconfigure(peer.stack());
    EXPECT_GE(mutants, 2000u);
    EXPECT_GT(restarts, 0u); // the ACK path was reached too
    EXPECT_GT(dhcp::stats().malformed, 0u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}
