// ARP (RFC 826): the cache, resolution with retries, pending-packet queues,
// replies and gratuitous announcements.
//
// State (entries, addresses, counters) is under g_lock, a sync::Mutex:
// callers are the network thread (frames, the periodic tick) and
// application threads (output through ipv4). Frames are built under it
// but transmitted after it is released, so a driver never runs under it.
// Lock order: netdev g_dispatch -> arp g_lock -> (pool lock).
#include <base/endian.hpp>
#include <cstring>
#include <eth-arp/arp.hpp>
#include <klog/klog.hpp>
#include <sync/mutex.hpp>
#include <time/callout.hpp>

namespace tessera::eth_arp {

constinit std::atomic<std::uint32_t> detail::g_generation{1};

namespace {

constexpr unsigned kEntries = CONFIG_ETH_ARP_ENTRIES;
constexpr unsigned kPending = CONFIG_ETH_ARP_PENDING;
constexpr std::size_t kArpLength = 28; // Ethernet/IPv4 ARP body
constexpr std::uint16_t kRequest = 1, kReply = 2;
constexpr std::uint64_t kTickNs = 100'000'000; // aging/retry granularity

enum class State : std::uint8_t { Free, Pending, Resolved, Static };

struct Entry {
    State state = State::Free;
    std::uint8_t tries = 0;        // requests sent (Pending)
    std::uint8_t queued = 0;       // packets on the queue (Pending)
    netdev::Interface* iface = nullptr;
    std::uint32_t ip = 0;
    netdev::MacAddress mac{};
    time::Ticks deadline = 0;      // Pending: next retry; Resolved: expiry
    netdev::Packet* head = nullptr; // queued packets (Packet::next), FIFO
    netdev::Packet* tail = nullptr;
};

struct Local {
    netdev::Interface* iface = nullptr;
    std::uint32_t ip = 0;
};

sync::Mutex g_lock{"eth_arp"}; // see the top of the file
Entry g_entries[kEntries];
Local g_local[netdev::kMaxInterfaces];
Stats g_stats{};

// The periodic tick: a callout (interrupt context) hands the work to the
// network thread.
netdev::Work g_tick_work{[](void*) { tick(); }, nullptr};
time::Callout g_tick_callout{[](void*) { netdev::schedule(g_tick_work); }, nullptr};

netdev::MacAddress mac_at(const std::byte* p) {
    netdev::MacAddress m;
    std::memcpy(m.bytes.data(), p, 6);
    return m;
}

// Caller holds g_lock.
std::uint32_t local_address(const netdev::Interface* iface) {
    for (const Local& l : g_local)
        if (l.iface == iface) return l.ip;
    return 0;
}

Entry* find(const netdev::Interface* iface, std::uint32_t ip) {
    for (Entry& e : g_entries)
        if (e.state != State::Free && e.iface == iface && e.ip == ip) return &e;
    return nullptr;
}

// Frees the entry's queued packets (counted as dropped).
void drop_queue(Entry& e) {
    while (e.head) {
        netdev::Packet* p = e.head;
        e.head = p->next;
        p->next = nullptr;
        netdev::PacketRef::adopt(p).reset();
        ++g_stats.pending_dropped;
        --g_stats.pending_packets;
    }
    e.tail = nullptr;
    e.queued = 0;
}

// A resolved binding changed or went: MACs handed out by lookup() are stale.
void binding_changed() { detail::g_generation.fetch_add(1, std::memory_order_acq_rel); }

void release(Entry& e) {
    drop_queue(e);
    if (e.state == State::Resolved || e.state == State::Static) binding_changed();
    if (e.state != State::Free) --g_stats.entries;
    e = Entry{};
}

// A free entry, or the resolved one closest to expiry (evicted). nullptr
// if every entry is pending or static.
Entry* allocate_entry() {
    Entry* victim = nullptr;
    for (Entry& e : g_entries) {
        if (e.state == State::Free) return &e;
        if (e.state == State::Resolved && (!victim || e.deadline < victim->deadline)) victim = &e;
    }
    if (victim) release(*victim);
    return victim;
}

// Builds an ARP frame body (not yet sent). Any thread context.
base::Result<netdev::PacketRef> build(std::uint16_t op, netdev::MacAddress sender_mac, std::uint32_t sender_ip,
                                      netdev::MacAddress target_mac, std::uint32_t target_ip) {
    auto p = TRY(netdev::allocate());
    std::byte* b = p->put(kArpLength);
    if (!b) return base::Error::NoMemory;
    base::store_be16(b, 1);            // hardware: Ethernet
    base::store_be16(b + 2, kIpv4Ethertype);
    b[4] = std::byte{6};
    b[5] = std::byte{4};
    base::store_be16(b + 6, op);
    std::memcpy(b + 8, sender_mac.bytes.data(), 6);
    base::store_be32(b + 14, sender_ip);
    std::memcpy(b + 18, target_mac.bytes.data(), 6);
    base::store_be32(b + 24, target_ip);
    return p;
}

// Sends a request for `ip` from our address on iface. No lock held.
void send_request(netdev::Interface& iface, std::uint32_t our_ip, std::uint32_t ip) {
    auto p = build(kRequest, iface.mac(), our_ip, netdev::MacAddress{}, ip);
    if (!p.ok()) return;
    if (iface.send_frame(std::move(p.value()), netdev::MacAddress::broadcast(), kEthertype).ok()) {
        sync::MutexGuard guard(g_lock);
        ++g_stats.requests_sent;
    }
}

// Transmits a chain of packets (Packet::next) to `mac`. No lock held.
void transmit_chain(netdev::Interface& iface, netdev::Packet* chain, netdev::MacAddress mac) {
    while (chain) {
        netdev::Packet* p = chain;
        chain = p->next;
        p->next = nullptr;
        (void)iface.send_frame(netdev::PacketRef::adopt(p), mac, kIpv4Ethertype); // counted by the interface
    }
}

void handle(netdev::Interface& iface, netdev::PacketRef packet, void*) {
    const std::byte* b = packet->bytes();
    bool ok = packet->length() >= kArpLength && base::load_be16(b) == 1 && base::load_be16(b + 2) == kIpv4Ethertype &&
              b[4] == std::byte{6} && b[5] == std::byte{4};
    std::uint16_t op = ok ? base::load_be16(b + 6) : 0;
    netdev::MacAddress sender_mac = ok ? mac_at(b + 8) : netdev::MacAddress{};
    std::uint32_t sender_ip = ok ? base::load_be32(b + 14) : 0;
    std::uint32_t target_ip = ok ? base::load_be32(b + 24) : 0;
    // A sender claiming a broadcast/multicast MAC (or a zero one) would poison the cache.
    if (ok && (op != kRequest && op != kReply)) ok = false;
    if (ok && (sender_mac.is_multicast() || sender_mac == netdev::MacAddress{})) ok = false;

    netdev::Packet* release_chain = nullptr;
    bool reply = false;
    std::uint32_t our_ip = 0;
    {
        sync::MutexGuard guard(g_lock);
        ++g_stats.received;
        if (!ok) {
            ++g_stats.malformed;
            iface.count_rx_error();
            return;
        }
        if (op == kRequest) ++g_stats.requests_received; else ++g_stats.replies_received;
        our_ip = local_address(&iface);
        bool for_us = our_ip != 0 && target_ip == our_ip;
        bool sender_valid = sender_ip != 0 && sender_ip != 0xffffffffu && sender_ip != our_ip;
        // RFC 826's merge: update an entry we have; add one only when the
        // frame is addressed to us.
        Entry* e = sender_valid ? find(&iface, sender_ip) : nullptr;
        if (!e && sender_valid && for_us) {
            e = allocate_entry();
            if (e) {
                *e = Entry{State::Pending, 0, 0, &iface, sender_ip, {}, 0, nullptr, nullptr};
                ++g_stats.entries;
            }
        }
        if (e && e->state != State::Static) {
            if (e->state == State::Pending) ++g_stats.resolved;
            else if (e->mac != sender_mac) binding_changed();
            e->state = State::Resolved;
            e->mac = sender_mac;
            e->deadline = time::now() + time::from_ns(std::uint64_t(CONFIG_ETH_ARP_TIMEOUT_S) * 1'000'000'000);
            release_chain = e->head;
            g_stats.pending_packets -= e->queued;
            e->head = e->tail = nullptr;
            e->queued = 0;
        }
        if (for_us && op == kRequest) {
            reply = true;
            ++g_stats.replies_sent;
        }
    }
    if (release_chain) transmit_chain(iface, release_chain, sender_mac);
    if (reply) {
        auto p = build(kReply, iface.mac(), our_ip, sender_mac, sender_ip);
        if (p.ok()) (void)iface.send_frame(std::move(p.value()), sender_mac, kEthertype);
    }
}

} // namespace

base::Result<void> set_address(netdev::Interface& iface, std::uint32_t address) {
    {
        sync::MutexGuard guard(g_lock);
        Local* slot = nullptr;
        for (Local& l : g_local)
            if (l.iface == &iface) slot = &l;
        if (!slot && address == 0) return {};
        if (!slot)
            for (Local& l : g_local)
                if (!l.iface) { slot = &l; break; }
        if (!slot) return base::Error::NoMemory;
        if (address == 0) { *slot = {}; return {}; }
        if (slot->iface == &iface && slot->ip == address) return {};
        *slot = {&iface, address};
    }
    // Gratuitous ARP: announces the binding and refreshes neighbours' caches.
    send_request(iface, address, address);
    return {};
}

base::Result<void> output(netdev::Interface& iface, std::uint32_t next_hop, netdev::PacketRef packet) {
    if (next_hop == 0xffffffffu) return iface.send_frame(std::move(packet), netdev::MacAddress::broadcast(), kIpv4Ethertype);
    std::uint32_t our_ip = 0;
    bool request = false;
    {
        sync::MutexGuard guard(g_lock);
        Entry* e = find(&iface, next_hop);
        if (e && (e->state == State::Resolved || e->state == State::Static)) {
            netdev::MacAddress mac = e->mac;
            g_lock.unlock();
            auto r = iface.send_frame(std::move(packet), mac, kIpv4Ethertype);
            g_lock.lock();
            return r;
        }
        if (!e) {
            e = allocate_entry();
            if (!e) {
                ++g_stats.no_entry;
                return base::Error::NoMemory;
            }
            *e = Entry{State::Pending, 1, 0, &iface, next_hop, {},
                       time::now() + time::from_ns(std::uint64_t(CONFIG_ETH_ARP_RETRY_MS) * 1'000'000), nullptr, nullptr};
            ++g_stats.entries;
            request = true;
            our_ip = local_address(&iface);
        }
        if (e->queued >= kPending) {
            ++g_stats.pending_dropped;
            return base::Error::NoMemory;
        }
        netdev::Packet* p = packet.release();
        p->next = nullptr;
        if (e->tail) e->tail->next = p; else e->head = p;
        e->tail = p;
        ++e->queued;
        ++g_stats.pending_packets;
    }
    if (request) send_request(iface, our_ip, next_hop);
    return {};
}

std::optional<netdev::MacAddress> lookup(const netdev::Interface& iface, std::uint32_t address) {
    sync::MutexGuard guard(g_lock);
    Entry* e = find(&iface, address);
    if (!e || (e->state != State::Resolved && e->state != State::Static)) return std::nullopt;
    return e->mac;
}

base::Result<void> add_static(netdev::Interface& iface, std::uint32_t address, netdev::MacAddress mac) {
    netdev::Packet* chain = nullptr;
    {
        sync::MutexGuard guard(g_lock);
        Entry* e = find(&iface, address);
        if (!e) {
            e = allocate_entry();
            if (!e) return base::Error::NoMemory;
            ++g_stats.entries;
        }
        chain = e->head;
        g_stats.pending_packets -= e->queued;
        if (e->state == State::Resolved || e->state == State::Static) binding_changed();
        *e = Entry{State::Static, 0, 0, &iface, address, mac, 0, nullptr, nullptr};
    }
    transmit_chain(iface, chain, mac);
    return {};
}

void flush(netdev::Interface* iface) {
    sync::MutexGuard guard(g_lock);
    for (Entry& e : g_entries)
        if (e.state != State::Free && (!iface || e.iface == iface)) release(e);
}

void tick() {
    struct Retry { netdev::Interface* iface; std::uint32_t from, to; };
    Retry retries[kEntries];
    unsigned n = 0;
    {
        sync::MutexGuard guard(g_lock);
        time::Ticks now = time::now();
        for (Entry& e : g_entries) {
            if (e.state == State::Resolved && now >= e.deadline) {
                ++g_stats.expired;
                release(e);
            } else if (e.state == State::Pending && now >= e.deadline) {
                if (e.tries >= CONFIG_ETH_ARP_RETRIES) {
                    ++g_stats.failed;
                    release(e); // queued packets freed and counted
                } else {
                    ++e.tries;
                    e.deadline = now + time::from_ns(std::uint64_t(CONFIG_ETH_ARP_RETRY_MS) * 1'000'000);
                    retries[n++] = {e.iface, local_address(e.iface), e.ip};
                }
            }
        }
    }
    for (unsigned i = 0; i < n; ++i) send_request(*retries[i].iface, retries[i].from, retries[i].to);
}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    return g_stats;
}

namespace {
// netdev unregister hook (dispatch mutex held, like a handler): the
// interface's entries go, with the packets queued on them, and so does
// its address, so nothing keeps a pointer to an interface that may be
// destroyed next.
void on_unregister(netdev::Interface& iface, void*) {
    (void)set_address(iface, 0);
    flush(&iface);
}
} // namespace

// Init step eth_arp.start.
base::Result<void> init_start() {
    TRY(netdev::register_ethertype(kEthertype, handle, nullptr));
    TRY(netdev::register_unregister_hook(on_unregister, nullptr));
    return g_tick_callout.start_periodic(time::now() + time::from_ns(kTickNs), time::from_ns(kTickNs));
}

} // namespace tessera::eth_arp
