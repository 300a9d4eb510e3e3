// The TCP engine's table and lifecycle: the connection table and its
// hash lookup, waiting for events, connection states from allocation to
// release, SYN option negotiation, and start-up. One sync::Mutex (g_lock)
// protects the whole engine; it is taken by API threads and by the network
// thread (which runs ipv4's handler and the timer work inside netdev's
// g_dispatch). Segments are sent with it held (ipv4 and ARP locks nest
// inside). No thread ever waits with it held: blocking calls record the
// connection's event counter, drop the lock and wait on the connection's
// queue while the counter is unchanged. The other parts: engine.hpp.
#include <algorithm>
#include <arch/csr.hpp>
#include <bit>
#include <fdt/fdt.hpp>
#include <plat/machine.hpp>
#include <tcp/isn.hpp>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

namespace {
constexpr unsigned kBuckets = std::bit_ceil(kMaxConnections * 2u);
// The slots' rings: all-zero arrays of their own, in .bss.
constinit std::byte g_send_buffers[kMaxConnections][kSendBuffer]{};
constinit std::byte g_receive_buffers[kMaxConnections][kReceiveBuffer]{};
constinit std::array<Connection*, kBuckets> g_buckets{};
constinit std::uint32_t g_hash_salt = 0;
constinit bool g_started = false;
} // namespace

sync::Mutex g_lock("tcp");
constinit std::array<Connection, kMaxConnections> g_connections{};
constinit std::array<Listener, CONFIG_TCP_MAX_LISTENERS> g_listeners{};
constinit Stats g_stats{};
constinit std::uint16_t g_next_port = kEphemeralFirst;
constinit OutputHook g_output_hook = nullptr;
constinit void* g_output_context = nullptr;

// ---------------------------------------------------------------- lookup

namespace {
unsigned bucket_of(const Tuple& t) {
    std::uint32_t h = t.remote_address * 0x9e3779b1u ^ (t.remote_port << 16 | t.local_port) * 0x85ebca6bu ^
                      t.local_address ^ g_hash_salt;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h & (kBuckets - 1);
}
} // namespace

Connection* lookup(const Tuple& t) {
    for (Connection* c = g_buckets[bucket_of(t)]; c; c = c->hash_next)
        if (c->tuple == t) return c;
    return nullptr;
}

namespace {
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
} // namespace

Listener* find_listener(std::uint16_t port) {
    for (auto& l : g_listeners)
        if (l.in_use && l.port == port) return &l;
    return nullptr;
}

// ---------------------------------------------------------------- events

namespace {
struct WaitArg {
    const std::atomic<std::uint32_t>* events;
    std::uint32_t seen;
};
bool still_wait(void* p) {
    auto* a = static_cast<WaitArg*>(p);
    return a->events->load(std::memory_order_acquire) == a->seen;
}
} // namespace

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

// ---------------------------------------------------------------- lifecycle

void release_slot(Connection& c) {
    c.held_ack.count = 0;
    hash_remove(c); // no-op if enter_closed took it out already
    set_state(c, State::Closed);
    c.in_use = false;
    --g_stats.connections_in_use;
}

namespace {
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
} // namespace

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

// ---------------------------------------------------------------- start-up

namespace {
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
} // namespace

base::Result<void> ensure_started() {
    if (g_started) return {};
    TRY(netdev::add_transmit_ready(g_resume_work));
    seed_isn_key();
    auto r = ipv4::register_protocol(ipv4::Protocol::Tcp, ipv4_handler, nullptr, on_icmp_error);
    if (!r.ok() && r.error() != Error::Busy && !g_output_hook) return r;
    g_started = true;
    return {};
}

} // namespace tessera::tcp
