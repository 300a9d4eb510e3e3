// The public API (tcp/tcp.hpp): listen, accept, connect, send, receive,
// shutdown, close, abort, readiness, statistics, and the tests' hooks.
#include <algorithm>
#include <cstring>
#include <tcp/window.hpp>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

namespace {
// A handle the API may act on: a slot of the table, in use, not yet given back.
bool valid(const Connection* c) {
    return c && c >= g_connections.data() && c < g_connections.data() + kMaxConnections && c->in_use && c->user_owned;
}
} // namespace

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
