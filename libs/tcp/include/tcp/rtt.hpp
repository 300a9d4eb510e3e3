#pragma once
// Round-trip time estimation and the retransmission timeout, RFC 6298.
// Times are microseconds. The caller applies Karn's rule (RFC 6298 3):
// it samples only segments that were not retransmitted, unless the sample
// comes from an echoed timestamp (RFC 7323 4.2), which is unambiguous.
//
// Plain value type: not synchronized (the connection's lock protects it).
#include <cstdint>

namespace tessera::tcp {

class RttEstimator {
public:
    static constexpr std::uint32_t kInitialRto = 1'000'000; // RFC 6298 2.1: 1 s
    static constexpr std::uint32_t kMaxRto = 60'000'000;    // RFC 6298 2.5: at least 60 s allowed
    static constexpr std::uint32_t kGranularity = 1'000;    // G: the engine's timer resolution, 1 ms

    constexpr explicit RttEstimator(std::uint32_t min_rto_us) : m_min(min_rto_us) {}

    // A new measurement R (RFC 6298 2.2 and 2.3; alpha 1/8, beta 1/4).
    // Resets any backoff: the base RTO is recomputed.
    void sample(std::uint32_t r_us) {
        if (r_us == 0) r_us = 1;
        if (!m_has_sample) {
            m_srtt = r_us;
            m_rttvar = r_us / 2;
            m_has_sample = true;
        } else {
            std::uint32_t diff = m_srtt > r_us ? m_srtt - r_us : r_us - m_srtt;
            m_rttvar = m_rttvar - m_rttvar / 4 + diff / 4;
            m_srtt = m_srtt - m_srtt / 8 + r_us / 8;
        }
        std::uint64_t var = 4ull * m_rttvar;
        if (var < kGranularity) var = kGranularity;
        m_base = clamp(m_srtt + var);
        m_backoff = 0;
    }
    // The timer expired (RFC 6298 5.5): double the RTO, up to kMaxRto.
    void back_off() {
        if (m_backoff < 16) ++m_backoff;
    }
    // A new ACK after backoff keeps the backed-off value until a sample
    // (RFC 6298 5.7 allows either); the engine calls reset_backoff() when
    // it takes a valid sample, which sample() already does.
    void reset_backoff() { m_backoff = 0; }

    [[nodiscard]] std::uint32_t rto() const {
        std::uint64_t v = static_cast<std::uint64_t>(m_has_sample ? m_base : clamp(kInitialRto)) << m_backoff;
        return v > kMaxRto ? kMaxRto : static_cast<std::uint32_t>(v);
    }
    [[nodiscard]] std::uint32_t srtt() const { return m_srtt; }
    [[nodiscard]] std::uint32_t rttvar() const { return m_rttvar; }
    [[nodiscard]] unsigned backoff() const { return m_backoff; }
    [[nodiscard]] bool has_sample() const { return m_has_sample; }

private:
    [[nodiscard]] std::uint32_t clamp(std::uint64_t v) const {
        if (v < m_min) return m_min;
        return v > kMaxRto ? kMaxRto : static_cast<std::uint32_t>(v);
    }
    std::uint32_t m_min;
    std::uint32_t m_srtt = 0, m_rttvar = 0, m_base = 0;
    unsigned m_backoff = 0;
    bool m_has_sample = false;
};

} // namespace tessera::tcp
