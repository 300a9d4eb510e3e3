// Seeded storms of forged segments against live connections while data
// flows both ways over the test wire (wire.hpp).
//
// The first case forges only segments that RFC 9293 and RFC 5961 make
// unacceptable (sequence number outside the window, an ACK of data never
// sent or older than the window, no ACK bit, an RST or SYN that is not
// exactly at RCV.NXT, an old timestamp), with random flags, options and
// payload: none of them may change the byte streams, whose every byte is
// checked for its place, or end a connection. The second forges segments
// in and around the window, which may end or stall a connection (that is
// what an attacker who knows the window can do): the stack must come
// through it, free every connection and packet, and carry new ones. The
// third does the same from a thread of its own through handshakes,
// short exchanges and closes, where SYN-SENT, SYN-RECEIVED and the
// closing states see the forgeries.
#include <atomic>
#include <klog/klog.hpp>
#include <ktest/ktest.hpp>
#include <netdev/packet.hpp>
#include <sched/sched.hpp>
#include <tcp/segment.hpp>
#include <tcp/tcp.hpp>
#include "wire.hpp"

using namespace tessera;
using namespace tessera::tcp;
using namespace tessera::tcp::test_wire;

namespace {

enum class Storm { Unacceptable, Anything };

constinit std::byte g_payload[1600]; // a forged segment's, up to more than an MSS

struct Forger {
    Forger(Storm s, std::uint64_t seed) : storm(s), random(seed) {}
    Storm storm;
    ktest::Random random;
    std::uint16_t client_port = 0;
    unsigned per_call = 6;
    unsigned forged = 0;
    // What the wire's filter saw each end send (client 0, server 1; the
    // filter runs under the TCP lock, on any hart): its latest timestamp,
    // which a forged segment echoes to pass PAWS and reach the later
    // checks, and the highest sequence number it reached, which its peer's
    // RCV.NXT cannot be past (the wire's *_next follow the latest segment,
    // a retransmission too).
    std::atomic<std::uint32_t> last_tsval[2] = {};
    std::atomic<std::uint32_t> highest[2] = {};

    std::uint32_t below(std::uint32_t n) { return n ? static_cast<std::uint32_t>(random.next() % n) : 0; }
    bool one_in(std::uint32_t n) { return below(n) == 0; }
};

// Passes every segment, noting what Forger keeps of it.
Verdict observe(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& f = *static_cast<Forger*>(ctx);
    unsigned end = src == kClient ? 0 : 1;
    if (s.options.has_timestamps) f.last_tsval[end].store(s.options.ts_value, std::memory_order_relaxed);
    Seq reached = s.seq + s.length(), highest(f.highest[end].load(std::memory_order_relaxed));
    if (reached > highest || s.has(flag::kSyn)) f.highest[end].store(reached.value(), std::memory_order_relaxed);
    return Verdict::Pass;
}

// Random options: a timestamp (current, old, or random), SACK blocks
// around the target's send window, MSS and window scale where they mean
// nothing.
void forge_options(Forger& f, Options& o, std::uint32_t peer_tsval, Seq target_next, bool old_timestamp) {
    if (old_timestamp) {
        o.has_timestamps = true;
        o.ts_value = peer_tsval - 0x1000'0000u - f.below(0x1000'0000u);
    } else if (!f.one_in(8)) {
        o.has_timestamps = true;
        o.ts_value = f.one_in(8) ? static_cast<std::uint32_t>(f.random.next()) : peer_tsval;
    }
    o.ts_echo = f.one_in(4) ? static_cast<std::uint32_t>(f.random.next()) : 0;
    if (f.one_in(3)) {
        o.sack_count = static_cast<std::uint8_t>(1 + f.below(o.has_timestamps ? 3 : 4));
        for (unsigned i = 0; i < o.sack_count; ++i) {
            Seq left = target_next - 0x20000 + f.below(0x30000);
            o.sack[i] = {left, f.one_in(8) ? left - f.below(5000) : left + f.below(5000)};
        }
    }
    if (f.one_in(16)) o.mss = static_cast<std::uint16_t>(f.below(0x10000));
    if (f.one_in(16)) {
        o.has_window_scale = true;
        o.window_scale = static_cast<std::uint8_t>(f.below(15));
    }
    // The option area holds 40 bytes.
    while (options_length(o) > kMaxHeaderLength - kHeaderLength) {
        if (o.mss) o.mss = 0;
        else if (o.has_window_scale) o.has_window_scale = false;
        else --o.sack_count;
    }
}

