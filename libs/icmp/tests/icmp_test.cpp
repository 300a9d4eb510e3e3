#include <cstring>
#include <icmp/icmp.hpp>
#include <ipv4/test_peer.hpp>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {
std::byte g_message[1600];

// An ICMP message of `length` bytes (type, code, id 0x4242, seq 7, payload i).
std::size_t echo(std::uint8_t type, std::size_t payload) {
    std::memset(g_message, 0, 8);
    g_message[0] = std::byte{type};
    g_message[4] = g_message[5] = std::byte{0x42};
    g_message[7] = std::byte{7};
    for (std::size_t i = 0; i < payload; ++i) g_message[8 + i] = std::byte(i * 3);
    std::uint16_t s = ipv4::checksum_finish(ipv4::checksum_add({g_message, 8 + payload}));
    g_message[2] = std::byte(s >> 8);
    g_message[3] = std::byte(s);
    return 8 + payload;
}
} // namespace

KTEST(icmp, echo_request_answered) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    auto before = icmp::stats();
    std::size_t n = echo(icmp::EchoRequest, 56);
    peer.send_ip(1, g_message, n);
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    EXPECT_EQ(f.protocol(), 1u);
    EXPECT_EQ(Address::load(f.l3() + 16).value, TestPeer::kPeer.value);
    EXPECT_EQ(Address::load(f.l3() + 12).value, TestPeer::kStack.value);
    ASSERT_EQ(f.l4_length(), n);
    EXPECT_EQ(unsigned(f.l4()[0]), 0u); // echo reply
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add({f.l4(), n})), 0u);
    EXPECT_EQ(std::memcmp(f.l4() + 4, g_message + 4, n - 4), 0); // id, sequence, payload echoed
    // A request to the broadcast address is not answered; damaged ones are counted.
    peer.send_ip(1, g_message, n, 9, 0, TestPeer::kPeer, Address::from(192, 168, 7, 255));
    g_message[20] ^= std::byte{1};
    peer.send_ip(1, g_message, n);
    peer.send_ip(1, g_message, 4);
    EXPECT_FALSE(peer.next_of(f, 0x0800, TestPeer::in_ms(50)));
    auto after = icmp::stats();
    EXPECT_EQ(after.echo_replies_sent, before.echo_replies_sent + 1);
    EXPECT_EQ(after.echo_ignored, before.echo_ignored + 1);
    EXPECT_EQ(after.bad_checksum, before.bad_checksum + 1);
    EXPECT_EQ(after.truncated, before.truncated + 1);
}

namespace {
struct PingRun {
    std::size_t size;
    base::Result<std::uint64_t> result{base::Error::NotFound};
};
} // namespace

KTEST(icmp, ping_returns_rtt_and_times_out) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    PingRun run{100};
    auto t = sched::spawn([](void* a) {
        auto& r = *static_cast<PingRun*>(a);
        r.result = icmp::ping(TestPeer::kPeer, r.size, TestPeer::in_ms(2000));
    }, &run, {.name = "pinger"});
    ASSERT_OK(t);
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(1000)));
    ASSERT_EQ(f.l4_length(), 108u);
    EXPECT_EQ(unsigned(f.l4()[0]), 8u);
    // Answer: same message, type 0, checksum fixed.
    std::memcpy(g_message, f.l4(), 108);
    g_message[0] = std::byte{0};
    g_message[2] = g_message[3] = std::byte{0};
    std::uint16_t s = ipv4::checksum_finish(ipv4::checksum_add({g_message, 108}));
    g_message[2] = std::byte(s >> 8);
    g_message[3] = std::byte(s);
    sched::sleep_for_ns(1'000'000);
    peer.send_ip(1, g_message, 108);
    ASSERT_OK(sched::join(t.value()));
    ASSERT_OK(run.result);
    EXPECT_GE(run.result.value(), 1'000'000u);
    // Nobody answers: TimedOut; a reply with the wrong sequence is unmatched.
    auto before = icmp::stats();
    EXPECT_ERROR(icmp::ping(TestPeer::kPeer, 8, TestPeer::in_ms(100)), Error::TimedOut);
    peer.send_ip(1, g_message, 108);
    EXPECT_EQ(icmp::stats().echo_unmatched, before.echo_unmatched + 1);
    EXPECT_ERROR(icmp::ping(TestPeer::kPeer, 2000, TestPeer::in_ms(100)), Error::MessageTooLong);
    EXPECT_ERROR(icmp::ping(Address::from(8, 8, 8, 8), 8, TestPeer::in_ms(100)), Error::Unreachable);
}

