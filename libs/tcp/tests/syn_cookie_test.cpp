// SYN cookies: the encoding alone (tcp_units), and the engine answering
// a full SYN queue with them over the test wire (tcp).
#include <ktest/ktest.hpp>
#include <cstring>
#include <netdev/interface.hpp>
#include <sched/sched.hpp>
#include <tcp/segment.hpp>
#include <tcp/syn_cookie.hpp>
#include <tcp/tcp.hpp>
#include "wire.hpp"

using namespace tessera;
using namespace tessera::tcp;
using namespace tessera::tcp::test_wire;

namespace {
constexpr CookieTuple kTuple{0x0a090002, 0x0a090001, 7000, 40000};

std::uint16_t table_entry_for(std::uint16_t mss) {
    if (mss == 0) mss = 536;
    std::uint16_t best = kCookieMss[0];
    for (auto m : kCookieMss)
        if (m <= mss) best = m;
    return best;
}
} // namespace

KTEST(tcp_units, a_syn_cookie_carries_the_mss_for_its_period_and_the_next) {
    for (std::uint16_t mss : {0, 1, 63, 64, 300, 536, 1199, 1200, 1459, 1460, 9000}) {
        const Seq cookie = make_syn_cookie(kTuple, Seq(12345), mss, 100);
        const auto now = check_syn_cookie(kTuple, Seq(12345), cookie, 100);
        const auto next = check_syn_cookie(kTuple, Seq(12345), cookie, 101);
        ASSERT_TRUE(now.has_value());
        ASSERT_TRUE(next.has_value());
        EXPECT_EQ(*now, table_entry_for(mss));
        EXPECT_EQ(*next, table_entry_for(mss));
        EXPECT_FALSE(check_syn_cookie(kTuple, Seq(12345), cookie, 102).has_value()); // expired
        EXPECT_FALSE(check_syn_cookie(kTuple, Seq(12345), cookie, 99).has_value());  // from the future
    }
    // The period counter's wrap, in the cookie's five bits and in 32.
    EXPECT_TRUE(check_syn_cookie(kTuple, Seq(1), make_syn_cookie(kTuple, Seq(1), 1460, 31), 32).has_value());
    EXPECT_TRUE(check_syn_cookie(kTuple, Seq(1), make_syn_cookie(kTuple, Seq(1), 1460, 0xffffffff), 0).has_value());
    EXPECT_FALSE(check_syn_cookie(kTuple, Seq(1), make_syn_cookie(kTuple, Seq(1), 1460, 31), 33).has_value());
    // 32 periods on, the five bits read as the same period: the hash of
    // the full period tells them apart.
    EXPECT_FALSE(check_syn_cookie(kTuple, Seq(1), make_syn_cookie(kTuple, Seq(1), 1460, 7), 7 + 32).has_value());
}

KTEST(tcp_units, a_syn_cookie_is_bound_to_its_handshake) {
    const Seq cookie = make_syn_cookie(kTuple, Seq(777), 1460, 5);
    ASSERT_TRUE(check_syn_cookie(kTuple, Seq(777), cookie, 5).has_value());
    EXPECT_FALSE(check_syn_cookie(kTuple, Seq(778), cookie, 5).has_value());
    CookieTuple t = kTuple;
    t.local_address ^= 1;
    EXPECT_FALSE(check_syn_cookie(t, Seq(777), cookie, 5).has_value());
    t = kTuple;
    t.remote_address ^= 0x100;
    EXPECT_FALSE(check_syn_cookie(t, Seq(777), cookie, 5).has_value());
    t = kTuple;
    t.local_port ^= 1;
    EXPECT_FALSE(check_syn_cookie(t, Seq(777), cookie, 5).has_value());
    t = kTuple;
    t.remote_port ^= 0x8000;
    EXPECT_FALSE(check_syn_cookie(t, Seq(777), cookie, 5).has_value());
    // Any one bit changed, the MSS index's included: refused (a forgery
    // passes with probability 2^-24).
    for (unsigned bit = 0; bit < 32; ++bit)
        EXPECT_FALSE(check_syn_cookie(kTuple, Seq(777), Seq(cookie.value() ^ (1u << bit)), 5).has_value());
}