// One forged segment to the client or the server, of a kind the storm
// allows.
void forge_one(Forger& f) {
    bool to_server = f.one_in(2);
    unsigned peer = to_server ? 0 : 1, target = 1 - peer;
    // Where the target's RCV.NXT and its own SND.NXT are: at most, for the
    // forgeries that must be unacceptable; about, for the others.
    bool at_most = f.storm == Storm::Unacceptable;
    Seq expected = at_most ? Seq(f.highest[peer].load(std::memory_order_relaxed))
                           : (to_server ? g_wire.client_next : g_wire.server_next);
    Seq target_next = at_most ? Seq(f.highest[target].load(std::memory_order_relaxed))
                              : (to_server ? g_wire.server_next : g_wire.client_next);
    std::uint32_t peer_tsval = f.last_tsval[peer].load(std::memory_order_relaxed);
    Segment seg;
    seg.source_port = to_server ? f.client_port : kPort;
    seg.destination_port = to_server ? kPort : f.client_port;
    seg.window = static_cast<std::uint16_t>(f.below(0x10000));
    seg.urgent = static_cast<std::uint16_t>(f.below(0x10000));
    constexpr std::uint8_t kAnyFlags = 0x3f;
    constexpr std::uint8_t kDataFlags = flag::kPsh | flag::kFin | flag::kUrg;
    bool old_timestamp = false;
    if (f.storm == Storm::Unacceptable) {
        switch (f.below(7)) {
        case 0: // sequence number far outside the window, either side: any flags
            seg.seq = f.one_in(2) ? expected + 0x4000'0000u + f.below(0x1000'0000u)
                                  : expected - 0x4000'0000u - f.below(0x1000'0000u);
            seg.ack = Seq(static_cast<std::uint32_t>(f.random.next()));
            seg.flags = static_cast<std::uint8_t>(f.below(kAnyFlags + 1));
            break;
        case 1: // acknowledges data never sent (nor sent meanwhile: the ring holds 64 KiB)
            seg.seq = expected;
            seg.ack = target_next + 0x20000 + f.below(0x3000'0000u);
            seg.flags = static_cast<std::uint8_t>(flag::kAck | (f.below(256) & kDataFlags));
            break;
        case 2: // acknowledges data older than any window (RFC 5961 5.2)
            seg.seq = expected;
            seg.ack = target_next - 0x4000'0000u - f.below(0x1000'0000u);
            seg.flags = static_cast<std::uint8_t>(flag::kAck | (f.below(256) & kDataFlags));
            break;
        case 3: // no ACK bit
            seg.seq = expected;
            seg.ack = target_next;
            seg.flags = static_cast<std::uint8_t>(f.below(256) & kDataFlags);
            break;
        case 4: // RST in the window but past RCV.NXT (RFC 5961 3.2)
            seg.seq = expected + 1 + f.below(2000);
            seg.ack = target_next;
            seg.flags = static_cast<std::uint8_t>(flag::kRst | (f.one_in(2) ? flag::kAck : 0));
            break;
        case 5: // SYN on a synchronized connection (RFC 5961 4.2)
            seg.seq = expected + 1 + f.below(2000);
            seg.ack = target_next;
            seg.flags = static_cast<std::uint8_t>(flag::kSyn | (f.below(256) & (flag::kAck | kDataFlags)));
            break;
        default: // an old timestamp (PAWS, RFC 7323 5)
            seg.seq = expected;
            seg.ack = target_next;
            seg.flags = static_cast<std::uint8_t>(flag::kAck | (f.below(256) & kDataFlags));
            old_timestamp = true;
            break;
        }
    } else {
        seg.seq = expected - 2000 + f.below(4000);
        seg.ack = target_next - 0x11000 + f.below(0x12000);
        seg.flags = static_cast<std::uint8_t>(f.one_in(4) ? f.below(kAnyFlags + 1) : flag::kAck | (f.below(256) & kDataFlags));
    }
    forge_options(f, seg.options, peer_tsval, target_next, old_timestamp);
    std::size_t length = f.one_in(3) ? 0 : f.below(f.one_in(8) ? sizeof g_payload : 200);
    for (std::size_t i = 0; i < length; ++i) g_payload[i] = std::byte(f.random.next());
    // Now and then the option area's bytes themselves are damaged (the
    // checksum refilled, so the parser must judge them), but not where the
    // options are what makes the segment unacceptable.
    unsigned damage = !old_timestamp && f.one_in(4) ? 1 + f.below(3) : 0;
    std::size_t options = options_length(seg.options);
    auto from = to_server ? kClient : kServer, to = to_server ? kServer : kClient;
    inject_crafted(seg, {g_payload, length}, from, to, [&](std::byte* out) {
        if (!damage || options == 0) return;
        for (unsigned i = 0; i < damage; ++i) out[kHeaderLength + f.below(std::uint32_t(options))] = std::byte(f.random.next());
        fill_checksum(from.value, to.value, {out, kHeaderLength + options + length});
    });
    ++f.forged;
}