KTEST(icmp, port_unreachable_quotes_datagram_never_for_broadcast) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    const std::byte data[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    auto before = icmp::stats();
    peer.send_udp(5555, 9, data, 4); // nobody on port 9 (discard)
    TestPeer::Frame f;
    ASSERT_TRUE(peer.next_of(f, 0x0800, TestPeer::in_ms(500)));
    ASSERT_EQ(f.protocol(), 1u);
    EXPECT_EQ(unsigned(f.l4()[0]), 3u);
    EXPECT_EQ(unsigned(f.l4()[1]), 3u);
    ASSERT_EQ(f.l4_length(), 8u + 20 + 8);
    EXPECT_EQ(ipv4::checksum_finish(ipv4::checksum_add({f.l4(), f.l4_length()})), 0u);
    EXPECT_EQ(unsigned(f.l4()[8 + 9]), 17u); // quoted protocol
    EXPECT_EQ(unsigned(f.l4()[8 + 20 + 3]), 9u); // quoted destination port
    // Broadcast: no error.
    peer.send_udp(5555, 9, data, 4, Address::broadcast());
    EXPECT_FALSE(peer.next_of(f, 0x0800, TestPeer::in_ms(50)));
    auto after = icmp::stats();
    EXPECT_EQ(after.errors_sent, before.errors_sent + 1);
    EXPECT_EQ(after.errors_suppressed, before.errors_suppressed + 1);
    // An error about an ICMP error is never sent (ICMP error to us is only counted).
    std::size_t n = echo(icmp::DestinationUnreachable, 28);
    peer.send_ip(1, g_message, n);
    EXPECT_EQ(icmp::stats().errors_received, after.errors_received + 1);
}

KTEST(icmp, errors_rate_limited) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    sched::sleep_for_ns(1'000'000'000ull * CONFIG_ICMP_ERROR_BURST / CONFIG_ICMP_ERROR_RATE + 100'000'000); // full bucket
    auto before = icmp::stats();
    const std::byte data[1] = {};
    for (unsigned i = 0; i < CONFIG_ICMP_ERROR_BURST + 5; ++i) peer.send_udp(5555, 9, data, 1);
    auto after = icmp::stats();
    EXPECT_GE(after.errors_sent - before.errors_sent, std::uint64_t(CONFIG_ICMP_ERROR_BURST));
    EXPECT_LE(after.errors_sent - before.errors_sent, std::uint64_t(CONFIG_ICMP_ERROR_BURST) + 1);
    EXPECT_GE(after.errors_rate_limited - before.errors_rate_limited, 4u);
    peer.clear();
}

namespace {
// A transport of the test's own (253: RFC 3692's experimentation number)
// that records the errors ipv4 hands it.
constexpr std::uint8_t kTestProtocol = 253;
struct Heard {
    unsigned count = 0;
    ipv4::TransportError last;
    std::byte transport[8];
};
Heard g_heard;
void ignore_datagram(const ipv4::Header&, netdev::PacketRef, void*) {}
void hear_error(const ipv4::TransportError& e, void*) {
    ++g_heard.count;
    g_heard.last = e;
    std::memcpy(g_heard.transport, e.transport.data(), 8);
    g_heard.last.transport = {};
}

// An error message about a datagram `from` -> `to` of `protocol`, quoting
// its header and 8 bytes of payload; `flags_offset` as in its header.
std::size_t error_about(std::uint8_t type, std::uint8_t code, std::uint16_t mtu, Address from, Address to,
                        std::uint8_t protocol, std::uint16_t flags_offset = 0, std::size_t quoted = 8) {
    std::memset(g_message, 0, 8 + 20 + quoted);
    g_message[0] = std::byte{type};
    g_message[1] = std::byte{code};
    g_message[6] = std::byte(mtu >> 8);
    g_message[7] = std::byte(mtu);
    std::byte* ip = g_message + 8;
    ip[0] = std::byte{0x45};
    ip[2] = std::byte{0x05};
    ip[3] = std::byte{0xdc}; // it was 1500 bytes long
    ip[6] = std::byte(flags_offset >> 8);
    ip[7] = std::byte(flags_offset);
    ip[8] = std::byte{64};
    ip[9] = std::byte{protocol};
    from.store(ip + 12);
    to.store(ip + 16);
    for (std::size_t i = 0; i < quoted; ++i) ip[20 + i] = std::byte(0xa0 + i);
    std::size_t n = 8 + 20 + quoted;
    std::uint16_t s = ipv4::checksum_finish(ipv4::checksum_add({g_message, n}));
    g_message[2] = std::byte(s >> 8);
    g_message[3] = std::byte(s);
    return n;
}
} // namespace

