// UDP sockets.
//
// g_lock (sync::Mutex) guards the bound-socket list, every socket's queue
// and the counters. The network thread queues under it and wakes the
// socket's waiters before releasing it (after, the socket may be gone);
// receivers block with sched::wait on an atomic count, so no wake-up is
// lost. Lock order: netdev
// g_dispatch -> udp g_lock -> sched g_lock, (pool lock); never held across
// ipv4::send.
#include <base/endian.hpp>
#include <cstring>
#include <sync/mutex.hpp>
#include <udp/udp.hpp>

namespace tessera::udp {

namespace {
sync::Mutex g_lock{"udp"}; // see the top of the file
Socket* g_sockets = nullptr;
Stats g_stats{};
std::uint16_t g_next_ephemeral = 0;

} // namespace

struct Internals {
    // Caller holds g_lock.
    static Socket* find(std::uint16_t port, ipv4::Address destination, bool broadcast) {
        Socket* wildcard = nullptr;
        for (Socket* s = g_sockets; s; s = s->m_next) {
            if (s->m_port != port) continue;
            if (s->m_local == destination) return s;
            if (s->m_local.is_any()) wildcard = s;
        }
        (void)broadcast;
        return wildcard;
    }
    static bool in_use(std::uint16_t port, ipv4::Address local) {
        for (Socket* s = g_sockets; s; s = s->m_next)
            if (s->m_port == port && (s->m_local.is_any() || local.is_any() || s->m_local == local)) return true;
        return false;
    }
    static void drop_queue(Socket& s) {
        while (s.m_head) {
            netdev::Packet* p = s.m_head;
            s.m_head = p->next;
            p->next = nullptr;
            netdev::PacketRef::adopt(p).reset();
        }
        s.m_tail = nullptr;
        s.m_queued.store(0, std::memory_order_relaxed);
    }
    static void input(const ipv4::Header& header, netdev::PacketRef packet, void*);
};

void Internals::input(const ipv4::Header& header, netdev::PacketRef packet, void*) {
    const std::byte* u = packet->bytes();
    std::size_t length = packet->length();
    std::uint16_t source_port = 0, port = 0;
    bool unreachable = false;
    {
        sync::MutexGuard guard(g_lock);
        ++g_stats.received;
        if (length < kHeader) { ++g_stats.truncated; return; }
        std::uint16_t field = base::load_be16(u + 4);
        if (field < kHeader) { ++g_stats.bad_length; return; }
        if (field > length) { ++g_stats.truncated; return; }
        if (base::load_be16(u + 6) != 0) { // zero: the sender computed none (RFC 768)
            std::uint32_t sum = ipv4::pseudo_header_sum(header.source, header.destination, ipv4::Protocol::Udp, field);
            if (ipv4::checksum_finish(ipv4::checksum_add({u, field}, sum)) != 0) { ++g_stats.bad_checksum; return; }
        }
        source_port = base::load_be16(u);
        port = base::load_be16(u + 2);
        bool broadcast = header.destination.is_broadcast() || header.destination.is_multicast();
        Socket* s = find(port, header.destination, broadcast);
        if (!s) {
            ++g_stats.no_port;
            unreachable = true;
        } else if (s->m_queued.load(std::memory_order_relaxed) >= CONFIG_UDP_QUEUE) {
            ++g_stats.queue_full;
            return;
        } else {
            packet->trim(field);
            (void)packet->pull(kHeader);
            netdev::Packet* p = packet.release();
            // Who sent it (address, port) and to what address: owner_word
            // and the first bytes of the headroom (the IP header we pulled).
            p->owner_word = std::uintptr_t(header.source.value) << 16 | source_port;
            p->next = nullptr;
            if (s->m_tail) s->m_tail->next = p; else s->m_head = p;
            s->m_tail = p;
            header.destination.store(p->storage().data()); // headroom start: never part of the window
            s->m_queued.fetch_add(1, std::memory_order_release);
            ++g_stats.delivered;
            // Woken here, under g_lock (a sleeping lock; sched's g_lock
            // nests below it): once it is released, a receiver on another
            // hart may take the datagram without sleeping, close the
            // socket and return, and its wait queue (often on that
            // thread's stack) is gone.
            sched::wake_all(s->m_waiters);
        }
    }
    if (unreachable) ipv4::send_icmp_error(3, 3, header, std::move(packet)); // suppressed for broadcasts by icmp
}

base::Result<void> Socket::bind(std::uint16_t port, ipv4::Address local) {
    sync::MutexGuard guard(g_lock);
    if (m_port) return base::Error::Busy;
    if (port == 0) {
        // Start somewhere random, then walk the range for a free port.
        if (!g_next_ephemeral) g_next_ephemeral = static_cast<std::uint16_t>(ipv4::random32() % (65536 - kEphemeralFirst));
        for (unsigned i = 0; i < 65536 - kEphemeralFirst && !port; ++i) {
            std::uint16_t candidate = static_cast<std::uint16_t>(kEphemeralFirst + (g_next_ephemeral++ % (65536 - kEphemeralFirst)));
            if (!Internals::in_use(candidate, local)) port = candidate;
        }
        if (!port) return base::Error::AddressInUse;
    } else if (Internals::in_use(port, local)) {
        return base::Error::AddressInUse;
    }
    m_port = port;
    m_local = local;
    m_next = g_sockets;
    g_sockets = this;
    return {};
}

void Socket::close() {
    {
        sync::MutexGuard guard(g_lock);
        if (!m_port) return;
        for (Socket** p = &g_sockets; *p; p = &(*p)->m_next)
            if (*p == this) { *p = m_next; break; }
        m_port = 0;
        m_next = nullptr;
        Internals::drop_queue(*this);
    }
    sched::wake_all(m_waiters); // a receiver blocked on the socket returns NotFound
}

base::Result<void> Socket::send_to(ipv4::Address destination, std::uint16_t port, std::span<const std::byte> data) {
    if (data.size() > kMaxPayload) return base::Error::MessageTooLong;
    if (!m_port) TRY(bind(0));
    ipv4::Address source = m_local;
    if (source.is_any()) {
        if (m_interface) {
            if (auto a = ipv4::address_of(*m_interface)) source = *a;
        } else if (auto r = ipv4::route(destination); r.ok()) {
            source = r->source;
        }
    }
    auto packet = TRY(netdev::allocate());
    std::byte* u = packet->put(kHeader + data.size());
    if (!u) return base::Error::MessageTooLong;
    std::uint16_t length = static_cast<std::uint16_t>(kHeader + data.size());
    base::store_be16(u, m_port);
    base::store_be16(u + 2, port);
    base::store_be16(u + 4, length);
    base::store_be16(u + 6, 0);
    if (!data.empty()) std::memcpy(u + kHeader, data.data(), data.size());
    std::uint16_t sum = ipv4::checksum_finish(
        ipv4::checksum_add({u, length}, ipv4::pseudo_header_sum(source, destination, ipv4::Protocol::Udp, length)));
    base::store_be16(u + 6, sum == 0 ? 0xffff : sum); // 0 means "none" on the wire
    ipv4::SendOptions options;
    options.dont_fragment = false;
    options.interface = m_interface;
    auto r = ipv4::send(std::move(packet), source, destination, ipv4::Protocol::Udp, options);
    sync::MutexGuard guard(g_lock);
    if (r.ok()) ++g_stats.sent; else ++g_stats.send_errors;
    return r;
}

base::Result<Datagram> Socket::receive_from(std::span<std::byte> buffer, time::Ticks deadline) {
    for (;;) {
        {
            sync::MutexGuard guard(g_lock);
            if (!m_port) return base::Error::NotFound;
            if (m_head) {
                netdev::Packet* p = m_head;
                m_head = p->next;
                if (!m_head) m_tail = nullptr;
                p->next = nullptr;
                m_queued.fetch_sub(1, std::memory_order_relaxed);
                auto packet = netdev::PacketRef::adopt(p);
                Datagram d{ipv4::Address{static_cast<std::uint32_t>(p->owner_word >> 16)},
                           static_cast<std::uint16_t>(p->owner_word), ipv4::Address::load(p->storage().data()), 0,
                           false};
                d.length = p->length() < buffer.size() ? p->length() : buffer.size();
                d.truncated = d.length < p->length();
                std::memcpy(buffer.data(), p->bytes(), d.length);
                return d;
            }
        }
        if (deadline == 0) return base::Error::WouldBlock;
        auto r = sched::wait(m_waiters, deadline,
                             [](void* s) { return static_cast<Socket*>(s)->queued() == 0; }, this);
        if (!r.ok() && queued() == 0) return r.error();
    }
}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    return g_stats;
}

// Init step udp.start.
base::Result<void> init_start() { return ipv4::register_protocol(ipv4::Protocol::Udp, Internals::input, nullptr); }

} // namespace tessera::udp
