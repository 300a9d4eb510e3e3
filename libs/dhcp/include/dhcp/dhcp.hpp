#pragma once
// DHCPv4 client (RFC 2131) for one interface at a time.
//
//     TRY(dhcp::start(*netdev::find_interface("eth0")));
//     auto lease = TRY(dhcp::wait_bound(time::now() + time::from_ns(10'000'000'000)));
//
// start() spawns the client thread (priority CONFIG_SCHED_MAIN_PRIORITY),
// which owns the protocol: DISCOVER (broadcast, from 0.0.0.0) with
// retransmissions after CONFIG_DHCP_INITIAL_TIMEOUT_MS, doubled each time
// up to 64 s, ±1 s jitter (RFC 2131 4.1); REQUEST for the first OFFER
// (CONFIG_DHCP_REQUEST_RETRIES, then DISCOVER again); on ACK the lease is
// applied: ipv4::configure(address, prefix from the subnet mask option),
// the default gateway (router option) and the DNS server. At T1 it
// renews by unicast to the server, at T2 it rebinds by broadcast, at the
// lease's end it deconfigures and starts over; a NAK also starts over.
// Replies are validated (op, xid, chaddr, cookie, options within bounds,
// an OFFER/ACK address that is a host address: not 0.0.0.0, broadcast,
// multicast or loopback) and malformed ones counted. An OFFER/ACK must
// carry a server identifier and a contiguous subnet mask (if any); while
// requesting or renewing, an ACK/NAK naming another server than ours is
// ignored (RFC 2131 3.1, 4.4.1). Each refusal is counted and logged.
//
// Threading: the API is for threads; SMP-safe (state under dhcp g_lock,
// a sync::Mutex never held across udp calls or waits).
#include <base/result.hpp>
#include <cstdint>
#include <ipv4/ipv4.hpp>
#include <optional>
#include <time/time.hpp>

namespace tessera::dhcp {

struct Lease {
    ipv4::Address address;
    unsigned prefix_length;
    ipv4::Address server;         // server identifier
    ipv4::Address gateway;        // any() if none offered
    ipv4::Address dns;            // any() if none offered
    std::uint32_t lease_seconds, t1_seconds, t2_seconds;
    time::Ticks obtained;         // when the ACK came
};

enum class State : std::uint8_t { Stopped, Init, Selecting, Requesting, Bound, Renewing, Rebinding };

// Starts the client on `iface`. Busy if it already runs.
base::Result<void> start(netdev::Interface& iface);
// Stops the client thread (the lease stays configured; call
// ipv4::deconfigure to drop it). Waits for the thread to exit.
void stop();
// Waits until a lease is bound (at once if one is). TimedOut.
base::Result<Lease> wait_bound(time::Ticks deadline);
std::optional<Lease> lease();
State state();

struct Stats {
    std::uint64_t discovers, requests, offers, acks, naks;
    std::uint64_t malformed;      // replies that failed validation
    std::uint64_t ignored;        // valid but not for this exchange (xid, type)
    std::uint64_t wrong_server;   // ACK/NAK from another server than the one requested/renewed
                                  // with, or OFFER/ACK without a server identifier: ignored
    std::uint64_t bad_netmask;    // OFFER/ACK whose subnet mask is not contiguous (or 0.0.0.0): ignored
    std::uint64_t retransmissions;
    std::uint64_t renewals;       // ACKs while renewing/rebinding
    std::uint64_t expirations;    // leases that ran out
};
Stats stats();

} // namespace tessera::dhcp
