// Segments for no connection: a listener's SYNs (the SYN queue, per-source
// limits, SYN cookies beyond the queue or a source's share of it,
// tcp/syn_cookie.hpp), the ACKs that bring cookies back, and the RST for
// everything else.
#include <tcp/syn_cookie.hpp>
#include <tcp/window.hpp>
#include "engine.hpp"

namespace tessera::tcp {

// ---------------------------------------------------------------- SYN cookies

namespace {
#ifdef CONFIG_TCP_SYN_COOKIES
constexpr bool kSynCookies = true;
#else
constexpr bool kSynCookies = false;
#endif

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

// The SYN queue, or the source's share of it, is full: a SYN-ACK whose
// sequence number is the cookie, and no state (tcp/syn_cookie.hpp).
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
} // namespace

// ---------------------------------------------------------------- segments for no connection

void input_without_connection(const Tuple& t, const Segment& s) {
    Listener* l = find_listener(t.local_port);
    if (l && take_syn_cookie(*l, t, s) != CookieAnswer::NotOne) return;
    if (!l || !s.has(flag::kSyn) || s.has(flag::kAck) || s.has(flag::kRst)) {
        // LISTEN ignores RSTs and answers ACKs with RST (RFC 9293 3.10.7.2).
        if (!l) ++g_stats.no_connection;
        send_reset_for(t, s);
        return;
    }
    // SYN flood protection, every refusal counted. A source at its limit
    // of connections is refused (a cookie's ACK would be). Beyond the SYN
    // queue, or beyond the source's share of half-open connections (so
    // that one source cannot fill the queue), SYN cookies answer without
    // keeping anything; without them such SYNs are dropped.
    const SourceCounts source = connections_from(t.remote_address);
    if (source.total >= CONFIG_TCP_PER_SOURCE_TOTAL) {
        ++g_stats.syn_per_source;
        return;
    }
    const bool queue_full = l->half_open >= CONFIG_TCP_SYN_QUEUE;
    if (queue_full || source.half_open >= CONFIG_TCP_PER_SOURCE_HALF_OPEN) {
        if (kSynCookies) send_syn_cookie(*l, t, s);
        else ++(queue_full ? g_stats.syn_queue_full : g_stats.syn_per_source);
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
}

} // namespace tessera::tcp
