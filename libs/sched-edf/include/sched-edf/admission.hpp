#pragma once
// Admission arithmetic for EDF, in integers. A thread's density is
// runtime / min(deadline, period), held in parts per 10^12 and rounded up,
// so a set of threads is never judged lighter than it is; the bound is a
// whole percentage and therefore exact in that unit. A set whose densities
// add up to exactly the bound is accepted (e.g. 950 µs every 1 ms under
// the default 95% bound).
//
// For implicit deadlines (deadline = period) the test is exact for EDF on
// one hart: the set is schedulable iff the sum stays within 100%. For
// constrained deadlines it is sufficient, not necessary (density test).
#include <base/result.hpp>
#include <cstdint>

namespace tessera::sched_edf {

inline constexpr std::uint64_t kDensityScale = 1000000000000ull; // 10^12 = 100%

struct Params {
    std::uint64_t runtime_ns;
    std::uint64_t deadline_ns; // 0: same as the period
    std::uint64_t period_ns;
    // A High-criticality thread's budget in HI mode (sched-domains):
    // runtime < runtime_hi <= deadline. Admission counts it at this budget,
    // so the hart keeps every promise in HI mode too. 0: not High.
    std::uint64_t runtime_hi_ns = 0;
};

// InvalidArgument unless 0 < runtime <= deadline <= period (deadline 0
// meaning period), the period is at most an hour, and a runtime_hi is
// above the runtime and within the deadline. The density is taken at the
// larger budget.
base::Result<std::uint64_t> density(const Params& params);

// One hart's admitted load. Not synchronised (edf.cpp guards it).
class Ledger {
public:
    constexpr explicit Ledger(unsigned bound_percent = 95)
        : m_bound(kDensityScale / 100 * bound_percent) {}
    // Overloaded if adding `density` would exceed the bound.
    base::Result<void> admit(std::uint64_t density);
    void release(std::uint64_t density);
    std::uint64_t used() const { return m_used; }
    std::uint64_t bound() const { return m_bound; }
    unsigned threads() const { return m_threads; }

private:
    std::uint64_t m_bound;
    std::uint64_t m_used = 0;
    unsigned m_threads = 0;
};

} // namespace tessera::sched_edf
