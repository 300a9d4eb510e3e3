#pragma once
// ICMP (RFC 792) for IPv4: echo replies to echo requests, ping from
// threads, rate-limited error messages (ipv4::send_icmp_error is
// implemented here), and the errors received handed to the transport
// whose datagram they quote (ipv4::deliver_error), with counters.
//
// Threading: ping() blocks and is for threads (not the network thread,
// which delivers the reply). send_error() runs in the network thread or
// threads. Not for interrupt context. SMP-safe. State under icmp g_lock
// (a sync::Mutex inside netdev g_dispatch, never held across ipv4::send).
#include <base/result.hpp>
#include <cstdint>
#include <ipv4/ipv4.hpp>
#include <time/time.hpp>

namespace tessera::icmp {

enum Type : std::uint8_t {
    EchoReply = 0, DestinationUnreachable = 3, EchoRequest = 8, TimeExceeded = 11, ParameterProblem = 12,
};
enum UnreachableCode : std::uint8_t {
    NetUnreachable = 0, HostUnreachable = 1, ProtocolUnreachable = 2, PortUnreachable = 3, FragmentationNeeded = 4,
};

// Sends one echo request with `payload_size` bytes (0..1472: one frame,
// DF set) and waits for the matching reply until `deadline` (absolute
// ticks). Returns the round-trip time in nanoseconds. TimedOut, Busy
// (CONFIG_ICMP_PINGS in flight), MessageTooLong, or ipv4::send's errors.
base::Result<std::uint64_t> ping(ipv4::Address destination, std::size_t payload_size, time::Ticks deadline);

// An error about a received datagram (see ipv4::send_icmp_error, which
// calls this). Nothing is sent for: errors about ICMP errors, datagrams
// to broadcast/multicast, from any/broadcast/multicast sources, non-first
// fragments; beyond the token bucket the error is counted and dropped.
// FragmentationNeeded carries `mtu`.
void send_error(std::uint8_t type, std::uint8_t code, const ipv4::Header& offending, netdev::PacketRef original,
                std::uint16_t mtu = 0);

struct Stats {
    std::uint64_t received;
    std::uint64_t bad_checksum;
    std::uint64_t truncated;
    std::uint64_t echo_requests;       // received
    std::uint64_t echo_replies_sent;
    std::uint64_t echo_ignored;        // requests to a broadcast address
    std::uint64_t echo_replies;        // received, matched to a ping
    std::uint64_t echo_unmatched;      // replies nobody waits for
    std::uint64_t errors_received;     // unreachable, time exceeded, parameter problem
    std::uint64_t errors_delivered;    // ... handed to the transport whose datagram they quote
    std::uint64_t errors_not_taken;    // ... about a protocol with no error handler
    std::uint64_t errors_unusable;     // ... quoting no datagram of ours (short, not ours, a later fragment) or broadcast
    std::uint64_t errors_sent;
    std::uint64_t errors_rate_limited;
    std::uint64_t errors_suppressed;   // never answered (rules above)
    std::uint64_t pings_sent;
};
Stats stats();

} // namespace tessera::icmp
