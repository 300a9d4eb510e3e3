#pragma once
// Congestion control behind a small interface: a table of functions over a
// common state, so an algorithm (CUBIC, ...) can be added beside Reno
// without touching the engine. The engine tells the algorithm about ACKs,
// duplicate ACKs and timeouts, and obeys the Action it returns; it reads
// cwnd and ssthresh from the state.
//
// reno(): RFC 5681 slow start, congestion avoidance, fast retransmit and
// fast recovery, with the NewReno modification of RFC 6582 (partial ACKs
// retransmit the next hole and stay in recovery; `recover` guards against
// re-entering recovery on duplicate ACKs caused by the retransmissions).
//
// Plain data + pure functions: not synchronized (the engine's lock).
#include <cstdint>
#include <tcp/seq.hpp>

namespace tessera::tcp {

struct CongestionState {
    std::uint32_t mss = 536;
    std::uint32_t cwnd = 0;
    std::uint32_t ssthresh = 0xffffffff;
    std::uint32_t dup_acks = 0;
    std::uint32_t bytes_acked = 0; // congestion avoidance accumulator (RFC 5681 3.1, RFC 3465)
    Seq recover;                   // RFC 6582: highest sequence sent when recovery began
    bool in_recovery = false;
    std::uint64_t fast_retransmits = 0, timeouts = 0;
};

enum class CongestionAction : std::uint8_t {
    None,
    RetransmitFirst, // retransmit the segment at snd_una (fast retransmit, NewReno partial ACK)
};

struct CongestionOps {
    const char* name;
    // A connection starts (or restarts after idle): initial window.
    void (*init)(CongestionState& s, std::uint32_t mss, Seq iss);
    // A new cumulative ACK moved snd_una by `acked` bytes to `ack`;
    // `flight` is the data outstanding before it. `acks` is how many of
    // the peer's ACKs it stands for: more than one when the engine merged
    // a receive batch's pure ACKs into the last (CONFIG_TCP_ACK_MERGE).
    CongestionAction (*on_ack)(CongestionState& s, std::uint32_t acked, Seq ack, std::uint32_t flight,
                               std::uint32_t acks);
    // A duplicate ACK (RFC 5681 2: no data, no window change, outstanding data).
    CongestionAction (*on_duplicate_ack)(CongestionState& s, Seq snd_una, Seq snd_max, std::uint32_t flight);
    // The retransmission timer expired.
    void (*on_timeout)(CongestionState& s, Seq snd_max, std::uint32_t flight);
};

// RFC 5681 3.1 initial window for a sender MSS.
[[nodiscard]] constexpr std::uint32_t initial_window(std::uint32_t mss) {
    return mss > 2190 ? 2 * mss : mss > 1095 ? 3 * mss : 4 * mss;
}

[[nodiscard]] const CongestionOps& reno();

} // namespace tessera::tcp
