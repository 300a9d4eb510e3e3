// Segments out: the window offered, building and sending a segment from
// the send ring, what output() sends now (data, FIN, ACKs, SWS avoidance),
// retransmission of the first hole, challenge ACKs and stateless RSTs.
#include <algorithm>
#include <base/word_copy.hpp>
#include <tcp/window.hpp>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

namespace {
std::uint16_t advertised_window(Connection& c, bool syn) {
    std::uint8_t scale = syn ? 0 : c.rcv_scale; // a SYN's window is never scaled (RFC 7323 2.2)
    std::uint32_t w = window_to_offer(receive_space(c), c.rcv_adv, scale, c.mss, kReceiveBuffer);
    c.rcv_adv = w >> scale << scale; // rounding a shrunk remainder down by less than one unit (RFC 7323 2.4)
    return static_cast<std::uint16_t>(w >> scale);
}
} // namespace

// ---------------------------------------------------------------- output

namespace {
// DF on segments only where ICMP errors reach us: without the icmp
// library a router's "fragmentation needed" would go unheard and the
// connection would stall, so routers may fragment instead.
#ifdef CONFIG_LIB_ICMP
constexpr bool kPathMtuDiscovery = true;
#else
constexpr bool kPathMtuDiscovery = false;
#endif
} // namespace

// Sends one segment. seq, flags and payload as given; ACK and window
// filled from the connection.
Sent transmit(Connection& c, Seq seq, std::uint8_t flags, std::uint32_t data_offset, std::uint32_t data_len) {
    auto p = netdev::allocate();
    if (!p.ok()) {
        // Held like a full driver queue: netdev schedules resume_held()
        // when a buffer is freed.
        ++g_stats.no_buffer;
        c.transmit_held = true;
        return Sent::Held;
    }
    netdev::PacketRef packet = std::move(p.value());
    Segment s;
    s.source_port = c.tuple.local_port;
    s.destination_port = c.tuple.remote_port;
    s.seq = seq;
    bool syn = flags & flag::kSyn;
    if (c.state != State::SynSent || (flags & flag::kAck)) {
        flags |= flag::kAck;
        s.ack = c.rcv_nxt;
    }
    s.flags = flags;
    s.window = advertised_window(c, syn);
    Options& o = s.options;
    if (syn) {
        o.mss = static_cast<std::uint16_t>(c.mss + (c.timestamps ? 12 : 0));
        // Offer our scale on the SYN; send it on the SYN-ACK only if the
        // peer offered one (RFC 7323 2.2).
        o.has_window_scale = c.state == State::SynSent || c.window_scaling;
        o.window_scale = c.rcv_scale;
        o.sack_permitted = c.sack;
    }
    if (c.timestamps) {
        o.has_timestamps = true;
        o.ts_value = now_ms();
        o.ts_echo = c.ts_recent;
    }
    if (c.sack && !syn && !c.ooo.empty()) {
        unsigned room = c.timestamps ? 3 : 4; // 40 bytes of options at most
        // Data and options together stay within the MSS (RFC 6691; c.mss
        // already leaves room for timestamps): a full data segment carries
        // no blocks, or with DF set it would not fit the path.
        std::uint32_t spare = c.mss > data_len ? c.mss - data_len : 0;
        unsigned fit = spare >= 12 ? (spare - 4) / 8 : 0; // two NOPs, kind, length, 8 per block
        o.sack_count = static_cast<std::uint8_t>(c.ooo.blocks(o.sack.data(), std::min(room, fit)));
    }
    std::size_t header = kHeaderLength + options_length(o);
    std::uint32_t start = (c.send_head + data_offset) & (kSendBuffer - 1);
    // The payload goes at the same place within a word as its first byte
    // in the send ring, so that checksum_copy moves whole words without
    // shifting them together from two: a third fewer instructions per
    // byte. Up to 7 bytes less headroom still leaves room for IP with
    // options, Ethernet and the driver's header.
    constexpr std::size_t kLowest = netdev::kDefaultHeadroom - base::kWordMask;
    const auto ring_at = reinterpret_cast<std::uintptr_t>(c.send_buffer.data() + start);
    const auto payload_at = reinterpret_cast<std::uintptr_t>(packet->storage().data() + kLowest + header);
    VERIFY(packet->set_window(kLowest + ((ring_at - payload_at) & base::kWordMask), 0).ok());
    std::byte* out = packet->put(header + data_len);
    VERIFY(out);
    build(s, {out, header});
    // Payload from the send ring (at most two pieces), summed as it is
    // copied so it is read once.
    std::uint32_t first = std::min(data_len, kSendBuffer - start);
    std::byte* payload = out + header;
    std::uint32_t sum = ipv4::checksum_copy({payload, first}, {c.send_buffer.data() + start, first});
    if (data_len > first) // the ring wraps (rarely: a call saved per segment)
        sum += ipv4::checksum_at_offset(
            ipv4::checksum_copy({payload + first, data_len - first}, {c.send_buffer.data(), data_len - first}), first);
    fill_checksum(c.tuple.local_address, c.tuple.remote_address, {out, header}, header + data_len, sum);
    const ipv4::Address source{c.tuple.local_address}, destination{c.tuple.remote_address};
    ipv4::SendOptions send_options;
    send_options.dont_fragment = kPathMtuDiscovery && !c.may_fragment;
    auto r = g_output_hook ? g_output_hook(std::move(packet), source, destination, g_output_context)
                           : ipv4::send(c.path, std::move(packet), source, destination, ipv4::Protocol::Tcp, send_options);
    if (!r.ok() && r.error() == Error::Overloaded) {
        // Backpressure: the segment is rebuilt from the send ring later
        // (ack_now and the delayed-ACK state stay as they were: an ACK it
        // carried is still owed).
        ++g_stats.held_back;
        c.transmit_held = true;
        return Sent::Held;
    }
    c.ack_now = false;
    c.unacked_segments = 0;
    c.rcv_adv_at_ack = c.rcv_adv;
    c.delack_at = time::kNever;
    ++g_stats.segments_sent;
    ++c.counters.segments_out;
    if (!r.ok()) {
        ++g_stats.send_errors;
        return Sent::Lost;
    }
    return Sent::Yes;
}

