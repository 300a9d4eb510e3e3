// The TCP engine end to end, both ends in this image, over the test wire
// (wire.hpp): handshakes, data, loss, reordering, windows, timers, RFC
// 5961 checks, ICMP, malformed input and the table's limits.
#include <arch/spinlock.hpp>
#include <base/endian.hpp>
#include <cstring>
#include <string_view>
#include <ktest/ktest.hpp>
#include <netdev/interface.hpp>
#include <netdev/packet.hpp>
#include <netdev/pair.hpp>
#include <sched/sched.hpp>
#include <tcp/rtt.hpp>
#include <tcp/segment.hpp>
#include <tcp/tcp.hpp>
#include "wire.hpp"

using namespace tessera;
using namespace tessera::tcp;
using namespace tessera::tcp::test_wire;
using base::Error;

KTEST(tcp, handshake_negotiates_every_option) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto ci = info(c), si = info(s);
    ASSERT_OK(ci);
    ASSERT_OK(si);
    EXPECT_EQ(ci.value().state, State::Established);
    EXPECT_EQ(si.value().state, State::Established);
    EXPECT_TRUE(ci.value().timestamps);
    EXPECT_TRUE(si.value().timestamps);
    EXPECT_TRUE(ci.value().sack);
    EXPECT_TRUE(si.value().sack);
    EXPECT_EQ(ci.value().receive_scale, 1u); // 64 KiB buffer needs a shift of 1
    EXPECT_EQ(si.value().send_scale, 1u);
    EXPECT_GT(ci.value().mss, 0u);
    EXPECT_EQ(ci.value().remote_port, kPort);
    EXPECT_EQ(si.value().local_port, kPort);
    EXPECT_TRUE(si.value().remote_address == kClient);
    EXPECT_EQ(stats().bad_checksum, 0u);
    abort(c);
    abort(s);
}

