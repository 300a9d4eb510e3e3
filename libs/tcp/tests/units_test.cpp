// Pure pieces of the TCP engine: no network needed.
#include <cstring>
#include <ktest/ktest.hpp>
#include <tcp/congestion.hpp>
#include <tcp/isn.hpp>
#include <tcp/ranges.hpp>
#include <tcp/rtt.hpp>
#include <tcp/segment.hpp>
#include <tcp/window.hpp>

using namespace tessera;
using namespace tessera::tcp;
using base::Error;

namespace {
std::span<const std::byte> bytes_of(const std::uint8_t* p, std::size_t n) {
    return {reinterpret_cast<const std::byte*>(p), n};
}
} // namespace

KTEST(tcp_units, seq_compares_modulo_2_32) {
    Seq a(0xfffffff0u), b(0x10u);
    EXPECT_TRUE(a < b);            // b is 0x20 after a, across the wrap
    EXPECT_TRUE(b > a);
    EXPECT_EQ(b - a, 0x20);
    EXPECT_EQ(a - b, -0x20);
    EXPECT_TRUE((a + 0x20) == b);
    EXPECT_TRUE(in_range(Seq(0), a, b));
    EXPECT_FALSE(in_range(b, a, b)); // half-open
    EXPECT_FALSE(in_range(a, a, a)); // empty
    EXPECT_TRUE(seq_max(a, b) == b);
    EXPECT_TRUE(seq_min(a, b) == a);
    EXPECT_TRUE(Seq(0x7fffffff) > Seq(0));
    EXPECT_TRUE(Seq(0x80000001) < Seq(0)); // more than 2^31 ahead reads as behind
}

KTEST(tcp_units, header_build_parse_round_trip_with_every_option) {
    Segment s;
    s.source_port = 1234;
    s.destination_port = 80;
    s.seq = Seq(0xdeadbeef);
    s.ack = Seq(0x01020304);
    s.flags = flag::kSyn | flag::kAck;
    s.window = 65535;
    s.options.mss = 1460;
    s.options.has_window_scale = true;
    s.options.window_scale = 7;
    s.options.sack_permitted = true;
    s.options.has_timestamps = true;
    s.options.ts_value = 111;
    s.options.ts_echo = 222;
    std::byte buf[80] = {};
    std::size_t n = build(s, buf);
    EXPECT_EQ(n, 20u + 4 + 4 + 4 + 12);
    EXPECT_EQ(n % 4, 0u);
    Segment p;
    ASSERT_OK(parse(std::span<const std::byte>(buf, n), p));
    EXPECT_EQ(p.source_port, 1234);
    EXPECT_EQ(p.destination_port, 80);
    EXPECT_EQ(p.seq.value(), 0xdeadbeefu);
    EXPECT_EQ(p.ack.value(), 0x01020304u);
    EXPECT_EQ(p.flags, flag::kSyn | flag::kAck);
    EXPECT_EQ(p.window, 65535);
    EXPECT_EQ(p.header_length, n);
    EXPECT_EQ(p.options.mss, 1460);
    EXPECT_TRUE(p.options.has_window_scale);
    EXPECT_EQ(p.options.window_scale, 7);
    EXPECT_TRUE(p.options.sack_permitted);
    EXPECT_TRUE(p.options.has_timestamps);
    EXPECT_EQ(p.options.ts_value, 111u);
    EXPECT_EQ(p.options.ts_echo, 222u);
    EXPECT_EQ(p.payload.size(), 0u);
    EXPECT_EQ(p.length(), 1u); // SYN
}

KTEST(tcp_units, sack_blocks_round_trip) {
    Segment s;
    s.flags = flag::kAck;
    s.options.sack_count = 3;
    s.options.sack[0] = {Seq(100), Seq(200)};
    s.options.sack[1] = {Seq(300), Seq(400)};
    s.options.sack[2] = {Seq(0xfffffff0), Seq(0x10)};
    s.options.has_timestamps = true;
    std::byte buf[80] = {};
    std::size_t n = build(s, buf);
    Segment p;
    ASSERT_OK(parse(std::span<const std::byte>(buf, n), p));
    ASSERT_EQ(p.options.sack_count, 3);
    EXPECT_TRUE(p.options.sack[2] == (SackBlock{Seq(0xfffffff0), Seq(0x10)}));
    EXPECT_TRUE(p.options.sack[0] == (SackBlock{Seq(100), Seq(200)}));
}