KTEST(tcp_units, a_cookie_timestamp_carries_scale_and_sack_and_never_runs_ahead) {
    for (std::uint32_t now : {0u, 5u, 31u, 32u, 1000u, 0xfffffff0u, 0xffffffffu}) {
        for (unsigned scale = 0; scale <= kMaxWindowScale + 1; ++scale) {
            for (bool sack : {false, true}) {
                CookieOptions o;
                o.has_window_scale = scale <= kMaxWindowScale;
                o.window_scale = o.has_window_scale ? static_cast<std::uint8_t>(scale) : 0;
                o.sack_permitted = sack;
                const std::uint32_t ts = cookie_timestamp(now, o);
                const auto behind = static_cast<std::int32_t>(now - ts);
                EXPECT_GE(behind, 0);
                EXPECT_LT(behind, 32);
                const CookieOptions back = decode_cookie_timestamp(ts);
                EXPECT_EQ(back.has_window_scale, o.has_window_scale);
                EXPECT_EQ(back.window_scale, o.window_scale);
                EXPECT_EQ(back.sack_permitted, o.sack_permitted);
            }
        }
    }
}

#ifdef CONFIG_TCP_SYN_COOKIES
namespace {
// Forged SYNs fill the queue from 10.9.1.x, one per address (under the
// per-source limit); the wire drops what the server sends them.
ipv4::Address flooder(unsigned i) { return ipv4::Address::from(10, 9, 1, static_cast<std::uint8_t>(1 + i)); }
bool is_flooder(ipv4::Address a) {
    for (unsigned i = 0; i < CONFIG_TCP_SYN_QUEUE; ++i)
        if (a == flooder(i)) return true;
    return false;
}

Verdict record_crafted(Segment& s, ipv4::Address, ipv4::Address dst, void*);

// A listener on kPort whose SYN queue the flooders have filled, with the
// wire recording what goes to the crafted client port.
Listener* flooded_listener(Net& net, unsigned backlog = 4) {
    Listener* l = net.listen(backlog);
    g_wire.filter = record_crafted;
    for (unsigned i = 0; i < CONFIG_TCP_SYN_QUEUE; ++i)
        inject_to_server(static_cast<std::uint16_t>(30000 + i), Seq(1000 * i), Seq(0), flag::kSyn, 1000, flooder(i));
    return l;
}

// What the server sent to the crafted client port (the wire drops it:
// there is no client connection in this image to take it).
constexpr std::uint16_t kCraftedPort = 41000;
struct Seen {
    unsigned count = 0;
    Segment last;
};
constinit Seen g_seen{};
Verdict record_crafted(Segment& s, ipv4::Address, ipv4::Address dst, void*) {
    if (is_flooder(dst)) return Verdict::Drop;
    if (s.destination_port != kCraftedPort) return Verdict::Pass;
    ++g_seen.count;
    g_seen.last = s;
    g_seen.last.payload = {};
    return Verdict::Drop;
}

// A SYN from kClient:kCraftedPort with `o`; returns the server's answer.
Segment crafted_syn(Seq isn, const Options& o) {
    g_seen.count = 0;
    inject_crafted(syn_from(kCraftedPort, isn, o), {}, kClient, kServer, [](std::byte*) {});
    return g_seen.last;
}

// The options a full-featured peer offers: MSS `mss`, window scale 7,
// SACK-permitted, and timestamps (TSval 4000) if `timestamps`.
Options offered(std::uint16_t mss, bool timestamps) {
    Options o;
    o.mss = mss;
    o.has_window_scale = true;
    o.window_scale = 7;
    o.sack_permitted = true;
    o.has_timestamps = timestamps;
    o.ts_value = timestamps ? 4000 : 0;
    return o;
}

// The handshake's last segment: ACK `ack`, SEQ `seq`, `payload` behind it.
void crafted_ack(Seq seq, Seq ack, std::span<const std::byte> payload, bool timestamps = false,
                 std::uint32_t ts_echo = 0) {
    Segment s;
    s.source_port = kCraftedPort;
    s.destination_port = kPort;
    s.seq = seq;
    s.ack = ack;
    s.flags = flag::kAck;
    s.window = 1000;
    s.options.has_timestamps = timestamps;
    s.options.ts_value = 5000;
    s.options.ts_echo = ts_echo;
    inject_crafted(s, payload, kClient, kServer, [](std::byte*) {});
}

std::uint32_t route_mss_to_client() {
    auto r = ipv4::route(kClient);
    return (r.ok() && r.value().mtu ? r.value().mtu : 576) - 40;
}

constexpr char kHello[] = "hello through a cookie";
std::span<const std::byte> hello() { return {reinterpret_cast<const std::byte*>(kHello), sizeof kHello - 1}; }

bool received_hello(Connection* s) {
    std::byte got[64];
    auto r = receive(s, got, in_ms(2000));
    return r.ok() && r.value() == hello().size() && std::memcmp(got, kHello, hello().size()) == 0;
}
} // namespace