// Sends a segment that belongs to no connection (a RST, a SYN cookie's
// SYN-ACK): nothing to hold back or resume, so a lost one is simply lost
// (the peer's retransmission is answered again). False if there was no
// packet buffer for it.
bool send_stateless(const Tuple& t, const Segment& s) {
    auto p = netdev::allocate();
    if (!p.ok()) {
        ++g_stats.no_buffer;
        return false;
    }
    netdev::PacketRef packet = std::move(p.value());
    const std::size_t header = kHeaderLength + options_length(s.options);
    std::byte* out = packet->put(header);
    build(s, {out, header});
    fill_checksum(t.local_address, t.remote_address, {out, header});
    ++g_stats.segments_sent;
    const ipv4::Address source{t.local_address}, destination{t.remote_address};
    auto r = g_output_hook ? g_output_hook(std::move(packet), source, destination, g_output_context)
                           : ipv4::send(std::move(packet), source, destination, ipv4::Protocol::Tcp);
    if (!r.ok()) ++g_stats.send_errors;
    return true;
}

// A RST in answer to a segment that has no connection (RFC 9293 3.10.7.1).
void send_reset_for(const Tuple& t, const Segment& in) {
    if (in.has(flag::kRst)) return;
    Segment s;
    s.source_port = t.local_port;
    s.destination_port = t.remote_port;
    if (in.has(flag::kAck)) {
        s.seq = in.ack;
        s.flags = flag::kRst;
    } else {
        s.seq = Seq(0);
        s.ack = in.seq + in.length();
        s.flags = flag::kRst | flag::kAck;
    }
    if (send_stateless(t, s)) ++g_stats.resets_sent;
}

