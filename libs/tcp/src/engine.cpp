// The TCP engine: segment arrival (RFC 9293 3.10.7), output, timers and
// the API. One sync::Mutex (g_lock) protects everything; it is taken by API
// threads and by the network thread (which runs ipv4's handler and our
// timer work inside netdev's g_dispatch). Segments are sent with it held
// (ipv4 and ARP locks nest inside). No thread ever waits with it held:
// blocking calls record the connection's event counter, drop the lock and
// wait on the connection's queue while the counter is unchanged.
#include <algorithm>
#include <arch/csr.hpp>
#include <base/endian.hpp>
#include <base/word_copy.hpp>
#include <bit>
#include <cstring>
#include <fdt/fdt.hpp>
#include <optional>
#include <utility>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <plat/machine.hpp>
#include <sync/mutex.hpp>
#include <tcp/isn.hpp>
#include <tcp/syn_cookie.hpp>
#include <tcp/window.hpp>
#include <time/callout.hpp>
#include "engine.hpp"

namespace tessera::tcp {

namespace {
using base::Error;

constexpr unsigned kMaxConnections = CONFIG_TCP_MAX_CONNECTIONS;
constexpr unsigned kBuckets = std::bit_ceil(kMaxConnections * 2u);
constexpr unsigned kMaxKeepaliveProbes = 9;
constexpr std::uint16_t kEphemeralFirst = 49152;

sync::Mutex g_lock("tcp");
constinit std::array<Connection, kMaxConnections> g_connections{};
constinit std::array<Listener, CONFIG_TCP_MAX_LISTENERS> g_listeners{};
constinit std::byte g_send_buffers[kMaxConnections][kSendBuffer]{};
constinit std::byte g_receive_buffers[kMaxConnections][kReceiveBuffer]{};
constinit std::array<Connection*, kBuckets> g_buckets{};
constinit Stats g_stats{};
constinit std::uint32_t g_hash_salt = 0;
constinit std::uint16_t g_next_port = kEphemeralFirst;
constinit bool g_started = false;
constinit OutputHook g_output_hook = nullptr;
constinit void* g_output_context = nullptr;

// Timers: one callout fires in interrupt context and schedules
// g_timer_work; the network thread runs the expired timers under g_lock
// and re-arms the callout. Invariant: the callout is armed at
// g_callout_at, which is never later than any connection's earliest
// deadline. set_deadline() keeps it so in O(1) (it only ever pulls the
// callout earlier); a deadline cleared or moved later leaves the callout
// where it is, and the firing that then finds nothing due re-arms it for
// the true earliest deadline. So the table is scanned once per firing,
// not once per segment or call (that scan was 5% of a connection's cost).
void timer_fired(void*);
void timer_work(void*);
constinit time::Callout g_callout(timer_fired, nullptr);
constinit netdev::Work g_timer_work{timer_work, nullptr};
constinit time::Ticks g_callout_at = time::kNever;
constinit bool g_callout_moved = false; // g_callout_at changed, start_at pending

// Under g_lock: every deadline that is not kNever is set through here.
void set_deadline(time::Ticks& field, time::Ticks at) {
    field = at;
    if (at < g_callout_at) {
        g_callout_at = at;
        g_callout_moved = true;
    }
}

time::Ticks ms(std::uint64_t n) { return time::from_ns(n * 1'000'000); }
time::Ticks us(std::uint64_t n) { return time::from_ns(n * 1'000); }
std::uint32_t now_ms() { return static_cast<std::uint32_t>(time::to_ns(time::now()) / 1'000'000); }

// ---------------------------------------------------------------- lookup

unsigned bucket_of(const Tuple& t) {
    std::uint32_t h = t.remote_address * 0x9e3779b1u ^ (t.remote_port << 16 | t.local_port) * 0x85ebca6bu ^
                      t.local_address ^ g_hash_salt;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h & (kBuckets - 1);
}

Connection* lookup(const Tuple& t) {
    for (Connection* c = g_buckets[bucket_of(t)]; c; c = c->hash_next)
        if (c->tuple == t) return c;
    return nullptr;
}

void hash_insert(Connection& c) {
    unsigned b = bucket_of(c.tuple);
    c.hash_next = g_buckets[b];
    g_buckets[b] = &c;
}

void hash_remove(Connection& c) {
    for (Connection** p = &g_buckets[bucket_of(c.tuple)]; *p; p = &(*p)->hash_next)
        if (*p == &c) {
            *p = c.hash_next;
            return;
        }
}

Listener* find_listener(std::uint16_t port) {
    for (auto& l : g_listeners)
        if (l.in_use && l.port == port) return &l;
    return nullptr;
}

// ---------------------------------------------------------------- events

// `one`: the event is a single item only one waiter can take (a connection
// queued for accept), so one waiter is woken, not every thread of a pool
// (a woken waiter that finds the item gone waits again, and a thread
// between its check and its wait sees the counter move and does not
// sleep, so the item is never left with every waiter asleep).
void notify(Waitable& w, std::uint32_t events, bool one = false) {
    w.events.fetch_add(1, std::memory_order_release);
    if (one) sched::wake_one(w.waiters);
    else sched::wake_all(w.waiters);
    if (w.notify) w.notify(w.notify_context, events);
}

std::uint32_t readiness(const Connection& c);
void wake(Connection& c) { notify(c.wait, readiness(c)); }

struct WaitArg {
    const std::atomic<std::uint32_t>* events;
    std::uint32_t seen;
};
bool still_wait(void* p) {
    auto* a = static_cast<WaitArg*>(p);
    return a->events->load(std::memory_order_acquire) == a->seen;
}

void arm_timer_callout();

// Drops g_lock, waits for w's next event (or the deadline), retakes it.
// WouldBlock for a deadline already passed, TimedOut when it passes.
Error wait_for_event(Waitable& w, time::Ticks deadline, bool waited_before) {
    if (time::now() >= deadline) return waited_before ? Error::TimedOut : Error::WouldBlock;
    WaitArg arg{&w.events, w.events.load(std::memory_order_acquire)};
    // What the call armed so far (a connect's SYN timer) must run while it
    // sleeps: the guard only arms the callout when the call returns.
    arm_timer_callout();
    g_lock.unlock();
    auto r = sched::wait(w.waiters, deadline, still_wait, &arg);
    g_lock.lock();
    return r.ok() ? Error::Again : Error::TimedOut;
}

// ---------------------------------------------------------------- windows

std::uint32_t receive_space(const Connection& c) { return kReceiveBuffer - c.recv_len; }

std::uint16_t advertised_window(Connection& c, bool syn) {
    std::uint8_t scale = syn ? 0 : c.rcv_scale; // a SYN's window is never scaled (RFC 7323 2.2)
    std::uint32_t w = window_to_offer(receive_space(c), c.rcv_adv, scale, c.mss, kReceiveBuffer);
    c.rcv_adv = w >> scale << scale; // rounding a shrunk remainder down by less than one unit (RFC 7323 2.4)
    return static_cast<std::uint16_t>(w >> scale);
}

// rcv_adv is relative to RCV.NXT: consumption of the window by data moves
// the right edge's distance.
void consume_advertised(Connection& c, std::uint32_t n) { c.rcv_adv = c.rcv_adv > n ? c.rcv_adv - n : 0; }

std::uint32_t flight(const Connection& c) { return static_cast<std::uint32_t>(c.snd_max - c.snd_una); }

// ---------------------------------------------------------------- output

void flush_batch_acks(void*);
constinit netdev::Work g_batch_ack_work{flush_batch_acks, nullptr};

// DF on segments only where ICMP errors reach us: without the icmp
// library a router's "fragmentation needed" would go unheard and the
// connection would stall, so routers may fragment instead.
#ifdef CONFIG_LIB_ICMP
constexpr bool kPathMtuDiscovery = true;
#else
constexpr bool kPathMtuDiscovery = false;
#endif

// What became of a segment handed to transmit().
enum class Sent {
    Yes,
    Lost, // ipv4 or a lower layer refused it: a loss the timers recover
    Held, // no pool buffer, or the driver's queue was full: nothing went
          // out, and the connection is resumed when there is room again
          // (resume_held())
};

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

Seq data_end(const Connection& c) { return c.snd_data + c.send_len; }
bool fin_sent(const Connection& c) { return c.fin_queued && c.snd_max == data_end(c) + 1; }
bool fin_acked(const Connection& c) { return c.fin_queued && c.snd_una == data_end(c) + 1; }

// The user timeout (0: off) counted from `since`: whether it has passed,
// and a timer's time pulled in so that the give-up it brings is on time,
// not at the next backed-off expiry.
bool past_user_timeout(const Connection& c, time::Ticks since) {
    return c.user_timeout && time::now() - since >= c.user_timeout;
}
time::Ticks before_user_timeout(const Connection& c, time::Ticks since, time::Ticks at) {
    return c.user_timeout ? std::min(at, since + c.user_timeout) : at;
}

// Arms the retransmission timer unless it runs. Armed with no expiry since
// the last progress, it starts the user timeout's clock.
void start_rexmt(Connection& c) {
    if (c.rexmt_at != time::kNever) return;
    time::Ticks now = time::now();
    if (c.retries == 0) c.unacked_since = now;
    set_deadline(c.rexmt_at, before_user_timeout(c, c.unacked_since, now + us(c.rtt.rto())));
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

// ---------------------------------------------------------------- lifecycle

std::uint32_t readiness(const Connection& c) {
    std::uint32_t e = 0;
    if (c.recv_len || c.fin_received || c.error_set) e |= event::kReadable;
    bool can_write = c.state == State::Established || c.state == State::CloseWait;
    if ((can_write && !c.fin_queued && c.send_len < kSendBuffer) || c.error_set) e |= event::kWritable;
    if (c.state == State::Closed || c.state == State::TimeWait || c.error_set) e |= event::kClosed;
    return e;
}

void set_state(Connection& c, State s) {
    if (c.state == State::Established) --g_stats.established_now;
    if (c.state == State::TimeWait) --g_stats.time_wait_now;
    c.state = s;
    if (s == State::Established) ++g_stats.established_now;
    if (s == State::TimeWait) ++g_stats.time_wait_now;
}

void release_slot(Connection& c) {
    c.held_ack.count = 0;
    hash_remove(c); // no-op if enter_closed took it out already
    set_state(c, State::Closed);
    c.in_use = false;
    --g_stats.connections_in_use;
}

void unlink_from_listener(Connection& c) {
    Listener* l = c.listener;
    if (!l) return;
    if (c.state == State::SynReceived) {
        --l->half_open;
    } else {
        for (Connection** p = &l->accept_head; *p; p = &(*p)->accept_next)
            if (*p == &c) {
                *p = c.accept_next;
                --l->queued;
                break;
            }
        l->accept_tail = nullptr;
        for (Connection* q = l->accept_head; q; q = q->accept_next) l->accept_tail = q;
    }
    c.listener = nullptr;
}

// The connection is over: CLOSED. The slot is freed now if nobody holds a
// handle, else when the handle is closed.
void enter_closed(Connection& c, bool has_error, Error e) {
    unlink_from_listener(c);
    if (has_error && !c.error_set) {
        c.error_set = true;
        c.error = e;
    }
    set_state(c, State::Closed);
    c.held_ack.count = 0;
    c.rexmt_at = c.delack_at = c.persist_at = c.keepalive_at = c.close_at = time::kNever;
    // Out of the lookup at once: a slot kept for its handle is CLOSED, and
    // segments for its tuple (a new SYN reusing it) must not find it.
    hash_remove(c);
    wake(c);
    if (!c.user_owned) release_slot(c);
}

void enter_time_wait(Connection& c) {
    set_state(c, State::TimeWait);
    c.rexmt_at = c.persist_at = c.keepalive_at = time::kNever;
    set_deadline(c.close_at, time::now() + ms(CONFIG_TCP_TIME_WAIT_MS));
    wake(c);
}

void reset_connection(Connection& c, Error e) {
    transmit(c, c.snd_nxt, flag::kRst | flag::kAck, 0, 0);
    ++g_stats.resets_sent;
    enter_closed(c, true, e);
}

Connection* allocate_slot(const Tuple& t) {
    for (auto& c : g_connections) {
        if (c.in_use) continue;
        // Reset the control block (not the buffers: they are overwritten before being read).
        auto index = static_cast<std::size_t>(&c - g_connections.data());
        c.send_buffer = std::span<std::byte>(g_send_buffers[index], kSendBuffer);
        c.receive_buffer = std::span<std::byte>(g_receive_buffers[index], kReceiveBuffer);
        c.state = State::Closed;
        c.in_use = true;
        c.user_owned = c.accepted = c.fin_queued = c.fin_received = c.fin_ahead = c.ack_now = c.keepalive = false;
        c.transmit_held = c.retransmit_held = false;
        c.timestamps = c.sack = c.window_scaling = c.rtt_timing = c.error_set = false;
        c.soft_error_set = c.may_fragment = false;
        c.tuple = t;
        c.path = {};
        c.listener = nullptr;
        c.hash_next = c.accept_next = nullptr;
        c.snd_wnd = c.max_snd_wnd = 0;
        c.snd_scale = c.rcv_scale = 0;
        c.send_head = c.send_len = c.recv_head = c.recv_len = c.rcv_adv = 0;
        c.mss = 536;
        c.rtt = RttEstimator(CONFIG_TCP_MIN_RTO_MS * 1000u);
        c.cc = {};
        c.cc_ops = &reno();
        c.sacked.clear();
        c.ooo.clear();
        c.retries = c.probes = c.unacked_segments = c.persist_shift = 0;
        c.ack_after_batch = false;
        c.held_ack.count = 0;
        c.rcv_adv_at_ack = 0;
        c.ts_recent = 0;
        c.rexmt_at = c.delack_at = c.persist_at = c.keepalive_at = c.close_at = time::kNever;
        c.invalid_ack_after = 0;
        c.user_timeout = c.unacked_since = c.probes_since = 0;
        c.wait.notify = nullptr;
        c.wait.notify_context = nullptr;
        c.counters = {};
        std::uint64_t clock_us = time::to_ns(time::now()) / 1000;
        c.iss = isn(t.local_address, t.local_port, t.remote_address, t.remote_port, clock_us);
        c.snd_una = c.snd_nxt = c.snd_max = c.iss;
        c.snd_data = c.iss + 1;
        hash_insert(c);
        ++g_stats.connections_in_use;
        return &c;
    }
    ++g_stats.table_full;
    return nullptr;
}

std::uint32_t route_mss(ipv4::Address remote) {
    auto r = ipv4::route(remote);
    std::uint32_t mtu = r.ok() && r.value().mtu ? r.value().mtu : 576;
    return mtu - 40;
}

// Scale so that the whole receive buffer can be advertised (RFC 7323 2.3).
std::uint8_t receive_scale() {
    std::uint8_t s = 0;
    while ((kReceiveBuffer >> s) > 65535) ++s;
    return s;
}

// SYN options (ours offered, the peer's in `o`): RFC 9293 3.7.1 (MSS),
// RFC 7323 (scale, timestamps both ways or not at all), RFC 2018.
void negotiate(Connection& c, const Options& o, bool we_offered_all) {
    std::uint32_t peer_mss = o.mss ? o.mss : 536;
    c.mss = std::min(peer_mss, route_mss(ipv4::Address{c.tuple.remote_address}));
    c.window_scaling = o.has_window_scale && we_offered_all;
    if (c.window_scaling) {
        c.snd_scale = o.window_scale;
        c.rcv_scale = receive_scale();
    } else {
        c.snd_scale = 0;
        c.rcv_scale = 0;
    }
    c.timestamps = o.has_timestamps && we_offered_all;
    if (c.timestamps) {
        c.ts_recent = o.ts_value;
        // A peer's MSS may be anything down to 1: below the option's 12
        // bytes this would wrap to 4 GiB, and the first data segment sent
        // would not fit a packet buffer (a kernel panic, from a handshake
        // anyone can forge).
        c.mss = c.mss > 12 ? c.mss - 12 : 0;
    }
    c.sack = o.sack_permitted && we_offered_all;
    if (c.mss < 64) c.mss = 64; // the floor for a tiny or wrapped MSS
    c.cc_ops->init(c.cc, c.mss, c.iss);
}

// ---------------------------------------------------------------- input

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

// ---------------------------------------------------------------- SYN cookies

#ifdef CONFIG_TCP_SYN_COOKIES
constexpr bool kSynCookies = true;
#else
constexpr bool kSynCookies = false;
#endif

void input_segment(const Tuple& t, const Segment& s, Connection* found);

struct SourceCounts {
    unsigned half_open = 0, total = 0;
};
SourceCounts connections_from(std::uint32_t remote_address) {
    SourceCounts n;
    for (auto& c : g_connections)
        if (c.in_use && c.tuple.remote_address == remote_address) {
            ++n.total;
            if (c.state == State::SynReceived) ++n.half_open;
        }
    return n;
}

CookieTuple cookie_tuple(const Tuple& t) {
    return {t.local_address, t.remote_address, t.local_port, t.remote_port};
}
std::uint32_t cookie_period_now() { return cookie_period(time::to_ns(time::now())); }

// The listener's SYN queue is full: a SYN-ACK whose sequence number is
// the cookie, and no state (tcp/syn_cookie.hpp).
void send_syn_cookie(Listener& l, const Tuple& t, const Segment& syn) {
    const std::uint32_t period = cookie_period_now();
    Segment s;
    s.source_port = t.local_port;
    s.destination_port = t.remote_port;
    s.seq = make_syn_cookie(cookie_tuple(t), syn.seq, syn.options.mss, period);
    s.ack = syn.seq + 1;
    s.flags = flag::kSyn | flag::kAck;
    s.window = static_cast<std::uint16_t>(representable_window(kReceiveBuffer, 0)); // a SYN's is never scaled
    Options& o = s.options;
    o.mss = static_cast<std::uint16_t>(route_mss(ipv4::Address{t.remote_address}));
    // Window scaling and SACK only where the timestamp brings them back.
    if (syn.options.has_timestamps) {
        const CookieOptions carried{syn.options.has_window_scale, syn.options.window_scale,
                                    syn.options.sack_permitted};
        o.has_window_scale = carried.has_window_scale;
        o.window_scale = receive_scale();
        o.sack_permitted = carried.sack_permitted;
        o.has_timestamps = true;
        o.ts_value = cookie_timestamp(now_ms(), carried);
        o.ts_echo = syn.options.ts_value;
    }
    if (!send_stateless(t, s)) return;
    ++g_stats.syn_cookies_sent;
    l.cookies_sent = true;
    l.cookie_period = period;
}

enum class CookieAnswer { NotOne, Taken, Dropped };

// An ACK for listener l with no connection: the answer to one of its SYN
// cookies? A valid one rebuilds the half-open connection the cookie
// stands for and completes it with this segment (data and FIN included).
// Dropped: valid, but the backlog, the source's limit or the table has no
// room now; the peer's retransmission may find some while the cookie is
// valid. Only checked while a cookie sent by this listener can be valid:
// otherwise an ACK is no answer to anything and gets its RST as ever.
CookieAnswer take_syn_cookie(Listener& l, const Tuple& t, const Segment& s) {
    if (!kSynCookies || !l.cookies_sent || !s.has(flag::kAck) || s.has(flag::kSyn) || s.has(flag::kRst))
        return CookieAnswer::NotOne;
    const std::uint32_t period = cookie_period_now();
    if (period - l.cookie_period > 1) return CookieAnswer::NotOne;
    const auto mss = check_syn_cookie(cookie_tuple(t), s.seq - 1, s.ack - 1, period);
    if (!mss) {
        ++g_stats.syn_cookies_rejected;
        return CookieAnswer::NotOne;
    }
    if (l.queued >= l.backlog) {
        ++g_stats.accept_queue_full;
        return CookieAnswer::Dropped;
    }
    if (connections_from(t.remote_address).total >= CONFIG_TCP_PER_SOURCE_TOTAL) {
        ++g_stats.syn_per_source;
        return CookieAnswer::Dropped;
    }
    Connection* c = allocate_slot(t);
    if (!c) return CookieAnswer::Dropped;
    ++g_stats.syn_cookies_accepted;
    c->listener = &l;
    ++l.half_open;
    ++g_stats.passive_opens;
    set_state(*c, State::SynReceived);
    c->iss = s.ack - 1;
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->snd_data = s.ack;
    c->irs = s.seq - 1;
    c->rcv_nxt = s.seq;
    c->snd_wl1 = c->irs;
    c->snd_wl2 = c->iss;
    Options o;
    o.mss = *mss;
    if (s.options.has_timestamps) {
        const CookieOptions carried = decode_cookie_timestamp(s.options.ts_echo);
        o.has_window_scale = carried.has_window_scale;
        o.window_scale = carried.window_scale;
        o.sack_permitted = carried.sack_permitted;
        o.has_timestamps = true;
        o.ts_value = s.options.ts_value;
    }
    negotiate(*c, o, true);
    c->rcv_adv = representable_window(kReceiveBuffer, 0); // what the SYN-ACK offered
    input_segment(t, s, c);
    return CookieAnswer::Taken;
}

// ---------------------------------------------------------------- segment arrival

// `found`: the connection of tuple t, or nullptr (the caller looked it up).
void input_segment(const Tuple& t, const Segment& s, Connection* found) {
    if (!found) {
        Listener* l = find_listener(t.local_port);
        if (l && take_syn_cookie(*l, t, s) != CookieAnswer::NotOne) return;
        if (!l || !s.has(flag::kSyn) || s.has(flag::kAck) || s.has(flag::kRst)) {
            // LISTEN ignores RSTs and answers ACKs with RST (RFC 9293 3.10.7.2).
            if (!l) ++g_stats.no_connection;
            send_reset_for(t, s);
            return;
        }
        // SYN flood protection: a bounded SYN queue per listener, with
        // SYN cookies beyond it (or drops, without them), and per-source
        // limits; every refusal counted.
        if (l->half_open >= CONFIG_TCP_SYN_QUEUE) {
            if (kSynCookies) send_syn_cookie(*l, t, s);
            else ++g_stats.syn_queue_full;
            return;
        }
        const SourceCounts source = connections_from(t.remote_address);
        if (source.half_open >= CONFIG_TCP_PER_SOURCE_HALF_OPEN || source.total >= CONFIG_TCP_PER_SOURCE_TOTAL) {
            ++g_stats.syn_per_source;
            return;
        }
        Connection* c = allocate_slot(t);
        if (!c) return;
        c->listener = l;
        ++l->half_open;
        ++g_stats.passive_opens;
        set_state(*c, State::SynReceived);
        c->irs = s.seq;
        c->rcv_nxt = s.seq + 1;
        c->snd_wnd = s.window; // never scaled on a SYN
        c->snd_wl1 = s.seq;
        c->snd_wl2 = c->iss;
        c->sack = true;
        negotiate(*c, s.options, true);
        output(*c);
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

// ---------------------------------------------------------------- ICMP errors

// The smallest path MTU acted on (Linux's min_pmtu). A smaller report
// lowers the MSS only this far, and the segments then go without DF so
// that a router may fragment them: a path that small is rarer than a
// forged report meant to cut a connection into tiny segments (RFC 5927 7).
constexpr std::uint32_t kMinPathMtu = 552;

// RFC 1191 7: a router that gives no MTU says only that the datagram was
// too big; the next plateau below its size is tried.
std::uint32_t plateau_below(std::uint32_t length) {
    constexpr std::uint16_t kPlateaus[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
    for (std::uint16_t p : kPlateaus)
        if (p < length) return p;
    return 68;
}

// Fragmentation needed (RFC 1191): the MSS follows the path MTU down, and
// what is in flight goes again at once in the new size, rather than when
// the retransmission timer expires: the router dropped every segment
// larger than the new MSS. Not a congestion signal. Returns whether the
// MSS fell.
bool path_mtu_reported(Connection& c, const ipv4::TransportError& e) {
    // Not before the handshake settles the MSS (negotiate() would undo
    // it); a SYN is small and no data is in flight.
    if (c.state == State::SynSent) return false;
    std::uint32_t mtu = e.next_hop_mtu ? e.next_hop_mtu : plateau_below(e.quoted_length);
    if (mtu >= e.quoted_length) return false; // the datagram fits: a stale or forged report
    if (mtu < kMinPathMtu) {
        mtu = kMinPathMtu;
        c.may_fragment = true;
    }
    std::uint32_t mss = mtu - ipv4::kHeaderLength - kHeaderLength - (c.timestamps ? 12 : 0);
    if (mss >= c.mss) return false;
    c.mss = mss;
    if (c.state == State::SynReceived) return true; // only a SYN-ACK in flight: nothing to resend smaller
    c.rtt_timing = false; // Karn: what is timed goes again
    c.snd_nxt = c.snd_una;
    output(c);
    return true;
}

// RFC 1122 4.2.3.9 and RFC 5927: an ICMP error about one of our segments.
// Believed only if it quotes a sequence number sent and not yet
// acknowledged (an off-path attacker must guess one). Port or protocol
// unreachable ends a connection attempt; in a synchronized connection it,
// like every other error but fragmentation needed, is soft: kept and
// reported if the connection times out (RFC 5927 5.2).
void icmp_error_locked(const ipv4::TransportError& e) {
    const std::byte* h = e.transport.data();
    Tuple t{e.source.value, e.destination.value, base::load_be16(h), base::load_be16(h + 2)};
    Seq seq{base::load_be32(h + 4)};
    Connection* c = lookup(t);
    if (!c || c->state == State::Listen || c->state == State::Closed || c->state == State::TimeWait ||
        seq < c->snd_una || !(seq < c->snd_max)) {
        ++g_stats.icmp_ignored;
        return;
    }
    ++g_stats.icmp_errors;
    constexpr std::uint8_t kUnreachable = 3, kProtocol = 2, kPort = 3, kFragmentationNeeded = 4;
    if (e.type == kUnreachable && e.code == kFragmentationNeeded) {
        if (path_mtu_reported(*c, e)) ++g_stats.path_mtu_reductions;
    } else if (e.type == kUnreachable && (e.code == kProtocol || e.code == kPort) && c->state == State::SynSent) {
        enter_closed(*c, true, Error::ConnectionRefused);
    } else {
        c->soft_error_set = true;
        c->soft_error = Error::Unreachable;
    }
}

void on_icmp_error(const ipv4::TransportError& e, void*) {
    if (e.transport.size() < 8) return;
    g_lock.lock();
    icmp_error_locked(e);
    arm_timer_callout();
    g_lock.unlock();
}

// ---------------------------------------------------------------- timers

void on_rexmt(Connection& c) {
    c.rexmt_at = time::kNever;
    bool out_of_time = past_user_timeout(c, c.unacked_since);
    if (++c.retries > CONFIG_TCP_MAX_RETRIES || out_of_time ||
        ((c.state == State::SynSent || c.state == State::SynReceived) && c.retries > 6)) {
        Error e = c.soft_error_set ? c.soft_error : Error::TimedOut; // what the network said, if it did
        if (c.state == State::SynSent) enter_closed(c, true, e);
        else reset_connection(c, e);
        return;
    }
    ++c.counters.timeouts;
    ++g_stats.timeouts;
    c.rtt.back_off();         // RFC 6298 5.5
    c.rtt_timing = false;     // Karn
    if (c.state != State::SynSent && c.state != State::SynReceived)
        c.cc_ops->on_timeout(c.cc, c.snd_max, flight(c));
    c.sacked.clear();         // RFC 2018 8: the receiver may have reneged
    c.snd_nxt = c.snd_una;    // go back N, starting with the oldest
    if (c.state == State::SynSent || c.state == State::SynReceived) {
        ++c.counters.retransmits;
        ++g_stats.retransmits;
    }
    output(c);
    start_rexmt(c);
}

// Window and keep-alive probes under the user timeout (as Linux applies
// it): the peer has answered none of them for that long. probes_since is
// when the first unanswered one went.
bool probes_timed_out(const Connection& c) { return c.probes && past_user_timeout(c, c.probes_since); }
void count_probe(Connection& c) {
    if (c.probes++ == 0) c.probes_since = time::now();
}
time::Ticks next_probe_at(const Connection& c, time::Ticks at) {
    return c.probes ? before_user_timeout(c, c.probes_since, at) : at;
}

void on_persist(Connection& c) {
    c.persist_at = time::kNever;
    bool waiting = c.send_len > static_cast<std::uint32_t>(c.snd_nxt - c.snd_data) && flight(c) == 0;
    if (!waiting) return;
    // Probing goes on for as long as the receiver answers (RFC 1122
    // 4.2.2.17). Unanswered probes count like retransmissions: a receiver
    // that died behind a closed window must not hold the connection for
    // good.
    if (c.probes > CONFIG_TCP_MAX_RETRIES || probes_timed_out(c)) {
        reset_connection(c, c.soft_error_set ? c.soft_error : Error::TimedOut);
        return;
    }
    // A window probe: one old byte (SND.UNA - 1, no data) so the receiver
    // must answer with its current window (RFC 9293 3.8.6.1).
    // A probe the full queue held back is not one: the next expiry sends
    // it without backing off further.
    if (transmit(c, c.snd_una - 1, flag::kAck, 0, 0) != Sent::Held) {
        count_probe(c);
        ++c.counters.zero_window_probes;
        if (c.persist_shift < 7) ++c.persist_shift;
    }
    set_deadline(c.persist_at, next_probe_at(c, time::now() + us(c.rtt.rto()) * (1u << c.persist_shift)));
}

void on_keepalive(Connection& c) {
    if (c.probes >= kMaxKeepaliveProbes || probes_timed_out(c)) {
        reset_connection(c, Error::TimedOut);
        return;
    }
    // Only a probe that went out counts against the peer.
    if (transmit(c, c.snd_una - 1, flag::kAck, 0, 0) != Sent::Held) count_probe(c);
    set_deadline(c.keepalive_at, next_probe_at(c, time::now() + ms(CONFIG_TCP_KEEPALIVE_S * 1000ull / 4 + 1)));
}

void run_timers() {
    time::Ticks now = time::now();
    for (auto& c : g_connections) {
        if (!c.in_use) continue;
        if (c.close_at <= now) {
            c.close_at = time::kNever;
            if (c.state == State::TimeWait || c.state == State::FinWait2) enter_closed(c, false, Error::NotConnected);
            continue;
        }
        if (c.rexmt_at <= now) on_rexmt(c);
        if (!c.in_use || c.state == State::Closed) continue;
        if (c.persist_at <= now) on_persist(c);
        if (c.keepalive_at <= now) on_keepalive(c);
        if (!c.in_use || c.state == State::Closed) continue;
        if (c.delack_at <= now) {
            c.delack_at = time::kNever;
            c.ack_now = true;
            ++g_stats.delayed_acks;
            output(c);
        }
    }
}

time::Ticks earliest_deadline() {
    time::Ticks t = time::kNever;
    for (auto& c : g_connections) {
        if (!c.in_use) continue;
        t = std::min({t, c.rexmt_at, c.delack_at, c.persist_at, c.keepalive_at, c.close_at});
    }
    return t;
}

// Under g_lock (the end of every segment and API call, and before an API
// call sleeps): applies what set_deadline() decided.
void arm_timer_callout() {
    if (!g_callout_moved) return;
    g_callout_moved = false;
    (void)g_callout.start_at(g_callout_at);
}

void timer_fired(void*) { netdev::schedule(g_timer_work); }

void timer_work(void*) {
    g_lock.lock();
    apply_held_acks(); // before the timers: one may be a retransmission the held ACK makes moot
    run_timers();
    // Whatever was armed has fired: re-arm for the true earliest deadline.
    g_callout_at = earliest_deadline();
    g_callout_moved = g_callout_at != time::kNever;
    arm_timer_callout();
    g_lock.unlock();
}

// Scheduled after the receive batch (netdev::schedule_after_batch()): the
// ACKs held to be merged, and the ACKs deliver_data() stretched over it.
void flush_batch_acks(void*) {
    g_lock.lock();
    apply_held_acks();
    for (auto& c : g_connections)
        if (c.in_use && std::exchange(c.ack_after_batch, false) && c.unacked_segments >= 2) {
            ++g_stats.batch_acks;
            c.ack_now = true;
            output(c);
        }
    arm_timer_callout();
    g_lock.unlock();
}

// Scheduled by netdev (add_transmit_ready()) when a driver queue that was
// full has room: every connection that held a segment back sends what it
// can now.
void resume_held(void*) {
    g_lock.lock();
    for (auto& c : g_connections)
        if (c.in_use && c.transmit_held) {
            c.transmit_held = false;
            // Held again (and resumed again) if the queue fills once more.
            // A held fast retransmission goes first, if the hole is still
            // there (a timeout since then went back over it anyway).
            if (std::exchange(c.retransmit_held, false) && c.cc.in_recovery) retransmit_first(c);
            output(c);
        }
    arm_timer_callout();
    g_lock.unlock();
}

// ---------------------------------------------------------------- start-up

void seed_isn_key() {
    SipKey key = {arch::rdtime() * 0x9e3779b97f4a7c15ull, arch::rdcycle() ^ 0x5851f42d4c957f2dull};
    auto blob = fdt::Blob::from_address(plat::machine().dtb);
    if (blob.ok()) {
        auto chosen = blob.value().find_path("/chosen");
        if (chosen.ok()) {
            auto seed = chosen.value().property("rng-seed");
            if (seed.ok()) {
                auto bytes = std::as_bytes(seed.value().value);
                std::uint64_t h = siphash24(key, bytes);
                key[0] ^= h;
                key[1] ^= siphash24({h, key[1]}, bytes);
            }
        }
    }
    set_isn_key(key);
    g_hash_salt = static_cast<std::uint32_t>(key[0] >> 17);
}

constinit netdev::Work g_resume_work{resume_held, nullptr};

base::Result<void> ensure_started() {
    if (g_started) return {};
    TRY(netdev::add_transmit_ready(g_resume_work));
    seed_isn_key();
    auto r = ipv4::register_protocol(ipv4::Protocol::Tcp, ipv4_handler, nullptr, on_icmp_error);
    if (!r.ok() && r.error() != Error::Busy && !g_output_hook) return r;
    g_started = true;
    return {};
}

struct Guard {
    Guard() { g_lock.lock(); }
    ~Guard() {
        arm_timer_callout();
        g_lock.unlock();
    }
};

bool valid(const Connection* c) {
    return c && c >= g_connections.data() && c < g_connections.data() + kMaxConnections && c->in_use && c->user_owned;
}

} // namespace

// ---------------------------------------------------------------- API

std::string_view state_name(State s) {
    switch (s) {
    case State::Closed: return "CLOSED";
    case State::Listen: return "LISTEN";
    case State::SynSent: return "SYN-SENT";
    case State::SynReceived: return "SYN-RECEIVED";
    case State::Established: return "ESTABLISHED";
    case State::FinWait1: return "FIN-WAIT-1";
    case State::FinWait2: return "FIN-WAIT-2";
    case State::CloseWait: return "CLOSE-WAIT";
    case State::Closing: return "CLOSING";
    case State::LastAck: return "LAST-ACK";
    case State::TimeWait: return "TIME-WAIT";
    }
    return "?";
}

base::Result<Listener*> listen(std::uint16_t port, unsigned backlog) {
    if (port == 0 || backlog == 0 || backlog > kMaxConnections) return Error::InvalidArgument;
    Guard g;
    auto r = ensure_started();
    if (!r.ok()) return r.error();
    if (find_listener(port)) return Error::AddressInUse;
    for (auto& l : g_listeners) {
        if (l.in_use) continue;
        l.in_use = true;
        l.port = port;
        l.backlog = backlog;
        l.half_open = l.queued = 0;
        l.cookies_sent = false;
        l.cookie_period = 0;
        l.accept_head = l.accept_tail = nullptr;
        l.wait.notify = nullptr;
        return &l;
    }
    return Error::NoMemory;
}

void close(Listener* l) {
    Guard g;
    VERIFY(l && l->in_use);
    for (auto& c : g_connections)
        if (c.in_use && c.listener == l) {
            c.listener = nullptr;
            if (c.state == State::SynReceived) --l->half_open;
            reset_connection(c, Error::ConnectionReset);
        }
    l->in_use = false;
    notify(l->wait, event::kClosed);
}

base::Result<Connection*> accept(Listener* l, time::Ticks deadline) {
    Guard g;
    VERIFY(l && l->in_use);
    for (bool waited = false;; waited = true) {
        if (Connection* c = l->accept_head) {
            l->accept_head = c->accept_next;
            if (!l->accept_head) l->accept_tail = nullptr;
            --l->queued;
            c->listener = nullptr;
            c->accept_next = nullptr;
            c->user_owned = true;
            c->accepted = true;
            return c;
        }
        Error e = wait_for_event(l->wait, deadline, waited);
        if (e != Error::Again) return e;
        if (!l->in_use) return Error::NotConnected;
    }
}

base::Result<Connection*> connect(ipv4::Address address, std::uint16_t port, time::Ticks deadline,
                                  const ConnectOptions& options) {
    if (port == 0 || address.is_any() || address.is_broadcast()) return Error::InvalidArgument;
    Guard g;
    auto r = ensure_started();
    if (!r.ok()) return r.error();
    ipv4::Address source = options.source;
    if (source.is_any()) {
        auto route = ipv4::route(address);
        if (!route.ok()) return route.error();
        source = route.value().source;
    }
    Tuple t{source.value, address.value, options.source_port, port};
    if (t.local_port == 0) {
        for (unsigned tries = 0; tries < 65536 - kEphemeralFirst; ++tries) {
            t.local_port = g_next_port;
            g_next_port = g_next_port == 65535 ? kEphemeralFirst : static_cast<std::uint16_t>(g_next_port + 1);
            if (!lookup(t) && !find_listener(t.local_port)) break;
            t.local_port = 0;
        }
        if (t.local_port == 0) return Error::AddressInUse;
    } else if (lookup(t)) {
        return Error::AddressInUse;
    }
    Connection* c = allocate_slot(t);
    if (!c) return Error::NoMemory;
    c->user_owned = true;
    c->keepalive = options.keepalive;
    c->user_timeout = ms(options.user_timeout_ms);
    c->sack = true;
    c->timestamps = true;
    c->rcv_scale = receive_scale();
    c->mss = route_mss(address);
    set_state(*c, State::SynSent);
    ++g_stats.active_opens;
    c->rtt_start = time::now();
    output(*c);
    c->timestamps = false; // until the SYN-ACK says the peer does them too
    for (bool waited = false;; waited = true) {
        if (c->state != State::SynSent && c->state != State::SynReceived) {
            if (c->error_set || c->state == State::Closed) {
                Error e = c->error_set ? c->error : Error::ConnectionRefused;
                c->user_owned = false;
                if (c->state == State::Closed) release_slot(*c);
                else reset_connection(*c, e);
                return e;
            }
            return c;
        }
        Error e = wait_for_event(c->wait, deadline, waited);
        if (e != Error::Again) {
            c->user_owned = false;
            enter_closed(*c, true, e);
            return e;
        }
    }
}

base::Result<std::size_t> send(Connection* c, std::span<const std::byte> data, time::Ticks deadline) {
    Guard g;
    VERIFY(valid(c));
    for (bool waited = false;; waited = true) {
        if (c->error_set) return c->error;
        if (c->fin_queued || (c->state != State::Established && c->state != State::CloseWait))
            return Error::NotConnected;
        if (data.empty()) return std::size_t{0};
        std::uint32_t space = kSendBuffer - c->send_len;
        if (space) {
            std::uint32_t n = std::min<std::uint32_t>(space, static_cast<std::uint32_t>(std::min<std::size_t>(data.size(), kSendBuffer)));
            std::uint32_t at = (c->send_head + c->send_len) & (kSendBuffer - 1);
            std::uint32_t first = std::min(n, kSendBuffer - at);
            std::memcpy(c->send_buffer.data() + at, data.data(), first);
            std::memcpy(c->send_buffer.data(), data.data() + first, n - first);
            c->send_len += n;
            output(*c);
            return std::size_t{n};
        }
        Error e = wait_for_event(c->wait, deadline, waited);
        if (e != Error::Again) return e;
    }
}

base::Result<std::size_t> receive(Connection* c, std::span<std::byte> out, time::Ticks deadline) {
    Guard g;
    VERIFY(valid(c));
    for (bool waited = false;; waited = true) {
        if (c->recv_len) {
            std::uint32_t n = std::min<std::uint32_t>(c->recv_len, static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), kReceiveBuffer)));
            std::uint32_t first = std::min(n, kReceiveBuffer - c->recv_head);
            std::memcpy(out.data(), c->receive_buffer.data() + c->recv_head, first);
            std::memcpy(out.data() + first, c->receive_buffer.data(), n - first);
            c->recv_head = (c->recv_head + n) & (kReceiveBuffer - 1);
            c->recv_len -= n;
            // A window update of its own only when the sender needs one
            // (tcp/window.hpp).
            if (window_update_due(receive_space(*c), c->rcv_adv, c->rcv_scale, c->mss, kReceiveBuffer) &&
                (c->state == State::Established || c->state == State::FinWait1 || c->state == State::FinWait2)) {
                c->ack_now = true;
                output(*c);
            }
            return std::size_t{n};
        }
        if (c->fin_received) return std::size_t{0};
        if (c->error_set) return c->error;
        if (c->state == State::Closed) return std::size_t{0};
        if (out.empty()) return std::size_t{0};
        Error e = wait_for_event(c->wait, deadline, waited);
        if (e != Error::Again) return e;
    }
}

namespace {
// Queues the FIN and moves to the state that waits for its ACK.
void queue_fin(Connection& c) {
    if (c.fin_queued) return;
    switch (c.state) {
    case State::SynReceived:
    case State::Established: c.fin_queued = true; set_state(c, State::FinWait1); break;
    case State::CloseWait: c.fin_queued = true; set_state(c, State::LastAck); break;
    default: return;
    }
    output(c);
    wake(c);
}
} // namespace

base::Result<void> shutdown(Connection* c) {
    Guard g;
    VERIFY(valid(c));
    if (c->error_set) return c->error;
    if (c->state != State::Established && c->state != State::CloseWait) return Error::NotConnected;
    queue_fin(*c);
    return {};
}

namespace {
// The caller gives its handle back: the engine owns the connection from
// now on. True if it was already over (the slot is freed).
bool give_back(Connection* c) {
    VERIFY(valid(c));
    c->user_owned = false;
    c->wait.notify = nullptr;
    if (c->state != State::Closed) return false;
    release_slot(*c);
    return true;
}
} // namespace

void close(Connection* c) {
    Guard g;
    if (give_back(c)) return;
    if (c->recv_len) { // unread data: RST (RFC 9293 3.10.4)
        reset_connection(*c, Error::ConnectionReset);
        return;
    }
    if (c->state == State::SynSent) {
        enter_closed(*c, false, Error::NotConnected);
        return;
    }
    queue_fin(*c);
    if (c->state == State::FinWait2) set_deadline(c->close_at, time::now() + ms(CONFIG_TCP_TIME_WAIT_MS));
}

void abort(Connection* c) {
    Guard g;
    if (give_back(c)) return;
    if (c->state == State::SynSent || c->state == State::TimeWait) enter_closed(*c, false, Error::ConnectionReset);
    else reset_connection(*c, Error::ConnectionReset);
}

std::uint32_t poll(Connection* c) {
    Guard g;
    VERIFY(valid(c));
    return readiness(*c);
}

std::uint32_t poll(Listener* l) {
    Guard g;
    VERIFY(l && l->in_use);
    return l->queued ? event::kAcceptable : 0;
}

void set_notify(Connection* c, Notify fn, void* context) {
    Guard g;
    VERIFY(valid(c));
    c->wait.notify = fn;
    c->wait.notify_context = context;
}

void set_notify(Listener* l, Notify fn, void* context) {
    Guard g;
    VERIFY(l && l->in_use);
    l->wait.notify = fn;
    l->wait.notify_context = context;
}

namespace {
ConnectionInfo info_of(const Connection& c) {
    ConnectionInfo i = c.counters;
    i.state = c.state;
    i.local_address = ipv4::Address{c.tuple.local_address};
    i.remote_address = ipv4::Address{c.tuple.remote_address};
    i.local_port = c.tuple.local_port;
    i.remote_port = c.tuple.remote_port;
    i.mss = c.mss;
    i.cwnd = c.cc.cwnd;
    i.ssthresh = c.cc.ssthresh;
    i.srtt_us = c.rtt.srtt();
    i.rttvar_us = c.rtt.rttvar();
    i.rto_us = c.rtt.rto();
    i.send_window = c.snd_wnd;
    i.receive_window = receive_space(c);
    i.send_scale = c.snd_scale;
    i.receive_scale = c.rcv_scale;
    i.send_queued = c.send_len;
    i.in_flight = flight(c);
    i.receive_queued = c.recv_len;
    i.retransmit_timer = c.rexmt_at != time::kNever;
    i.persist_timer = c.persist_at != time::kNever;
    i.timestamps = c.timestamps;
    i.sack = c.sack;
    return i;
}
} // namespace

void set_user_timeout(Connection* c, std::uint32_t milliseconds) {
    Guard g;
    VERIFY(valid(c));
    c->user_timeout = ms(milliseconds);
    // A running timer may be due later than the new limit allows (the
    // guard re-arms the callout).
    if (c->rexmt_at != time::kNever) set_deadline(c->rexmt_at, before_user_timeout(*c, c->unacked_since, c->rexmt_at));
    if (c->persist_at != time::kNever) set_deadline(c->persist_at, next_probe_at(*c, c->persist_at));
    if (c->keepalive_at != time::kNever) set_deadline(c->keepalive_at, next_probe_at(*c, c->keepalive_at));
}

base::Result<ConnectionInfo> info(Connection* c) {
    Guard g;
    VERIFY(valid(c));
    return info_of(*c);
}

void for_each_connection(void (*fn)(const ConnectionInfo&, void*), void* context) {
    Guard g;
    for (auto& c : g_connections)
        if (c.in_use) fn(info_of(c), context);
}

Stats stats() {
    Guard g;
    return g_stats;
}

void set_output_hook(OutputHook hook, void* context) {
    Guard g;
    g_output_hook = hook;
    g_output_context = context;
}

void inject(ipv4::Address source, ipv4::Address destination, netdev::PacketRef segment) {
    Guard g;
    (void)ensure_started();
    handle_segment(source, destination, segment->data(), netdev::in_network_thread());
}

} // namespace tessera::tcp
