#include <sched-edf/admission.hpp>

namespace tessera::sched_edf {

namespace {
constexpr std::uint64_t kMaxPeriodNs = 3600ull * 1000 * 1000 * 1000;
}

base::Result<std::uint64_t> density(const Params& p) {
    std::uint64_t deadline = p.deadline_ns ? p.deadline_ns : p.period_ns;
    if (p.runtime_ns == 0 || p.runtime_ns > deadline || deadline > p.period_ns || p.period_ns > kMaxPeriodNs)
        return base::Error::InvalidArgument;
    if (p.runtime_hi_ns && (p.runtime_hi_ns <= p.runtime_ns || p.runtime_hi_ns > deadline))
        return base::Error::InvalidArgument;
    std::uint64_t budget = p.runtime_hi_ns ? p.runtime_hi_ns : p.runtime_ns;
    // ceil(budget * 10^12 / deadline); the product needs 128 bits.
    unsigned __int128 scaled = static_cast<unsigned __int128>(budget) * kDensityScale;
    return static_cast<std::uint64_t>((scaled + deadline - 1) / deadline);
}

base::Result<void> Ledger::admit(std::uint64_t density) {
    if (density > m_bound || m_used > m_bound - density) return base::Error::Overloaded;
    m_used += density;
    ++m_threads;
    return {};
}

void Ledger::release(std::uint64_t density) {
    m_used = density < m_used ? m_used - density : 0;
    if (m_threads) --m_threads;
}

} // namespace tessera::sched_edf