// Sends what the windows allow, the FIN when due, or a pure ACK when one
// is owed (RFC 9293 3.8.6, RFC 5681). No Nagle: a short segment goes out
// when it is all there is to send (an echo server wants that).
void output(Connection& c) {
    if (c.state == State::SynSent || c.state == State::SynReceived) {
        if (c.snd_nxt == c.iss) { // SYN (again, after a timeout)
            // Held: SND.NXT stays at the ISS, so resume_held() sends it.
            // The timer runs all the same: a half-open connection must not
            // wait for good on a queue that never drains.
            if (transmit(c, c.iss, c.state == State::SynSent ? flag::kSyn : flag::kSyn | flag::kAck, 0, 0) ==
                Sent::Held) {
                start_rexmt(c);
                return;
            }
            // Time the first SYN-ACK (process_ack samples when its ACK
            // arrives): without timestamps it is a passive open's only RTT
            // sample before data, and without it the first RTO would be the
            // initial 1 s. Only the first transmission (snd_max still at
            // iss); a retransmitted one clears the timing (Karn). An active
            // open times its SYN in SYN-SENT.
            if (c.state == State::SynReceived && c.snd_max == c.iss && !c.timestamps) {
                c.rtt_timing = true;
                c.rtt_seq = c.iss;
                c.rtt_start = time::now();
            }
            c.snd_nxt = c.iss + 1;
            c.snd_max = seq_max(c.snd_max, c.snd_nxt);
            start_rexmt(c);
        } else if (c.ack_now && c.state == State::SynReceived) {
            transmit(c, c.snd_nxt, flag::kAck, 0, 0);
        }
        return;
    }
    if (c.state == State::Closed || c.state == State::Listen) return;
    bool sent = false;
    bool can_send = c.state == State::Established || c.state == State::CloseWait || c.state == State::FinWait1 ||
                    c.state == State::Closing || c.state == State::LastAck;
    while (can_send) {
        std::uint32_t window = std::min(c.snd_wnd, c.cc.cwnd);
        std::uint32_t in_flight = static_cast<std::uint32_t>(c.snd_nxt - c.snd_una);
        // In recovery the inflated cwnd counts against everything outstanding.
        if (c.snd_nxt != c.snd_max && c.cc.in_recovery) in_flight = flight(c);
        std::uint32_t offset = static_cast<std::uint32_t>(c.snd_nxt - c.snd_data);
        if (offset > c.send_len) break; // only the FIN is left, and it is sent
        // SACK: skip what the peer holds when going back over old data.
        if (c.snd_nxt < c.snd_max && c.sacked.contains(c.snd_nxt)) {
            c.snd_nxt = seq_min(c.sacked.first_missing(c.snd_nxt), c.snd_max);
            continue;
        }
        std::uint32_t left = c.send_len - offset;
        std::uint32_t room = window > in_flight ? window - in_flight : 0;
        std::uint32_t n = std::min({left, room, c.mss});
        bool retransmission = c.snd_nxt < c.snd_max;
        if (retransmission) {
            // Retransmitting: stop at the next SACKed block.
            Seq stop = c.sacked.next_covered(c.snd_nxt, c.snd_max);
            n = std::min<std::uint32_t>(n, static_cast<std::uint32_t>(stop - c.snd_nxt));
        }
        // The FIN rides on the segment that carries the last byte (or goes
        // alone), the first time or again when going back over it.
        bool fin = c.fin_queued && offset + n == c.send_len;
        if (n == 0 && !fin) break;
        // Sender SWS avoidance (RFC 9293 3.8.6.2.1): a short segment only if
        // it is all we have, or the window is at least half the largest
        // the peer offered.
        // Never for a retransmission: a segment cut short at SND.MAX must
        // go (holding it back left a connection whose tail was lost with
        // a running timer that never sent anything).
        if (!retransmission && n < c.mss && n < left && n < c.max_snd_wnd / 2) break;
        std::uint8_t flags = (fin ? flag::kFin : 0) | (n && offset + n == c.send_len ? flag::kPsh : 0);
        // An empty pool or a full driver queue holds the segment back
        // (nothing is accounted; resume_held() sends it when there is
        // room). One a lower layer refused otherwise is lost like one
        // dropped on the wire: account it as sent and let the
        // retransmission timer (armed below) recover it. Stopping without
        // a timer would leave a connection with nothing to wake it.
        Sent result = transmit(c, c.snd_nxt, flags, offset, n);
        if (result == Sent::Held) break;
        bool ok = result == Sent::Yes;
        if (retransmission) {
            ++c.counters.retransmits;
            ++g_stats.retransmits;
        } else {
            if (!c.rtt_timing && !c.timestamps) {
                c.rtt_timing = true;
                c.rtt_seq = c.snd_nxt;
                c.rtt_start = time::now();
            }
        }
        c.snd_nxt += n + (fin ? 1 : 0);
        c.snd_max = seq_max(c.snd_max, c.snd_nxt);
        start_rexmt(c);
        c.persist_at = time::kNever;
        sent = true;
        if (fin || !ok) break;
    }
    // Data waiting, nothing in flight to bring an ACK, and the window
    // (zero, or too small to use) keeps it back: probe (RFC 9293 3.8.6.1).
    // Not when a full queue held it back: resume_held() sends it, and a
    // probe would only earn an ACK that runs output into the full queue.
    if (can_send && !sent && !c.transmit_held && flight(c) == 0 &&
        c.send_len > static_cast<std::uint32_t>(c.snd_nxt - c.snd_data)) {
        if (c.persist_at == time::kNever)
            set_deadline(c.persist_at, time::now() + us(c.rtt.rto()) * (1u << c.persist_shift));
    }
    if (!sent && c.ack_now) transmit(c, c.snd_nxt, flag::kAck, 0, 0);
}

