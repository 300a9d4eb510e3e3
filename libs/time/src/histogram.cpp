#include <klog/klog.hpp>
#include <time/histogram.hpp>

namespace tessera::time {

namespace {
constexpr unsigned kSub = 1u << Histogram::kSubBits;
}

// Values below kSub get a bucket each; a value with its top bit at
// position e >= kSubBits lands in group (e - kSubBits + 1), sub-bucket given
// by the kSubBits bits below the top bit.
unsigned Histogram::bucket_of(std::uint64_t value) {
    if (value < kSub) return static_cast<unsigned>(value);
    unsigned e = 63 - static_cast<unsigned>(__builtin_clzll(value));
    unsigned sub = static_cast<unsigned>(value >> (e - kSubBits)) & (kSub - 1);
    return ((e - kSubBits + 1) << kSubBits) + sub;
}

std::uint64_t Histogram::bucket_low(unsigned bucket) {
    if (bucket < kSub) return bucket;
    unsigned group = bucket >> kSubBits, sub = bucket & (kSub - 1);
    unsigned e = group + kSubBits - 1;
    return (1ull << e) + (static_cast<std::uint64_t>(sub) << (e - kSubBits));
}

std::uint64_t Histogram::bucket_high(unsigned bucket) {
    if (bucket + 1 >= kBuckets) return ~0ull;
    return bucket_low(bucket + 1) - 1;
}

void Histogram::record(std::uint64_t value) {
    ++m_count;
    m_sum += value;
    if (value < m_min) m_min = value;
    if (value > m_max) m_max = value;
    std::uint32_t& b = m_buckets[bucket_of(value)];
    if (b != ~0u) ++b; // saturate rather than wrap
}

void Histogram::merge(const Histogram& other) {
    if (!other.m_count) return;
    m_count += other.m_count;
    m_sum += other.m_sum;
    if (other.m_min < m_min) m_min = other.m_min;
    if (other.m_max > m_max) m_max = other.m_max;
    for (unsigned i = 0; i < kBuckets; ++i) {
        std::uint64_t sum = std::uint64_t(m_buckets[i]) + other.m_buckets[i];
        m_buckets[i] = sum > ~0u ? ~0u : static_cast<std::uint32_t>(sum);
    }
}

std::uint64_t Histogram::percentile(unsigned per_mille) const {
    if (!m_count) return 0;
    if (per_mille > 1000) per_mille = 1000;
    // The rank (1-based) of the sample that the percentile names, rounded up.
    std::uint64_t rank = (m_count * per_mille + 999) / 1000;
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < kBuckets; ++i) {
        seen += m_buckets[i];
        if (seen >= rank) {
            std::uint64_t high = bucket_high(i);
            return high < m_max ? high : m_max; // no edge above what was seen
        }
    }
    return m_max;
}

void Histogram::print(std::string_view name, std::string_view unit) const {
    klog::info("histogram {} count={} min={} mean={} p50={} p90={} p99={} p999={} max={} unit={}", name,
               count(), min(), mean(), percentile(500), percentile(900), percentile(990), percentile(999),
               max(), unit);
    for (unsigned i = 0; i < kBuckets; ++i)
        if (m_buckets[i]) klog::info("histogram {} bucket {} {} {}", name, bucket_low(i), bucket_high(i), m_buckets[i]);
}

} // namespace tessera::time
