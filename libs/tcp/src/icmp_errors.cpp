// ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927): path MTU
// discovery (RFC 1191), refused connection attempts, soft errors.
#include <base/endian.hpp>
#include "engine.hpp"

namespace tessera::tcp {

using base::Error;

// ---------------------------------------------------------------- ICMP errors

namespace {
// The smallest path MTU acted on (Linux's min_pmtu). A smaller report
// lowers the MSS only this far, and the segments then go without DF so
// that a router may fragment them: a path that small is rarer than a
// forged report meant to cut a connection into tiny segments (RFC 5927 7).
constexpr std::uint32_t kMinPathMtu = 552;

// RFC 1191 7: a router that gives no MTU says only that the datagram was
// too big; the next plateau below its size is tried.
std::uint32_t plateau_below(std::uint32_t length) {
    constexpr std::uint16_t kPlateaus[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
    for (std::uint16_t p : kPlateaus)
        if (p < length) return p;
    return 68;
}

// Fragmentation needed (RFC 1191): the MSS follows the path MTU down, and
// what is in flight goes again at once in the new size, rather than when
// the retransmission timer expires: the router dropped every segment
// larger than the new MSS. Not a congestion signal. Returns whether the
// MSS fell.
bool path_mtu_reported(Connection& c, const ipv4::TransportError& e) {
    // Not before the handshake settles the MSS (negotiate() would undo
    // it); a SYN is small and no data is in flight.
    if (c.state == State::SynSent) return false;
    std::uint32_t mtu = e.next_hop_mtu ? e.next_hop_mtu : plateau_below(e.quoted_length);
    if (mtu >= e.quoted_length) return false; // the datagram fits: a stale or forged report
    if (mtu < kMinPathMtu) {
        mtu = kMinPathMtu;
        c.may_fragment = true;
    }
    std::uint32_t mss = mtu - ipv4::kHeaderLength - kHeaderLength - (c.timestamps ? 12 : 0);
    if (mss >= c.mss) return false;
    c.mss = mss;
    if (c.state == State::SynReceived) return true; // only a SYN-ACK in flight: nothing to resend smaller
    c.rtt_timing = false; // Karn: what is timed goes again
    c.snd_nxt = c.snd_una;
    output(c);
    return true;
}

// RFC 1122 4.2.3.9 and RFC 5927: an ICMP error about one of our segments.
// Believed only if it quotes a sequence number sent and not yet
// acknowledged (an off-path attacker must guess one). Port or protocol
// unreachable ends a connection attempt; in a synchronized connection it,
// like every other error but fragmentation needed, is soft: kept and
// reported if the connection times out (RFC 5927 5.2).
void icmp_error_locked(const ipv4::TransportError& e) {
    const std::byte* h = e.transport.data();
    Tuple t{e.source.value, e.destination.value, base::load_be16(h), base::load_be16(h + 2)};
    Seq seq{base::load_be32(h + 4)};
    Connection* c = lookup(t);
    if (!c || c->state == State::Listen || c->state == State::Closed || c->state == State::TimeWait ||
        seq < c->snd_una || !(seq < c->snd_max)) {
        ++g_stats.icmp_ignored;
        return;
    }
    ++g_stats.icmp_errors;
    constexpr std::uint8_t kUnreachable = 3, kProtocol = 2, kPort = 3, kFragmentationNeeded = 4;
    if (e.type == kUnreachable && e.code == kFragmentationNeeded) {
        if (path_mtu_reported(*c, e)) ++g_stats.path_mtu_reductions;
    } else if (e.type == kUnreachable && (e.code == kProtocol || e.code == kPort) && c->state == State::SynSent) {
        enter_closed(*c, true, Error::ConnectionRefused);
    } else {
        c->soft_error_set = true;
        c->soft_error = Error::Unreachable;
    }
}
} // namespace

void on_icmp_error(const ipv4::TransportError& e, void*) {
    if (e.transport.size() < 8) return;
    g_lock.lock();
    icmp_error_locked(e);
    arm_timer_callout();
    g_lock.unlock();
}

} // namespace tessera::tcp
