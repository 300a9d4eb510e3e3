#pragma once
// A stub DNS resolver (RFC 1035) for A records over UDP.
//
// resolve() asks ipv4::dns_server() (CONFIG_DNS_ATTEMPTS queries, each
// from a fresh random source port with a fresh random id, waiting up to
// CONFIG_DNS_TIMEOUT_MS each, all bounded by `deadline`). A response is
// accepted only from the server's address and port (53 unless
// resolve_with() is given another), with the query's
// id, QR set, one question equal to ours (case-insensitive), and names
// that decode within the message (compression pointers must point
// strictly backwards, at most 255 bytes per name): anything else is
// counted and ignored (the wait goes on). CNAME chains inside the answer
// are followed. Answers are cached (CONFIG_DNS_CACHE names) for the
// smallest TTL of the records used, capped at CONFIG_DNS_MAX_TTL.
//
// Errors: InvalidArgument (not a host name), Unavailable (no server
// configured, or SERVFAIL/REFUSED answers), NotFound (NXDOMAIN or no A
// record), MessageTooLong (truncated answer: no TCP fallback), TimedOut.
//
// Threading: threads only (blocks). SMP-safe (cache and counters under
// dns g_lock, a sync::Mutex, never held across udp calls).
#include <base/result.hpp>
#include <ipv4/ipv4.hpp>
#include <string_view>
#include <time/time.hpp>

namespace tessera::dns {

inline constexpr std::size_t kMaxName = 253;
inline constexpr std::uint16_t kDefaultPort = 53;

base::Result<ipv4::Address> resolve(std::string_view name, time::Ticks deadline);
// The same against a given server and port (no cache lookup, but answers
// are cached). A port other than 53 reaches a server that is not a
// standard one, e.g. a test's resolver behind SLIRP's host alias.
base::Result<ipv4::Address> resolve_with(ipv4::Address server, std::string_view name, time::Ticks deadline,
                                         std::uint16_t port = kDefaultPort);
void flush_cache();

struct Stats {
    std::uint64_t queries;          // sent
    std::uint64_t cache_hits;
    std::uint64_t answers;          // responses accepted
    std::uint64_t nxdomain;
    std::uint64_t server_errors;    // SERVFAIL, REFUSED, ...
    std::uint64_t truncated;        // TC set
    std::uint64_t mismatched;       // wrong id / source / question: ignored
    std::uint64_t malformed;        // bounds, compression loops, bad counts
    std::uint64_t timeouts;         // attempts without an accepted answer
};
Stats stats();

} // namespace tessera::dns
