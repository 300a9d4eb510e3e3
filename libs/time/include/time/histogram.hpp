#pragma once
// A latency histogram with log-linear buckets: values 0..7 exactly, above
// that 8 buckets per power of two, so any recorded value is known to within
// 12.5%. Count, sum, minimum and maximum are exact. Percentiles report the
// upper edge of the bucket holding that rank (never optimistic).
//
// Not synchronised: each owner keeps one per hart (or under its own lock)
// and merges copies to report. About 2 KiB.
#include <cstdint>
#include <string_view>

namespace tessera::time {

class Histogram {
public:
    static constexpr unsigned kSubBits = 3;
    static constexpr unsigned kBuckets = (64 - kSubBits + 1) << kSubBits;

    constexpr Histogram() = default;

    void record(std::uint64_t value);
    void merge(const Histogram& other);
    void reset() { *this = Histogram(); }

    std::uint64_t count() const { return m_count; }
    std::uint64_t min() const { return m_count ? m_min : 0; }
    std::uint64_t max() const { return m_max; }
    std::uint64_t mean() const { return m_count ? m_sum / m_count : 0; }
    // The smallest bucket edge that at least per_mille/1000 of the samples
    // lie at or below (e.g. 990 for p99). 0 when empty.
    std::uint64_t percentile(unsigned per_mille) const;

    // Bucket arithmetic, public for tests and for printing.
    static unsigned bucket_of(std::uint64_t value);
    static std::uint64_t bucket_low(unsigned bucket);
    static std::uint64_t bucket_high(unsigned bucket); // inclusive
    std::uint32_t bucket_count(unsigned bucket) const { return m_buckets[bucket]; }

    // Logs one summary line and one line per non-empty bucket, in a fixed
    // format that host tests parse (docs/libs/time.md):
    //   histogram <name> count=N min=A mean=B p50=C p90=D p99=E p999=F max=G unit=<unit>
    //   histogram <name> bucket LOW HIGH COUNT
    void print(std::string_view name, std::string_view unit = "ns") const;

private:
    std::uint64_t m_count = 0;
    std::uint64_t m_sum = 0;
    std::uint64_t m_min = ~0ull;
    std::uint64_t m_max = 0;
    std::uint32_t m_buckets[kBuckets] = {};
};

} // namespace tessera::time