// Buffers a burst leaves the stack: a forged segment takes one from the
// pool the stack answers from (a real flood fills only the receive ring),
// and on several harts the barrage below runs beside the stack.
constexpr std::uint32_t kSpareBuffers = 32;

void forge(void* ctx) {
    auto& f = *static_cast<Forger*>(ctx);
    for (unsigned i = 0, n = 1 + f.below(f.per_call); i < n; ++i) {
        if (netdev::pool_stats().free < kSpareBuffers) return;
        forge_one(f);
    }
}

// A thread forging bursts until told to stop, yielding between them, so
// that forgeries land while the test's thread blocks in connect, accept
// and close.
struct Barrage {
    Forger forger;
    std::atomic<bool> stop{false};
};

void barrage(void* arg) {
    auto& b = *static_cast<Barrage*>(arg);
    while (!b.stop.load(std::memory_order_acquire)) {
        forge(&b.forger);
        sched::yield();
    }
}

// What is left in the table, for a case's failure report.
void log_connections() {
    for_each_connection([](const ConnectionInfo& i, void*) {
        klog::info("tcp storm left {} :{} -> :{} flight {} queued {}/{} rexmt {} persist {} retransmits {} timeouts {}",
                   state_name(i.state), i.local_port, i.remote_port, i.in_flight, i.send_queued, i.receive_queued,
                   i.retransmit_timer, i.persist_timer, i.retransmits, i.timeouts);
    }, nullptr);
}

// Waits up to `ms` for every connection to end; false (listing what is
// left) if one does not.
bool all_connections_end(std::uint64_t ms) {
    time::Ticks until = in_ms(ms);
    while (stats().connections_in_use && time::now() < until) sched::sleep_until(in_ms(20));
    if (!stats().connections_in_use) return true;
    log_connections();
    return false;
}

// A fresh pair from `l` carries `bytes` each way, every byte checked,
// and closes.
bool carries_both_ways(Listener* l, std::uint32_t bytes) {
    Connection *c, *s;
    if (!open_pair(l, c, s)) return false;
    bool ok = transfer(c, s, bytes, in_ms(10'000)) && transfer(s, c, bytes, in_ms(10'000));
    close(c);
    close(s);
    return ok;
}

bool established(Connection* c) {
    auto i = info(c);
    return i.ok() && i.value().state == State::Established;
}

} // namespace

