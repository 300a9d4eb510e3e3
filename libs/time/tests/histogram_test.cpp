#include <ktest/ktest.hpp>
#include <time/histogram.hpp>

using namespace tessera;
using time::Histogram;

KTEST(time_histogram, buckets_tile_the_range_without_gaps) {
    EXPECT_EQ(Histogram::bucket_low(0), 0u);
    for (unsigned b = 0; b + 1 < Histogram::kBuckets; ++b) {
        ASSERT_EQ(Histogram::bucket_high(b) + 1, Histogram::bucket_low(b + 1));
        ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_low(b)), b);
        ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_high(b)), b);
    }
    EXPECT_EQ(Histogram::bucket_of(~0ull), Histogram::kBuckets - 1);
    EXPECT_EQ(Histogram::bucket_high(Histogram::kBuckets - 1), ~0ull);
}

KTEST(time_histogram, small_values_are_exact_and_large_ones_within_an_eighth) {
    for (std::uint64_t v = 0; v < 8; ++v) EXPECT_EQ(Histogram::bucket_low(Histogram::bucket_of(v)), v);
    for (std::uint64_t v : {9ull, 100ull, 12345ull, 1000000007ull, 1ull << 50}) {
        unsigned b = Histogram::bucket_of(v);
        std::uint64_t width = Histogram::bucket_high(b) - Histogram::bucket_low(b) + 1;
        EXPECT_LE(width * 8, v + width); // width <= ~1/8 of the bucket's low edge
    }
}

KTEST(time_histogram, summary_and_percentiles) {
    Histogram h;
    EXPECT_EQ(h.percentile(990), 0u);
    for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
    EXPECT_EQ(h.count(), 1000u);
    EXPECT_EQ(h.min(), 1u);
    EXPECT_EQ(h.max(), 1000u);
    EXPECT_EQ(h.mean(), 500u);
    // The reported percentile is a bucket's upper edge: at or above the
    // true value, within one bucket width.
    std::uint64_t p50 = h.percentile(500), p99 = h.percentile(990);
    EXPECT_GE(p50, 500u);
    EXPECT_LE(p50, 500u + 500u / 8);
    EXPECT_GE(p99, 990u);
    EXPECT_LE(p99, 1000u);
    EXPECT_EQ(h.percentile(1000), 1000u);
}

KTEST(time_histogram, merge_adds_counts_and_extremes) {
    Histogram a, b;
    a.record(5);
    a.record(50);
    b.record(2);
    b.record(5000);
    a.merge(b);
    EXPECT_EQ(a.count(), 4u);
    EXPECT_EQ(a.min(), 2u);
    EXPECT_EQ(a.max(), 5000u);
    EXPECT_EQ(a.bucket_count(Histogram::bucket_of(5000)), 1u);
    a.reset();
    EXPECT_EQ(a.count(), 0u);
    EXPECT_EQ(a.min(), 0u);
}
