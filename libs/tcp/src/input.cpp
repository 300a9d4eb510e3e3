// Segments in: RFC 9293 3.10.7's arrival processing for a connection
// (acceptability, RST/SYN checks per RFC 5961, the ACK, data and FIN),
// header prediction for bulk receive, and the merging of pure ACKs
// within a receive batch.
#include <algorithm>
#include <cstring>
#include <optional>
#include <tcp/window.hpp>
#include <utility>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

// ---------------------------------------------------------------- input

namespace {
void deliver_data(Connection& c, const Segment& s);
enum class AckCheck : bool { Passed, Discard };
AckCheck process_ack(Connection& c, const Segment& s);

// Out-of-order or in-order payload into the receive ring (RFC 9293
// 3.10.7.4 seventh step, RFC 2018 for what is kept beyond RCV.NXT).
void deliver_data(Connection& c, const Segment& s) {
    Seq seq = s.seq + (s.has(flag::kSyn) ? 1 : 0);
    std::span<const std::byte> data = s.payload;
    if (seq < c.rcv_nxt) { // already have the front
        std::uint32_t skip = static_cast<std::uint32_t>(c.rcv_nxt - seq);
        if (skip >= data.size()) {
            if (!data.empty()) c.ack_now = true; // a duplicate: ACK it (RFC 9293 3.10.7.4)
            return;
        }
        data = data.subspan(skip);
        seq = c.rcv_nxt;
    }
    std::uint32_t window = receive_space(c);
    std::uint32_t offset = static_cast<std::uint32_t>(seq - c.rcv_nxt);
    if (offset >= window) return;
    if (data.size() > window - offset) data = data.first(window - offset);
    if (data.empty()) return;
    bool in_order = offset == 0;
    if (!in_order && !c.ooo.add(seq, seq + static_cast<std::uint32_t>(data.size()))) {
        ++g_stats.ooo_dropped;
        c.ack_now = true;
        return;
    }
    if (s.payload_placed) {
        // place_in_order() put every byte where its sequence number goes,
        // and nothing since has moved RCV.NXT or the ring.
        VERIFY(in_order);
    } else {
        std::uint32_t at = (c.recv_head + c.recv_len + offset) & (kReceiveBuffer - 1);
        std::uint32_t first = std::min<std::uint32_t>(static_cast<std::uint32_t>(data.size()), kReceiveBuffer - at);
        std::memcpy(c.receive_buffer.data() + at, data.data(), first);
        std::memcpy(c.receive_buffer.data(), data.data() + first, data.size() - first);
    }
    if (!in_order) {
        ++c.counters.out_of_order;
        c.ack_now = true; // a duplicate ACK with SACK at once (RFC 5681 4.2)
        return;
    }
    bool had_holes = !c.ooo.empty();
    Seq next = c.rcv_nxt + static_cast<std::uint32_t>(data.size());
    next = c.ooo.remove_below(next);
    std::uint32_t advanced = static_cast<std::uint32_t>(next - c.rcv_nxt);
    c.rcv_nxt = next;
    c.recv_len += advanced;
    consume_advertised(c, advanced);
    c.counters.bytes_in += advanced;
    // Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2), at once when a hole
    // was filled. The second segment's ACK is stretched over the rest of
    // the receive batch (TCP_ACK_STRETCH): an ACK per batch rather than
    // per two segments, yet never later than the batch's end, since each
    // ACK costs the peer and a virtual NIC a round of work.
    if (had_holes || CONFIG_TCP_DELAYED_ACK_MS == 0) {
        c.ack_now = true;
    } else if (++c.unacked_segments >= CONFIG_TCP_ACK_STRETCH || 2 * c.rcv_adv <= c.rcv_adv_at_ack) {
        // Enough segments, or half the window offered with the last ACK
        // is used: a sender held by the window must not wait for the batch.
        c.ack_now = true;
    } else if (c.unacked_segments >= 2) {
        if (!c.ack_after_batch) {
            c.ack_after_batch = true;
            netdev::schedule_after_batch(g_batch_ack_work);
        }
    } else if (c.delack_at == time::kNever) {
        set_deadline(c.delack_at, time::now() + ms(CONFIG_TCP_DELAYED_ACK_MS));
    }
    wake(c);
}

void established(Connection& c) {
    set_state(c, State::Established);
    c.retries = 0;
    c.rexmt_at = time::kNever;
    if (c.keepalive) set_deadline(c.keepalive_at, time::now() + ms(CONFIG_TCP_KEEPALIVE_S * 1000ull));
    if (Listener* l = c.listener) {
        --l->half_open;
        c.accept_next = nullptr;
        if (l->accept_tail) l->accept_tail->accept_next = &c;
        else l->accept_head = &c;
        l->accept_tail = &c;
        ++l->queued;
        notify(l->wait, event::kAcceptable, true);
    }
    wake(c);
}

// RFC 9293 3.10.7.4 fifth step, with RFC 5961 5.2's ACK check and the
// congestion, RTT and SACK bookkeeping. A segment that fails the check is
// answered with an ACK and must be discarded whole, its data included:
// taking the data would leave blind injection (RFC 5961 5) needing only a
// sequence number in the window.
AckCheck process_ack(Connection& c, const Segment& s) {
    Seq ack = s.ack;
    if (ack > c.snd_max) { // acks something not yet sent
        ack_invalid(c, s);
        return AckCheck::Discard;
    }
    if (ack < c.snd_una - std::max(c.max_snd_wnd, 65535u)) { // RFC 5961 5.2: too old
        challenge_ack(c);
        return AckCheck::Discard;
    }
    // Timestamps: remember the newest one for echoing (RFC 7323 4.3), but
    // only from a segment whose ACK is acceptable, and before anything
    // below transmits. One taken from a segment about to be discarded
    // would let a blind attacker with an in-window sequence number and an
    // ACK of nothing plant a timestamp from the future, after which PAWS
    // drops every genuine segment (Linux applies the same rule).
    if (c.timestamps && s.options.has_timestamps && s.seq <= c.rcv_nxt) c.ts_recent = s.options.ts_value;
    // An ACK that is not old shows the peer alive, whether or not it
    // acknowledges anything new (the answer to a window or keep-alive
    // probe does not): the probes so far were answered, and a soft error
    // is history (RFC 5927 5.2; Linux clears both here too). Counting
    // only ACKs that advanced reset a keep-alive connection to a live but
    // idle peer after kMaxKeepaliveProbes idle periods.
    if (ack >= c.snd_una) {
        c.probes = 0;
        c.soft_error_set = false;
    }
    std::uint32_t window = static_cast<std::uint32_t>(s.window) << c.snd_scale;
    // SACK scoreboard (RFC 2018): blocks inside (SND.UNA, SND.MAX] only.
    if (c.sack)
        for (unsigned i = 0; i < s.options.sack_count; ++i) {
            SackBlock b = s.options.sack[i];
            if (b.left < b.right && ack <= b.left && b.right <= c.snd_max) c.sacked.add(b.left, b.right);
        }
    if (ack > c.snd_una) {
        std::uint32_t acked = static_cast<std::uint32_t>(ack - c.snd_una);
        std::uint32_t before = flight(c);
        // RTT (RFC 6298; RFC 7323 4.1 when timestamps are on: the echo is
        // unambiguous, so retransmissions do not matter).
        if (c.timestamps && s.options.has_timestamps && s.options.ts_echo) {
            std::uint32_t r = now_ms() - s.options.ts_echo;
            if (r < 60'000) c.rtt.sample(r * 1000 + 1);
        } else if (c.rtt_timing && ack > c.rtt_seq) {
            c.rtt.sample(static_cast<std::uint32_t>(time::to_ns(time::now() - c.rtt_start) / 1000));
            c.rtt_timing = false;
        }
        // Data acknowledged leaves the send ring.
        std::int32_t past_data = ack - c.snd_data;
        if (past_data > 0) {
            std::uint32_t n = std::min<std::uint32_t>(static_cast<std::uint32_t>(past_data), c.send_len);
            c.send_head = (c.send_head + n) & (kSendBuffer - 1);
            c.send_len -= n;
            c.snd_data += n;
            c.counters.bytes_out += n;
        }
        c.snd_una = ack;
        if (c.snd_nxt < c.snd_una) c.snd_nxt = c.snd_una;
        c.sacked.remove_below(ack);
        c.retries = 0;
        if (c.cc_ops->on_ack(c.cc, acked, ack, before, s.acks) == CongestionAction::RetransmitFirst)
            retransmit_first(c); // NewReno partial ACK: the next hole now
        c.rexmt_at = time::kNever;
        if (c.snd_max > c.snd_una) start_rexmt(c);
        wake(c);
    } else if (ack == c.snd_una && s.payload.empty() && !s.has(flag::kSyn) && !s.has(flag::kFin) &&
               window == c.snd_wnd && c.snd_max > c.snd_una) {
        // Duplicate ACK (RFC 5681 2).
        ++c.counters.dup_acks;
        auto action = c.cc_ops->on_duplicate_ack(c.cc, c.snd_una, c.snd_max, flight(c));
        if (action == CongestionAction::RetransmitFirst) {
            ++c.counters.fast_retransmits;
            ++g_stats.fast_retransmits;
            c.rtt_timing = false; // Karn
            retransmit_first(c);
        }
    }
    // Window update (RFC 9293 3.10.7.4: SND.WL1/WL2 guard against old segments).
    if (c.snd_wl1 < s.seq || (c.snd_wl1 == s.seq && c.snd_wl2 <= ack)) {
        bool opened = c.snd_wnd == 0 && window > 0;
        c.snd_wnd = window;
        c.max_snd_wnd = std::max(c.max_snd_wnd, window);
        c.snd_wl1 = s.seq;
        c.snd_wl2 = ack;
        if (opened) {
            c.persist_at = time::kNever;
            c.persist_shift = 0;
            wake(c);
        }
    }
    return AckCheck::Passed;
}
} // namespace

// ---------------------------------------------------------------- segment arrival

void input_segment(const Tuple& t, const Segment& s, Connection* found) {
    if (!found) {
        input_without_connection(t, s);
        return;
    }
    Connection& c = *found;

    if (c.state == State::SynSent) {
        // RFC 9293 3.10.7.3.
        if (s.has(flag::kAck) && (s.ack <= c.iss || s.ack > c.snd_max)) {
            send_reset_for(t, s);
            return;
        }
        if (s.has(flag::kRst)) {
            if (s.has(flag::kAck)) {
                ++g_stats.resets_received;
                enter_closed(c, true, Error::ConnectionRefused);
            }
            return;
        }
        if (!s.has(flag::kSyn)) return;
        c.irs = s.seq;
        c.rcv_nxt = s.seq + 1;
        negotiate(c, s.options, true);
        c.snd_wl1 = s.seq;
        c.snd_wl2 = s.ack;
        c.snd_wnd = s.window;
        c.max_snd_wnd = c.snd_wnd;
        if (s.has(flag::kAck)) {
            c.snd_una = s.ack;
            c.rtt_timing = false;
            if (c.retries == 0) c.rtt.sample(static_cast<std::uint32_t>(time::to_ns(time::now() - c.rtt_start) / 1000));
            established(c);
            c.ack_now = true;
            deliver_data(c, s);
            output(c);
        } else {
            // Simultaneous open (RFC 9293 3.5, figure 8): SYN-ACK with our ISS.
            set_state(c, State::SynReceived);
            c.snd_nxt = c.iss;
            output(c);
        }
        return;
    }

    // PAWS (RFC 7323 5.3): an old timestamp marks an old duplicate.
    if (c.timestamps && s.options.has_timestamps && !s.has(flag::kRst) &&
        static_cast<std::int32_t>(s.options.ts_value - c.ts_recent) < 0) {
        ++g_stats.paws_drops;
        ack_invalid(c, s);
        output(c);
        return;
    }

    // Acceptability (RFC 9293 3.10.7.4 first step).
    std::uint32_t wnd = receive_space(c);
    std::uint32_t len = s.length();
    bool acceptable;
    if (len == 0) acceptable = wnd == 0 ? s.seq == c.rcv_nxt : in_range(s.seq, c.rcv_nxt, c.rcv_nxt + wnd);
    else acceptable = wnd != 0 && (in_range(s.seq, c.rcv_nxt, c.rcv_nxt + wnd) ||
                                   in_range(s.seq + len - 1, c.rcv_nxt, c.rcv_nxt + wnd));
    if (c.state == State::SynReceived && s.has(flag::kSyn) && !s.has(flag::kAck) && s.seq == c.irs) {
        // The peer retransmitted its SYN: our SYN-ACK was lost.
        c.snd_nxt = c.iss;
        c.rtt_timing = false; // Karn: the ACK may answer either SYN-ACK
        output(c);
        return;
    }
    if (!acceptable) {
        ++g_stats.out_of_window;
        if (!s.has(flag::kRst)) {
            ack_invalid(c, s);
            output(c);
        }
        return;
    }
    // RST (RFC 5961 3.2): only the exact RCV.NXT resets; elsewhere in the
    // window it earns a challenge ACK.
    if (s.has(flag::kRst)) {
        ++g_stats.resets_received;
        if (s.seq != c.rcv_nxt) {
            challenge_ack(c);
            return;
        }
        if (c.state == State::SynReceived && c.listener) {
            enter_closed(c, false, Error::ConnectionReset); // back to LISTEN: the listener is still there
        } else if (c.state == State::SynReceived) {
            enter_closed(c, true, Error::ConnectionRefused);
        } else if (c.state == State::Closing || c.state == State::LastAck || c.state == State::TimeWait) {
            enter_closed(c, false, Error::ConnectionReset);
        } else {
            enter_closed(c, true, Error::ConnectionReset);
        }
        return;
    }
    // SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
    if (s.has(flag::kSyn)) {
        challenge_ack(c);
        return;
    }
    if (!s.has(flag::kAck)) return;

    if (c.state == State::SynReceived) {
        if (!(c.snd_una < s.ack && s.ack <= c.snd_max)) {
            send_reset_for(t, s);
            return;
        }
        if (c.listener && c.listener->queued >= c.listener->backlog) {
            // Accept queue full: stay half-open; the SYN-ACK is
            // retransmitted and the peer's ACK for it retried.
            ++g_stats.accept_queue_full;
            return;
        }
        c.snd_wnd = static_cast<std::uint32_t>(s.window) << c.snd_scale;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = s.seq;
        c.snd_wl2 = s.ack;
        established(c);
    }
    if (process_ack(c, s) == AckCheck::Discard) {
        output(c);
        return;
    }
    if (!c.in_use || c.state == State::Closed) return;

    switch (c.state) {
    case State::FinWait1:
        if (fin_acked(c)) {
            set_state(c, State::FinWait2);
            // An orphan must not wait forever for the peer's FIN.
            if (!c.user_owned) set_deadline(c.close_at, time::now() + ms(CONFIG_TCP_TIME_WAIT_MS));
        }
        break;
    case State::Closing:
        if (fin_acked(c)) enter_time_wait(c);
        break;
    case State::LastAck:
        if (fin_acked(c)) {
            enter_closed(c, false, Error::NotConnected);
            return;
        }
        break;
    case State::TimeWait:
        if (s.has(flag::kFin)) { // a retransmitted FIN: ACK it, restart 2MSL
            c.ack_now = true;
            set_deadline(c.close_at, time::now() + ms(CONFIG_TCP_TIME_WAIT_MS));
        }
        output(c);
        return;
    default: break;
    }

    // Text (seventh step): ESTABLISHED, FIN-WAIT-1/2 take data.
    if (c.state == State::Established || c.state == State::FinWait1 || c.state == State::FinWait2) {
        if (!c.fin_received) deliver_data(c, s);
    }
    // FIN (eighth step): taken once all data before it is in. One that
    // arrives ahead of a hole is noted (its data waits out of order) and
    // taken when the hole fills; dropping it would make the peer send it
    // again on its retransmission timer after any loss near a stream's end.
    if (s.has(flag::kFin) && !c.fin_received) {
        Seq at = s.seq + static_cast<std::uint32_t>(s.payload.size());
        if (at == c.rcv_nxt || in_range(at, c.rcv_nxt, c.rcv_nxt + receive_space(c))) {
            c.fin_ahead = true;
            c.fin_ahead_at = at;
            if (at != c.rcv_nxt) c.ack_now = true; // out of order: a duplicate ACK at once
        }
    }
    // Data beyond a noted FIN contradicts it: forget it (a real FIN comes again).
    if (c.fin_ahead && c.rcv_nxt > c.fin_ahead_at) c.fin_ahead = false;
    if (c.fin_ahead && !c.fin_received && c.rcv_nxt == c.fin_ahead_at) {
        c.fin_ahead = false;
        c.rcv_nxt += 1;
        c.fin_received = true;
        c.ack_now = true;
        switch (c.state) {
        case State::SynReceived:
        case State::Established: set_state(c, State::CloseWait); break;
        case State::FinWait1:
            if (fin_acked(c)) enter_time_wait(c);
            else set_state(c, State::Closing);
            break;
        case State::FinWait2: enter_time_wait(c); break;
        default: break;
        }
        wake(c);
    }
    if (c.keepalive && c.state == State::Established)
        set_deadline(c.keepalive_at, time::now() + ms(CONFIG_TCP_KEEPALIVE_S * 1000ull));
    output(c);
}

namespace {
// Header prediction for bulk receive (after Van Jacobson): the in-order
// next data segment of an established connection that fits the receive
// ring, with nothing held out of order, is copied into the ring's free
// space while its checksum is summed, so its payload is read once. Until
// deliver_data() advances the tail nothing reads those bytes, so a
// segment that then fails the checksum (or any later check) leaves no
// trace. Returns the payload's sum, or nothing if the segment does not
// qualify.
std::optional<std::uint32_t> place_in_order(Connection& c, Segment& s) {
    constexpr std::uint8_t kOther = flag::kSyn | flag::kFin | flag::kRst | flag::kUrg;
    if (c.state != State::Established || (s.flags & kOther) || !s.has(flag::kAck) || s.seq != c.rcv_nxt ||
        s.payload.empty() || s.payload.size() > receive_space(c) || !c.ooo.empty())
        return std::nullopt;
    std::uint32_t n = static_cast<std::uint32_t>(s.payload.size());
    std::uint32_t at = (c.recv_head + c.recv_len) & (kReceiveBuffer - 1);
    std::uint32_t first = std::min(n, kReceiveBuffer - at);
    std::byte* ring = c.receive_buffer.data();
    std::uint32_t sum = ipv4::checksum_copy({ring + at, first}, s.payload.first(first));
    sum += ipv4::checksum_at_offset(ipv4::checksum_copy({ring, n - first}, s.payload.subspan(first)), first);
    s.payload_placed = true;
    ++g_stats.predicted;
    return sum;
}

// ---------------------------------------------------------------- merged ACKs

// A peer that acknowledges every segment (QEMU's SLIRP does) sends a run
// of pure ACKs, each superseding the one before: the last says all they
// did, bar the count that slow start goes by. While the network thread's
// receive batch lasts, the engine holds such an ACK back and lets the next
// take its place, and applies the last at the batch's end: one pass of ACK
// processing, RTT and congestion update, wake-up and output for the run
// instead of one each (Linux's GRO does this for data, not ACKs). Anything
// else for the connection, or a timer, applies a held ACK first, so every
// segment is still processed in arrival order. Threads calling the API
// meanwhile see the state as it was before the held ACK, as if it had
// arrived a moment later.

// A held ACK is applied once it stands for kAckMergeLimit: a batch lasts
// as long as frames keep coming, and those of other connections must not
// hold this one's window still.

// Connections holding an ACK. A slot freed while it held one (its count
// cleared) and held again may be listed twice: applying skips repeats.
constinit std::array<Connection*, kMaxConnections> g_holding{};
constinit unsigned g_holding_count = 0;

// An ACK that only moves SND.UNA on (past a held one), of an established
// connection outside loss recovery, in order, and not older by its
// timestamp than what it would supersede. Duplicate ACKs, SACK blocks,
// window probes' answers and anything with data or flags are processed
// one by one, as they come.
bool mergeable(const Connection& c, const Segment& s) {
    if (c.state != State::Established || (s.flags & ~flag::kPsh) != flag::kAck || !s.payload.empty() ||
        s.options.sack_count || s.window == 0 || s.seq != c.rcv_nxt || c.cc.in_recovery || c.cc.dup_acks ||
        !c.sacked.empty())
        return false;
    const Connection::HeldAck& h = c.held_ack;
    if (!((h.count ? h.ack : c.snd_una) < s.ack && s.ack <= c.snd_max)) return false;
    if (!c.timestamps) return true;
    std::uint32_t newest = h.count ? h.ts_value : c.ts_recent;
    return s.options.has_timestamps && static_cast<std::int32_t>(s.options.ts_value - newest) >= 0;
}

void apply_held_ack(Connection& c);

// Holds `s` back for the batch's end (applied at once if it makes
// kAckMergeLimit); false if the table of holders is full.
bool hold_ack(Connection& c, const Segment& s) {
    Connection::HeldAck& h = c.held_ack;
    if (h.count) {
        ++g_stats.acks_merged;
    } else {
        if (g_holding_count == g_holding.size()) return false;
        g_holding[g_holding_count++] = &c;
        netdev::schedule_after_batch(g_batch_ack_work);
    }
    h.seq = s.seq;
    h.ack = s.ack;
    h.window = s.window;
    h.has_timestamps = s.options.has_timestamps;
    h.ts_value = s.options.ts_value;
    h.ts_echo = s.options.ts_echo;
    if (++h.count == kAckMergeLimit) apply_held_ack(c);
    return true;
}

void apply_held_ack(Connection& c) {
    Connection::HeldAck h = c.held_ack;
    c.held_ack.count = 0;
    Segment s;
    s.source_port = c.tuple.remote_port;
    s.destination_port = c.tuple.local_port;
    s.seq = h.seq;
    s.ack = h.ack;
    s.flags = flag::kAck;
    s.window = h.window;
    s.options.has_timestamps = h.has_timestamps;
    s.options.ts_value = h.ts_value;
    s.options.ts_echo = h.ts_echo;
    s.acks = h.count;
    input_segment(c.tuple, s, &c);
}
} // namespace

// The batch ended, or a timer is due: every held ACK is applied.
void apply_held_acks() {
    for (unsigned i = 0; i < g_holding_count; ++i) {
        Connection& c = *g_holding[i];
        if (c.held_ack.count) apply_held_ack(c);
    }
    g_holding_count = 0;
}

// `may_hold`: called from the network thread's receive batch, whose end
// applies what is held.
void handle_segment(ipv4::Address source, ipv4::Address destination, std::span<const std::byte> bytes,
                    bool may_hold) {
    ++g_stats.segments_received;
    Segment s;
    if (!parse(bytes, s).ok()) {
        // A damaged segment counts as damaged, whatever it now looks like.
        ++(checksum(source.value, destination.value, bytes) != 0 ? g_stats.bad_checksum : g_stats.malformed);
        return;
    }
    Tuple t{destination.value, source.value, s.destination_port, s.source_port};
    Connection* c = lookup(t);
    std::optional<std::uint32_t> payload_sum = c ? place_in_order(*c, s) : std::nullopt;
    std::uint16_t sum = payload_sum ? checksum(source.value, destination.value, bytes.first(s.header_length),
                                               bytes.size(), *payload_sum)
                                    : checksum(source.value, destination.value, bytes);
    if (sum != 0) {
        ++g_stats.bad_checksum;
        return;
    }
    if (s.source_port == 0 || s.destination_port == 0 || source.is_broadcast() || source.is_multicast() ||
        destination.is_broadcast() || destination.is_multicast()) {
        ++g_stats.malformed;
        return;
    }
    if (c) {
        ++c->counters.segments_in;
        if (kAckMerge && may_hold && mergeable(*c, s) && hold_ack(*c, s)) return;
        if (c->held_ack.count) {
            apply_held_ack(*c);
            c = lookup(t); // still there: a pure ACK does not end a connection, but cheap to be sure
        }
    }
    input_segment(t, s, c);
    arm_timer_callout();
}

void ipv4_handler(const ipv4::Header& header, netdev::PacketRef packet, void*) {
    g_lock.lock();
    handle_segment(header.source, header.destination, packet->data(), true);
    g_lock.unlock();
}

} // namespace tessera::tcp
