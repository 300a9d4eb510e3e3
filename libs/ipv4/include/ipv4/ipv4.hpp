#pragma once
// IPv4 (RFC 791): addresses, interface configuration, the routing table,
// output (with fragmentation), input validation, reassembly and dispatch
// to transport protocols. docs/libs/ipv4.md has the long form.
//
// Threading: configuration, route(), send() and registration may be called
// from threads and from the network thread (protocol handlers). Protocol
// handlers run in the network thread (netdev's dispatch mutex held), with
// no ipv4 lock held, so they may call send() and register/unregister.
// Not for interrupt context (ipv4 state is under a sync::Mutex).
// SMP-safe.
//
// Lock order: ipv4 g_lock (a sync::Mutex) nests inside netdev g_dispatch;
// ipv4 never holds it while calling into ARP, a driver, or a handler.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <netdev/interface.hpp>
#include <netdev/packet.hpp>
#include <optional>
#include <span>
#include <string_view>

namespace tessera::ipv4 {

struct Address {                         // host byte order inside
    std::uint32_t value = 0;
    static constexpr Address from(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        return Address{static_cast<std::uint32_t>(a) << 24 | static_cast<std::uint32_t>(b) << 16 |
                       static_cast<std::uint32_t>(c) << 8 | d};
    }
    static constexpr Address any() { return Address{0}; }                 // 0.0.0.0
    static constexpr Address broadcast() { return Address{0xffffffffu}; } // 255.255.255.255
    constexpr bool operator==(const Address&) const = default;
    // to/from network-order bytes (4 bytes, no alignment needed)
    static Address load(const std::byte* be) {
        return Address{static_cast<std::uint32_t>(be[0]) << 24 | static_cast<std::uint32_t>(be[1]) << 16 |
                       static_cast<std::uint32_t>(be[2]) << 8 | static_cast<std::uint32_t>(be[3])};
    }
    void store(std::byte* be) const {
        be[0] = static_cast<std::byte>(value >> 24);
        be[1] = static_cast<std::byte>(value >> 16);
        be[2] = static_cast<std::byte>(value >> 8);
        be[3] = static_cast<std::byte>(value);
    }
    // Additions to the contract (helpers):
    [[nodiscard]] constexpr bool is_any() const { return value == 0; }
    [[nodiscard]] constexpr bool is_broadcast() const { return value == 0xffffffffu; }
    [[nodiscard]] constexpr bool is_multicast() const { return (value >> 28) == 0xe; }
    [[nodiscard]] constexpr bool is_loopback() const { return (value >> 24) == 127; }
    // 0.0.0.0/8, "this host on this network" (RFC 1122 3.2.1.3): a source
    // only while a host learns its address, never one to answer.
    [[nodiscard]] constexpr bool is_zero_network() const { return (value >> 24) == 0; }
    [[nodiscard]] constexpr std::uint8_t octet(unsigned i) const { return static_cast<std::uint8_t>(value >> (24 - 8 * i)); }
};

// The netmask of a prefix length (0..32), host order.
[[nodiscard]] constexpr std::uint32_t prefix_mask(unsigned prefix_length) {
    return prefix_length == 0 ? 0u : prefix_length >= 32 ? 0xffffffffu : ~0u << (32 - prefix_length);
}

// base::format support: writes "a.b.c.d" (NUL-terminated if room) into
// `out` (16 bytes suffice) and returns the text written.
std::string_view to_string(Address address, std::span<char> out);
// Parses "a.b.c.d"; nullopt if malformed.
std::optional<Address> parse(std::string_view text);
// A 16-byte buffer holding the text, for log lines:
//   klog::info("ip {}", ipv4::Text(addr).view());
struct Text {
    char storage[16];
    std::string_view text;
    explicit Text(Address a) : text(to_string(a, storage)) {}
    [[nodiscard]] std::string_view view() const { return text; }
};

enum class Protocol : std::uint8_t { Icmp = 1, Tcp = 6, Udp = 17 };

inline constexpr std::size_t kHeaderLength = 20;  // without options
inline constexpr std::uint16_t kEthertype = 0x0800;

struct Header {          // a validated received header, host order
    Address source, destination;
    std::uint8_t protocol, ttl, tos;
    std::uint16_t id, total_length, header_length; // bytes
    bool more_fragments; std::uint16_t fragment_offset; // bytes
    netdev::Interface* interface; // where it came in
};

// Interface configuration and routes.
// configure(): sets (or replaces) the interface's address and adds the
// connected route; sends a gratuitous ARP (if eth-arp is enabled).
// InvalidArgument for prefix_length > 32; NoMemory if the interface or
// route table (CONFIG_IPV4_ROUTES) is full.
base::Result<void> configure(netdev::Interface& iface, Address address, unsigned prefix_length);
// The default route via `gateway` (which must be on a connected network:
// Unreachable otherwise). Replaces any previous default route.
base::Result<void> set_default_gateway(Address gateway);
base::Result<void> add_route(Address network, unsigned prefix_length, Address gateway, netdev::Interface& iface);
struct Route { netdev::Interface* interface; Address next_hop; Address source; std::uint32_t mtu; };
base::Result<Route> route(Address destination);            // longest prefix match; Unreachable if none
std::optional<Address> address_of(const netdev::Interface& iface);

// Additions to the contract:
// Removes the interface's address and every route through it.
void deconfigure(netdev::Interface& iface);
// Prefix length configured on the interface (nullopt if none).
std::optional<unsigned> prefix_of(const netdev::Interface& iface);
// Removes the default route (no-op if none).
void clear_default_gateway();
// The default gateway, if any.
std::optional<Address> default_gateway();
// The DNS server (set by DHCP or the static Kconfig configuration).
void set_dns_server(Address server);
std::optional<Address> dns_server();
// True if `address` is one of ours (on any interface).
bool is_local(Address address);
// True if `address` is the limited broadcast or the directed broadcast
// of a connected network of `iface` (of any interface if nullptr).
bool is_broadcast(Address address, const netdev::Interface* iface = nullptr);
// 32 unpredictable-enough bits (xorshift seeded from the cycle and time
// counters, stirred by every call): DHCP xids, DNS ids, ephemeral ports,
// ping ids. Not cryptographic. Any context.
std::uint32_t random32();
// Applies CONFIG_IPV4_STATIC_* to `iface` (NotSupported if the static
// configuration is not enabled).
base::Result<void> configure_static(netdev::Interface& iface);

// Output. The packet's window holds the transport header + payload; ipv4 pushes the IP header (needs 20 bytes of
// headroom + Ethernet's 14 + the driver's), picks the source from the route if `source` is any(), resolves the
// next hop (ARP; queued while unresolved, bounded) and transmits. Larger than the route MTU: fragmented, or
// MessageTooLong when dont_fragment (or the interface MTU is below 68). Threads and the network thread.
// Errors: Unreachable (no route), MessageTooLong, NoMemory (no buffer for
// a fragment), Malformed (no headroom), Unavailable (link down).
// Destination 255.255.255.255 goes out as an Ethernet broadcast on the
// interface given by SendOptions::interface (or the default route's).
struct SendOptions {
    std::uint8_t ttl = 64; std::uint8_t tos = 0; bool dont_fragment = true;
    // Addition: force the output interface (DHCP before any address is
    // configured, broadcasts). nullptr: from the route.
    netdev::Interface* interface = nullptr;
};
base::Result<void> send(netdev::PacketRef packet, Address source, Address destination, Protocol protocol,
                        const SendOptions& options = {});

// One sender's cached way to one unicast destination (a TCP connection
// keeps one): the interface, the next hop's MAC. It stays valid while no
// route or address of this library and no ARP binding has changed since
// it was filled (generation counts, compared without a lock). Sending
// through a valid path skips the routing table, the ARP cache and their
// locks: the IP header is written and the frame handed to the interface.
// Not synchronized: its owner serializes its use (TCP: under its lock).
struct Path {
    std::uint64_t generation = 0; // 0: empty
    Address destination;
    netdev::Interface* iface = nullptr;
    netdev::MacAddress next_hop_mac{};
};
// send() through `path`: the cached way if the path is valid for
// `destination` and the datagram needs no fragment (and no forced
// interface); otherwise send()'s way, after which the path is filled for
// the next datagram (if the destination is unicast, routed and its next
// hop resolved).
base::Result<void> send(Path& path, netdev::PacketRef packet, Address source, Address destination, Protocol protocol,
                        const SendOptions& options = {});

// An ICMP error about a datagram this host sent (RFC 1122 3.2.2.1: the
// transport must hear of it; RFC 5927 says how far to trust it). The icmp
// library checks the message and the quoted IP header before passing it on.
struct TransportError {
    std::uint8_t type = 0, code = 0;        // ICMP type and code (icmp::Type, icmp::UnreachableCode)
    std::uint16_t next_hop_mtu = 0;         // fragmentation needed: the router's MTU (0: it gave none)
    std::uint16_t quoted_length = 0;        // total length of the datagram it is about
    Address reporter;                       // the ICMP message's source
    Address source, destination;            // of the datagram it is about: ours, and the peer's
    std::span<const std::byte> transport;   // that datagram's transport header, at least its first 8 bytes
};

// Input. Registered per protocol; runs in the network thread with the window at the transport header (IP header
// and options pulled; link padding trimmed to total_length; fragments already reassembled).
// `on_error`, if given, receives the ICMP errors about the protocol's datagrams (network thread, no lock held).
// Busy if the protocol already has a handler.
using ProtocolHandler = void (*)(const Header& header, netdev::PacketRef packet, void* context);
using ErrorHandler = void (*)(const TransportError& error, void* context);
base::Result<void> register_protocol(Protocol protocol, ProtocolHandler handler, void* context,
                                     ErrorHandler on_error = nullptr);
void unregister_protocol(Protocol protocol);
// Hands `error` to the error handler of the protocol numbered `protocol`
// (by the icmp library; tests). Returns whether one took it.
bool deliver_error(std::uint8_t protocol, const TransportError& error);

// Internet checksum (RFC 1071), incremental: checksum_add() returns the folded 16-bit one's-complement sum of
// `bytes` (paired from their start; the same bytes give the same value at any alignment) plus `sum`
// (below 2^31), checksum_finish() folds and complements.
namespace detail {
std::uint32_t checksum_add_words(std::span<const std::byte> bytes, std::uint32_t sum);
inline constexpr std::size_t kInlineChecksumBytes = 64;
using Half [[gnu::may_alias]] = std::uint16_t;
using Quad [[gnu::may_alias]] = std::uint32_t;
} // namespace detail
// Headers (IPv4, TCP: at most 60 bytes) are summed inline: every packet
// sums one or two, and the word-wise loop's set-up and a call cost more
// than their 5 to 15 words. At an even address (every header the stack
// builds or receives) they are read as native 16- and 32-bit words and
// summed little-endian, with one byte swap at the end (the one's-complement
// sum is byte-order independent, RFC 1071 2(B)); at an odd one, pair by
// pair. Longer spans go word-wise.
[[nodiscard]] inline std::uint32_t checksum_add(std::span<const std::byte> bytes, std::uint32_t sum = 0) {
    if (bytes.size() > detail::kInlineChecksumBytes) return detail::checksum_add_words(bytes, sum);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::size_t n = bytes.size();
    if (reinterpret_cast<std::uintptr_t>(p) & 1) {
        for (; n >= 2; n -= 2, p += 2) sum += static_cast<std::uint32_t>(p[0]) << 8 | p[1];
        if (n) sum += static_cast<std::uint32_t>(p[0]) << 8;
    } else {
        std::uint64_t native = 0; // at most 16 words below 2^32: no overflow
        if ((reinterpret_cast<std::uintptr_t>(p) & 2) && n >= 2) {
            native += *reinterpret_cast<const detail::Half*>(p);
            p += 2, n -= 2;
        }
        for (; n >= 4; n -= 4, p += 4) native += *reinterpret_cast<const detail::Quad*>(p);
        if (n >= 2) native += *reinterpret_cast<const detail::Half*>(p), p += 2, n -= 2;
        if (n) native += p[0]; // the first of a pair: its low byte when loaded little-endian
        native = (native & 0xffffffffu) + (native >> 32); // below 2^33
        native = (native & 0xffff) + (native >> 16);      // below 0x30000
        native = (native & 0xffff) + (native >> 16);      // at most 0x10001
        native = (native & 0xffff) + (native >> 16);      // below 2^16: the swap keeps every bit
        sum += static_cast<std::uint32_t>((native & 0xff) << 8 | native >> 8);
    }
    sum = (sum & 0xffff) + (sum >> 16); // below 0x18020 (sum < 2^31 + 32 * 0xffff): one more fold
    return (sum & 0xffff) + (sum >> 16);
}
// Copies `source` into `destination` (the shorter length; no overlap) and
// returns what checksum_add(source, sum) would, reading the bytes once:
// a payload is summed as it is copied into or out of a packet.
std::uint32_t checksum_copy(std::span<std::byte> destination, std::span<const std::byte> source,
                            std::uint32_t sum = 0);
// The sum of a span that starts `offset` bytes into the data being summed
// (checksum_add pairs bytes from the span's start): an odd offset swaps
// the pairing. For data summed in pieces, such as a ring's two halves.
// These three are inline: every segment and datagram needs them, and a
// call is dearer than their bodies (most of all under QEMU's TCG, where a
// return is a lookup of the next translated block).
[[nodiscard]] constexpr std::uint32_t checksum_at_offset(std::uint32_t sum, std::size_t offset) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return offset & 1 ? ((sum & 0xff) << 8 | sum >> 8) : sum;
}
[[nodiscard]] constexpr std::uint16_t checksum_finish(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}
[[nodiscard]] constexpr std::uint32_t pseudo_header_sum(Address source, Address destination, Protocol protocol,
                                                        std::uint16_t length) {
    return (source.value >> 16) + (source.value & 0xffff) + (destination.value >> 16) +
           (destination.value & 0xffff) + static_cast<std::uint32_t>(protocol) + length;
}