KTEST(tcp, unacceptable_forged_segments_never_change_the_streams) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open_warm(c, s, 20'000));
    Forger f(Storm::Unacceptable, 0x7c9f0e5a11d3ull);
    f.client_port = info(c).value().local_port;
    // Nothing in flight now: each end's last segment reached its SND.NXT.
    f.highest[0].store(g_wire.client_next.value());
    f.highest[1].store(g_wire.server_next.value());
    g_wire.filter_context = &f;
    g_wire.filter = observe;
    // The timestamps to echo: one more exchange with the filter on.
    ASSERT_TRUE(transfer(s, c, 1000, in_ms(5000)));
    const auto before = stats();
    constexpr unsigned kRounds = 8;
    for (unsigned round = 0; round < kRounds; ++round) {
        ASSERT_TRUE(transfer(c, s, 120'000, in_ms(20'000), forge, &f));
        ASSERT_TRUE(transfer(s, c, 120'000, in_ms(20'000), forge, &f));
    }
    g_wire.filter = nullptr;
    const auto after = stats();
    EXPECT_GT(f.forged, 600u);
    EXPECT_TRUE(established(c));
    EXPECT_TRUE(established(s));
    EXPECT_EQ(info(s).value().bytes_in, 20'000u + kRounds * 120'000u);
    EXPECT_EQ(info(c).value().bytes_in, 1'000u + kRounds * 120'000u);
    // They reached the checks meant for them, not the checksum test.
    EXPECT_EQ(after.bad_checksum, before.bad_checksum);
    EXPECT_GT(after.out_of_window, before.out_of_window);
    EXPECT_GT(after.challenge_acks + after.challenge_acks_suppressed,
              before.challenge_acks + before.challenge_acks_suppressed);
    EXPECT_GT(after.paws_drops, before.paws_drops);
    close(c);
    close(s);
}

