// RangeSet: kept unordered (at most CONFIG_TCP_SACK_RANGES entries, so a
// linear scan is cheaper than keeping order).
#include <tcp/ranges.hpp>

namespace tessera::tcp {

bool RangeSet::add(Seq left, Seq right) {
    if (!(left < right)) return false;
    // Absorb every range that overlaps or touches [left, right).
    bool absorbed_any = false;
    for (unsigned i = 0; i < m_count;) {
        Range& r = m_ranges[i];
        if (r.right < left || right < r.left) { ++i; continue; }
        left = seq_min(left, r.left);
        right = seq_max(right, r.right);
        m_ranges[i] = m_ranges[--m_count];
        absorbed_any = true;
    }
    if (!absorbed_any && m_count == kCapacity) return false;
    m_ranges[m_count++] = {left, right, ++m_clock};
    return true;
}

Seq RangeSet::remove_below(Seq floor) {
    Seq next = floor;
    for (unsigned i = 0; i < m_count;) {
        Range& r = m_ranges[i];
        if (r.right <= floor) {
            m_ranges[i] = m_ranges[--m_count];
            continue;
        }
        if (r.left <= floor) {
            // Straddles (or starts at) the floor: everything up to its end
            // is present. Ranges are disjoint, so only one can.
            next = r.right;
            m_ranges[i] = m_ranges[--m_count];
            continue;
        }
        ++i;
    }
    return next;
}

bool RangeSet::contains(Seq s) const {
    for (unsigned i = 0; i < m_count; ++i)
        if (in_range(s, m_ranges[i].left, m_ranges[i].right)) return true;
    return false;
}

Seq RangeSet::first_missing(Seq from) const {
    for (unsigned i = 0; i < m_count; ++i)
        if (in_range(from, m_ranges[i].left, m_ranges[i].right)) return m_ranges[i].right; // disjoint, not touching
    return from;
}

Seq RangeSet::next_covered(Seq from, Seq limit) const {
    Seq best = limit;
    for (unsigned i = 0; i < m_count; ++i)
        if (m_ranges[i].left >= from && m_ranges[i].left < best) best = m_ranges[i].left;
    return best;
}

std::uint32_t RangeSet::covered_bytes() const {
    std::uint32_t n = 0;
    for (unsigned i = 0; i < m_count; ++i) n += static_cast<std::uint32_t>(m_ranges[i].right - m_ranges[i].left);
    return n;
}

unsigned RangeSet::blocks(SackBlock* out, unsigned max) const {
    // Selection by stamp: n is tiny.
    unsigned n = 0;
    std::uint32_t below = 0xffffffff;
    while (n < max) {
        int pick = -1;
        for (unsigned i = 0; i < m_count; ++i)
            if (m_ranges[i].stamp < below && (pick < 0 || m_ranges[i].stamp > m_ranges[pick].stamp)) pick = static_cast<int>(i);
        if (pick < 0) break;
        out[n++] = {m_ranges[pick].left, m_ranges[pick].right};
        below = m_ranges[pick].stamp;
    }
    return n;
}

} // namespace tessera::tcp