KTEST(tcp_units, absurd_and_truncated_headers_are_malformed) {
    std::uint8_t h[40] = {};
    h[12] = 5 << 4;
    Segment s;
    EXPECT_OK(parse(bytes_of(h, 20), s));
    EXPECT_ERROR(parse(bytes_of(h, 19), s), Error::Malformed);      // short
    h[12] = 4 << 4;
    EXPECT_ERROR(parse(bytes_of(h, 20), s), Error::Malformed);      // data offset < 5
    h[12] = 10 << 4;
    EXPECT_ERROR(parse(bytes_of(h, 36), s), Error::Malformed);      // offset past the end
    // Option area tests (20 bytes of options).
    static Options parsed;
    auto opts = [](std::initializer_list<std::uint8_t> o) {
        static std::uint8_t a[40];
        std::memset(a, 0, sizeof a);
        std::size_t i = 0;
        for (auto b : o) a[i++] = b;
        return parse_options(std::span<const std::byte>(reinterpret_cast<const std::byte*>(a), i), parsed);
    };
    EXPECT_OK(opts({1, 1, 0, 99}));                       // NOPs, end; garbage after end ignored
    EXPECT_ERROR(opts({2}), Error::Malformed);            // kind without length
    EXPECT_ERROR(opts({2, 0}), Error::Malformed);         // length 0 (would loop forever)
    EXPECT_ERROR(opts({2, 1}), Error::Malformed);         // length 1
    EXPECT_ERROR(opts({2, 3, 5}), Error::Malformed);      // MSS of the wrong length
    EXPECT_ERROR(opts({2, 4, 5}), Error::Malformed);      // runs past the area
    EXPECT_ERROR(opts({3, 4, 1, 1}), Error::Malformed);   // window scale length
    EXPECT_ERROR(opts({5, 9, 0, 0, 0, 0, 0, 0, 0}), Error::Malformed); // SACK not 2+8n
    EXPECT_ERROR(opts({8, 8, 0, 0, 0, 0, 0, 0}), Error::Malformed);    // timestamps length
    EXPECT_OK(opts({99, 3, 0, 1}));                       // unknown kind skipped by length
    ASSERT_OK(opts({3, 3, 200}));
    EXPECT_EQ(parsed.window_scale, kMaxWindowScale); // clamped, RFC 7323 2.3
    // Parsing again forgets what the last area held.
    ASSERT_OK(opts({1, 1, 0}));
    EXPECT_FALSE(parsed.has_window_scale);
    EXPECT_EQ(parsed.window_scale, 0);
}

