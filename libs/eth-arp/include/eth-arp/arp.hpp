#pragma once
// ARP (RFC 826) for IPv4 over Ethernet: resolution of next hops with a
// cache, retries and a bounded queue of packets waiting per address.
//
// Independent of the ipv4 library: addresses are host-order 32-bit
// values and ipv4 tells ARP which addresses are ours (set_address()).
//
// Threading: the API may be called from threads and from the network
// thread (where ARP frames are handled); state is under a sync::Mutex
// (arp g_lock, nested inside netdev g_dispatch and ipv4's lock is never
// held when calling in). Not for interrupt context. SMP-safe. Frames are
// transmitted with no ARP lock held.
#include <atomic>
#include <base/result.hpp>
#include <cstdint>
#include <netdev/interface.hpp>
#include <optional>

namespace tessera::eth_arp {

inline constexpr std::uint16_t kEthertype = 0x0806;
inline constexpr std::uint16_t kIpv4Ethertype = 0x0800;

// Sets the interface's protocol address (0: none). ARP answers requests
// for it, and a new non-zero address is announced with a gratuitous ARP
// request. NoMemory if CONFIG_NETDEV_MAX_INTERFACES addresses are set.
base::Result<void> set_address(netdev::Interface& iface, std::uint32_t address);

// Sends an IPv4 packet (window at the IP header) to `next_hop` on
// `iface`: at once if the MAC is cached, otherwise queued (at most
// CONFIG_ETH_ARP_PENDING per address; beyond that the packet is dropped
// and NoMemory returned) while requests go out. Packets still queued when
// resolution fails are freed and counted (Stats::pending_dropped).
// 255.255.255.255 is sent to the Ethernet broadcast address.
// NoMemory also when the cache has no entry to spare.
base::Result<void> output(netdev::Interface& iface, std::uint32_t next_hop, netdev::PacketRef packet);

// The cached MAC of `address` on `iface` (nullopt if unknown/pending).
std::optional<netdev::MacAddress> lookup(const netdev::Interface& iface, std::uint32_t address);
// Changes whenever a resolved binding changes or goes (a new MAC, expiry,
// eviction, flush): a MAC got from lookup() is current while this stays
// the same (ipv4::Path keeps one). Any context.
namespace detail {
extern std::atomic<std::uint32_t> g_generation;
} // namespace detail
[[nodiscard]] inline std::uint32_t generation() { return detail::g_generation.load(std::memory_order_acquire); }
// Adds or refreshes a resolved entry (tests, static neighbours).
base::Result<void> add_static(netdev::Interface& iface, std::uint32_t address, netdev::MacAddress mac);
// Drops every entry of `iface` (nullptr: all), freeing queued packets.
void flush(netdev::Interface* iface = nullptr);
// Runs the aging/retry pass now (normally every 100 ms from the network
// thread); for tests.
void tick();

struct Stats {
    std::uint64_t received;         // ARP frames handled
    std::uint64_t malformed;        // dropped: short, wrong hardware/protocol type or sizes, bad opcode
    std::uint64_t requests_received;
    std::uint64_t replies_received;
    std::uint64_t requests_sent;    // gratuitous ones included
    std::uint64_t replies_sent;
    std::uint64_t resolved;         // pending entries that got a reply
    std::uint64_t failed;           // resolutions given up after the retries
    std::uint64_t pending_dropped;  // queued packets freed on failure, overflow or flush
    std::uint64_t expired;          // resolved entries aged out
    std::uint64_t no_entry;         // output() found the cache full of pending entries
    std::uint32_t entries;          // in use now
    std::uint32_t pending_packets;  // queued now
};
Stats stats();

} // namespace tessera::eth_arp
