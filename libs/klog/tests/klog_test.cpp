#include <klog/klog.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;

namespace {
char g_tail[512];
std::string_view ring_tail() { return {g_tail, klog::copy_ring(g_tail)}; }
} // namespace

KTEST(klog, lines_reach_the_ring_with_level_prefix) {
    auto before = klog::stats();
    klog::debug("ktest debug line {}", 17); // below the console level: ring only
    klog::warn("ktest warning {:#x}", 0x2a);
    auto after = klog::stats();
    EXPECT_EQ(after.lines, before.lines + 2);
    std::string_view text = ring_tail();
    EXPECT_NE(text.find("ktest debug line 17\n"), std::string_view::npos);
    EXPECT_NE(text.find("warning: ktest warning 0x2a\n"), std::string_view::npos);
}

KTEST(klog, ring_wraps_and_keeps_newest) {
    for (int i = 0; i < CONFIG_KLOG_RING_SIZE / 32 + 8; ++i) klog::debug("wrap filler line number {:>6}", i);
    klog::debug("the newest line");
    EXPECT_GT(klog::stats().overwritten, 0u);
    std::string_view text = ring_tail();
    EXPECT_EQ(text.size(), sizeof(g_tail));
    EXPECT_NE(text.find("the newest line\n"), std::string_view::npos);
    EXPECT_EQ(text.back(), '\n'); // the copy ends at the newest byte
}