KTEST(tcp, a_full_syn_queue_answers_with_cookies_and_clients_still_get_in) {
    Net net;
    Listener* l = flooded_listener(net);
    const auto before = stats();
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    const auto after = stats();
    EXPECT_EQ(after.syn_cookies_sent - before.syn_cookies_sent, 1u);
    EXPECT_EQ(after.syn_cookies_accepted - before.syn_cookies_accepted, 1u);
    EXPECT_EQ(after.syn_cookies_rejected, before.syn_cookies_rejected);
    EXPECT_EQ(after.syn_queue_full, before.syn_queue_full);
    // Timestamps carried window scaling and SACK through the cookie.
    const auto ci = info(c), si = info(s);
    ASSERT_OK(ci);
    ASSERT_OK(si);
    EXPECT_TRUE(si.value().timestamps);
    EXPECT_TRUE(si.value().sack);
    EXPECT_TRUE(ci.value().sack);
    EXPECT_EQ(si.value().send_scale, ci.value().receive_scale);
    EXPECT_EQ(si.value().receive_scale, ci.value().send_scale);
    EXPECT_EQ(si.value().receive_scale, 1u);
    EXPECT_EQ(si.value().mss, ci.value().mss); // 536 and 1460 are both in the cookie's table
    EXPECT_TRUE(transfer(c, s, 200'000, in_ms(20000)));
    EXPECT_TRUE(transfer(s, c, 200'000, in_ms(20000)));
    // The forged half-open connections are still there, and still refuse nobody.
    Connection *c2, *s2;
    ASSERT_TRUE(open_pair(l, c2, s2));
    EXPECT_EQ(stats().syn_cookies_accepted - before.syn_cookies_accepted, 2u);
    close(c);
    close(s);
    close(c2);
    close(s2);
}

KTEST(tcp, a_cookie_ack_that_does_not_match_is_answered_with_a_reset) {
    Net net;
    Listener* l = flooded_listener(net);
    const Seq isn(0x50000000);
    const Segment synack = crafted_syn(isn, offered(1460, true));
    ASSERT_EQ(g_seen.count, 1u);
    EXPECT_EQ(synack.flags, flag::kSyn | flag::kAck);
    EXPECT_TRUE(synack.ack == isn + 1);
    EXPECT_EQ(synack.options.mss, route_mss_to_client());
    EXPECT_TRUE(synack.options.has_window_scale);
    EXPECT_EQ(synack.options.window_scale, 1u);
    EXPECT_TRUE(synack.options.sack_permitted);
    EXPECT_TRUE(synack.options.has_timestamps);
    EXPECT_EQ(synack.options.ts_echo, 4000u);
    const Seq cookie = synack.seq;
    const auto before = stats();
    // A wrong cookie, and the right one from a different handshake (the
    // peer's ISN is part of it): each is refused with a RST and leaves nothing.
    g_seen.count = 0;
    crafted_ack(isn + 1, cookie + 2, hello(), true, synack.options.ts_value);
    EXPECT_EQ(g_seen.count, 1u);
    EXPECT_EQ(g_seen.last.flags, flag::kRst);
    crafted_ack(isn + 2, cookie + 1, hello(), true, synack.options.ts_value);
    EXPECT_EQ(g_seen.count, 2u);
    EXPECT_EQ(g_seen.last.flags, flag::kRst);
    auto after = stats();
    EXPECT_EQ(after.syn_cookies_rejected - before.syn_cookies_rejected, 2u);
    EXPECT_EQ(after.syn_cookies_accepted, before.syn_cookies_accepted);
    EXPECT_EQ(after.connections_in_use, before.connections_in_use);
    EXPECT_FALSE(try_accept(l).ok());
    // The real answer: a connection with the SYN's options and the data.
    crafted_ack(isn + 1, cookie + 1, hello(), true, synack.options.ts_value);
    after = stats();
    EXPECT_EQ(after.syn_cookies_accepted - before.syn_cookies_accepted, 1u);
    auto s = try_accept(l);
    ASSERT_OK(s);
    const auto si = info(s.value());
    ASSERT_OK(si);
    EXPECT_EQ(si.value().state, State::Established);
    EXPECT_TRUE(si.value().timestamps);
    EXPECT_TRUE(si.value().sack);
    EXPECT_EQ(si.value().send_scale, 7u);
    EXPECT_EQ(si.value().receive_scale, 1u);
    EXPECT_EQ(si.value().mss, std::min<std::uint32_t>(1460, route_mss_to_client()) - 12);
    EXPECT_EQ(si.value().send_window, 1000u << 7);
    EXPECT_GT(si.value().srtt_us, 0u); // sampled from the echo of the cookie's timestamp
    EXPECT_TRUE(received_hello(s.value()));
    // It acknowledges the data (at once or when its delayed ACK is due),
    // echoing the ACK's timestamp.
    const time::Ticks until = in_ms(2000);
    while (!(g_seen.last.ack == isn + 1 + hello().size()) && time::now() < until) sched::sleep_until(in_ms(5));
    EXPECT_TRUE(g_seen.last.ack == isn + 1 + hello().size());
    EXPECT_EQ(g_seen.last.flags, flag::kAck);
    EXPECT_EQ(g_seen.last.options.ts_echo, 5000u);
    abort(s.value());
}

KTEST(tcp, a_cookie_connection_without_timestamps_has_no_scaling_or_sack) {
    Net net;
    Listener* l = flooded_listener(net);
    const Seq isn(0xfffffff0); // the handshake's sequence numbers wrap
    const Segment synack = crafted_syn(isn, offered(1300, false));
    ASSERT_EQ(g_seen.count, 1u);
    // Nothing offered that the cookie could not bring back.
    EXPECT_EQ(synack.options.mss, route_mss_to_client());
    EXPECT_FALSE(synack.options.has_window_scale);
    EXPECT_FALSE(synack.options.sack_permitted);
    EXPECT_FALSE(synack.options.has_timestamps);
    crafted_ack(isn + 1, synack.seq + 1, hello());
    auto s = try_accept(l);
    ASSERT_OK(s);
    const auto si = info(s.value());
    ASSERT_OK(si);
    EXPECT_FALSE(si.value().timestamps);
    EXPECT_FALSE(si.value().sack);
    EXPECT_EQ(si.value().send_scale, 0u);
    EXPECT_EQ(si.value().receive_scale, 0u);
    EXPECT_EQ(si.value().mss, std::min<std::uint32_t>(1200, route_mss_to_client())); // 1300 rounds down to 1200
    EXPECT_TRUE(received_hello(s.value()));
    abort(s.value());
}

KTEST(tcp, a_valid_cookie_ack_waits_for_room_in_the_backlog) {
    Net net;
    Listener* l = flooded_listener(net, 1);
    // One handshake completed through a cookie and not yet accepted fills the backlog.
    auto first = dial();
    ASSERT_OK(first);
    Options o;
    o.mss = 1460;
    const Seq isn(0x1234);
    const Segment synack = crafted_syn(isn, o);
    ASSERT_EQ(g_seen.count, 1u);
    const auto before = stats();
    g_seen.count = 0;
    crafted_ack(isn + 1, synack.seq + 1, hello());
    auto after = stats();
    EXPECT_EQ(after.accept_queue_full - before.accept_queue_full, 1u);
    EXPECT_EQ(after.syn_cookies_accepted, before.syn_cookies_accepted);
    EXPECT_EQ(g_seen.count, 0u); // dropped, not reset: the peer's retransmission may find room
    auto s1 = try_accept(l);
    ASSERT_OK(s1);
    // The same segment again (the peer retransmits its data): in now.
    crafted_ack(isn + 1, synack.seq + 1, hello());
    after = stats();
    EXPECT_EQ(after.syn_cookies_accepted - before.syn_cookies_accepted, 1u);
    auto s2 = try_accept(l);
    ASSERT_OK(s2);
    EXPECT_TRUE(received_hello(s2.value()));
    abort(s2.value());
    abort(s1.value());
    abort(first.value());
}
namespace {
// Many clients behind one address (a NAT, SLIRP's gateway): their ports
// from kCrowdPort. The wire keeps the sequence number of each SYN-ACK.
constexpr ipv4::Address kCrowd = ipv4::Address::from(10, 9, 2, 1);
constexpr std::uint16_t kCrowdPort = 50000;
constexpr unsigned kCrowdSize = CONFIG_TCP_PER_SOURCE_TOTAL + 1;
constinit Seq g_crowd_synack[kCrowdSize]{};
constinit unsigned g_crowd_synacks = 0;
Verdict record_crowd(Segment& s, ipv4::Address, ipv4::Address dst, void*) {
    if (dst != kCrowd) return Verdict::Pass;
    const unsigned i = s.destination_port - kCrowdPort;
    if (s.flags == (flag::kSyn | flag::kAck) && i < kCrowdSize) {
        g_crowd_synack[i] = s.seq;
        ++g_crowd_synacks;
    }
    return Verdict::Drop;
}
} // namespace

// One address may hold its share of the SYN queue; its SYNs beyond that
// get cookies, so all its clients get in, up to its total limit. At that
// limit a SYN gets nothing at all: a cookie's ACK would be refused, and
// the client would believe in a connection that does not exist.
KTEST(tcp, clients_behind_one_address_get_in_up_to_its_total_limit) {
    constexpr unsigned kTotal = CONFIG_TCP_PER_SOURCE_TOTAL, kShare = CONFIG_TCP_PER_SOURCE_HALF_OPEN;
    static_assert(kTotal > kShare && kTotal <= CONFIG_TCP_MAX_CONNECTIONS);
    Net net;
    Listener* l = net.listen(kTotal);
    g_wire.filter = record_crowd;
    g_crowd_synacks = 0;
    const auto before = stats();
    for (unsigned i = 0; i < kTotal; ++i)
        inject_to_server(static_cast<std::uint16_t>(kCrowdPort + i), Seq(1000 * i), Seq(0), flag::kSyn, 1000, kCrowd);
    EXPECT_EQ(g_crowd_synacks, kTotal);
    EXPECT_EQ(stats().syn_cookies_sent - before.syn_cookies_sent, kTotal - kShare);
    for (unsigned i = 0; i < kTotal; ++i)
        inject_to_server(static_cast<std::uint16_t>(kCrowdPort + i), Seq(1000 * i + 1), g_crowd_synack[i] + 1,
                         flag::kAck, 1000, kCrowd);
    EXPECT_EQ(stats().syn_cookies_accepted - before.syn_cookies_accepted, kTotal - kShare);
    Connection* accepted[kTotal];
    unsigned n = 0;
    for (auto a = try_accept(l); a.ok() && n < kTotal; a = try_accept(l)) accepted[n++] = a.value();
    EXPECT_EQ(n, kTotal);
    // One client more: nothing, and counted.
    g_crowd_synacks = 0;
    const auto full = stats();
    inject_to_server(static_cast<std::uint16_t>(kCrowdPort + kTotal), Seq(7), Seq(0), flag::kSyn, 1000, kCrowd);
    EXPECT_EQ(g_crowd_synacks, 0u);
    EXPECT_EQ(stats().syn_per_source - full.syn_per_source, 1u);
    EXPECT_EQ(stats().syn_cookies_sent, full.syn_cookies_sent);
    for (unsigned i = 0; i < n; ++i) abort(accepted[i]);
}
#endif
