// DHCPv4 client: one thread runs the RFC 2131 state machine.
//
// g_lock (sync::Mutex) guards the published lease, state and counters;
// the thread holds it only to publish, never across udp calls or waits.
// wait_bound() sleeps on g_bound_waiters, checked with an atomic.
#include <base/endian.hpp>
#include <atomic>
#include <cstring>
#include <dhcp/dhcp.hpp>
#include <klog/klog.hpp>
#include <sched/sched.hpp>
#include <sched/wait.hpp>
#include <sync/mutex.hpp>
#include <udp/udp.hpp>

namespace tessera::dhcp {
namespace {

constexpr std::uint16_t kServerPort = 67, kClientPort = 68;
constexpr std::size_t kFixed = 236;            // BOOTP fixed part
constexpr std::size_t kMessage = 548;          // what we build and accept (576 - IP - UDP)
constexpr std::uint8_t kCookie[4] = {99, 130, 83, 99};
enum : std::uint8_t {
    Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7,
};
enum : std::uint8_t {
    OptPad = 0, OptSubnet = 1, OptRouter = 3, OptDns = 6, OptHostname = 12, OptRequestedIp = 50, OptLease = 51,
    OptOverload = 52, OptType = 53, OptServer = 54, OptParameters = 55, OptT1 = 58, OptT2 = 59, OptClientId = 61,
    OptEnd = 255,
};

sync::Mutex g_lock{"dhcp"}; // see the top of the file
netdev::Interface* g_iface = nullptr;
sched::ThreadHandle g_thread{};
std::atomic<std::uint32_t> g_running{0};
std::atomic<std::uint32_t> g_stop{0};
std::atomic<std::uint32_t> g_bound{0};
sched::WaitQueue g_bound_waiters;
std::optional<Lease> g_lease;
State g_state = State::Stopped;
Stats g_stats{};

// Returns the new value.
std::uint64_t count(std::uint64_t Stats::*field) {
    sync::MutexGuard guard(g_lock);
    return ++(g_stats.*field);
}
// Refusals are logged at the 1st, 2nd, 4th, 8th... occurrence: a host on
// the link must not be able to flood the console.
bool worth_logging(std::uint64_t n) { return (n & (n - 1)) == 0; }
void set_state(State s) {
    sync::MutexGuard guard(g_lock);
    g_state = s;
}

time::Ticks ms(std::uint64_t n) { return time::from_ns(n * 1'000'000); }
time::Ticks seconds(std::uint64_t n) { return time::from_ns(n * 1'000'000'000); }

// A parsed reply.
struct Reply {
    std::uint8_t type = 0;
    ipv4::Address yiaddr, server, subnet, router, dns;
    bool has_subnet = false, has_server = false;
    std::uint32_t lease = 0, t1 = 0, t2 = 0;
};

// Validates a server message against our xid and MAC; nullopt if malformed.
std::optional<Reply> parse(std::span<const std::byte> m, std::uint32_t xid, const netdev::MacAddress& mac, bool& ours) {
    ours = false;
    if (m.size() < kFixed + 4 || m[0] != std::byte{2} || m[1] != std::byte{1} || m[2] != std::byte{6}) return std::nullopt;
    if (std::memcmp(m.data() + kFixed, kCookie, 4) != 0) return std::nullopt;
    ours = base::load_be32(m.data() + 4) == xid && std::memcmp(m.data() + 28, mac.bytes.data(), 6) == 0;
    Reply r;
    r.yiaddr = ipv4::Address::load(m.data() + 16);
    // Options: each bounded by the message; pad and end; a length that runs
    // past the end makes the whole message malformed.
    std::size_t i = kFixed + 4;
    bool ended = false;
    while (i < m.size()) {
        std::uint8_t code = std::to_integer<std::uint8_t>(m[i]);
        if (code == OptPad) { ++i; continue; }
        if (code == OptEnd) { ended = true; break; }
        if (i + 1 >= m.size()) return std::nullopt;
        std::size_t len = std::to_integer<std::size_t>(m[i + 1]);
        if (i + 2 + len > m.size()) return std::nullopt;
        const std::byte* v = m.data() + i + 2;
        auto addr = [&](ipv4::Address& out) { if (len >= 4) out = ipv4::Address::load(v); };
        auto u32 = [&](std::uint32_t& out) { if (len == 4) out = base::load_be32(v); };
        switch (code) {
        case OptType: if (len == 1) r.type = std::to_integer<std::uint8_t>(v[0]); break;
        case OptSubnet: if (len == 4) { r.subnet = ipv4::Address::load(v); r.has_subnet = true; } break;
        case OptRouter: addr(r.router); break;
        case OptDns: addr(r.dns); break;
        case OptServer: if (len == 4) { r.server = ipv4::Address::load(v); r.has_server = true; } break;
        case OptLease: u32(r.lease); break;
        case OptT1: u32(r.t1); break;
        case OptT2: u32(r.t2); break;
        default: break; // option overload (52) is not used: sname/file stay unread
        }
        i += 2 + len;
    }
    if (!ended || r.type == 0) return std::nullopt;
    // An offer or ack must give us a host address: 0.0.0.0 (ipv4 refuses
    // to configure it, yet the lease was published as bound), broadcast,
    // multicast or loopback is a broken or hostile server.
    if ((r.type == Offer || r.type == Ack) && (r.yiaddr.is_any() || r.yiaddr.is_broadcast() ||
                                               r.yiaddr.is_multicast() || r.yiaddr.is_loopback()))
        return std::nullopt;
    return r;
}

// A subnet mask is ones then zeros (RFC 950); 0.0.0.0 would put every
// address on the link.
bool contiguous_netmask(ipv4::Address mask) {
    return mask.value != 0 && mask.value == ipv4::prefix_mask(static_cast<unsigned>(__builtin_popcount(mask.value)));
}

// Whom an ACK/NAK must come from: the server whose OFFER we requested
// (REQUESTING) or the one holding our lease (RENEWING); anyone when
// rebinding (RFC 2131 4.4.5).
struct From {
    ipv4::Address server; // any(): no check
};

class Client {
public:
    explicit Client(netdev::Interface& iface) : m_iface(iface) {}

    void run() {
        m_socket.set_interface(&m_iface);
        if (!m_socket.bind(kClientPort).ok()) {
            klog::error("dhcp: port {} in use", kClientPort);
            return;
        }
        while (!stopping()) {
            std::optional<Lease> lease = acquire();
            if (!lease) continue;
            apply(*lease);
            maintain(*lease); // returns when the lease is lost
        }
        m_socket.close();
    }

private:
    bool stopping() const { return g_stop.load(std::memory_order_acquire) != 0; }

    // Waits for a reply of one of `types` until `deadline`; nullopt at the
    // deadline (or when stopping). Polls in short steps so stop() is prompt.
    // An OFFER/ACK with a netmask that is not contiguous is refused; so is
    // an ACK/NAK from another server than `from` (RFC 2131 3.1 step 3,
    // 4.4.1: other servers' answers are not ours to take), and an OFFER or
    // ACK without a server identifier (Table 3: MUST). A NAK without one is
    // taken: SLIRP sends its NAKs that way, and a NAK only starts us over.
    std::optional<Reply> await(time::Ticks deadline, std::uint8_t type_a, std::uint8_t type_b, From from = {}) {
        static std::byte buffer[kMessage + 64];
        while (!stopping()) {
            time::Ticks step = time::now() + ms(200);
            auto d = m_socket.receive_from(buffer, step < deadline ? step : deadline);
            if (!d.ok()) {
                if (time::now() >= deadline) return std::nullopt;
                continue;
            }
            if (d->source_port != kServerPort) { count(&Stats::ignored); continue; }
            bool ours = false;
            auto reply = parse({buffer, d->length}, m_xid, m_iface.mac(), ours);
            if (!reply) { count(&Stats::malformed); continue; }
            if (!ours || (reply->type != type_a && reply->type != type_b)) { count(&Stats::ignored); continue; }
            bool offer_or_ack = reply->type == Offer || reply->type == Ack;
            if (offer_or_ack && reply->has_subnet && !contiguous_netmask(reply->subnet)) {
                if (worth_logging(count(&Stats::bad_netmask)))
                    klog::warn("dhcp: {} from {} with netmask {} (not contiguous): refused",
                               reply->type == Offer ? "OFFER" : "ACK", ipv4::Text(d->source).view(),
                               ipv4::Text(reply->subnet).view());
                continue;
            }
            if ((offer_or_ack && !reply->has_server) ||
                (!from.server.is_any() && reply->type != Offer && reply->has_server && reply->server != from.server)) {
                if (!worth_logging(count(&Stats::wrong_server))) continue;
                const char* what = reply->type == Nak ? "NAK" : reply->type == Ack ? "ACK" : "OFFER";
                if (reply->has_server)
                    klog::warn("dhcp: {} from server {} (want {}): ignored", what, ipv4::Text(reply->server).view(),
                               ipv4::Text(from.server).view());
                else
                    klog::warn("dhcp: {} without a server identifier: ignored", what);
                continue;
            }
            return reply;
        }
        return std::nullopt;
    }

    // Builds and sends a message. ciaddr for renew/rebind; requested/server for SELECTING.
    void send(std::uint8_t type, ipv4::Address destination, ipv4::Address ciaddr, ipv4::Address requested,
              ipv4::Address server) {
        static std::byte m[kMessage];
        std::memset(m, 0, sizeof(m));
        m[0] = std::byte{1};
        m[1] = std::byte{1};
        m[2] = std::byte{6};
        base::store_be32(m + 4, m_xid);
        std::uint32_t secs = static_cast<std::uint32_t>(time::to_ns(time::now() - m_started) / 1'000'000'000);
        m[8] = std::byte(secs >> 8);
        m[9] = std::byte(secs);
        // Ask for broadcast replies while we have no address (RFC 2131 4.1).
        if (ciaddr.is_any()) m[10] = std::byte{0x80};
        ciaddr.store(m + 12);
        std::memcpy(m + 28, m_iface.mac().bytes.data(), 6);
        std::memcpy(m + kFixed, kCookie, 4);
        std::size_t i = kFixed + 4;
        auto option = [&](std::uint8_t code, const void* value, std::size_t len) {
            m[i] = std::byte{code};
            m[i + 1] = std::byte(len);
            std::memcpy(m + i + 2, value, len);
            i += 2 + len;
        };
        option(OptType, &type, 1);
        std::uint8_t client_id[7] = {1};
        std::memcpy(client_id + 1, m_iface.mac().bytes.data(), 6);
        option(OptClientId, client_id, sizeof(client_id));
        if (!requested.is_any()) { std::byte a[4]; requested.store(a); option(OptRequestedIp, a, 4); }
        if (!server.is_any()) { std::byte a[4]; server.store(a); option(OptServer, a, 4); }
        const std::uint8_t parameters[] = {OptSubnet, OptRouter, OptDns, OptLease, OptT1, OptT2};
        option(OptParameters, parameters, sizeof(parameters));
        option(OptHostname, "tessera", 7);
        m[i++] = std::byte{OptEnd};
        std::size_t length = i < 300 ? 300 : i; // BOOTP's minimum message
        (void)m_socket.send_to(destination, kServerPort, {m, length});
        count(type == Discover ? &Stats::discovers : &Stats::requests);
    }

    // The RFC 2131 4.1 retransmission delay: 4 s, 8 s, ... 64 s, ±1 s
    // (CONFIG_DHCP_INITIAL_TIMEOUT_MS first).
    time::Ticks backoff(unsigned attempt) {
        std::uint64_t base = std::uint64_t(CONFIG_DHCP_INITIAL_TIMEOUT_MS) << (attempt < 5 ? attempt : 5);
        if (base > 64'000) base = 64'000;
        // ±1 s, but at most a quarter of the delay, so short (test) timeouts still double.
        std::int64_t spread = base / 4 < 1000 ? std::int64_t(base / 4) : 1000;
        std::int64_t jitter = std::int64_t(ipv4::random32() % std::uint64_t(2 * spread + 1)) - spread;
        return time::now() + ms(base + jitter);
    }

    // INIT -> SELECTING -> REQUESTING until an ACK (or stop).
    std::optional<Lease> acquire() {
        set_state(State::Init);
        m_xid = ipv4::random32();
        m_started = time::now();
        std::optional<Reply> offer;
        for (unsigned attempt = 0; !offer && !stopping(); ++attempt) {
            if (attempt) count(&Stats::retransmissions);
            send(Discover, ipv4::Address::broadcast(), {}, {}, {});
            set_state(State::Selecting);
            offer = await(backoff(attempt), Offer, Offer);
        }
        if (!offer) return std::nullopt;
        count(&Stats::offers);
        set_state(State::Requesting);
        for (unsigned attempt = 0; attempt < CONFIG_DHCP_REQUEST_RETRIES && !stopping(); ++attempt) {
            if (attempt) count(&Stats::retransmissions);
            send(Request, ipv4::Address::broadcast(), {}, offer->yiaddr, offer->server);
            auto reply = await(backoff(attempt), Ack, Nak, From{offer->server});
            if (!reply) continue;
            if (reply->type == Nak) {
                count(&Stats::naks);
                return std::nullopt;
            }
            count(&Stats::acks);
            return lease_from(*reply, offer->server);
        }
        return std::nullopt;
    }

    Lease lease_from(const Reply& r, ipv4::Address server) {
        Lease l{};
        l.address = r.yiaddr;
        l.prefix_length = r.has_subnet ? static_cast<unsigned>(__builtin_popcount(r.subnet.value)) : 24;
        l.server = r.server.is_any() ? server : r.server;
        l.gateway = r.router;
        l.dns = r.dns;
        l.lease_seconds = r.lease ? r.lease : 3600;
        l.t1_seconds = r.t1 && r.t1 < l.lease_seconds ? r.t1 : l.lease_seconds / 2;
        l.t2_seconds = r.t2 && r.t2 < l.lease_seconds && r.t2 > l.t1_seconds ? r.t2 : l.lease_seconds / 8 * 7;
        if (l.t2_seconds <= l.t1_seconds) l.t2_seconds = l.t1_seconds + (l.lease_seconds - l.t1_seconds) / 2;
        l.obtained = time::now();
        return l;
    }

    void apply(const Lease& l) {
        if (auto r = ipv4::configure(m_iface, l.address, l.prefix_length); !r.ok())
            klog::error("dhcp: configure: {}", r.error());
        ipv4::clear_default_gateway();
        if (!l.gateway.is_any()) (void)ipv4::set_default_gateway(l.gateway);
        ipv4::set_dns_server(l.dns);
        {
            sync::MutexGuard guard(g_lock);
            g_lease = l;
            g_state = State::Bound;
        }
        g_bound.store(1, std::memory_order_release);
        sched::wake_all(g_bound_waiters);
        klog::info("dhcp: {} bound to {}/{} gateway {} dns {} lease {} s", m_iface.name(), ipv4::Text(l.address).view(),
                   l.prefix_length, ipv4::Text(l.gateway).view(), ipv4::Text(l.dns).view(), l.lease_seconds);
    }

    void lose() {
        g_bound.store(0, std::memory_order_release);
        ipv4::deconfigure(m_iface);
        sync::MutexGuard guard(g_lock);
        g_lease.reset();
    }

    // Sleeps until `deadline` unless stopping. True if it got there.
    bool sleep_until(time::Ticks deadline) {
        while (!stopping()) {
            time::Ticks now = time::now();
            if (now >= deadline) return true;
            time::Ticks step = now + ms(200);
            sched::sleep_until(step < deadline ? step : deadline);
        }
        return false;
    }

    // BOUND -> RENEWING -> REBINDING; returns when the lease is lost (or on stop).
    void maintain(Lease lease) {
        for (;;) {
            time::Ticks t1 = lease.obtained + seconds(lease.t1_seconds);
            time::Ticks t2 = lease.obtained + seconds(lease.t2_seconds);
            time::Ticks end = lease.obtained + seconds(lease.lease_seconds);
            if (!sleep_until(t1)) return;
            m_xid = ipv4::random32();
            m_started = time::now();
            std::optional<Reply> reply;
            // Renewing: unicast to the server until T2; rebinding: broadcast until the end.
            while (!reply && !stopping()) {
                time::Ticks now = time::now();
                if (now >= end) {
                    count(&Stats::expirations);
                    klog::info("dhcp: lease of {} expired", ipv4::Text(lease.address).view());
                    lose();
                    return;
                }
                bool rebinding = now >= t2;
                set_state(rebinding ? State::Rebinding : State::Renewing);
                time::Ticks limit = rebinding ? end : t2;
                time::Ticks wait = (limit - now) / 2;
                if (wait < ms(CONFIG_DHCP_MIN_RENEW_RETRY_MS)) wait = ms(CONFIG_DHCP_MIN_RENEW_RETRY_MS);
                if (now + wait > limit) wait = limit - now;
                send(Request, rebinding ? ipv4::Address::broadcast() : lease.server, lease.address, {}, {});
                reply = await(now + wait, Ack, Nak, From{rebinding ? ipv4::Address::any() : lease.server});
            }
            if (!reply) return;
            if (reply->type == Nak) {
                count(&Stats::naks);
                klog::info("dhcp: NAK for {}", ipv4::Text(lease.address).view());
                lose();
                return;
            }
            count(&Stats::acks);
            count(&Stats::renewals);
            lease = lease_from(*reply, lease.server);
            apply(lease);
        }
    }

    netdev::Interface& m_iface;
    udp::Socket m_socket;
    std::uint32_t m_xid = 0;
    time::Ticks m_started = 0;
};

void thread_main(void* arg) {
    Client client(*static_cast<netdev::Interface*>(arg));
    client.run();
    set_state(State::Stopped);
}

} // namespace

base::Result<void> start(netdev::Interface& iface) {
    if (g_running.exchange(1, std::memory_order_acq_rel)) return base::Error::Busy;
    g_stop.store(0, std::memory_order_release);
    g_bound.store(0, std::memory_order_release);
    {
        sync::MutexGuard guard(g_lock);
        g_iface = &iface;
        g_lease.reset();
        g_state = State::Init;
    }
    auto t = sched::spawn(thread_main, &iface, {.name = "dhcp"});
    if (!t.ok()) {
        g_running.store(0, std::memory_order_release);
        return t.error();
    }
    g_thread = t.value();
    return {};
}

void stop() {
    if (!g_running.load(std::memory_order_acquire)) return;
    g_stop.store(1, std::memory_order_release);
    (void)sched::join(g_thread);
    g_running.store(0, std::memory_order_release);
}

base::Result<Lease> wait_bound(time::Ticks deadline) {
    for (;;) {
        if (g_bound.load(std::memory_order_acquire)) {
            sync::MutexGuard guard(g_lock);
            if (g_lease) return *g_lease;
        }
        auto r = sched::wait(g_bound_waiters, deadline,
                             [](void*) { return g_bound.load(std::memory_order_acquire) == 0; }, nullptr);
        if (!r.ok() && !g_bound.load(std::memory_order_acquire)) return r.error();
    }
}

std::optional<Lease> lease() {
    sync::MutexGuard guard(g_lock);
    return g_lease;
}

State state() {
    sync::MutexGuard guard(g_lock);
    return g_state;
}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    return g_stats;
}

} // namespace tessera::dhcp
