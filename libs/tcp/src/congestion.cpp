// Reno with NewReno recovery: RFC 5681 (sections 3.1 and 3.2) and RFC 6582
// (section 3.2, the "careful" variant of the recover check).
#include <tcp/congestion.hpp>

namespace tessera::tcp {

namespace {

std::uint32_t half_flight(const CongestionState& s, std::uint32_t flight) {
    std::uint32_t h = flight / 2; // RFC 5681 (4)
    return h > 2 * s.mss ? h : 2 * s.mss;
}

void init(CongestionState& s, std::uint32_t mss, Seq iss) {
    s.mss = mss;
    s.cwnd = initial_window(mss);
    s.ssthresh = 0xffffffff; // RFC 5681 3.1: arbitrarily high
    s.dup_acks = 0;
    s.bytes_acked = 0;
    s.recover = iss;         // RFC 6582 3.2 step 1
    s.in_recovery = false;
}

CongestionAction on_ack(CongestionState& s, std::uint32_t acked, Seq ack, std::uint32_t flight, std::uint32_t acks) {
    s.dup_acks = 0;
    if (s.in_recovery) {
        if (ack > s.recover) {
            // Full acknowledgment (RFC 6582 3.2 step 3): deflate.
            std::uint32_t after = flight > acked ? flight - acked : 0;
            std::uint32_t w = (after > s.mss ? after : s.mss) + s.mss;
            s.cwnd = w < s.ssthresh ? w : s.ssthresh;
            s.in_recovery = false;
            s.bytes_acked = 0;
            return CongestionAction::None;
        }
        // Partial acknowledgment (step 4): retransmit the next hole,
        // deflate by what was acked, add back one MSS if that was >= MSS.
        s.cwnd = s.cwnd > acked ? s.cwnd - acked : 0;
        if (acked >= s.mss) s.cwnd += s.mss;
        if (s.cwnd < s.mss) s.cwnd = s.mss;
        return CongestionAction::RetransmitFirst;
    }
    if (s.cwnd < s.ssthresh) {
        // Slow start (RFC 5681 (2)): at most one MSS per ACK, counting
        // the ACKs merged into this one (they are not stretch ACKs: the
        // peer sent each).
        std::uint32_t most = acks * s.mss;
        s.cwnd += acked < most ? acked : most;
    } else {
        // Congestion avoidance: one MSS per cwnd of data acknowledged
        // (byte counting, RFC 5681 3.1's recommended form of (3)).
        s.bytes_acked += acked;
        if (s.bytes_acked >= s.cwnd) {
            s.bytes_acked -= s.cwnd;
            s.cwnd += s.mss;
        }
    }
    return CongestionAction::None;
}

CongestionAction on_duplicate_ack(CongestionState& s, Seq snd_una, Seq snd_max, std::uint32_t flight) {
    if (s.in_recovery) {
        s.cwnd += s.mss; // RFC 5681 3.2 step 4: inflate
        return CongestionAction::None;
    }
    if (++s.dup_acks != 3) return CongestionAction::None;
    // RFC 6582 3.2 step 2: only if the cumulative ACK covers more than
    // recover (dup ACKs below it come from our own retransmissions).
    if (!(snd_una > s.recover)) return CongestionAction::None;
    s.ssthresh = half_flight(s, flight);
    s.recover = snd_max - 1;
    s.cwnd = s.ssthresh + 3 * s.mss;
    s.in_recovery = true;
    ++s.fast_retransmits;
    return CongestionAction::RetransmitFirst;
}

void on_timeout(CongestionState& s, Seq snd_max, std::uint32_t flight) {
    s.ssthresh = half_flight(s, flight);
    s.cwnd = s.mss; // RFC 5681 (4): loss window = 1 SMSS
    s.dup_acks = 0;
    s.bytes_acked = 0;
    s.recover = snd_max - 1; // RFC 6582 3.2 step 1 after a timeout
    s.in_recovery = false;
    ++s.timeouts;
}

constexpr CongestionOps kReno = {"newreno", init, on_ack, on_duplicate_ack, on_timeout};

} // namespace

const CongestionOps& reno() { return kReno; }

} // namespace tessera::tcp