KTEST(tcp, data_both_ways_with_content_checks) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto before = stats();
    // In-order segments are copied into the receive ring while their
    // checksum is summed, in two pieces where the ring wraps: odd sends
    // first put the wrap at odd offsets, where the second piece's byte
    // pairs are swapped.
    for (std::uint32_t odd : {1u, 3u, 777u})
        EXPECT_TRUE(transfer(c, s, odd, in_ms(5000)));
    EXPECT_TRUE(transfer(c, s, 300'000, in_ms(20000)));
    EXPECT_TRUE(transfer(s, c, 300'000, in_ms(20000)));
    auto after = stats();
    EXPECT_EQ(after.bad_checksum, before.bad_checksum); // every segment verified
    EXPECT_GT(after.predicted - before.predicted, 200u); // most of 600 KB in ~1.4 KB segments
    EXPECT_EQ(info(s).value().bytes_in, 1u + 3u + 777u + 300'000u);
    EXPECT_EQ(after.retransmits, before.retransmits);
    auto ci = info(c);
    ASSERT_OK(ci);
    EXPECT_EQ(ci.value().bytes_out, 1u + 3u + 777u + 300'000u);
    EXPECT_EQ(ci.value().bytes_in, 300'000u);
    EXPECT_GT(ci.value().srtt_us, 0u);
    close(c);
    close(s);
}

namespace {
struct DropNth {
    unsigned data_seen = 0;
    unsigned drop_at;   // the n-th data segment client->server
    Verdict verdict;
    unsigned hits = 0;
};
Verdict drop_nth(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& d = *static_cast<DropNth*>(ctx);
    if (src != kClient || s.payload.empty()) return Verdict::Pass;
    if (++d.data_seen == d.drop_at) {
        ++d.hits;
        return d.verdict;
    }
    return Verdict::Pass;
}

// Four segments' worth client to server in one send through `filter`,
// which holds the second back (drop_nth with {0, 2, Verdict::Hold} does):
// the third and fourth arrive first, and the server keeps them out of
// order until release_held(). Returns the client's MSS.
std::uint32_t send_with_a_hole(Connection* c, Verdict (*filter)(Segment&, ipv4::Address, ipv4::Address, void*),
                               void* context) {
    g_wire.filter_context = context;
    g_wire.filter = filter;
    auto mss = info(c).value().mss;
    fill_pattern({g_out, 4 * mss}, 0);
    VERIFY(send(c, {g_out, 4 * mss}, in_ms(1000)).ok());
    netdev::flush();
    return mss;
}
} // namespace

KTEST(tcp, out_of_order_segments_are_reassembled_and_sacked) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    DropNth d{0, 2, Verdict::Hold};
    auto mss = send_with_a_hole(c, drop_nth, &d);
    EXPECT_GT(info(s).value().out_of_order, 0u);
    g_wire.filter = nullptr;
    release_held();
    std::uint32_t got = 0;
    while (got < 4 * mss) {
        auto r = receive(s, {g_in + got, 4 * mss - got}, in_ms(2000));
        ASSERT_OK(r);
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_TRUE(check_pattern({g_in, got}, 0));
    // A duplicate of old data is acknowledged and ignored.
    abort(c);
    abort(s);
}

KTEST(tcp, a_fin_ahead_of_a_hole_is_taken_when_the_hole_fills) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    DropNth d{0, 2, Verdict::Hold};
    auto mss = send_with_a_hole(c, drop_nth, &d);
    ASSERT_OK(shutdown(c)); // the FIN follows the third and fourth segments past the hole
    netdev::flush();
    EXPECT_EQ(d.hits, 1u);
    EXPECT_EQ(info(s).value().state, State::Established); // data before the FIN is missing
    g_wire.filter = nullptr;
    release_held();
    netdev::flush();
    // Taken with the segment that filled the hole, not when the client's
    // timer sends the FIN again.
    EXPECT_EQ(info(s).value().state, State::CloseWait);
    std::uint32_t got = 0;
    for (;;) {
        auto r = receive(s, {g_in + got, sizeof g_in - got}, in_ms(2000));
        ASSERT_OK(r);
        if (r.value() == 0) break;
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_EQ(got, 4 * mss);
    EXPECT_TRUE(check_pattern({g_in, got}, 0));
    abort(c);
    abort(s);
}

KTEST(tcp, lost_segment_triggers_fast_retransmit) {
    Net net;
    Connection *c, *s;
    // Grow cwnd first so enough segments follow the loss for 3 dup ACKs.
    ASSERT_TRUE(net.open_warm(c, s, 100'000));
    DropNth d{0, 3, Verdict::Drop};
    g_wire.filter_context = &d;
    g_wire.filter = drop_nth;
    auto before = info(c).value();
    ASSERT_TRUE(transfer(c, s, 200'000, in_ms(10000)));
    auto after = info(c).value();
    EXPECT_EQ(d.hits, 1u);
    EXPECT_GT(after.fast_retransmits, before.fast_retransmits);
    EXPECT_GE(after.dup_acks, before.dup_acks + 3);
    EXPECT_EQ(after.timeouts, before.timeouts); // recovered without the timer
    EXPECT_LT(after.ssthresh, 0xffffffffu);
    g_wire.filter = nullptr;
    close(c);
    close(s);
}

namespace {
struct QueueFull {
    bool on = true;
    unsigned refused = 0;
};
Verdict queue_full(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& q = *static_cast<QueueFull*>(ctx);
    if (!q.on || src != kClient || s.payload.empty()) return Verdict::Pass;
    ++q.refused;
    return Verdict::Full;
}
// A stand-in for a driver whose queue drained: transmit_space() on an
// interface marked full schedules every add_transmit_ready() item (tcp's).
base::Result<void> refuse(netdev::Interface&, netdev::PacketRef) { return base::Error::Overloaded; }
constexpr netdev::DriverOps kDrainedOps = {refuse};
netdev::Interface g_drained("drained0", kDrainedOps, nullptr);
} // namespace

KTEST(tcp, full_driver_queue_holds_segments_back_until_it_drains) {
    // Backpressure: a segment the driver's full queue refuses is not a
    // loss. Nothing is accounted as sent, no retransmission timer runs on
    // it, and the data goes out, once, when the queue has room again.
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    QueueFull q;
    g_wire.filter_context = &q;
    g_wire.filter = queue_full;
    auto before = stats();
    auto info_before = info(c).value();
    fill_pattern({g_out, 6000}, 0);
    auto sent = try_send(c, {g_out, 6000});
    ASSERT_OK(sent);
    EXPECT_EQ(sent.value(), 6000u);
    sched::sleep_for_ns(600'000'000); // past the minimum RTO: no timer may fire on held data
    auto held = info(c).value();
    EXPECT_GE(q.refused, 1u);
    EXPECT_EQ(held.in_flight, 0u);
    EXPECT_EQ(held.send_queued, 6000u);
    EXPECT_FALSE(held.retransmit_timer);
    EXPECT_EQ(held.timeouts, info_before.timeouts);
    // Nor a window probe: the window is open, the queue is what is full.
    EXPECT_EQ(held.zero_window_probes, info_before.zero_window_probes);
    EXPECT_EQ(stats().held_back - before.held_back, q.refused);
    EXPECT_EQ(stats().send_errors, before.send_errors);
    // The queue drains.
    q.on = false;
    g_drained.note_transmit_full();
    g_drained.transmit_space();
    std::uint32_t received = 0;
    while (received < 6000) {
        auto r = receive(s, {g_in, sizeof g_in}, in_ms(5000));
        ASSERT_OK(r);
        ASSERT_GT(r.value(), 0u);
        EXPECT_TRUE(check_pattern({g_in, r.value()}, received));
        received += static_cast<std::uint32_t>(r.value());
    }
    auto after = info(c).value();
    EXPECT_EQ(after.retransmits, info_before.retransmits); // sent once, when there was room
    EXPECT_EQ(after.timeouts, info_before.timeouts);
    g_wire.filter = nullptr;
    close(c);
    close(s);
}

namespace {
// The ACK numbers of the server's pure ACKs (no payload, no SYN/FIN/RST).
struct AckLog {
    std::uint32_t acks[64];
    unsigned count = 0;
};
Verdict log_server_acks(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& log = *static_cast<AckLog*>(ctx);
    if (src == kServer && s.payload.empty() && s.flags == flag::kAck && log.count < 64)
        log.acks[log.count++] = s.ack.value();
    return Verdict::Pass;
}
constinit std::byte g_burst[64 * 1024];

// A burst of `segments` full-sized segments from c in one send, so the
// server handles them as one receive batch; its pure ACKs are logged.
bool burst(Connection* c, Connection* s, unsigned segments, AckLog& log, std::uint32_t& start) {
    std::uint32_t mss = info(c).value().mss;
    std::uint32_t n = segments * mss;
    if (n > sizeof g_burst) return false;
    start = g_wire.client_next.value();
    fill_pattern({g_burst, n}, 0);
    g_wire.filter_context = &log;
    g_wire.filter = log_server_acks;
    auto sent = try_send(c, {g_burst, n});
    // Until the server has acknowledged it all (the batch's last ACK is
    // work scheduled from the batch: flush() may return before it).
    auto acked = [&] { return log.count && log.acks[log.count - 1] == start + n; };
    for (time::Ticks until = in_ms(5000); !acked() && time::now() < until;) sched::sleep_for_ns(1'000'000);
    g_wire.filter = nullptr;
    if (!sent.ok() || sent.value() != n || !acked()) return false;
    for (std::uint32_t got = 0; got < n;) {
        auto r = receive(s, {g_burst, sizeof g_burst}, in_ms(5000));
        if (!r.ok() || r.value() == 0 || !check_pattern({g_burst, r.value()}, got)) return false;
        got += static_cast<std::uint32_t>(r.value());
    }
    return true;
}
} // namespace

KTEST(tcp, a_receive_batch_is_acknowledged_once_at_its_end) {
    // Stretch ACKs (TCP_ACK_STRETCH): in-order segments handled in one
    // batch (ten, or one fewer than the stretch) get one ACK for all of
    // them, sent when the batch ends, not by the delayed-ACK timer.
    constexpr unsigned kSegments = CONFIG_TCP_ACK_STRETCH > 11 ? 10 : CONFIG_TCP_ACK_STRETCH - 1;
    if constexpr (kSegments < 2) {
        ktest_context.skip("TCP_ACK_STRETCH is 2: every second segment is acknowledged at once");
        return;
    }
    if (sched::online_harts() > 1) {
        // The network thread, on another hart, starts on the first segment
        // while this one still sends the rest: where a batch ends follows
        // the harts' timing (a 4-hart run once split it after one segment).
        ktest_context.skip("one batch only on one hart");
        return;
    }
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open_warm(c, s, 100'000)); // a congestion window for ten at once
    netdev::flush();
    auto before = stats();
    AckLog log;
    std::uint32_t start = 0;
    EXPECT_TRUE(burst(c, s, kSegments, log, start));
    std::uint32_t end = start + kSegments * info(c).value().mss;
    EXPECT_EQ(log.count, 1u);
    EXPECT_EQ(log.acks[0], end); // the one ACK covers the whole batch
    EXPECT_EQ(stats().batch_acks - before.batch_acks, 1u);
    EXPECT_EQ(stats().delayed_acks, before.delayed_acks);
    close(c);
    close(s);
}

KTEST(tcp, a_long_batch_is_acknowledged_every_stretch_segments) {
    // Past TCP_ACK_STRETCH segments (or half the window offered) the ACK
    // goes at once, so a sender is never starved for ACKs by one batch.
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open_warm(c, s, 200'000));
    netdev::flush();
    std::uint32_t mss = info(c).value().mss;
    unsigned segments = std::min<unsigned>(40, sizeof g_burst / mss);
    AckLog log;
    std::uint32_t start = 0;
    EXPECT_TRUE(burst(c, s, segments, log, start));
    EXPECT_GE(log.count, (segments + CONFIG_TCP_ACK_STRETCH - 1) / CONFIG_TCP_ACK_STRETCH);
    std::uint32_t previous = start;
    for (unsigned i = 0; i < log.count; ++i) {
        EXPECT_LE(log.acks[i] - previous, CONFIG_TCP_ACK_STRETCH * mss);
        previous = log.acks[i];
    }
    EXPECT_EQ(previous, start + segments * mss);
    close(c);
    close(s);
}

namespace {
// Pure ACKs from the client, crafted and handed to the server in one run
// of the network thread (a receive batch): `acks` of them, the first
// acknowledging `first`, each one `step` bytes on; with `then_duplicate`
// the last is sent twice.
struct AckRun {
    std::uint16_t client_port = 0;
    Seq seq, first;
    std::uint32_t step = 0;
    unsigned acks = 0;
    bool then_duplicate = false;
    bool timestamps = false;
};
constinit AckRun g_ack_run;
void send_ack_run(void*) {
    const AckRun& r = g_ack_run;
    Segment seg;
    seg.source_port = r.client_port;
    seg.destination_port = kPort;
    seg.seq = r.seq;
    seg.flags = flag::kAck;
    seg.window = 0xffff;
    seg.options.has_timestamps = r.timestamps;
    // The client's clock is the server's: never older than what it echoes.
    seg.options.ts_value = static_cast<std::uint32_t>(time::to_ns(time::now()) / 1'000'000);
    for (unsigned i = 0; i < r.acks + (r.then_duplicate ? 1 : 0); ++i) {
        seg.ack = r.first + r.step * std::min(i, r.acks - 1);
        inject_crafted(seg, {}, kClient, kServer, [](std::byte*) {});
    }
}
Verdict drop_client(Segment&, ipv4::Address src, ipv4::Address, void*) {
    return src == kClient ? Verdict::Drop : Verdict::Pass;
}

// The server sends `segments` full segments (its window must allow them)
// that the client takes but whose ACKs are lost; returns the first
// unacknowledged sequence number.
Seq unacknowledged_burst(Connection* c, Connection* s, unsigned segments) {
    std::uint32_t mss = info(s).value().mss;
    g_wire.filter = drop_client;
    fill_pattern({g_burst, segments * mss}, 0);
    VERIFY(try_send(s, {g_burst, segments * mss}).ok());
    for (std::uint32_t got = 0; got < segments * mss;) {
        auto r = receive(c, {g_burst, sizeof g_burst}, in_ms(5000));
        VERIFY(r.ok() && r.value() > 0);
        got += static_cast<std::uint32_t>(r.value());
    }
    netdev::flush();
    return g_wire.server_next - info(s).value().in_flight;
}

// One merged-ACK case: a pair whose server has sent `segments` the client
// took without its ACKs getting through (after `warm` bytes grew the
// server's window), then a run of `acks` advancing ACKs (and a duplicate
// of the last) handed to the server in one batch. The server's state and
// the engine's counters before and after the run.
struct AckRunCase {
    ConnectionInfo before{}, after{};
    Stats stats_before{}, stats_after{};
    std::uint32_t mss = 0;
};
// One attempt: what went wrong, or empty. Retried if the server's
// retransmission timer fired before the ACKs were handed over (a host
// slow enough to stall the guest for the minimum RTO): the case is meant
// to run with no timer in the way.
constexpr std::string_view kRetry = "the retransmission timer fired during the set-up, three times";
std::string_view try_ack_case(unsigned segments, unsigned acks, bool then_duplicate, std::uint32_t warm,
                              AckRunCase& out) {
    Net net;
    Connection *c, *s;
    if (!net.open(c, s)) return "the pair did not connect";
    if (!transfer(s, c, warm, in_ms(20000))) return "the warm-up transfer failed";
    netdev::flush();
    // The client's last ACK of the warm-up may still wait for its
    // delayed-ACK timer (with a second hart the reader and the network
    // thread interleave differently): the burst below must start with
    // nothing in flight, or the dropped ACKs would leave warm-up bytes
    // in flight with it.
    for (time::Ticks until = in_ms(2000); info(s).value().in_flight;) {
        if (time::now() >= until) return "the warm-up was never all acknowledged";
        sched::sleep_for_ns(1'000'000);
    }
    out.mss = info(s).value().mss;
    if (segments * out.mss > sizeof g_burst || segments * out.mss > CONFIG_TCP_SEND_BUFFER) return "too many segments";
    const std::uint64_t timeouts = info(s).value().timeouts;
    Seq una = unacknowledged_burst(c, s, segments);
    out.before = info(s).value();
    const bool timer_fired = out.before.timeouts != timeouts;
    if (!timer_fired) {
        out.stats_before = stats();
        g_ack_run = {info(c).value().local_port, g_wire.client_next, una + out.mss, out.mss, acks, then_duplicate,
                     out.before.timestamps};
        netdev::Work run{send_ack_run, nullptr};
        netdev::schedule(run);
        netdev::flush();
        out.after = info(s).value();
        out.stats_after = stats();
    }
    g_wire.filter = nullptr;
    close(c);
    close(s);
    if (timer_fired) return kRetry;
    return out.before.in_flight == segments * out.mss ? std::string_view{} : "the burst was not all in flight";
}
// Empty if the case ran; otherwise why not (a failed assertion prints it).
std::string_view run_ack_case(unsigned segments, unsigned acks, bool then_duplicate, std::uint32_t warm,
                              AckRunCase& out) {
    std::string_view why = kRetry;
    for (unsigned attempt = 0; attempt < 3 && why == kRetry; ++attempt)
        why = try_ack_case(segments, acks, then_duplicate, warm, out);
    return why;
}
} // namespace

KTEST(tcp, a_batch_of_pure_acks_is_applied_once_as_the_last) {
    // TCP_ACK_MERGE: SLIRP acknowledges every segment. Six advancing pure
    // ACKs handled in one batch are applied as the last, once, at the
    // batch's end: the same state as six applied one by one, slow start
    // credited for six.
    if constexpr (!kAckMerge) {
        ktest_context.skip("TCP_ACK_MERGE is off");
        return;
    }
    constexpr unsigned kAcks = 6;
    AckRunCase r;
    ASSERT_EQ(run_ack_case(kAcks, kAcks, false, 100'000, r), std::string_view{});
    EXPECT_EQ(r.stats_after.acks_merged - r.stats_before.acks_merged, kAcks - 1);
    EXPECT_EQ(r.after.segments_in - r.before.segments_in, kAcks);
    EXPECT_EQ(r.after.in_flight, 0u);
    EXPECT_EQ(r.after.bytes_out - r.before.bytes_out, kAcks * r.mss);
    EXPECT_FALSE(r.after.retransmit_timer);
    ASSERT_LT(r.before.cwnd, r.before.ssthresh); // slow start: no loss on this wire
    EXPECT_EQ(r.after.cwnd, r.before.cwnd + kAcks * r.mss);
}

KTEST(tcp, a_long_run_of_pure_acks_is_applied_every_merge_limit) {
    // A batch lasts while frames keep coming: a held ACK is applied once
    // it stands for kAckMergeLimit, and the next ones are held anew.
    if constexpr (!kAckMerge) {
        ktest_context.skip("TCP_ACK_MERGE is off");
        return;
    }
    constexpr unsigned kAcks = kAckMergeLimit + 4;
    AckRunCase r;
    // 800 kB first: the client's stretched ACKs grow the server's window
    // by one segment each.
    ASSERT_EQ(run_ack_case(kAcks, kAcks, false, 800'000, r), std::string_view{});
    EXPECT_EQ(r.stats_after.acks_merged - r.stats_before.acks_merged, kAcks - 2); // at the limit and at the end
    EXPECT_EQ(r.after.segments_in - r.before.segments_in, kAcks);
    EXPECT_EQ(r.after.in_flight, 0u);
    ASSERT_LT(r.before.cwnd, r.before.ssthresh);
    EXPECT_EQ(r.after.cwnd, r.before.cwnd + kAcks * r.mss);
}

KTEST(tcp, a_held_ack_is_applied_before_the_next_segment_that_cannot_merge) {
    // A duplicate of the held ACK cannot take its place: the held one is
    // applied first, then the duplicate counts as one (the order of
    // arrival is kept, and fast retransmit sees every duplicate).
    if constexpr (!kAckMerge) {
        ktest_context.skip("TCP_ACK_MERGE is off");
        return;
    }
    AckRunCase r;
    ASSERT_EQ(run_ack_case(4, 2, true, 100'000, r), std::string_view{});
    EXPECT_EQ(r.stats_after.acks_merged - r.stats_before.acks_merged, 1u);
    EXPECT_EQ(r.after.dup_acks - r.before.dup_acks, 1u);
    EXPECT_EQ(r.after.in_flight, 2 * r.mss);
    EXPECT_EQ(r.after.segments_in - r.before.segments_in, 3u);
}

namespace {
// The queue is full for one segment and has room again at once: the
// refusal is recorded under the TCP lock, which resume_held() has to take,
// so the resume always comes after it, as with a real driver.
void refuse_once_then_drain(unsigned& held) {
    ++held;
    g_drained.note_transmit_full();
    g_drained.transmit_space();
}
Verdict hold_first_syn(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& held = *static_cast<unsigned*>(ctx);
    if (src != kClient || !(s.flags & flag::kSyn) || held) return Verdict::Pass;
    refuse_once_then_drain(held);
    return Verdict::Full;
}
// Loses the third data segment, then refuses its fast retransmission once.
struct LoseThenHold {
    unsigned data_seen = 0;
    bool lost = false;
    Seq lost_seq{0};
    unsigned held = 0;
};
Verdict lose_then_hold(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    auto& l = *static_cast<LoseThenHold*>(ctx);
    if (src != kClient || s.payload.empty()) return Verdict::Pass;
    if (!l.lost && ++l.data_seen == 3) {
        l.lost = true;
        l.lost_seq = s.seq;
        return Verdict::Drop;
    }
    if (l.lost && s.seq == l.lost_seq && !l.held) {
        refuse_once_then_drain(l.held);
        return Verdict::Full;
    }
    return Verdict::Pass;
}
} // namespace

KTEST(tcp, a_held_syn_goes_out_when_the_queue_drains) {
    // Not after the 1 s initial RTO: the SYN held back is the first thing
    // the connection sends once there is room.
    Net net;
    Listener* l = net.listen();
    unsigned held = 0;
    g_wire.filter_context = &held;
    g_wire.filter = hold_first_syn;
    auto before = stats();
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    g_wire.filter = nullptr;
    EXPECT_EQ(held, 1u);
    EXPECT_EQ(stats().held_back - before.held_back, 1u);
    auto i = info(c).value();
    EXPECT_EQ(i.timeouts, 0u);
    EXPECT_EQ(i.retransmits, 0u);
    close(c);
    close(s);
}

KTEST(tcp, a_held_fast_retransmission_goes_out_when_the_queue_drains) {
    // The hole is filled on resume, not left to the retransmission timer.
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open_warm(c, s, 100'000)); // cwnd large enough for 3 dup ACKs
    LoseThenHold l;
    g_wire.filter_context = &l;
    g_wire.filter = lose_then_hold;
    auto before = info(c).value();
    ASSERT_TRUE(transfer(c, s, 200'000, in_ms(10000)));
    g_wire.filter = nullptr;
    auto after = info(c).value();
    EXPECT_TRUE(l.lost);
    EXPECT_EQ(l.held, 1u);
    EXPECT_GT(after.fast_retransmits, before.fast_retransmits);
    EXPECT_GE(after.retransmits, before.retransmits + 1); // counted once it went
    EXPECT_EQ(after.timeouts, before.timeouts);
    close(c);
    close(s);
}

namespace {
struct Blackhole {
    bool on = true;
};
Verdict blackhole(Segment&, ipv4::Address src, ipv4::Address, void* ctx) {
    return static_cast<Blackhole*>(ctx)->on && src == kClient ? Verdict::Drop : Verdict::Pass;
}
} // namespace

KTEST(tcp, retransmission_timeout_backs_off) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    Blackhole b;
    g_wire.filter_context = &b;
    g_wire.filter = blackhole;
    std::uint32_t rto0 = info(c).value().rto_us;
    fill_pattern({g_out, 100}, 0);
    ASSERT_OK(send(c, {g_out, 100}, in_ms(100)));
    // Wait for three expiries: each doubles the RTO (RFC 6298 5.5).
    time::Ticks until = in_ms(20000);
    while (info(c).value().timeouts < 3 && time::now() < until) sched::sleep_until(in_ms(20));
    auto i = info(c).value();
    EXPECT_GE(i.timeouts, 3u);
    EXPECT_GE(i.rto_us, rto0 * 8);
    EXPECT_EQ(i.cwnd, i.mss); // loss window
    b.on = false;
    auto r = receive(s, g_in, in_ms(20000));
    ASSERT_OK(r);
    EXPECT_EQ(r.value(), 100u);
    EXPECT_TRUE(check_pattern({g_in, 100}, 0));
    g_wire.filter = nullptr;
    close(c);
    close(s);
}

namespace {
// Fills the server's receive window from the client while the server
// reads nothing; returns what was queued.
std::uint32_t close_the_window(Connection* c) {
    std::uint32_t sent = 0;
    time::Ticks until = in_ms(10000);
    while (time::now() < until) {
        fill_pattern({g_out, sizeof g_out}, sent);
        auto r = send(c, {g_out, sizeof g_out}, in_ms(200));
        if (!r.ok()) break;
        sent += static_cast<std::uint32_t>(r.value());
        if (sent >= 96 * 1024 + 32 * 1024) break;
    }
    netdev::flush();
    return sent;
}
} // namespace

KTEST(tcp, zero_window_is_probed_until_it_opens) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    // The server does not read: fill its receive buffer and then some.
    std::uint32_t sent = close_the_window(c);
    // Closed, or too small to use (sender SWS avoidance holds back a
    // sliver smaller than an MSS): either way only probes go out.
    EXPECT_LT(info(c).value().send_window, info(c).value().mss);
    time::Ticks until = in_ms(20000);
    while (info(c).value().zero_window_probes < 2 && time::now() < until) sched::sleep_until(in_ms(20));
    EXPECT_GE(info(c).value().zero_window_probes, 2u);
    // Now read everything: the window opens and the rest flows.
    std::uint32_t got = 0;
    while (got < sent) {
        auto r = receive(s, g_in, in_ms(20000));
        ASSERT_OK(r);
        ASSERT_TRUE(check_pattern({g_in, r.value()}, got));
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_EQ(got, sent);
    close(c);
    close(s);
}

namespace {
// The server's window is closed and then the client's probes stop
// arriving: the client must give up (receive() gets TimedOut) before
// `deadline_ms`. Returns the window probes it sent, all told.
std::uint64_t probe_a_dead_receiver(ktest::Context& ktest_context, std::uint32_t user_timeout_ms,
                                    std::uint64_t deadline_ms) {
    Net net;
    Connection *c, *s;
    if (!net.open(c, s)) return 0;
    close_the_window(c);
    EXPECT_LT(info(c).value().send_window, info(c).value().mss);
    set_user_timeout(c, user_timeout_ms);
    Blackhole b;
    g_wire.filter_context = &b;
    g_wire.filter = blackhole; // the probes never arrive
    time::Ticks deadline = in_ms(deadline_ms);
    EXPECT_ERROR(receive(c, g_in, deadline), Error::TimedOut);
    EXPECT_LT(time::now(), deadline);
    EXPECT_EQ(info(c).value().state, State::Closed);
    std::uint64_t probes = info(c).value().zero_window_probes;
    g_wire.filter = nullptr;
    abort(c);
    abort(s);
    return probes;
}
} // namespace

// RFC 1122 4.2.2.17: probing lasts as long as the receiver answers; when
// it stops answering, the probes count like retransmissions and the
// connection ends (it used to probe a dead receiver for ever). About three
// minutes of backed-off probes: judged on one hart, under -icount, where
// idle guest time costs nothing.
KTEST(tcp, a_closed_window_whose_receiver_dies_is_given_up) {
    if (sched::online_harts() > 1) KTEST_SKIP("minutes of probing: run on one hart under -icount");
    EXPECT_GT(probe_a_dead_receiver(ktest_context, 0, 600'000), std::uint64_t{CONFIG_TCP_MAX_RETRIES});
}

// The user timeout bounds unanswered probes too (as Linux applies it):
// seconds instead of minutes of backed-off probing.
KTEST(tcp, user_timeout_ends_probing_of_a_dead_receiver) {
    EXPECT_LT(probe_a_dead_receiver(ktest_context, 2000, 30'000), std::uint64_t{CONFIG_TCP_MAX_RETRIES});
}

// A live peer that answers every keep-alive probe keeps the connection,
// however many idle periods pass: the answers (ACKs of nothing new) reset
// the count of unanswered probes. They did not, and after
// kMaxKeepaliveProbes (9) idle periods the connection was reset.
KTEST(tcp, keepalive_keeps_a_live_idle_peer) {
    if (sched::online_harts() > 1) KTEST_SKIP("a dozen idle periods: run on one hart under -icount");
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(open_pair(net.listen(), c, s, ConnectOptions{.keepalive = true}));
    auto before = info(c).value().segments_out;
    sched::sleep_until(in_ms(12 * CONFIG_TCP_KEEPALIVE_S * 1000ull));
    EXPECT_GE(info(c).value().segments_out - before, 10u); // the probes went out
    EXPECT_EQ(info(c).value().state, State::Established);
    EXPECT_TRUE(transfer(c, s, 1000, in_ms(2000)));
    close(c);
    close(s);
}

KTEST(tcp, reset_in_window_is_challenged_exact_reset_closes) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    auto before = stats();
    Seq next = g_wire.client_next;
    inject_to_server(port, next + 100, Seq(0), flag::kRst);
    EXPECT_EQ(stats().challenge_acks, before.challenge_acks + 1);
    EXPECT_EQ(info(s).value().state, State::Established);
    // A SYN on an established connection: challenge ACK too (RFC 5961 4.2).
    inject_to_server(port, next + 5, Seq(0), flag::kSyn);
    EXPECT_EQ(stats().challenge_acks, before.challenge_acks + 2);
    EXPECT_EQ(info(s).value().state, State::Established);
    // Out of the window entirely: dropped (an ACK, no challenge count).
    inject_to_server(port, next + 0x40000000, Seq(0), flag::kRst);
    EXPECT_EQ(stats().challenge_acks, before.challenge_acks + 2);
    // Exactly RCV.NXT: the connection is reset.
    inject_to_server(port, next, Seq(0), flag::kRst);
    EXPECT_EQ(info(s).value().state, State::Closed);
    EXPECT_ERROR(receive(s, g_in, in_ms(10)), Error::ConnectionReset);
    abort(s);
    abort(c);
}

KTEST(tcp, data_with_an_unacceptable_ack_is_discarded) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    auto before = stats();
    Segment seg = next_from_client(port, flag::kAck | flag::kPsh); // exactly RCV.NXT: only the ACK will be wrong
    std::byte data[100];
    fill_pattern(data, 0);
    // Older than SND.UNA - MAX.SND.WND (RFC 5961 5.2): a challenge ACK,
    // and the data must not be taken, or blind injection needs only a
    // sequence number in the window.
    seg.ack = g_wire.server_next - 0x40000000;
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    EXPECT_EQ(stats().challenge_acks, before.challenge_acks + 1);
    // Acknowledging what was never sent (RFC 9293 3.10.7.4): an ACK, and
    // the segment dropped.
    seg.ack = g_wire.server_next + 1000;
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    EXPECT_EQ(info(s).value().receive_queued, 0u);
    EXPECT_EQ(info(s).value().state, State::Established);
    // The same segment with an acceptable ACK is taken.
    seg.ack = g_wire.server_next;
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    EXPECT_EQ(info(s).value().receive_queued, 100u);
    auto r = receive(s, g_in, in_ms(1000));
    ASSERT_OK(r);
    EXPECT_EQ(r.value(), 100u);
    EXPECT_TRUE(check_pattern({g_in, r.value()}, 0));
    abort(s);
    abort(c);
}

KTEST(tcp, urgent_data_is_delivered_in_line) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    // No urgent mode (RFC 6093 advises against new uses): URG and its
    // pointer are ignored, and the bytes are ordinary data, in order.
    Segment seg = next_from_client(port, flag::kAck | flag::kPsh | flag::kUrg);
    seg.urgent = 10;
    std::byte data[100];
    fill_pattern(data, 0);
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    // A pointer beyond the segment's end is as meaningless: still data.
    seg.seq = g_wire.client_next + 100;
    seg.urgent = 0xffff;
    fill_pattern(data, 100);
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    EXPECT_EQ(info(s).value().receive_queued, 200u);
    std::uint32_t got = 0;
    while (got < 200) {
        auto r = receive(s, {g_in + got, 200 - got}, in_ms(1000));
        ASSERT_OK(r);
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_TRUE(check_pattern({g_in, got}, 0));
    EXPECT_EQ(info(s).value().state, State::Established);
    abort(s);
    abort(c);
}

KTEST(tcp, desynchronized_ends_do_not_ack_each_other_for_ever) {
    if (CONFIG_TCP_INVALID_ACK_INTERVAL_MS == 0) KTEST_SKIP("TCP_INVALID_ACK_INTERVAL_MS is 0");
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    // A forged segment with both numbers right: the server takes its data
    // and acknowledges 100 bytes the client never sent. The client answers
    // that ACK with its own, which is behind the server's RCV.NXT and so
    // unacceptable there, and so on: without a limit the two would
    // exchange ACKs for ever, and on one hart no thread would run again.
    Segment seg = next_from_client(port, flag::kAck | flag::kPsh);
    std::byte data[100];
    fill_pattern(data, 0);
    auto before = stats();
    auto c0 = info(c).value().segments_out, s0 = info(s).value().segments_out;
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    netdev::flush();
    sched::sleep_until(in_ms(1000));
    // At most one ACK per interval from each end, plus the server's first.
    std::uint64_t exchanged = (info(c).value().segments_out - c0) + (info(s).value().segments_out - s0);
    EXPECT_GE(exchanged, 2u); // the storm started...
    EXPECT_LE(exchanged, 2 * (1000u / CONFIG_TCP_INVALID_ACK_INTERVAL_MS + 1) + 1); // ...and was held
    EXPECT_GT(stats().invalid_acks_suppressed, before.invalid_acks_suppressed);
    abort(s);
    abort(c);
}

namespace {
Verdict drop_to_attacker(Segment&, ipv4::Address, ipv4::Address dst, void*) {
    return dst == ipv4::Address::from(10, 9, 0, 66) ? Verdict::Drop : Verdict::Pass;
}
} // namespace

namespace {
// Counts and drops the server's pure ACKs (the challenge ACKs) on the wire.
constinit std::uint32_t g_server_acks = 0;
Verdict drop_server_acks(Segment& s, ipv4::Address src, ipv4::Address, void*) {
    if (src != kServer || s.flags != flag::kAck || !s.payload.empty()) return Verdict::Pass;
    ++g_server_acks;
    return Verdict::Drop;
}
} // namespace

KTEST(tcp, challenge_acks_are_rate_limited_stack_wide) {
    // RFC 5961 7: more in-window RSTs and SYNs within a second than the
    // budget get only the budget's worth of challenge ACKs, the rest
    // counted as suppressed. The budget is drawn from [limit/2, 3*limit/2)
    // each second (CVE-2016-5696), so 3*limit/2 + 50 always exceed it. A
    // second later the budget is back.
    constexpr unsigned kLimit = CONFIG_TCP_CHALLENGE_ACK_LIMIT;
    if (kLimit == 0) {
        ktest_context.skip("CONFIG_TCP_CHALLENGE_ACK_LIMIT is 0 (no limit)");
        return;
    }
    constexpr unsigned kMin = (kLimit + 1) / 2, kMax = kMin + kLimit - 1;
    constexpr unsigned kBurst = kMax + 50;
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    Seq next = g_wire.client_next;
    sched::sleep_for_ns(1'100'000'000); // whatever window earlier cases opened has run out
    g_server_acks = 0;
    g_wire.filter = drop_server_acks;
    auto before = stats();
    time::Ticks t0 = time::now();
    for (unsigned i = 0; i < kBurst; ++i) {
        if (i % 2) inject_to_server(port, next + 5, Seq(0), flag::kSyn);
        else inject_to_server(port, next + 100 + i, Seq(0), flag::kRst);
    }
    std::uint64_t elapsed_ns = time::to_ns(time::now() - t0);
    netdev::flush();
    auto after = stats();
    std::uint64_t sent = after.challenge_acks - before.challenge_acks;
    std::uint64_t suppressed = after.challenge_acks_suppressed - before.challenge_acks_suppressed;
    EXPECT_EQ(sent + suppressed, kBurst);
    EXPECT_EQ(g_server_acks, sent); // what the counter says is what went out
    EXPECT_GE(sent, kMin);
    if (elapsed_ns < 1'000'000'000) { // all inside one window (a noisy host may stretch it past)
        EXPECT_LE(sent, kMax);
        EXPECT_GE(suppressed, 50u);
    }
    EXPECT_EQ(info(s).value().state, State::Established);
    // The next second: challenged again.
    sched::sleep_for_ns(1'100'000'000);
    inject_to_server(port, next + 100, Seq(0), flag::kRst);
    netdev::flush();
    EXPECT_EQ(stats().challenge_acks, after.challenge_acks + 1);
    EXPECT_EQ(g_server_acks, sent + 1);
    g_wire.filter = nullptr;
    abort(s);
    abort(c);
}
// One source holds at most its share of the SYN queue; its SYNs beyond
// that get SYN cookies (nothing kept), or are dropped without them.
KTEST(tcp, syn_flood_beyond_per_source_limit_is_counted) {
    Net net;
    Listener* l = net.listen();
    g_wire.filter = drop_to_attacker;
    auto before = stats();
    const ipv4::Address attacker = ipv4::Address::from(10, 9, 0, 66);
    for (unsigned i = 0; i < CONFIG_TCP_PER_SOURCE_HALF_OPEN + 10; ++i)
        inject_to_server(static_cast<std::uint16_t>(20000 + i), Seq(1000 * i), Seq(0), flag::kSyn, 1000, attacker);
    auto after = stats();
#ifdef CONFIG_TCP_SYN_COOKIES
    EXPECT_EQ(after.syn_cookies_sent - before.syn_cookies_sent, 10u);
    EXPECT_EQ(after.syn_per_source, before.syn_per_source);
#else
    EXPECT_EQ(after.syn_per_source - before.syn_per_source, 10u);
#endif
    EXPECT_EQ(after.passive_opens - before.passive_opens, CONFIG_TCP_PER_SOURCE_HALF_OPEN);
    // A healthy client is unaffected.
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    EXPECT_TRUE(transfer(c, s, 10'000, in_ms(5000)));
    close(c);
    close(s);
    // Listener close resets the half-open ones; the wire drops the RSTs.
}

// A passive open from a peer without timestamps: the ACK of the SYN-ACK is
// the connection's first RTT sample (RFC 6298 2.2), so its RTO starts from
// the measured round trip, not RFC 6298 2.1's initial 1 s (found by
// test_tcp_raw.py: a server connection's first retransmission came 1 s
// after the data although the handshake took microseconds).
KTEST(tcp, passive_open_without_timestamps_samples_the_rtt) {
    Net net;
    Listener* l = net.listen();
    g_wire.filter = drop_to_attacker; // the SYN-ACK goes nowhere: we answer it by hand
    const ipv4::Address peer = ipv4::Address::from(10, 9, 0, 66);
    inject_to_server(30000, Seq(5000), Seq(0), flag::kSyn, 1000, peer); // no options at all
    inject_to_server(30000, Seq(5001), g_wire.server_next, flag::kAck, 1000, peer);
    auto a = accept(l, in_ms(1000));
    ASSERT_OK(a);
    auto i = info(a.value());
    ASSERT_OK(i);
    EXPECT_FALSE(i.value().timestamps);
    EXPECT_GT(i.value().srtt_us, 0u);
    EXPECT_LT(i.value().rto_us, RttEstimator::kInitialRto);
    abort(a.value());
}

namespace {
// Drops what goes to the attacker, noting the largest payload.
constinit std::size_t g_largest_to_attacker = 0;
Verdict measure_to_attacker(Segment& s, ipv4::Address src, ipv4::Address dst, void* ctx) {
    if (dst != ipv4::Address::from(10, 9, 0, 66)) return Verdict::Pass;
    g_largest_to_attacker = std::max(g_largest_to_attacker, s.payload.size());
    return Verdict::Drop;
}
} // namespace

// A peer's MSS below the timestamps option's 12 bytes, or below 64, gives
// a 64-byte MSS (RFC 9293 3.7.1 leaves the floor to the stack), never one
// that wrapped around below zero.
KTEST(tcp, a_tiny_peer_mss_is_raised_to_the_floor) {
    Net net;
    Listener* l = net.listen();
    g_wire.filter = measure_to_attacker;
    const ipv4::Address peer = ipv4::Address::from(10, 9, 0, 66);
    const std::uint16_t tiny[] = {1, 11, 12, 13, 75, 76, 77};
    for (unsigned k = 0; k < std::size(tiny); ++k) {
        std::uint16_t port = static_cast<std::uint16_t>(30100 + k);
        Options o;
        o.mss = tiny[k];
        o.has_timestamps = true;
        o.ts_value = 1000;
        inject_crafted(syn_from(port, Seq(7000), o), {}, peer, kServer, [](std::byte*) {});
        inject_to_server(port, Seq(7001), g_wire.server_next, flag::kAck, 65535, peer);
        auto a = accept(l, in_ms(1000));
        ASSERT_OK(a);
        auto i = info(a.value());
        ASSERT_OK(i);
        EXPECT_TRUE(i.value().timestamps);
        EXPECT_EQ(i.value().mss, tiny[k] < 76 ? 64u : tiny[k] - 12u);
        g_largest_to_attacker = 0;
        fill_pattern({g_out, 3000}, 0);
        ASSERT_OK(try_send(a.value(), {g_out, 3000}));
        netdev::flush();
        EXPECT_GT(g_largest_to_attacker, 0u);
        EXPECT_LE(g_largest_to_attacker, i.value().mss);
        abort(a.value());
    }
}

KTEST(tcp, malformed_segments_are_dropped_and_counted) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto port = info(c).value().local_port;
    netdev::flush();
    auto before = stats();
    Segment seg;
    seg.source_port = port;
    seg.destination_port = kPort;
    seg.seq = g_wire.client_next;
    seg.flags = flag::kAck;
    seg.window = 1000;
    const std::byte zeros[8] = {};
    // Each variant damages the header, then (but for the first) gives it
    // a valid checksum so that the parser, not the checksum, must refuse it.
    auto craft = [&](auto mutate, bool fix_checksum = true) {
        inject_crafted(seg, zeros, kClient, kServer, [&](std::byte* out) {
            mutate(out);
            if (fix_checksum) fill_checksum(kClient.value, kServer.value, {out, kHeaderLength + 8});
        });
    };
    craft([](std::byte* out) { out[kHeaderLength] = std::byte{1}; }, false); // payload changed after the checksum
    craft([](std::byte* out) { out[12] = std::byte{15 << 4}; });             // data offset beyond the segment
    craft([](std::byte* out) { out[12] = std::byte{2 << 4}; });              // data offset below 5
    craft([](std::byte* out) {                                               // option of length 0
        out[12] = std::byte{7 << 4};
        out[kHeaderLength] = std::byte{2};
        out[kHeaderLength + 1] = std::byte{0};
    });
    craft([](std::byte* out) {                                               // option running past the header
        out[12] = std::byte{7 << 4};
        out[kHeaderLength] = std::byte{8};
        out[kHeaderLength + 1] = std::byte{40};
    });
    auto after = stats();
    EXPECT_EQ(after.bad_checksum - before.bad_checksum, 1u);
    EXPECT_EQ(after.malformed - before.malformed, 4u);
    EXPECT_EQ(info(s).value().state, State::Established);
    // The first one was the in-order next segment, which is copied into
    // the receive ring as it is summed: nothing of it may show.
    EXPECT_EQ(info(s).value().receive_queued, 0u);
    EXPECT_EQ(info(s).value().bytes_in, 0u);
    EXPECT_TRUE(transfer(c, s, 5'000, in_ms(5000)));
    close(c);
    close(s);
}

KTEST(tcp, half_close_keeps_the_other_direction) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    fill_pattern({g_out, 1000}, 0);
    ASSERT_OK(send(c, {g_out, 1000}, in_ms(1000)));
    ASSERT_OK(shutdown(c));
    EXPECT_ERROR(send(c, {g_out, 1}, in_ms(10)), Error::NotConnected);
    std::uint32_t got = 0;
    for (;;) {
        auto r = receive(s, {g_in + got, sizeof g_in - got}, in_ms(2000));
        ASSERT_OK(r);
        if (r.value() == 0) break;
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_EQ(got, 1000u);
    EXPECT_TRUE(check_pattern({g_in, got}, 0));
    EXPECT_EQ(info(s).value().state, State::CloseWait);
    // The server's ACK of the FIN reaches the client through the wire's
    // work item in the network thread: on several harts this thread can
    // get here first (the case failed about half the time under smp2).
    time::Ticks fin_acked_by = in_ms(1000);
    while (info(c).value().state == State::FinWait1 && time::now() < fin_acked_by) sched::sleep_until(in_ms(1));
    EXPECT_EQ(info(c).value().state, State::FinWait2);
    // The server still sends; the client still receives.
    EXPECT_TRUE(transfer(s, c, 50'000, in_ms(5000)));
    close(s);
    netdev::flush();
    auto r = receive(c, g_in, in_ms(2000));
    ASSERT_OK(r);
    EXPECT_EQ(r.value(), 0u); // end of stream
    EXPECT_EQ(info(c).value().state, State::TimeWait);
    // TIME-WAIT expires after 2MSL.
    time::Ticks until = in_ms(CONFIG_TCP_TIME_WAIT_MS * 10);
    while (info(c).value().state == State::TimeWait && time::now() < until) sched::sleep_until(in_ms(10));
    EXPECT_EQ(info(c).value().state, State::Closed);
    close(c);
}

namespace {
Verdict hold_fins(Segment& s, ipv4::Address, ipv4::Address, void*) {
    return s.has(flag::kFin) ? Verdict::Hold : Verdict::Pass;
}
} // namespace

KTEST(tcp, simultaneous_close_goes_through_closing) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    g_wire.filter = hold_fins;
    ASSERT_OK(shutdown(c));
    ASSERT_OK(shutdown(s));
    netdev::flush();
    EXPECT_EQ(info(c).value().state, State::FinWait1);
    EXPECT_EQ(info(s).value().state, State::FinWait1);
    g_wire.filter = nullptr;
    release_held(); // the FINs cross
    netdev::flush();
    netdev::flush();
    auto cs = info(c).value().state, ss = info(s).value().state;
    EXPECT_TRUE(cs == State::TimeWait || cs == State::Closing);
    EXPECT_TRUE(ss == State::TimeWait || ss == State::Closing);
    time::Ticks until = in_ms(5000);
    while ((info(c).value().state != State::TimeWait || info(s).value().state != State::TimeWait) &&
           time::now() < until && info(c).value().state != State::Closed)
        sched::sleep_until(in_ms(5));
    EXPECT_NE(info(c).value().state, State::Closing);
    close(c);
    close(s);
}

KTEST(tcp, connection_table_exhaustion_is_a_clean_error) {
    Net net;
    Listener* l = net.listen(CONFIG_TCP_MAX_CONNECTIONS);
    static Connection* conns[CONFIG_TCP_MAX_CONNECTIONS];
    unsigned n = 0;
    base::Result<Connection*> r = Error::NoMemory;
    auto before = stats();
    while (n < CONFIG_TCP_MAX_CONNECTIONS) {
        r = dial();
        if (!r.ok()) break;
        conns[n++] = r.value();
    }
    // Each connection takes two slots (client and server ends).
    EXPECT_FALSE(r.ok());
    EXPECT_GT(stats().table_full, before.table_full);
    EXPECT_GE(n, CONFIG_TCP_MAX_CONNECTIONS / 2 - 1);
    for (unsigned i = 0; i < n; ++i) abort(conns[i]);
    for (;;) {
        auto a = try_accept(l);
        if (!a.ok()) break;
        abort(a.value());
    }
    // And the table works again.
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    abort(c);
    abort(s);
}

KTEST(tcp, connect_to_a_closed_port_is_refused_and_try_forms_would_block) {
    Net net;
    Listener* l = net.listen();
    EXPECT_ERROR(dial(kPort + 1), Error::ConnectionRefused);
    EXPECT_ERROR(try_accept(l), Error::WouldBlock);
    EXPECT_ERROR(accept(l, in_ms(20)), Error::TimedOut);
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    EXPECT_ERROR(try_receive(s, g_in), Error::WouldBlock);
    EXPECT_EQ(poll(s) & event::kReadable, 0u);
    EXPECT_NE(poll(s) & event::kWritable, 0u);
    ASSERT_OK(try_send(c, {g_out, 10}));
    netdev::flush();
    EXPECT_NE(poll(s) & event::kReadable, 0u);
    close(c);
    abort(s);
}

namespace {

// ICMP errors (RFC 1122 4.2.3.9, RFC 1191, RFC 5927) as ipv4 hands them
// to TCP: the quoted segment's ports and sequence number. Reported from
// the wire's filter (which runs under the TCP lock) through the network
// thread, as a router's message would arrive.
struct IcmpReport {
    std::uint8_t type = 3, code = 0;
    std::uint16_t mtu = 0, quoted_length = 0;
    std::uint16_t source_port = 0;
    Seq seq;
    unsigned reports = 0;       // how many the filter may still send
    unsigned sent = 0;
    netdev::Work work{};
};
constinit IcmpReport g_icmp;

void deliver_icmp(void*) {
    std::byte quoted[8];
    base::store_be16(quoted, g_icmp.source_port);
    base::store_be16(quoted + 2, kPort);
    base::store_be32(quoted + 4, g_icmp.seq.value());
    ipv4::TransportError e;
    e.type = g_icmp.type;
    e.code = g_icmp.code;
    e.next_hop_mtu = g_icmp.mtu;
    e.quoted_length = g_icmp.quoted_length;
    e.reporter = kServer;
    e.source = kClient;
    e.destination = kServer;
    e.transport = quoted;
    (void)ipv4::deliver_error(static_cast<std::uint8_t>(ipv4::Protocol::Tcp), e);
}

void report_icmp(const Segment& s, std::uint8_t code, Seq seq) {
    g_icmp.code = code;
    g_icmp.source_port = s.source_port;
    g_icmp.seq = seq;
    g_icmp.quoted_length = static_cast<std::uint16_t>(ipv4::kHeaderLength + s.header_length + s.payload.size());
    --g_icmp.reports;
    ++g_icmp.sent;
    g_icmp.work.function = deliver_icmp;
    netdev::schedule(g_icmp.work);
}

// The client's first SYN is lost, and a router reports it with `code`.
Verdict syn_unreachable(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    if (src != kClient || !s.has(flag::kSyn) || !g_icmp.reports) return Verdict::Pass;
    Seq quoted = s.seq + *static_cast<std::uint32_t*>(ctx); // the SYN's own, or a forged one
    report_icmp(s, g_icmp.code, quoted);
    return Verdict::Drop;
}

void arm_icmp(std::uint8_t type, std::uint8_t code, unsigned reports, std::uint16_t mtu = 0) {
    g_icmp.type = type;
    g_icmp.code = code;
    g_icmp.reports = reports;
    g_icmp.sent = 0;
    g_icmp.mtu = mtu;
}

} // namespace

KTEST(tcp, port_unreachable_refuses_a_connection_attempt) {
    Net net;
    net.listen();
    std::uint64_t errors = stats().icmp_errors;
    arm_icmp(3, 3, 1);
    std::uint32_t offset = 0;
    g_wire.filter_context = &offset;
    g_wire.filter = syn_unreachable;
    // At once, not after the SYN's retries (a blocked dial would time out).
    EXPECT_ERROR(dial(), Error::ConnectionRefused);
    g_wire.filter = nullptr;
    EXPECT_EQ(g_icmp.sent, 1u);
    EXPECT_EQ(stats().icmp_errors, errors + 1);
}

KTEST(tcp, forged_and_soft_icmp_errors_do_not_end_a_connection_attempt) {
    Net net;
    Listener* l = net.listen();
    std::uint64_t errors = stats().icmp_errors, ignored = stats().icmp_ignored;
    // Port unreachable quoting a sequence number never sent: ignored. The
    // SYN it went with was lost, so the retransmitted one connects.
    arm_icmp(3, 3, 1);
    std::uint32_t forged = 1000;
    g_wire.filter_context = &forged;
    g_wire.filter = syn_unreachable;
    Connection *c, *s;
    ASSERT_TRUE(open_pair(l, c, s));
    EXPECT_EQ(stats().icmp_ignored, ignored + 1);
    EXPECT_EQ(stats().icmp_errors, errors);
    close(c);
    close(s);
    // Host unreachable for the right SYN: soft (RFC 1122 4.2.3.9), kept,
    // and the attempt goes on.
    arm_icmp(3, 1, 1);
    std::uint32_t own = 0;
    g_wire.filter_context = &own;
    ASSERT_TRUE(open_pair(l, c, s));
    EXPECT_EQ(stats().icmp_errors, errors + 1);
    g_wire.filter = nullptr;
    close(c);
    close(s);
}

namespace {
// The client's data never arrives; the router reports the first segment
// it drops with g_icmp's code (while g_icmp.reports lasts).
Verdict data_unreachable(Segment& s, ipv4::Address src, ipv4::Address, void*) {
    if (src != kClient || s.payload.empty()) return Verdict::Pass;
    if (g_icmp.reports) report_icmp(s, g_icmp.code, s.seq);
    return Verdict::Drop;
}
Verdict drop_client_syns(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    if (src != kClient || !s.has(flag::kSyn)) return Verdict::Pass;
    auto* budget = static_cast<unsigned*>(ctx); // how many to drop; null: all
    if (budget && *budget == 0) return Verdict::Pass;
    if (budget) --*budget;
    return Verdict::Drop;
}
} // namespace

// A blocking connect whose SYN is lost, with nothing else happening on
// the stack: the SYN's retransmission timer must run while connect()
// sleeps. It did not (the callout was armed only when an API call
// returned), so such a connect waited for its deadline.
KTEST(tcp, a_lost_syn_is_retransmitted_while_connect_blocks) {
    Net net;
    Listener* l = net.listen();
    unsigned drops = 1;
    g_wire.filter_context = &drops;
    g_wire.filter = drop_client_syns;
    Connection *c, *s;
    bool opened = open_pair(l, c, s); // dial() gives up after 5 s; the initial RTO is 1 s
    g_wire.filter = nullptr;
    ASSERT_TRUE(opened);
    EXPECT_EQ(drops, 0u);
    close(c);
    close(s);
}

// RFC 9293 3.8.3's user timeout, and RFC 5927 5.2: a soft error is kept
// while the connection retransmits and is what a give-up reports. Without
// the user timeout the give-up takes TCP_MAX_RETRIES backed-off expiries,
// over a minute: the receive's 10 s deadline would expire first.
KTEST(tcp, user_timeout_ends_a_stalled_connection_with_the_soft_error) {
    for (bool soft_error : {true, false}) {
        Net net;
        Connection *c, *s;
        ASSERT_TRUE(net.open(c, s));
        set_user_timeout(c, 500);
        std::uint64_t errors = stats().icmp_errors;
        arm_icmp(3, 1, soft_error ? 1 : 0); // host unreachable
        g_wire.filter = data_unreachable;
        fill_pattern({g_out, 100}, 0);
        ASSERT_OK(send(c, {g_out, 100}, in_ms(1000)));
        netdev::flush();
        EXPECT_EQ(stats().icmp_errors, errors + (soft_error ? 1 : 0));
        EXPECT_EQ(info(c).value().state, State::Established); // soft: kept, not acted on
        time::Ticks deadline = in_ms(10000);
        EXPECT_ERROR(receive(c, g_in, deadline), soft_error ? Error::Unreachable : Error::TimedOut);
        EXPECT_LT(time::now(), deadline); // the connection's give-up, not the receive's deadline
        EXPECT_EQ(info(c).value().state, State::Closed);
        EXPECT_GE(info(c).value().timeouts, 1u);
        g_wire.filter = nullptr;
        abort(c);
        abort(s);
    }
    // A connection attempt whose SYNs are lost ends at the user timeout
    // too, not after the SYN's six backed-off retransmissions.
    Net net;
    net.listen();
    g_wire.filter_context = nullptr;
    g_wire.filter = drop_client_syns;
    time::Ticks deadline = in_ms(5000); // dial()'s own
    EXPECT_ERROR(dial(kPort, ConnectOptions{.user_timeout_ms = 500}), Error::TimedOut);
    EXPECT_LT(time::now(), deadline);
    g_wire.filter = nullptr;
}

namespace {
// A router whose next hop takes 552-byte datagrams: it drops the client's
// larger segments and says so (once), with the MTU or, if `mtu` is 0,
// without it (RFC 1191 7: the sender then tries the next plateau, 508).
Verdict narrow_link(Segment& s, ipv4::Address src, ipv4::Address, void* ctx) {
    std::uint32_t limit = *static_cast<std::uint32_t*>(ctx);
    if (src != kClient || ipv4::kHeaderLength + s.header_length + s.payload.size() <= limit) return Verdict::Pass;
    if (g_icmp.reports) report_icmp(s, 4, s.seq);
    return Verdict::Drop;
}
} // namespace

KTEST(tcp, fragmentation_needed_lowers_the_mss_and_resends_at_once) {
    // With the router's MTU, and without it (the plateau below 576 is
    // 508, under the 552 floor: the floor is used, and DF is dropped).
    for (std::uint16_t reported : {std::uint16_t{552}, std::uint16_t{0}}) {
        Net net;
        Connection *c, *s;
        ASSERT_TRUE(net.open_warm(c, s, 20'000));
        auto before = info(c).value();
        std::uint64_t reductions = stats().path_mtu_reductions;
        std::uint32_t limit = 552;
        std::uint32_t expected = limit - 40 - (before.timestamps ? 12 : 0);
        ASSERT_GT(before.mss, expected); // no route here: 536 (576-byte datagrams) less options
        arm_icmp(3, 4, 1, reported);
        g_wire.filter_context = &limit;
        g_wire.filter = narrow_link;
        EXPECT_TRUE(transfer(c, s, 60'000, in_ms(20000)));
        g_wire.filter = nullptr;
        auto after = info(c).value();
        EXPECT_EQ(g_icmp.sent, 1u);
        EXPECT_EQ(after.mss, expected);
        EXPECT_EQ(stats().path_mtu_reductions, reductions + 1);
        // Sent again in the new size when the report came, not when the
        // retransmission timer expired.
        EXPECT_EQ(after.timeouts, before.timeouts);
        EXPECT_GT(after.retransmits, before.retransmits);
        close(c);
        close(s);
    }
}

namespace {
// The server's data segments, while the client's second data segment is
// held back (so the server has out-of-order data to SACK).
struct SackFit {
    DropNth hold{0, 2, Verdict::Hold};
    std::uint32_t budget = 0; // MSS plus the timestamps option
    unsigned data = 0, too_big = 0, with_blocks = 0;
};
Verdict sack_fit(Segment& s, ipv4::Address src, ipv4::Address dst, void* ctx) {
    auto& f = *static_cast<SackFit*>(ctx);
    if (src == kServer && !s.payload.empty()) {
        ++f.data;
        if (s.options.sack_count) ++f.with_blocks;
        if (s.header_length - kHeaderLength + s.payload.size() > f.budget) ++f.too_big;
    }
    return drop_nth(s, src, dst, &f.hold);
}
} // namespace

// RFC 6691: data and options together within the MSS. A full data segment
// sent while out-of-order data waits carries no SACK blocks (with them it
// would exceed the path MTU, and with DF set never arrive); a short one
// carries what fits.
KTEST(tcp, sack_blocks_never_push_a_data_segment_past_the_mss) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    auto server = info(s).value();
    ASSERT_TRUE(server.sack);
    SackFit f;
    f.budget = server.mss + (server.timestamps ? 12 : 0);
    auto mss = send_with_a_hole(c, sack_fit, &f);
    ASSERT_GT(info(s).value().out_of_order, 0u);
    // Three full segments, then a short one.
    ASSERT_OK(send(s, {g_out, 3 * server.mss + 100}, in_ms(1000)));
    netdev::flush();
    EXPECT_GE(f.data, 4u);
    EXPECT_EQ(f.too_big, 0u);
    EXPECT_GE(f.with_blocks, 1u);
    g_wire.filter = nullptr;
    release_held();
    for (std::uint32_t got = 0; got < 4 * mss;) {
        auto r = receive(s, g_in, in_ms(2000));
        ASSERT_OK(r);
        got += static_cast<std::uint32_t>(r.value());
    }
    for (std::uint32_t got = 0; got < 3 * server.mss + 100;) {
        auto r = receive(c, g_in, in_ms(2000));
        ASSERT_OK(r);
        got += static_cast<std::uint32_t>(r.value());
    }
    abort(c);
    abort(s);
}

KTEST(tcp, no_packet_leaks_after_all_that) {
    std::uint32_t free_before;
    {
        Net net;
        free_before = net.free_at_start();
        Listener* l = net.listen();
        Connection *c, *s;
        ASSERT_TRUE(open_pair(l, c, s));
        EXPECT_TRUE(transfer(c, s, 50'000, in_ms(5000)));
        close(c);
        close(s);
    }
    EXPECT_EQ(stats().connections_in_use, 0u);
    EXPECT_EQ(netdev::pool_stats().free, free_before);
    EXPECT_EQ(netdev::pool_stats().free, netdev::pool_stats().total - 0 - (netdev::pool_stats().total - free_before));
}

namespace {
struct SimOpen {
    ipv4::Address from, to;
    std::uint16_t from_port, to_port;
    base::Result<Connection*> result = Error::NotConnected;
};
void sim_open_thread(void* arg) {
    auto& o = *static_cast<SimOpen*>(arg);
    ConnectOptions options;
    options.source = o.from;
    options.source_port = o.from_port;
    o.result = connect(o.to, o.to_port, in_ms(10000), options);
}
unsigned g_held_syns = 0;
Verdict hold_syns(Segment& s, ipv4::Address, ipv4::Address, void*) {
    if (s.has(flag::kSyn) && !s.has(flag::kAck)) {
        ++g_held_syns;
        return Verdict::Hold;
    }
    return Verdict::Pass;
}
} // namespace

KTEST(tcp, simultaneous_open_crosses_syns) {
    Net net;
    g_held_syns = 0;
    g_wire.filter = hold_syns;
    SimOpen a{kClient, kServer, 5000, 5001}, b{kServer, kClient, 5001, 5000};
    sched::ThreadAttributes attributes;
    attributes.name = "simopen";
    auto ta = sched::spawn(sim_open_thread, &a, attributes);
    auto tb = sched::spawn(sim_open_thread, &b, attributes);
    ASSERT_OK(ta);
    ASSERT_OK(tb);
    time::Ticks until = in_ms(5000);
    while (g_held_syns < 2 && time::now() < until) sched::sleep_until(in_ms(1));
    ASSERT_EQ(g_held_syns, 2u);
    g_wire.filter = nullptr;
    release_held(); // both SYNs cross: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED on both sides
    ASSERT_OK(sched::join(ta.value()));
    ASSERT_OK(sched::join(tb.value()));
    ASSERT_OK(a.result);
    ASSERT_OK(b.result);
    EXPECT_EQ(info(a.result.value()).value().state, State::Established);
    EXPECT_EQ(info(b.result.value()).value().state, State::Established);
    EXPECT_TRUE(transfer(a.result.value(), b.result.value(), 20'000, in_ms(5000)));
    EXPECT_TRUE(transfer(b.result.value(), a.result.value(), 20'000, in_ms(5000)));
    close(a.result.value());
    close(b.result.value());
}

KTEST(tcp, paws_drops_an_old_timestamp) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    netdev::flush();
    auto before = stats();
    Segment seg = next_from_client(info(c).value().local_port, flag::kAck | flag::kPsh);
    seg.options.has_timestamps = true;
    seg.options.ts_value = static_cast<std::uint32_t>(time::to_ns(time::now()) / 1'000'000) - 100'000; // far in the past
    inject_crafted(seg, std::as_bytes(std::span<const char>("old!", 4)), kClient, kServer, [](std::byte*) {});
    EXPECT_EQ(stats().paws_drops, before.paws_drops + 1);
    EXPECT_ERROR(try_receive(s, g_in), Error::WouldBlock); // the data was not taken
    EXPECT_TRUE(transfer(c, s, 1000, in_ms(2000)));
    close(c);
    close(s);
}

// A segment at RCV.NXT whose ACK is unacceptable is discarded, and so is
// its timestamp: kept as TS.Recent, one from the future would make PAWS
// drop every genuine segment after it (found by the forged-segment storm,
// fuzz_test.cpp).
KTEST(tcp, a_discarded_segment_leaves_the_echoed_timestamp_alone) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    netdev::flush();
    auto before = stats();
    Segment seg = next_from_client(info(c).value().local_port, flag::kAck | flag::kPsh);
    seg.options.has_timestamps = true;
    seg.options.ts_value = static_cast<std::uint32_t>(time::to_ns(time::now()) / 1'000'000) + 0x4000'0000u;
    const auto data = std::as_bytes(std::span<const char>("future", 6));
    seg.ack = g_wire.server_next + 0x20000; // never sent
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    seg.ack = g_wire.server_next - 0x4000'0000u; // older than any window (RFC 5961 5.2)
    inject_crafted(seg, data, kClient, kServer, [](std::byte*) {});
    EXPECT_ERROR(try_receive(s, g_in), Error::WouldBlock);
    EXPECT_TRUE(transfer(c, s, 20'000, in_ms(2000)));
    EXPECT_EQ(stats().paws_drops, before.paws_drops);
    close(c);
    close(s);
}

KTEST(tcp, keepalive_gives_up_on_a_silent_peer) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(open_pair(net.listen(), c, s, ConnectOptions{.keepalive = true}));
    Blackhole b;
    g_wire.filter_context = &b;
    g_wire.filter = blackhole; // the client's probes never arrive
    auto r = receive(c, g_in, in_ms((CONFIG_TCP_KEEPALIVE_S * 1000ull) * 20));
    EXPECT_ERROR(r, Error::TimedOut);
    EXPECT_EQ(info(c).value().state, State::Closed);
    g_wire.filter = nullptr;
    abort(c);
    abort(s);
}

// The same engine over the real ipv4 + ARP path: two interfaces of a
// netdev::Pair in this one stack, 10.9.1.1 on A and 10.9.2.1 on B, with
// host routes sending each other's address out of their own interface.
KTEST(tcp, over_ipv4_on_a_pair) {
    netdev::Pair pair("tca0", "tcb0");
    ASSERT_OK(pair.attach());
    const auto a = ipv4::Address::from(10, 9, 1, 1), b = ipv4::Address::from(10, 9, 2, 1);
    ASSERT_OK(ipv4::configure(pair.a(), a, 24));
    ASSERT_OK(ipv4::configure(pair.b(), b, 24));
    ASSERT_OK(ipv4::add_route(b, 32, ipv4::Address::any(), pair.a()));
    ASSERT_OK(ipv4::add_route(a, 32, ipv4::Address::any(), pair.b()));
    // The baseline is taken at rest: configure() sent a gratuitous ARP
    // request on each side, and those two frames sit in the receive queue
    // until the network thread has handled them. On one hart that thread
    // (it outranks us) runs as soon as it is woken; on several it may be
    // woken on another hart while we read on, so reading the pool here
    // without flush() found it two short now and then, and the check at
    // the end failed against that low start (seen on 4 harts).
    netdev::flush();
    std::uint32_t free_before = netdev::pool_stats().free;
    auto ip_before = ipv4::stats();
    auto l = listen(kPort, 4);
    ASSERT_OK(l);
    ConnectOptions o;
    o.source = a;
    auto c = connect(b, kPort, in_ms(5000), o);
    ASSERT_OK(c);
    auto s = accept(l.value(), in_ms(5000));
    ASSERT_OK(s);
    EXPECT_EQ(info(c.value()).value().mss, 1500u - 40 - 12); // from the route MTU, less timestamps
    EXPECT_TRUE(transfer(c.value(), s.value(), 200'000, in_ms(20000)));
    EXPECT_TRUE(transfer(s.value(), c.value(), 200'000, in_ms(20000)));
    close(c.value());
    close(s.value());
    close(l.value());
    time::Ticks until = in_ms(5000);
    while (stats().connections_in_use && time::now() < until) sched::sleep_until(in_ms(10));
    EXPECT_EQ(stats().connections_in_use, 0u);
    auto ip_after = ipv4::stats();
    EXPECT_GT(ip_after.delivered, ip_before.delivered + 100);
    EXPECT_EQ(ip_after.bad_checksum, ip_before.bad_checksum);
    ipv4::deconfigure(pair.a());
    ipv4::deconfigure(pair.b());
    // Frames still queued or being handled hold buffers until the network
    // thread is done with them, and handling one may queue another (an
    // ACK, an ARP reply), which one flush() does not wait for: flush until
    // the pool is back at its start. A real leak never gets there.
    for (time::Ticks settle = in_ms(1000); netdev::pool_stats().free != free_before && time::now() < settle;) {
        netdev::flush();
        sched::sleep_until(in_ms(5));
    }
    EXPECT_EQ(netdev::pool_stats().free, free_before);
    pair.detach();
}

// Regression: after a timeout, going back over old data reaches SND.MAX
// with a piece shorter than an MSS while more unsent data waits; sender
// SWS avoidance held that retransmission back and the connection stalled
// for good (its timer re-armed, sending nothing). Seen with 32 concurrent
// echoes through SLIRP when virtio-net's TX ring dropped segments.
KTEST(tcp, short_retransmission_at_snd_max_is_not_held_back) {
    Net net;
    Connection *c, *s;
    ASSERT_TRUE(net.open(c, s));
    std::uint32_t mss = info(c).value().mss;
    Blackhole b;
    g_wire.filter_context = &b;
    g_wire.filter = blackhole;
    // 100 bytes, then two full segments, then more than the window takes:
    // the last segment sent is cut by cwnd, so SND.MAX - 100 is not a
    // multiple of the MSS.
    std::uint32_t total = 100 + 2 * mss + 6000;
    fill_pattern({g_out, total}, 0);
    ASSERT_OK(send(c, {g_out, 100}, in_ms(100)));
    ASSERT_OK(send(c, {g_out + 100, 2 * mss}, in_ms(100)));
    ASSERT_OK(send(c, {g_out + 100 + 2 * mss, 6000}, in_ms(100)));
    time::Ticks until = in_ms(10000);
    while (info(c).value().timeouts < 1 && time::now() < until) sched::sleep_until(in_ms(5));
    b.on = false;
    std::uint32_t got = 0;
    while (got < total) {
        auto r = receive(s, {g_in + got, total - got}, in_ms(20000));
        ASSERT_OK(r);
        got += static_cast<std::uint32_t>(r.value());
    }
    EXPECT_TRUE(check_pattern({g_in, total}, 0));
    g_wire.filter = nullptr;
    close(c);
    close(s);
}
