#include <ktest/ktest.hpp>
#include <sched-edf/admission.hpp>

using namespace tessera;
using sched_edf::density;
using sched_edf::kDensityScale;
using sched_edf::Ledger;
using sched_edf::Params;

KTEST(edf_admission, nonsense_parameters_are_refused) {
    EXPECT_ERROR(density({0, 1000, 1000}), base::Error::InvalidArgument);       // no runtime
    EXPECT_ERROR(density({2000, 1000, 4000}), base::Error::InvalidArgument);    // runtime > deadline
    EXPECT_ERROR(density({100, 2000, 1000}), base::Error::InvalidArgument);     // deadline > period
    EXPECT_ERROR(density({2000, 0, 1000}), base::Error::InvalidArgument);       // runtime > period
    EXPECT_ERROR(density({1, 0, 3601ull * 1000000000}), base::Error::InvalidArgument); // period over an hour
    EXPECT_ERROR(density({0, 0, 0}), base::Error::InvalidArgument);
}

KTEST(edf_admission, density_is_runtime_over_the_tighter_of_deadline_and_period) {
    EXPECT_EQ(density({200000, 0, 1000000}).value(), kDensityScale / 5);       // implicit deadline
    EXPECT_EQ(density({200000, 400000, 1000000}).value(), kDensityScale / 2);  // constrained
    EXPECT_EQ(density({1000, 1000, 1000}).value(), kDensityScale);             // a whole hart
    EXPECT_EQ(density({1, 0, 3}).value(), kDensityScale / 3 + 1);              // rounded up, never down
}

// A table of sets offered one thread at a time to a 95% hart: which are
// accepted, including the boundary at exactly 95%.
KTEST(edf_admission, accept_reject_table_at_the_95_percent_bound) {
    struct Row {
        Params params;
        bool accepted;
    };
    const Row rows[] = {
        {{950000, 0, 1000000}, true},        // exactly 95%: accepted
        {{1, 0, 1000000000}, false},         // anything more: refused
    };
    Ledger hart(95);
    for (const Row& r : rows) {
        auto result = hart.admit(density(r.params).value());
        EXPECT_EQ(result.ok(), r.accepted);
        if (!r.accepted) EXPECT_ERROR(result, base::Error::Overloaded);
    }
    EXPECT_EQ(hart.used(), hart.bound());
    EXPECT_EQ(hart.threads(), 1u);

    Ledger mixed(95);
    const Row set[] = {
        {{500000, 0, 1000000}, true},        // 50%
        {{250000, 500000, 1000000}, false},  // +50% (constrained) = 100%: refused
        {{200000, 0, 1000000}, true},        // 70%
        {{2500000, 0, 10000000}, true},      // 95% exactly
        {{1000, 0, 1000000000}, false},      // +0.0001%: refused
    };
    for (const Row& r : set) EXPECT_EQ(mixed.admit(density(r.params).value()).ok(), r.accepted);
    EXPECT_EQ(mixed.threads(), 3u);
}

KTEST(edf_admission, thirds_never_exceed_the_bound_through_rounding) {
    Ledger full(100);
    std::uint64_t third = density({1, 0, 3}).value();
    EXPECT_OK(full.admit(third));
    EXPECT_OK(full.admit(third));
    // Rounded up, three thirds are a hair over 100%: refused (safe side).
    EXPECT_ERROR(full.admit(third), base::Error::Overloaded);
}

KTEST(edf_admission, release_returns_the_share) {
    Ledger hart(95);
    std::uint64_t d = density({475000, 0, 1000000}).value();
    EXPECT_OK(hart.admit(d));
    EXPECT_OK(hart.admit(d));
    EXPECT_ERROR(hart.admit(d), base::Error::Overloaded);
    hart.release(d);
    EXPECT_OK(hart.admit(d));
    hart.release(d);
    hart.release(d);
    EXPECT_EQ(hart.used(), 0u);
    EXPECT_EQ(hart.threads(), 0u);
}

KTEST(edf_admission, a_high_thread_is_admitted_at_its_hi_budget) {
    EXPECT_EQ(density({200000, 0, 1000000, 500000}).value(), kDensityScale / 2);
    EXPECT_ERROR(density({200000, 0, 1000000, 200000}), base::Error::InvalidArgument);  // not above runtime
    EXPECT_ERROR(density({200000, 400000, 1000000, 500000}), base::Error::InvalidArgument); // past the deadline
}
