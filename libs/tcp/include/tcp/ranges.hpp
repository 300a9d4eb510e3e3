#pragma once
// A bounded set of disjoint sequence ranges, the bookkeeping under both
// SACK sides (RFC 2018):
//   - receive side (Reassembly): which bytes above RCV.NXT are already in
//     the receive buffer (out-of-order data is stored in place, so memory is
//     bounded by the buffer and the range count; a segment that would need
//     a range beyond the capacity is dropped), and the SACK blocks to send,
//     the block holding the most recent segment first (RFC 2018 4);
//   - send side (Scoreboard): which bytes above SND.UNA the peer reported
//     holding, so retransmission skips them.
//
// Plain data: not synchronized (the connection's lock).
#include <array>
#include <cstdint>
#include <tcp/segment.hpp>
#include <tcp/seq.hpp>

namespace tessera::tcp {

class RangeSet {
public:
    static constexpr unsigned kCapacity = CONFIG_TCP_SACK_RANGES;

    struct Range {
        Seq left, right; // [left, right), non-empty
        std::uint32_t stamp; // larger = touched more recently
    };

    // Adds [left, right), merging ranges it overlaps or touches. False
    // (nothing changed) if it needs a new range and the set is full or
    // the range is empty.
    bool add(Seq left, Seq right);
    // Forgets everything below `floor` (trimming a range that straddles
    // it). Returns the end of a range that starts at or below floor, or
    // floor itself: the receive side's new RCV.NXT.
    Seq remove_below(Seq floor);
    [[nodiscard]] bool contains(Seq s) const;
    // The first byte >= from not in the set (from itself when from is not
    // covered).
    [[nodiscard]] Seq first_missing(Seq from) const;
    // The start of the first range above `from`, or `limit` if none is
    // below limit.
    [[nodiscard]] Seq next_covered(Seq from, Seq limit) const;
    [[nodiscard]] std::uint32_t covered_bytes() const;
    // Up to `max` blocks, most recently touched first.
    unsigned blocks(SackBlock* out, unsigned max) const;
    [[nodiscard]] unsigned count() const { return m_count; }
    [[nodiscard]] bool empty() const { return m_count == 0; }
    void clear() { m_count = 0; }

private:
    std::array<Range, kCapacity> m_ranges{};
    unsigned m_count = 0;
    std::uint32_t m_clock = 0;
};

} // namespace tessera::tcp