// Fast retransmit / NewReno partial ACK: the first unacknowledged (and,
// with SACK, un-SACKed) segment goes out now, whatever the windows say
// (RFC 5681 3.2 step 3, RFC 6582 3.2 step 4).
void retransmit_first(Connection& c) {
    Seq from = c.sacked.contains(c.snd_una) ? c.sacked.first_missing(c.snd_una) : c.snd_una;
    if (from >= c.snd_max) return;
    std::uint32_t offset = static_cast<std::uint32_t>(from - c.snd_data);
    if (from < c.snd_data) return; // only a SYN is outstanding
    if (offset >= c.send_len) {
        // Only the FIN is missing.
        if (fin_sent(c) && transmit(c, from, flag::kFin, offset, 0) == Sent::Held) c.retransmit_held = true;
        return;
    }
    Seq stop = c.sacked.next_covered(from, c.snd_max);
    std::uint32_t n = std::min({c.mss, c.send_len - offset, static_cast<std::uint32_t>(stop - from)});
    bool fin = fin_sent(c) && offset + n == c.send_len;
    // Held: resume_held() calls here again rather than leaving the hole to
    // the timer. Any other local failure is a loss the timer recovers.
    if (transmit(c, from, fin ? flag::kFin : 0, offset, n) == Sent::Held) {
        c.retransmit_held = true;
        return;
    }
    ++c.counters.retransmits;
    ++g_stats.retransmits;
    c.rexmt_at = time::kNever;
    start_rexmt(c);
}

namespace {
// RFC 5961 7: about CONFIG_TCP_CHALLENGE_ACK_LIMIT challenge ACKs per
// second, stack-wide. The second starts with the first challenge after
// the previous one ran out. Each second's budget is drawn at random from
// [limit/2, 3*limit/2): with a fixed budget an off-path host could
// exhaust it and count the challenges that are missing to learn whether
// a guessed connection exists (CVE-2016-5696; Linux draws it the same
// way). Under g_lock.
constinit time::Ticks g_challenge_window_start = 0;
constinit std::uint32_t g_challenges_in_window = 0;
constinit std::uint32_t g_challenge_budget = 0;

bool challenge_allowed() {
    if constexpr (CONFIG_TCP_CHALLENGE_ACK_LIMIT == 0) {
        return true;
    } else {
        constexpr std::uint32_t kLimit = CONFIG_TCP_CHALLENGE_ACK_LIMIT;
        time::Ticks now = time::now();
        if (g_challenges_in_window == 0 || now - g_challenge_window_start >= time::from_ns(1'000'000'000)) {
            g_challenge_window_start = now;
            g_challenges_in_window = 0;
            g_challenge_budget = (kLimit + 1) / 2 + ipv4::random32() % kLimit;
        }
        if (g_challenges_in_window >= g_challenge_budget) return false;
        ++g_challenges_in_window;
        return true;
    }
}
} // namespace

// A challenge ACK (RFC 5961 3.2, 4.2, 5.2): tells a genuine peer where we
// are; a blind attacker learns nothing usable. Rate limited (above).
void challenge_ack(Connection& c) {
    if (!challenge_allowed()) {
        ++g_stats.challenge_acks_suppressed;
        return;
    }
    ++g_stats.challenge_acks;
    ++c.counters.challenge_acks;
    transmit(c, c.snd_nxt, flag::kAck, 0, 0);
}

// Asks for an ACK in answer to an unacceptable segment (RFC 9293
// 3.10.7.4). To one that occupies no sequence space, at most one per
// TCP_INVALID_ACK_INTERVAL_MS on this connection: two ends whose
// sequence numbers disagree (a forged segment desynchronized them) would
// otherwise ACK each other's ACKs for ever, and on one hart that storm
// never lets a thread run again. Data is always answered: a
// retransmission of data already received needs its ACK.
void ack_invalid(Connection& c, const Segment& s) {
    if (CONFIG_TCP_INVALID_ACK_INTERVAL_MS && s.length() == 0) {
        time::Ticks now = time::now();
        if (now < c.invalid_ack_after) {
            ++g_stats.invalid_acks_suppressed;
            return;
        }
        c.invalid_ack_after = now + ms(CONFIG_TCP_INVALID_ACK_INTERVAL_MS);
    }
    c.ack_now = true;
}

} // namespace tessera::tcp
