// The framework checks itself: comparisons, failure accounting, skips.
#include <klog/klog.hpp>
#include <base/result.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;

KTEST(ktest, comparisons_pass) {
    EXPECT_EQ(1 + 1, 2);
    EXPECT_NE(1, 2);
    EXPECT_LT(1, 2);
    EXPECT_LE(2, 2);
    EXPECT_GT(3, 2);
    EXPECT_GE(3, 3);
    EXPECT_TRUE(true);
    EXPECT_FALSE(false);
}

KTEST(ktest, failures_are_counted_not_fatal) {
    // A nested context: its failure must not fail this case, and an ASSERT
    // must stop the nested body.
    ktest::Context inner;
    bool reached_after_assert = false;
    auto body = [&](ktest::Context& ktest_context) {
        ASSERT_EQ(1, 2);
        reached_after_assert = true;
    };
    klog::print("        # (the next diagnostic is expected)\n");
    body(inner);
    EXPECT_TRUE(inner.failed());
    EXPECT_FALSE(reached_after_assert);
}

KTEST(ktest, skip_is_reported) {
    KTEST_SKIP("demonstrates '# SKIP'");
}

KTEST(ktest, result_checks_evaluate_once) {
    int calls = 0;
    auto failing = [&]() -> base::Result<int> {
        ++calls;
        return base::Error::Busy;
    };
    EXPECT_ERROR(failing(), base::Error::Busy);
    EXPECT_EQ(calls, 1);
    ktest::Context inner;
    auto body = [&](ktest::Context& ktest_context) { EXPECT_ERROR(failing(), base::Error::NotFound); };
    klog::print("        # (the next diagnostic is expected: left is the actual error)\n");
    body(inner);
    EXPECT_TRUE(inner.failed());
    EXPECT_EQ(calls, 2);
}

#if CONFIG_KTEST_DEMO_FAILURE
KTEST(ktest, demo_failure) {
    EXPECT_EQ(6 * 7, 43); // fails on purpose (CONFIG_KTEST_DEMO_FAILURE)
}
#endif