// ICMP errors (implemented by the icmp library, declared here so transports need only ipv4):
// port unreachable for UDP, etc. `offending` is the received header, `original` its packet (window at the
// transport header, as the handler received it). No-op if the icmp library is not enabled (weak default).
void send_icmp_error(std::uint8_t type, std::uint8_t code, const Header& offending, netdev::PacketRef original);

struct Stats {
    std::uint64_t received;          // IPv4 frames handed to ipv4
    std::uint64_t delivered;         // datagrams handed to a protocol handler
    // header errors, each kind (each dropped)
    std::uint64_t truncated;         // frame shorter than the header / IHL / total length
    std::uint64_t bad_version;
    std::uint64_t bad_header_length; // IHL < 5
    std::uint64_t bad_total_length;  // total length < header length
    std::uint64_t bad_checksum;
    std::uint64_t ttl_expired;       // TTL 0 on arrival
    std::uint64_t bad_source;        // source not a unicast host: broadcast, multicast, 0/8, 127/8
    std::uint64_t not_for_us;        // destination is neither ours nor broadcast (no forwarding)
    std::uint64_t no_protocol;       // no handler for the protocol
    std::uint64_t no_route;          // send() found no route
    std::uint64_t too_long;          // send() with DF beyond the MTU, or an MTU below 68
    std::uint64_t fragments_received;
    std::uint64_t reassembled;
    std::uint64_t reassembly_timeouts;  // datagrams dropped incomplete at the timeout
    std::uint64_t reassembly_overlaps;  // datagrams dropped for overlapping or inconsistent fragments
    std::uint64_t reassembly_no_room;   // fragments dropped: slots or bytes exhausted, or too long
    std::uint64_t reassembly_interface_gone; // datagrams dropped incomplete: their interface was unregistered
    std::uint64_t forwarded;         // always 0 (no forwarding)
    std::uint64_t sent;              // datagrams sent (before fragmentation)
    std::uint64_t sent_by_path;      // ... of them through a valid Path (no route or ARP lookup)
    std::uint64_t fragments_sent;
    std::uint64_t send_errors;       // ARP/driver failures
};
Stats stats();

} // namespace tessera::ipv4