KTEST(tcp, forged_segments_in_the_window_end_connections_cleanly) {
    std::uint32_t free_at_start;
    Forger f(Storm::Anything, 0x51f0a77e3b2dull);
    unsigned survived = 0;
    {
        Net net;
        free_at_start = net.free_at_start();
        Listener* l = net.listen(8);
        g_wire.filter_context = &f;
        for (unsigned round = 0; round < 8; ++round) {
            g_wire.filter = nullptr;
            Connection *c, *s;
            ASSERT_TRUE(open_pair(l, c, s));
            f.client_port = info(c).value().local_port;
            g_wire.filter = observe;
            // Either direction may stall (a forged ACK took data the peer
            // never got) or end (a reset at RCV.NXT): a short deadline.
            bool ok = transfer(c, s, 60'000, in_ms(1500), forge, &f);
            ok = transfer(s, c, 60'000, in_ms(1500), forge, &f) && ok;
            if (ok && established(c) && established(s)) ++survived;
            abort(c);
            abort(s);
        }
        g_wire.filter = nullptr;
        EXPECT_GT(f.forged, 200u);
        EXPECT_TRUE(carries_both_ways(l, 100'000)); // the stack still carries a connection whole
    }
    klog::info("tcp storm: {} of 8 connections came through", survived);
    EXPECT_EQ(stats().connections_in_use, 0u);
    EXPECT_EQ(netdev::pool_stats().free, free_at_start);
}


KTEST(tcp, forged_segments_through_handshakes_and_closes_leave_nothing_behind) {
    constexpr std::uint32_t kUserTimeoutMs = 2000;
    static Barrage b{Forger(Storm::Anything, 0x2b9d6c01e7f3ull)};
    std::uint32_t free_at_start;
    unsigned connected = 0, accepted = 0;
    {
        Net net;
        free_at_start = net.free_at_start();
        Listener* l = net.listen(8);
        g_wire.filter_context = &b.forger;
        g_wire.filter = observe;
        for (unsigned round = 0; round < 12; ++round) {
            // The client's port is fixed, so the forgeries can hit the
            // connection before connect() returns.
            std::uint16_t port = static_cast<std::uint16_t>(41000 + round);
            b.forger.client_port = port;
            b.stop.store(false, std::memory_order_release);
            auto t = sched::spawn(barrage, &b, {.name = "barrage"});
            ASSERT_OK(t);
            // A user timeout on both ends: forgeries in the window can
            // desynchronize a pair for good (each end's segments then
            // unacceptable to the other), which only the retransmission
            // limit would end, minutes later.
            auto c = dial(kPort, {.source_port = port, .user_timeout_ms = kUserTimeoutMs});
            Connection* s = nullptr;
            if (c.ok()) {
                ++connected;
                if (auto a = accept(l, in_ms(500)); a.ok()) {
                    ++accepted;
                    s = a.value();
                    set_user_timeout(s, kUserTimeoutMs);
                    (void)transfer(c.value(), s, 3000, in_ms(300));
                    close(s);
                }
                close(c.value());
            }
            sched::sleep_until(in_ms(30)); // the closes under fire too
            b.stop.store(true, std::memory_order_release);
            ASSERT_OK(sched::join(t.value()));
        }
        g_wire.filter = nullptr;
        // Every connection ends by itself: its close completes, a reset
        // ends it, or its user timeout does.
        EXPECT_TRUE(all_connections_end(20'000));
        EXPECT_GT(b.forger.forged, 200u);
        EXPECT_TRUE(carries_both_ways(l, 50'000));
    }
    klog::info("tcp storm: {} forged, {} of 12 connects succeeded, {} accepted", b.forger.forged, connected, accepted);
    EXPECT_EQ(stats().connections_in_use, 0u);
    EXPECT_EQ(netdev::pool_stats().free, free_at_start);
}

namespace {
constexpr ipv4::Address kAttackers = ipv4::Address::from(10, 9, 1, 0); // a /24 of forged sources

// Drops (and counts) what the listener sends to the forged sources: no
// engine plays them, so their half of each handshake is the test's.
constinit unsigned g_to_attackers = 0;
constinit std::uint32_t g_attacker_ts = 0; // the TSval of the last one, for the forged ACK to echo
Verdict drop_to_attackers(Segment& s, ipv4::Address, ipv4::Address dst, void*) {
    if ((dst.value & 0xffffff00u) != kAttackers.value) return Verdict::Pass;
    ++g_to_attackers;
    g_attacker_ts = s.options.has_timestamps ? s.options.ts_value : 0;
    return Verdict::Drop;
}

// Accepts whatever the listener has queued, sends each a little, aborts it.
unsigned drain_accepted(Listener* l, Forger& f) {
    unsigned n = 0;
    for (auto a = try_accept(l); a.ok(); a = try_accept(l), ++n) {
        fill_pattern({g_out, 3000}, 0);
        (void)try_send(a.value(), {g_out, 1 + f.below(3000)});
        abort(a.value());
    }
    return n;
}
} // namespace

// SYNs from 250 forged sources with random options (MSS absent, 0, tiny
// or random; any window-scale shift; SACK-permitted; random timestamps;
// damaged option bytes), random extra flags and data. One in eight is
// abandoned half-open, which soon fills the SYN queue; of the rest three
// in four are completed by a forged ACK with a random window (through a
// SYN cookie once the queue is full), the others reset. Every accepted
// connection is made to send before it is aborted. The per-source and
// SYN-queue limits hold, nothing panics (a tiny MSS once did), every
// slot and buffer comes back once the listener closes, and a real pair
// then connects.
KTEST(tcp, a_storm_of_forged_syns_leaves_the_listener_serving) {
    Forger f(Storm::Anything, 0x6d1f00c5a9e2ull);
    std::uint32_t free_at_start;
    unsigned completed = 0, accepted = 0, abandoned = 0;
    const auto before = stats();
    {
        Net net;
        free_at_start = net.free_at_start();
        Listener* l = net.listen(8);
        g_to_attackers = 0;
        g_wire.filter = drop_to_attackers;
        for (unsigned i = 0; i < 600; ++i) {
            ipv4::Address from{kAttackers.value | (1 + f.below(250))};
            Segment syn;
            syn.source_port = static_cast<std::uint16_t>(1024 + f.below(60000));
            syn.destination_port = kPort;
            syn.seq = Seq(static_cast<std::uint32_t>(f.random.next()));
            syn.flags = static_cast<std::uint8_t>(flag::kSyn | (f.below(256) & (flag::kPsh | flag::kFin | flag::kUrg | 0xc0)));
            syn.window = static_cast<std::uint16_t>(f.below(0x10000));
            Options& o = syn.options;
            switch (f.below(4)) {
            case 0: o.mss = 0; break;
            case 1: o.mss = static_cast<std::uint16_t>(f.below(80)); break;
            default: o.mss = static_cast<std::uint16_t>(f.below(0x10000)); break;
            }
            if (f.one_in(2)) {
                o.has_window_scale = true;
                o.window_scale = static_cast<std::uint8_t>(f.below(256));
            }
            o.sack_permitted = f.one_in(2);
            if (f.one_in(2)) {
                o.has_timestamps = true;
                o.ts_value = static_cast<std::uint32_t>(f.random.next());
            }
            std::size_t length = f.one_in(8) ? f.below(200) : 0;
            for (std::size_t k = 0; k < length; ++k) g_payload[k] = std::byte(f.random.next());
            unsigned damage = f.one_in(8) ? 1 + f.below(2) : 0;
            std::size_t options = options_length(o);
            inject_crafted(syn, {g_payload, length}, from, kServer, [&](std::byte* out) {
                if (!damage || options == 0) return;
                for (unsigned k = 0; k < damage; ++k) out[kHeaderLength + f.below(std::uint32_t(options))] = std::byte(f.random.next());
                fill_checksum(from.value, kServer.value, {out, kHeaderLength + options + length});
            });
            // The handshake's last ACK (the SYN-ACK, if there was one, was
            // the wire's last segment from the server), a reset that frees
            // the half-open slot, or nothing: one in eight is abandoned, so
            // the SYN queue fills and later handshakes go through SYN
            // cookies (the flood case proper is
            // syn_flood_beyond_per_source_limit_is_counted).
            Segment last;
            last.source_port = syn.source_port;
            last.destination_port = kPort;
            last.seq = syn.seq + 1;
            if (f.one_in(8)) {
                ++abandoned;
            } else if (!f.one_in(4)) {
                last.ack = g_wire.server_next;
                last.flags = flag::kAck;
                last.window = static_cast<std::uint16_t>(f.below(0x10000));
                last.options.has_timestamps = o.has_timestamps;
                last.options.ts_value = o.ts_value + 1;
                last.options.ts_echo = g_attacker_ts;
                ++completed;
                inject_crafted(last, {}, from, kServer, [](std::byte*) {});
            } else {
                last.flags = flag::kRst;
                inject_crafted(last, {}, from, kServer, [](std::byte*) {});
            }
            if (i % 4 == 3) accepted += drain_accepted(l, f); // the backlog is 8
        }
        accepted += drain_accepted(l, f);
        g_wire.filter = nullptr;
        EXPECT_GT(g_to_attackers, 300u);
        const auto after = stats();
        klog::info("tcp storm: queue_full {} cookies sent {} accepted {} rejected {} per_source {} accept_full {} "
                   "malformed {} table_full {} resets_sent {}",
                   after.syn_queue_full - before.syn_queue_full, after.syn_cookies_sent - before.syn_cookies_sent,
                   after.syn_cookies_accepted - before.syn_cookies_accepted,
                   after.syn_cookies_rejected - before.syn_cookies_rejected, after.syn_per_source - before.syn_per_source,
                   after.accept_queue_full - before.accept_queue_full, after.malformed - before.malformed,
                   after.table_full - before.table_full, after.resets_sent - before.resets_sent);
        EXPECT_GT(after.malformed, before.malformed);
#ifdef CONFIG_TCP_SYN_COOKIES
        // The abandoned handshakes filled the queue: cookies answered
        // after that, and most completed handshakes went through one.
        EXPECT_GT(accepted, completed / 2);
        EXPECT_GT(after.syn_cookies_accepted - before.syn_cookies_accepted, completed / 2);
#else
        // Without cookies the full queue drops SYNs: fewer get in.
        EXPECT_GT(accepted, 0u);
        EXPECT_GT(after.syn_queue_full, before.syn_queue_full);
#endif
        EXPECT_TRUE(carries_both_ways(l, 20'000)); // a real client still gets in
    }
    // The listener's close freed the half-open connections it still held.
    EXPECT_TRUE(all_connections_end(5000));
    klog::info("tcp storm: {} SYNs completed, {} abandoned, {} accepted", completed, abandoned, accepted);
    EXPECT_EQ(netdev::pool_stats().free, free_at_start);
}