KTEST(tcp_units, checksum_matches_a_known_segment) {
    // A SYN from 10.0.0.1:12345 to 10.0.0.2:80, checksum computed by hand
    // with the RFC 1071 algorithm: verify that building + filling gives a
    // segment whose checksum verifies to 0 and that a flipped bit breaks it.
    Segment s;
    s.source_port = 12345;
    s.destination_port = 80;
    s.seq = Seq(1);
    s.flags = flag::kSyn;
    s.window = 1000;
    s.options.mss = 1460;
    std::byte buf[64] = {};
    std::size_t n = build(s, buf);
    buf[n] = std::byte{0x41}; // one odd payload byte
    std::uint32_t src = 0x0a000001, dst = 0x0a000002;
    fill_checksum(src, dst, std::span<std::byte>(buf, n + 1));
    EXPECT_EQ(checksum(src, dst, std::span<const std::byte>(buf, n + 1)), 0);
    buf[n] = std::byte{0x40};
    EXPECT_NE(checksum(src, dst, std::span<const std::byte>(buf, n + 1)), 0);
    // RFC 1071 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (+carry) -> ~ = 220d.
    const std::uint8_t ex[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(checksum(0, 0, bytes_of(ex, 8)), static_cast<std::uint16_t>(~(0xddf2 + 6 + 8) & 0xffff));
}

KTEST(tcp_units, rto_follows_rfc6298) {
    RttEstimator e(200'000);
    EXPECT_EQ(e.rto(), 1'000'000u); // initial 1 s
    e.sample(100'000);             // first: SRTT = R, RTTVAR = R/2
    EXPECT_EQ(e.srtt(), 100'000u);
    EXPECT_EQ(e.rttvar(), 50'000u);
    EXPECT_EQ(e.rto(), 300'000u);  // 100 + 4*50 ms
    e.sample(200'000);             // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    EXPECT_EQ(e.rttvar(), 62'500u);
    EXPECT_EQ(e.srtt(), 112'500u);
    EXPECT_EQ(e.rto(), 362'500u);
    e.back_off();
    EXPECT_EQ(e.rto(), 725'000u);
    e.back_off();
    EXPECT_EQ(e.rto(), 1'450'000u);
    for (int i = 0; i < 20; ++i) e.back_off();
    EXPECT_EQ(e.rto(), RttEstimator::kMaxRto); // capped at 60 s
    for (int i = 0; i < 50; ++i) e.sample(1'000); // tiny RTT: clamped to the minimum
    EXPECT_EQ(e.rto(), 200'000u);
    EXPECT_EQ(e.backoff(), 0u);
}

KTEST(tcp_units, reno_slow_start_avoidance_and_newreno_recovery) {
    const CongestionOps& cc = reno();
    CongestionState s;
    cc.init(s, 1000, Seq(0));
    EXPECT_EQ(s.cwnd, 4000u); // RFC 5681 IW for MSS 1000
    // Slow start: +1 MSS per full ACK, at most MSS for a stretch ACK.
    cc.on_ack(s, 1000, Seq(1001), 4000, 1);
    EXPECT_EQ(s.cwnd, 5000u);
    cc.on_ack(s, 3000, Seq(4001), 4000, 1);
    EXPECT_EQ(s.cwnd, 6000u);
    // Three ACKs merged into one grow it as the three would have.
    CongestionState m;
    cc.init(m, 1000, Seq(0));
    cc.on_ack(m, 3000, Seq(3001), 4000, 3);
    EXPECT_EQ(m.cwnd, 7000u);
    cc.on_ack(m, 5000, Seq(8001), 7000, 2); // ... but never beyond what they acknowledged
    EXPECT_EQ(m.cwnd, 9000u);
    // Three duplicate ACKs: fast retransmit, ssthresh = flight/2, cwnd = ssthresh + 3 MSS.
    Seq una(4001), max(14001);
    EXPECT_TRUE(cc.on_duplicate_ack(s, una, max, 10000) == CongestionAction::None);
    EXPECT_TRUE(cc.on_duplicate_ack(s, una, max, 10000) == CongestionAction::None);
    EXPECT_TRUE(cc.on_duplicate_ack(s, una, max, 10000) == CongestionAction::RetransmitFirst);
    EXPECT_TRUE(s.in_recovery);
    EXPECT_EQ(s.ssthresh, 5000u);
    EXPECT_EQ(s.cwnd, 8000u);
    cc.on_duplicate_ack(s, una, max, 10000);
    EXPECT_EQ(s.cwnd, 9000u); // inflation
    // Partial ACK (RFC 6582): retransmit next hole, deflate by acked, + MSS.
    EXPECT_TRUE(cc.on_ack(s, 2000, Seq(6001), 10000, 1) == CongestionAction::RetransmitFirst);
    EXPECT_TRUE(s.in_recovery);
    EXPECT_EQ(s.cwnd, 8000u);
    // Full ACK beyond recover: exit, cwnd = min(ssthresh, max(flight,MSS)+MSS).
    EXPECT_TRUE(cc.on_ack(s, 8000, Seq(14001), 8000, 1) == CongestionAction::None);
    EXPECT_FALSE(s.in_recovery);
    EXPECT_EQ(s.cwnd, 2000u);
    // Duplicate ACKs whose ACK does not cover `recover` do not re-enter.
    CongestionState t;
    cc.init(t, 1000, Seq(0));
    cc.on_timeout(t, Seq(20001), 8000);
    EXPECT_EQ(t.cwnd, 1000u);
    EXPECT_EQ(t.ssthresh, 4000u);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(cc.on_duplicate_ack(t, Seq(5001), Seq(20001), 8000) == CongestionAction::None);
    EXPECT_FALSE(t.in_recovery);
    // Congestion avoidance: one MSS per cwnd of data.
    CongestionState u;
    cc.init(u, 1000, Seq(0));
    u.ssthresh = 4000;
    cc.on_ack(u, 2000, Seq(2001), 4000, 1);
    EXPECT_EQ(u.cwnd, 4000u);
    cc.on_ack(u, 2000, Seq(4001), 4000, 1);
    EXPECT_EQ(u.cwnd, 5000u);
}

KTEST(tcp_units, isn_is_keyed_per_tuple_and_advances_with_the_clock) {
    // SipHash-2-4 reference vector: key 00..0f, message 00..0e (15 bytes) -> a129ca6149be45e5.
    SipKey key = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    std::uint8_t msg[15];
    for (int i = 0; i < 15; ++i) msg[i] = static_cast<std::uint8_t>(i);
    EXPECT_EQ(siphash24(key, bytes_of(msg, 15)), 0xa129ca6149be45e5ull);
    EXPECT_EQ(siphash24(key, bytes_of(msg, 0)), 0x726fdb47dd0e0e31ull);
    set_isn_key(key);
    Seq a = isn(0x0a000001, 1000, 0x0a000002, 80, 0);
    Seq b = isn(0x0a000001, 1001, 0x0a000002, 80, 0);
    EXPECT_NE(a.value(), b.value());
    EXPECT_EQ((isn(0x0a000001, 1000, 0x0a000002, 80, 4000) - a), 1000); // M: 4 us ticks
    set_isn_key({0x1234, 0x5678});
    EXPECT_NE(isn(0x0a000001, 1000, 0x0a000002, 80, 0).value(), a.value()); // the key matters
}

KTEST(tcp_units, ranges_merge_advance_and_sack_order) {
    RangeSet r;
    EXPECT_TRUE(r.add(Seq(300), Seq(400)));
    EXPECT_TRUE(r.add(Seq(500), Seq(600)));
    EXPECT_TRUE(r.add(Seq(100), Seq(200)));
    SackBlock b[4];
    ASSERT_EQ(r.blocks(b, 4), 3u);
    EXPECT_TRUE(b[0] == (SackBlock{Seq(100), Seq(200)})); // most recent first (RFC 2018 4)
    EXPECT_TRUE(b[1] == (SackBlock{Seq(500), Seq(600)}));
    EXPECT_TRUE(r.add(Seq(200), Seq(300)));               // bridges two ranges
    EXPECT_EQ(r.count(), 2u);
    ASSERT_EQ(r.blocks(b, 1), 1u);
    EXPECT_TRUE(b[0] == (SackBlock{Seq(100), Seq(400)}));
    EXPECT_TRUE(r.add(Seq(350), Seq(380)));               // duplicate inside: no growth
    EXPECT_EQ(r.covered_bytes(), 400u);
    EXPECT_TRUE(r.contains(Seq(599)));
    EXPECT_FALSE(r.contains(Seq(600)));
    EXPECT_TRUE(r.first_missing(Seq(150)) == Seq(400));
    EXPECT_TRUE(r.next_covered(Seq(400), Seq(1000)) == Seq(500));
    EXPECT_TRUE(r.remove_below(Seq(100)) == Seq(400));    // in-order arrival drains the queue
    EXPECT_EQ(r.count(), 1u);
    EXPECT_TRUE(r.remove_below(Seq(450)) == Seq(450));
    EXPECT_TRUE(r.remove_below(Seq(700)) == Seq(700));
    EXPECT_TRUE(r.empty());
    // Bounded: a range needing a new slot beyond the capacity is refused.
    for (unsigned i = 0; i < RangeSet::kCapacity; ++i) EXPECT_TRUE(r.add(Seq(1000 + 10 * i), Seq(1005 + 10 * i)));
    EXPECT_FALSE(r.add(Seq(5000), Seq(5001)));
    EXPECT_TRUE(r.add(Seq(1005), Seq(1010)));             // merging still works when full
    // Across the wrap.
    r.clear();
    EXPECT_TRUE(r.add(Seq(0xfffffff0), Seq(0x10)));
    EXPECT_TRUE(r.contains(Seq(0)));
    EXPECT_TRUE(r.remove_below(Seq(0xfffffff0)) == Seq(0x10));
}

KTEST(tcp_units, window_offer_goes_by_what_the_field_can_carry) {
    // No scaling: 65,535 bytes at most, however large the ring.
    EXPECT_EQ(representable_window(262144, 0), 65535u);
    EXPECT_EQ(representable_window(1000, 0), 1000u);
    // Scaled: a multiple of the unit, rounded down.
    EXPECT_EQ(representable_window(262144, 3), 262144u);
    EXPECT_EQ(representable_window(1003, 3), 1000u);
    EXPECT_EQ(representable_window(1u << 20, 3), 65535u << 3);
    // The offer grows by at least an MSS (RFC 9293 3.8.6.2.2), or half a
    // small buffer, and is never taken back.
    EXPECT_EQ(window_to_offer(262144, 65535, 0, 1460, 262144), 65535u); // already the most
    EXPECT_EQ(window_to_offer(262144, 65535 - 1460, 0, 1460, 262144), 65535u);
    EXPECT_EQ(window_to_offer(262144, 65535 - 1459, 0, 1460, 262144), 65535u - 1459);
    EXPECT_EQ(window_to_offer(2048, 0, 0, 1460, 2048), 2048u);
    EXPECT_EQ(window_to_offer(1023, 0, 0, 1460, 2048), 0u);
    EXPECT_EQ(window_to_offer(1000, 5000, 0, 1460, 65536), 5000u);
    // Scaled: growth is measured after rounding to the unit.
    EXPECT_EQ(window_to_offer(262144, 100000, 3, 1460, 262144), 262144u);
    EXPECT_EQ(window_to_offer(100000 + 1463, 100000, 3, 1460, 262144), 100000u); // rounds to +1,456
    EXPECT_EQ(window_to_offer(100000 + 1464, 100000, 3, 1460, 262144), 101464u);
}

KTEST(tcp_units, a_read_sends_a_window_update_only_when_the_sender_needs_it) {
    // A 256 KiB ring without scaling, nearly empty after a read: the window
    // is already the most we can offer, so no update (it would be a
    // duplicate ACK; three made SLIRP retransmit for nothing).
    EXPECT_FALSE(window_update_due(262144, 65535, 0, 1460, 262144));
    // More than half the most we can offer still open: no update yet.
    EXPECT_FALSE(window_update_due(262144, 65535 - 1460, 0, 1460, 262144));
    EXPECT_FALSE(window_update_due(262144, 32768, 0, 1460, 262144));
    // At most half left: an update if the window at least doubles.
    EXPECT_TRUE(window_update_due(262144, 32767, 0, 1460, 262144));
    EXPECT_FALSE(window_update_due(60000, 32767, 0, 1460, 262144));
    // A zero window opens with the first MSS (or half a small buffer) read.
    EXPECT_TRUE(window_update_due(262144 - 200000, 0, 0, 1460, 262144));
    EXPECT_FALSE(window_update_due(1459, 0, 0, 1460, 262144));
    EXPECT_TRUE(window_update_due(2048, 0, 0, 1460, 2048));
    EXPECT_FALSE(window_update_due(1023, 0, 0, 1460, 2048));
    // Scaled: the same rule in bytes.
    EXPECT_TRUE(window_update_due(262144, 100000, 3, 1460, 262144));
    EXPECT_FALSE(window_update_due(190000, 100000, 3, 1460, 262144));
}
