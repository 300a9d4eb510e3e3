// Timers: retransmission (RFC 6298), zero-window probes, keep-alive,
// delayed ACKs, TIME-WAIT, and the work run after a receive batch or when
// a full driver queue drains.
#include <algorithm>
#include <time/callout.hpp>
#include <utility>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

// Timers: one callout fires in interrupt context and schedules
// g_timer_work; the network thread runs the expired timers under g_lock
// and re-arms the callout. Invariant: the callout is armed at
// g_callout_at, which is never later than any connection's earliest
// deadline. set_deadline() keeps it so in O(1) (it only ever pulls the
// callout earlier); a deadline cleared or moved later leaves the callout
// where it is, and the firing that then finds nothing due re-arms it for
// the true earliest deadline. So the table is scanned once per firing,
// not once per segment or call (that scan was 5% of a connection's cost).

namespace {
void timer_fired(void*);
void timer_work(void*);
void flush_batch_acks(void*);
void resume_held(void*);
constinit netdev::Work g_timer_work{timer_work, nullptr};
} // namespace

constinit time::Callout g_callout(timer_fired, nullptr);
constinit time::Ticks g_callout_at = time::kNever;
constinit bool g_callout_moved = false;
constinit netdev::Work g_batch_ack_work{flush_batch_acks, nullptr};
constinit netdev::Work g_resume_work{resume_held, nullptr};

// ---------------------------------------------------------------- timers

namespace {
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
} // namespace

time::Ticks next_probe_at(const Connection& c, time::Ticks at) {
    return c.probes ? before_user_timeout(c, c.probes_since, at) : at;
}

namespace {
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
} // namespace

namespace {
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
} // namespace

} // namespace tessera::tcp
