// IPv4: interface configuration, routes, output with fragmentation, input
// validation, reassembly and dispatch to protocol handlers.
//
// State is under g_lock (a sync::Mutex): callers are application threads
// and the network thread. It is never held while calling ARP, a driver or
// a protocol handler. Lock order: netdev g_dispatch -> ipv4 g_lock ->
// (pool lock). The reassembly timeout runs from a periodic callout that
// hands a work item to the network thread.
#include <base/endian.hpp>
#include <atomic>
#include <cstring>
#include <eth-arp/arp.hpp>
#include <ipv4/ipv4.hpp>
#include <klog/klog.hpp>
#include <sync/mutex.hpp>
#include <time/callout.hpp>

namespace tessera::ipv4 {
namespace {

constexpr unsigned kRoutes = CONFIG_IPV4_ROUTES;
constexpr unsigned kSlots = CONFIG_IPV4_REASSEMBLY_SLOTS;
constexpr unsigned kFragments = CONFIG_IPV4_REASSEMBLY_FRAGMENTS;
constexpr std::size_t kReassemblyHeadroom = 64; // room for the handler to look back / reuse
constexpr std::size_t kReassemblyMax = netdev::kBufferSize - kReassemblyHeadroom; // payload bytes
constexpr unsigned kHandlers = 8;
constexpr std::uint64_t kTickNs = 100'000'000;
constexpr std::uint32_t kMinMtu = 68; // RFC 791: every link carries 68 bytes unfragmented

struct Config {
    netdev::Interface* iface = nullptr;
    Address address;
    unsigned prefix = 0;
};

struct RouteEntry {
    bool used = false;
    Address network;
    unsigned prefix = 0;
    Address gateway; // any(): on link
    netdev::Interface* iface = nullptr;
};

struct HandlerEntry {
    std::uint8_t protocol = 0;
    ProtocolHandler handler = nullptr;
    void* context = nullptr;
    ErrorHandler on_error = nullptr;
};

struct Range { std::uint16_t start, end; };

struct Slot {
    bool used = false;
    Address source, destination;
    std::uint16_t id = 0;
    std::uint8_t protocol = 0;
    time::Ticks deadline = 0;
    netdev::PacketRef buffer;       // payload assembled at kReassemblyHeadroom + offset
    std::uint32_t received = 0;     // payload bytes held
    std::uint32_t total = 0;        // payload length, known once the last fragment came (0: not yet)
    unsigned ranges = 0;
    Range range[kFragments];
    Header header{};                // of the first fragment seen (offset 0 preferred)
    netdev::Interface* opened_on = nullptr; // the first fragment's interface
};

sync::Mutex g_lock{"ipv4"}; // see the top of the file
Config g_config[netdev::kMaxInterfaces];
RouteEntry g_routes[kRoutes];
HandlerEntry g_handlers[kHandlers];
Slot g_slots[kSlots];
std::uint32_t g_reassembly_bytes = 0;
std::optional<Address> g_dns;
Stats g_stats{};
std::atomic<std::uint32_t> g_next_id{1};
// Counts changes of routes and addresses (Path validity). Written under
// g_lock, read without it.
std::atomic<std::uint32_t> g_generation{1};
// Datagrams sent through a valid Path, and their failures: counted
// without g_lock, added to Stats by stats().
std::atomic<std::uint64_t> g_sent_by_path{0}, g_path_send_errors{0};

// Caller holds g_lock: a route or address changed, so every Path is stale.
void routes_changed_locked() { g_generation.fetch_add(1, std::memory_order_acq_rel); }

// Ours and ARP's generations together: a Path filled at one value is valid while both stay.
std::uint64_t path_generation() {
    return std::uint64_t(g_generation.load(std::memory_order_acquire)) << 32 | eth_arp::generation();
}

netdev::Work g_tick_work{[](void*) {
    // Reassembly timeout: incomplete datagrams are freed and counted.
    sync::MutexGuard guard(g_lock);
    time::Ticks now = time::now();
    for (Slot& s : g_slots)
        if (s.used && now >= s.deadline) {
            ++g_stats.reassembly_timeouts;
            g_reassembly_bytes -= s.received;
            s.buffer.reset();
            s.used = false;
        }
}, nullptr};
time::Callout g_tick_callout{[](void*) { netdev::schedule(g_tick_work); }, nullptr};

// Caller holds g_lock.
Config* config_of(const netdev::Interface* iface) {
    for (Config& c : g_config)
        if (c.iface && c.iface == iface) return &c;
    return nullptr;
}

// Inline (as lookup_locked): both run for every packet sent or received.
[[gnu::always_inline]] inline bool broadcast_locked(Address a, const netdev::Interface* iface) {
    if (a.is_broadcast()) return true;
    for (const Config& c : g_config) {
        if (!c.iface || (iface && c.iface != iface) || c.prefix >= 31) continue;
        std::uint32_t mask = prefix_mask(c.prefix);
        if ((a.value & mask) == (c.address.value & mask) && (a.value | mask) == 0xffffffffu) return true;
    }
    return false;
}

[[gnu::always_inline]] inline RouteEntry* lookup_locked(Address destination) {
    RouteEntry* best = nullptr;
    for (RouteEntry& r : g_routes) {
        if (!r.used) continue;
        if ((destination.value & prefix_mask(r.prefix)) != r.network.value) continue;
        if (!best || r.prefix > best->prefix) best = &r;
    }
    return best;
}

base::Result<void> add_route_locked(Address network, unsigned prefix, Address gateway, netdev::Interface& iface) {
    if (prefix > 32) return base::Error::InvalidArgument;
    routes_changed_locked();
    network.value &= prefix_mask(prefix);
    RouteEntry* free_entry = nullptr;
    for (RouteEntry& r : g_routes) {
        if (r.used && r.network == network && r.prefix == prefix) { // replace
            r.gateway = gateway;
            r.iface = &iface;
            return {};
        }
        if (!r.used && !free_entry) free_entry = &r;
    }
    if (!free_entry) return base::Error::NoMemory;
    *free_entry = {true, network, prefix, gateway, &iface};
    return {};
}

// Writes a 20-byte header at `h`.
void write_header(std::byte* h, std::uint16_t total, std::uint16_t id, std::uint16_t flags_offset, const SendOptions& o,
                  Protocol protocol, Address source, Address destination) {
    h[0] = std::byte{0x45};
    h[1] = std::byte{o.tos};
    base::store_be16(h + 2, total);
    base::store_be16(h + 4, id);
    base::store_be16(h + 6, flags_offset);
    h[8] = std::byte{o.ttl};
    h[9] = std::byte{static_cast<std::uint8_t>(protocol)};
    base::store_be16(h + 10, 0);
    source.store(h + 12);
    destination.store(h + 16);
    base::store_be16(h + 10, checksum_finish(checksum_add({h, kHeaderLength})));
}

base::Result<void> transmit(netdev::Interface& iface, Address next_hop, netdev::PacketRef packet) {
    if (next_hop.is_broadcast())
        return iface.send_frame(std::move(packet), netdev::MacAddress::broadcast(), kEthertype);
    return eth_arp::output(iface, next_hop.value, std::move(packet));
}

HandlerEntry handler_locked(std::uint8_t protocol);

// A reassembled datagram to its protocol.
void deliver(const Header& header, netdev::PacketRef packet) {
    HandlerEntry h{};
    {
        sync::MutexGuard guard(g_lock);
        h = handler_locked(header.protocol);
    }
    if (h.handler) h.handler(header, std::move(packet), h.context);
}

void release_slot(Slot& s) {
    g_reassembly_bytes -= s.received;
    s.buffer.reset();
    s.used = false;
    s.ranges = 0;
    s.opened_on = nullptr;
}

// The interface's address and every route through it. Caller holds g_lock.
void forget_locked(const netdev::Interface& iface) {
    routes_changed_locked();
    if (Config* c = config_of(&iface)) *c = {};
    for (RouteEntry& r : g_routes)
        if (r.used && r.iface == &iface) r.used = false;
}

// netdev unregister hook (dispatch mutex held, like a handler): datagrams
// the interface opened, or whose kept header names it, are dropped now
// rather than at the timeout, and its address and routes go. Buffers go
// back to the pool, and no stale Interface* is kept (eth-arp drops its
// entries in its own hook).
void on_unregister(netdev::Interface& iface, void*) {
    sync::MutexGuard guard(g_lock);
    for (Slot& s : g_slots)
        if (s.used && (s.opened_on == &iface || s.header.interface == &iface)) {
            ++g_stats.reassembly_interface_gone;
            release_slot(s);
        }
    forget_locked(iface);
}

// A fragment (window at the payload). Returns the whole datagram when it
// completes (header updated), else an empty ref.
netdev::PacketRef reassemble(Header& header, netdev::PacketRef fragment) {
    sync::MutexGuard guard(g_lock);
    ++g_stats.fragments_received;
    std::uint32_t start = header.fragment_offset;
    std::uint32_t length = static_cast<std::uint32_t>(fragment->length());
    std::uint32_t end = start + length;
    bool last = !header.more_fragments;
    if (length == 0 || (!last && length % 8 != 0) || end > kReassemblyMax) {
        ++g_stats.reassembly_no_room; // unusable or beyond what one buffer holds
        return {};
    }
    Slot* slot = nullptr;
    Slot* free_slot = nullptr;
    for (Slot& s : g_slots) {
        if (s.used && s.source == header.source && s.destination == header.destination && s.id == header.id &&
            s.protocol == header.protocol) { slot = &s; break; }
        if (!s.used && !free_slot) free_slot = &s;
    }
    if (!slot) {
        if (!free_slot) {
            ++g_stats.reassembly_no_room;
            return {};
        }
        auto buffer = netdev::allocate(0);
        if (!buffer.ok()) {
            ++g_stats.reassembly_no_room;
            return {};
        }
        slot = free_slot;
        slot->used = true;
        slot->source = header.source;
        slot->destination = header.destination;
        slot->id = header.id;
        slot->protocol = header.protocol;
        slot->deadline = time::now() + time::from_ns(std::uint64_t(CONFIG_IPV4_REASSEMBLY_TIMEOUT_MS) * 1'000'000);
        slot->buffer = std::move(buffer.value());
        slot->received = 0;
        slot->total = 0;
        slot->ranges = 0;
        slot->header = header;
        slot->opened_on = header.interface;
    }
    Slot& s = *slot;
    // Overlap (duplicates included) poisons the datagram: drop it all.
    bool bad = (s.total && end > s.total) || (last && s.total && end != s.total);
    // A last fragment must also end every piece already held: one ending
    // beyond it leaves a hole the byte count below cannot see.
    for (unsigned i = 0; i < s.ranges && !bad; ++i)
        if ((start < s.range[i].end && s.range[i].start < end) || (last && s.range[i].end > end)) bad = true;
    if (bad) {
        ++g_stats.reassembly_overlaps;
        release_slot(s);
        return {};
    }
    if (s.ranges == kFragments || g_reassembly_bytes + length > CONFIG_IPV4_REASSEMBLY_BYTES) {
        ++g_stats.reassembly_no_room;
        release_slot(s);
        return {};
    }
    std::memcpy(s.buffer->storage().data() + kReassemblyHeadroom + start, fragment->bytes(), length);
    s.range[s.ranges++] = {static_cast<std::uint16_t>(start), static_cast<std::uint16_t>(end)};
    s.received += length;
    g_reassembly_bytes += length;
    if (last) s.total = end;
    if (start == 0) s.header = header;
    if (!s.total || s.received != s.total) return {};
    // Complete: no overlaps and as many bytes as the length, so no holes.
    ++g_stats.reassembled;
    netdev::PacketRef whole = std::move(s.buffer);
    VERIFY(whole->set_window(kReassemblyHeadroom, s.total).ok());
    whole->set_interface(fragment->interface());
    // The interface of the fragment that completed it: the one the first
    // fragment came in on may have been unregistered since.
    netdev::Interface* iface = header.interface;
    header = s.header;
    header.interface = iface;
    header.more_fragments = false;
    header.fragment_offset = 0;
    header.total_length = static_cast<std::uint16_t>(header.header_length + s.total);
    release_slot(s);
    return whole;
}

// Caller holds g_lock. The protocol's registered entry (at most one:
// register_protocol refuses a second), or nullptr.
HandlerEntry* find_handler_locked(std::uint8_t protocol) {
    for (HandlerEntry& e : g_handlers)
        if (e.handler && e.protocol == protocol) return &e;
    return nullptr;
}

// Caller holds g_lock. The protocol's handler, counted as delivered (or
// as having none).
HandlerEntry handler_locked(std::uint8_t protocol) {
    if (const HandlerEntry* e = find_handler_locked(protocol)) {
        ++g_stats.delivered;
        return *e;
    }
    ++g_stats.no_protocol;
    return {};
}

// Caller holds g_lock. Whether a datagram from `source` to `destination`
// arriving on `iface` is taken, in one pass over the addresses (every
// datagram received asks): the source must be a unicast host (RFC 1122
// 3.2.1.3: not a broadcast address of any interface, multicast, 0/8 or
// loopback; such a datagram is discarded silently, so that no ICMP error,
// RST or echo reply ever goes to one), and the destination must be one of
// our addresses, a broadcast address of `iface`, or anything unicast while
// `iface` has no address yet (DHCP).
std::uint64_t Stats::*address_error_locked(const netdev::Interface& iface, Address source, Address destination) {
    if (source.is_broadcast() || source.is_multicast() || source.is_zero_network() || source.is_loopback())
        return &Stats::bad_source;
    bool ours = destination.is_broadcast(), configured = false;
    for (const Config& k : g_config) {
        if (!k.iface) continue;
        ours |= k.address == destination;
        configured |= k.iface == &iface;
        if (k.prefix >= 31) continue; // no broadcast address on /31 and /32 links
        std::uint32_t mask = prefix_mask(k.prefix), broadcast = k.address.value | ~mask;
        if (source.value == broadcast) return &Stats::bad_source; // a directed broadcast
        if (k.iface == &iface && destination.value == broadcast) ours = true;
    }
    return ours || !configured ? nullptr : &Stats::not_for_us;
}

void input(netdev::Interface& iface, netdev::PacketRef packet, void*) {
    const std::byte* h = packet->bytes();
    std::size_t length = packet->length();
    std::uint64_t Stats::*error = nullptr;
    Header header{};
    HandlerEntry handler{};
    {
        // One critical section: checks, addresses and (for a whole
        // datagram) the protocol's handler.
        sync::MutexGuard guard(g_lock);
        ++g_stats.received;
        unsigned ihl = length ? (std::to_integer<unsigned>(h[0]) & 0xf) * 4 : 0;
        if (length < kHeaderLength) error = &Stats::truncated;
        else if ((std::to_integer<unsigned>(h[0]) >> 4) != 4) error = &Stats::bad_version;
        else if (ihl < kHeaderLength) error = &Stats::bad_header_length;
        else if (ihl > length) error = &Stats::truncated;
        else if (checksum_finish(checksum_add({h, ihl})) != 0) error = &Stats::bad_checksum;
        else if (base::load_be16(h + 2) < ihl) error = &Stats::bad_total_length;
        else if (base::load_be16(h + 2) > length) error = &Stats::truncated;
        else if (h[8] == std::byte{0}) error = &Stats::ttl_expired;
        if (!error) {
            std::uint16_t flags = base::load_be16(h + 6);
            header = Header{Address::load(h + 12), Address::load(h + 16), std::to_integer<std::uint8_t>(h[9]),
                            std::to_integer<std::uint8_t>(h[8]), std::to_integer<std::uint8_t>(h[1]), base::load_be16(h + 4),
                            base::load_be16(h + 2), static_cast<std::uint16_t>(ihl), (flags & 0x2000) != 0,
                            static_cast<std::uint16_t>((flags & 0x1fff) * 8), &iface};
            error = address_error_locked(iface, header.source, header.destination);
        }
        if (error) ++(g_stats.*error);
        else if (!header.more_fragments && !header.fragment_offset) handler = handler_locked(header.protocol);
    }
    if (error) {
        iface.count_rx_error();
        return;
    }
    packet->trim(header.total_length);           // link padding
    (void)packet->pull(header.header_length);     // options skipped
    if (header.more_fragments || header.fragment_offset) {
        packet = reassemble(header, std::move(packet));
        if (packet) deliver(header, std::move(packet));
        return;
    }
    // (No ICMP protocol unreachable: transports we lack are simply dropped.)
    if (handler.handler) handler.handler(header, std::move(packet), handler.context);
}

} // namespace

base::Result<void> configure(netdev::Interface& iface, Address address, unsigned prefix_length) {
    if (prefix_length > 32 || address.is_any() || address.is_broadcast()) return base::Error::InvalidArgument;
    {
        sync::MutexGuard guard(g_lock);
        Config* c = config_of(&iface);
        if (!c)
            for (Config& k : g_config)
                if (!k.iface) { c = &k; break; }
        if (!c) return base::Error::NoMemory;
        // A previous connected route of this interface goes.
        if (c->iface)
            for (RouteEntry& r : g_routes)
                if (r.used && r.iface == &iface && r.gateway.is_any() && r.prefix == c->prefix &&
                    r.network.value == (c->address.value & prefix_mask(c->prefix)))
                    r.used = false;
        TRY(add_route_locked(address, prefix_length, Address::any(), iface));
        *c = {&iface, address, prefix_length};
    }
    return eth_arp::set_address(iface, address.value); // gratuitous ARP
}

void deconfigure(netdev::Interface& iface) {
    {
        sync::MutexGuard guard(g_lock);
        forget_locked(iface);
    }
    (void)eth_arp::set_address(iface, 0);
    eth_arp::flush(&iface);
}

std::optional<unsigned> prefix_of(const netdev::Interface& iface) {
    sync::MutexGuard guard(g_lock);
    if (Config* c = config_of(&iface)) return c->prefix;
    return std::nullopt;
}

base::Result<void> set_default_gateway(Address gateway) {
    sync::MutexGuard guard(g_lock);
    RouteEntry* on_link = lookup_locked(gateway);
    if (!on_link || !on_link->gateway.is_any()) return base::Error::Unreachable;
    return add_route_locked(Address::any(), 0, gateway, *on_link->iface);
}

void clear_default_gateway() {
    sync::MutexGuard guard(g_lock);
    routes_changed_locked();
    for (RouteEntry& r : g_routes)
        if (r.used && r.prefix == 0) r.used = false;
}

std::optional<Address> default_gateway() {
    sync::MutexGuard guard(g_lock);
    for (RouteEntry& r : g_routes)
        if (r.used && r.prefix == 0) return r.gateway;
    return std::nullopt;
}

base::Result<void> add_route(Address network, unsigned prefix_length, Address gateway, netdev::Interface& iface) {
    sync::MutexGuard guard(g_lock);
    return add_route_locked(network, prefix_length, gateway, iface);
}

base::Result<Route> route(Address destination) {
    sync::MutexGuard guard(g_lock);
    RouteEntry* r = lookup_locked(destination);
    if (!r) return base::Error::Unreachable;
    Config* c = config_of(r->iface);
    return Route{r->iface, r->gateway.is_any() ? destination : r->gateway, c ? c->address : Address::any(),
                 r->iface->mtu()};
}

std::optional<Address> address_of(const netdev::Interface& iface) {
    sync::MutexGuard guard(g_lock);
    if (Config* c = config_of(&iface)) return c->address;
    return std::nullopt;
}

void set_dns_server(Address server) {
    sync::MutexGuard guard(g_lock);
    if (server.is_any()) g_dns.reset(); else g_dns = server;
}

std::optional<Address> dns_server() {
    sync::MutexGuard guard(g_lock);
    return g_dns;
}

bool is_local(Address address) {
    sync::MutexGuard guard(g_lock);
    for (const Config& c : g_config)
        if (c.iface && c.address == address) return true;
    return false;
}

bool is_broadcast(Address address, const netdev::Interface* iface) {
    sync::MutexGuard guard(g_lock);
    return broadcast_locked(address, iface);
}

base::Result<void> configure_static(netdev::Interface& iface) {
#ifdef CONFIG_IPV4_STATIC
    auto address = parse(CONFIG_IPV4_STATIC_ADDRESS);
    if (!address) return base::Error::InvalidArgument;
    TRY(configure(iface, *address, CONFIG_IPV4_STATIC_PREFIX));
    if (auto gw = parse(CONFIG_IPV4_STATIC_GATEWAY)) TRY(set_default_gateway(*gw));
    if (auto dns = parse(CONFIG_IPV4_STATIC_DNS)) set_dns_server(*dns);
    return {};
#else
    (void)iface;
    return base::Error::NotSupported;
#endif
}

namespace {
struct NextHop {
    netdev::Interface* iface;
    Address address; // the broadcast address for a broadcast destination
};

// Caller holds g_lock. Where a datagram to `destination` goes: through
// `forced` (the interface the sender named, or nullptr) or the longest
// prefix route's interface, to the route's gateway or the destination
// itself. The limited broadcast with a named interface needs no route.
std::optional<NextHop> next_hop_locked(Address destination, netdev::Interface* forced) {
    NextHop hop{forced, destination};
    if (!forced || !destination.is_broadcast()) {
        RouteEntry* r = lookup_locked(destination);
        if (!r) return std::nullopt;
        if (!hop.iface) hop.iface = r->iface;
        if (!r->gateway.is_any()) hop.address = r->gateway;
    }
    if (broadcast_locked(destination, hop.iface)) hop.address = Address::broadcast();
    return hop;
}

std::uint16_t next_id() { return static_cast<std::uint16_t>(g_next_id.fetch_add(1, std::memory_order_relaxed)); }

// Pushes the header of a datagram that goes whole in front of the
// packet's window. Malformed without the headroom.
base::Result<void> push_header(netdev::Packet& packet, const SendOptions& o, Protocol protocol, Address source,
                               Address destination) {
    std::size_t total = packet.length() + kHeaderLength;
    std::byte* h = packet.push(kHeaderLength);
    if (!h) return base::Error::Malformed;
    write_header(h, static_cast<std::uint16_t>(total), next_id(), o.dont_fragment ? 0x4000 : 0, o, protocol, source,
                 destination);
    return {};
}
} // namespace

base::Result<void> send(netdev::PacketRef packet, Address source, Address destination, Protocol protocol,
                        const SendOptions& options) {
    NextHop hop{};
    {
        sync::MutexGuard guard(g_lock);
        auto found = next_hop_locked(destination, options.interface);
        if (!found) {
            ++g_stats.no_route;
            return base::Error::Unreachable;
        }
        hop = *found;
        if (source.is_any())
            if (Config* c = config_of(hop.iface)) source = c->address;
        ++g_stats.sent;
    }
    netdev::Interface* iface = hop.iface;
    const Address next_hop = hop.address;
    std::size_t payload = packet->length();
    std::uint32_t mtu = iface->mtu();
    if (payload + kHeaderLength <= mtu) {
        TRY(push_header(*packet, options, protocol, source, destination));
        auto r = transmit(*iface, next_hop, std::move(packet));
        if (!r.ok()) {
            sync::MutexGuard guard(g_lock);
            ++g_stats.send_errors;
        }
        return r;
    }
    // Below RFC 791's 68 bytes (a driver's bogus MTU) fragments would be
    // empty (mtu < 28: the loop below would never advance) or absurd.
    if (options.dont_fragment || payload + kHeaderLength > 65535 || mtu < kMinMtu) {
        sync::MutexGuard guard(g_lock);
        ++g_stats.too_long;
        return base::Error::MessageTooLong;
    }
    // Fragments: each carries a multiple of 8 payload bytes but the last.
    const std::uint16_t id = next_id();
    std::size_t chunk = (mtu - kHeaderLength) & ~std::size_t{7};
    for (std::size_t offset = 0; offset < payload; offset += chunk) {
        std::size_t n = payload - offset < chunk ? payload - offset : chunk;
        bool more = offset + n < payload;
        auto fragment = TRY(netdev::allocate());
        std::byte* body = fragment->put(n);
        VERIFY(body);
        std::memcpy(body, packet->bytes() + offset, n);
        std::byte* h = fragment->push(kHeaderLength);
        write_header(h, static_cast<std::uint16_t>(n + kHeaderLength), id,
                     static_cast<std::uint16_t>((more ? 0x2000 : 0) | (offset / 8)), options, protocol, source,
                     destination);
        auto r = transmit(*iface, next_hop, std::move(fragment));
        sync::MutexGuard guard(g_lock);
        if (!r.ok()) {
            ++g_stats.send_errors;
            return r.error();
        }
        ++g_stats.fragments_sent;
    }
    return {};
}

namespace {
// Fills `path` for `destination` as the tables were at `generation` (read
// before looking: a change since makes the path stale at once). Left
// empty for a broadcast, an unrouted or an unresolved destination.
void fill(Path& path, Address destination, std::uint64_t generation) {
    path.generation = 0;
    if (destination.is_multicast()) return;
    std::optional<NextHop> hop;
    {
        sync::MutexGuard guard(g_lock);
        hop = next_hop_locked(destination, nullptr);
    }
    if (!hop || hop->address.is_broadcast()) return;
    auto mac = eth_arp::lookup(*hop->iface, hop->address.value);
    if (!mac) return;
    path = {generation, destination, hop->iface, *mac};
}
} // namespace

base::Result<void> send(Path& path, netdev::PacketRef packet, Address source, Address destination, Protocol protocol,
                        const SendOptions& options) {
    const std::uint64_t generation = path_generation();
    std::size_t total = packet->length() + kHeaderLength;
    if (path.generation == generation && path.destination == destination && !options.interface &&
        !source.is_any() && total <= path.iface->mtu()) {
        TRY(push_header(*packet, options, protocol, source, destination));
        g_sent_by_path.fetch_add(1, std::memory_order_relaxed);
        auto r = path.iface->send_frame(std::move(packet), path.next_hop_mac, kEthertype);
        if (!r.ok()) g_path_send_errors.fetch_add(1, std::memory_order_relaxed);
        return r;
    }
    auto r = send(std::move(packet), source, destination, protocol, options);
    if (!options.interface) fill(path, destination, generation);
    return r;
}

base::Result<void> register_protocol(Protocol protocol, ProtocolHandler handler, void* context,
                                     ErrorHandler on_error) {
    if (!handler) return base::Error::InvalidArgument;
    sync::MutexGuard guard(g_lock);
    if (find_handler_locked(static_cast<std::uint8_t>(protocol))) return base::Error::Busy;
    for (HandlerEntry& e : g_handlers)
        if (!e.handler) {
            e = {static_cast<std::uint8_t>(protocol), handler, context, on_error};
            return {};
        }
    return base::Error::NoMemory;
}

bool deliver_error(std::uint8_t protocol, const TransportError& error) {
    HandlerEntry h{};
    {
        sync::MutexGuard guard(g_lock);
        if (const HandlerEntry* e = find_handler_locked(protocol)) h = *e;
    }
    if (!h.on_error) return false;
    h.on_error(error, h.context);
    return true;
}

void unregister_protocol(Protocol protocol) {
    {
        sync::MutexGuard guard(g_lock);
        if (HandlerEntry* e = find_handler_locked(static_cast<std::uint8_t>(protocol))) *e = {};
    }
    // A call under way (in the network thread) finishes before we return.
    if (!netdev::in_network_thread()) netdev::flush();
}

[[gnu::weak]] void send_icmp_error(std::uint8_t, std::uint8_t, const Header&, netdev::PacketRef) {}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    Stats s = g_stats;
    s.sent_by_path = g_sent_by_path.load(std::memory_order_relaxed);
    s.sent += s.sent_by_path;
    s.send_errors += g_path_send_errors.load(std::memory_order_relaxed);
    return s;
}

// Init step ipv4.start.
base::Result<void> init_start() {
    TRY(netdev::register_ethertype(kEthertype, input, nullptr));
    TRY(netdev::register_unregister_hook(on_unregister, nullptr));
    return g_tick_callout.start_periodic(time::now() + time::from_ns(kTickNs), time::from_ns(kTickNs));
}

} // namespace tessera::ipv4