// RFC 1122 3.2.2: errors go to the transport whose datagram they quote,
// with what it needs (RFC 1191's MTU, the quoted ports and sequence
// number); an error quoting no datagram of ours, or sent to a broadcast
// address, goes nowhere.
KTEST(icmp, errors_reach_the_transport_whose_datagram_they_quote) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    g_heard = {};
    ASSERT_OK(ipv4::register_protocol(static_cast<ipv4::Protocol>(kTestProtocol), ignore_datagram, nullptr,
                                      hear_error));
    auto before = icmp::stats();
    const Address router = Address::from(192, 168, 7, 9), remote = Address::from(10, 1, 2, 3);
    peer.send_ip(1, g_message, error_about(icmp::DestinationUnreachable, icmp::FragmentationNeeded, 1280,
                                           TestPeer::kStack, remote, kTestProtocol), 1, 0, router);
    ASSERT_EQ(g_heard.count, 1u);
    EXPECT_EQ(g_heard.last.type, icmp::DestinationUnreachable);
    EXPECT_EQ(g_heard.last.code, icmp::FragmentationNeeded);
    EXPECT_EQ(g_heard.last.next_hop_mtu, 1280u);
    EXPECT_EQ(g_heard.last.quoted_length, 1500u);
    EXPECT_EQ(g_heard.last.reporter.value, router.value);
    EXPECT_EQ(g_heard.last.source.value, TestPeer::kStack.value);
    EXPECT_EQ(g_heard.last.destination.value, remote.value);
    EXPECT_EQ(g_heard.transport[0], std::byte{0xa0});
    EXPECT_EQ(g_heard.transport[7], std::byte{0xa7});
    // Time exceeded carries no MTU.
    peer.send_ip(1, g_message, error_about(icmp::TimeExceeded, 0, 0, TestPeer::kStack, remote, kTestProtocol), 2);
    ASSERT_EQ(g_heard.count, 2u);
    EXPECT_EQ(g_heard.last.type, icmp::TimeExceeded);
    EXPECT_EQ(g_heard.last.next_hop_mtu, 0u);
    // Not ours, a later fragment, too little quoted, to a broadcast address:
    // unusable. A protocol with no error handler: not taken.
    peer.send_ip(1, g_message, error_about(3, 1, 0, remote, TestPeer::kPeer, kTestProtocol), 3);
    peer.send_ip(1, g_message, error_about(3, 1, 0, TestPeer::kStack, remote, kTestProtocol, 185), 4);
    peer.send_ip(1, g_message, error_about(3, 1, 0, TestPeer::kStack, remote, kTestProtocol, 0, 4), 5);
    peer.send_ip(1, g_message, error_about(3, 1, 0, TestPeer::kStack, remote, kTestProtocol), 6, 0, router,
                 Address::from(192, 168, 7, 255));
    peer.send_ip(1, g_message, error_about(3, 3, 0, TestPeer::kStack, remote, 17), 7);
    EXPECT_EQ(g_heard.count, 2u);
    ipv4::unregister_protocol(static_cast<ipv4::Protocol>(kTestProtocol));
    auto after = icmp::stats();
    EXPECT_EQ(after.errors_received, before.errors_received + 7);
    EXPECT_EQ(after.errors_delivered, before.errors_delivered + 2);
    EXPECT_EQ(after.errors_unusable, before.errors_unusable + 4);
    EXPECT_EQ(after.errors_not_taken, before.errors_not_taken + 1);
}

// An echo reply nobody waits for is counted and dropped: answering it (as
// a request) would let two hosts bounce one between them for ever.
KTEST(icmp, an_unmatched_echo_reply_is_not_answered) {
    TestPeer peer;
    ASSERT_OK(peer.attach());
    auto before = icmp::stats();
    peer.send_ip(1, g_message, echo(icmp::EchoReply, 32));
    TestPeer::Frame f;
    EXPECT_FALSE(peer.next_of(f, 0x0800, TestPeer::in_ms(50)));
    EXPECT_EQ(icmp::stats().echo_unmatched, before.echo_unmatched + 1);
    EXPECT_EQ(icmp::stats().echo_replies_sent, before.echo_replies_sent);
}
