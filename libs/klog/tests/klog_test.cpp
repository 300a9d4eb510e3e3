#include <base/format.hpp>
#include <klog/klog.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;

namespace {
// Keeps the last `N` bytes written to it: the tail of the ring.
class TailSink final : public base::Sink {
public:
    void write(std::string_view text) override {
        for (char c : text) {
            if (m_length == sizeof(m_data)) {
                for (std::size_t i = 1; i < sizeof(m_data); ++i) m_data[i - 1] = m_data[i];
                --m_length;
            }
            m_data[m_length++] = c;
        }
    }
    std::string_view view() const { return {m_data, m_length}; }

private:
    char m_data[256] = {};
    std::size_t m_length = 0;
};
} // namespace

KTEST(klog, lines_reach_the_ring_with_level_prefix) {
    auto before = klog::stats();
    klog::debug("ktest debug line {}", 17); // below the console level: ring only
    klog::warn("ktest warning {:#x}", 0x2a);
    auto after = klog::stats();
    EXPECT_EQ(after.lines, before.lines + 2);
    TailSink tail;
    klog::dump_ring(tail);
    std::string_view text = tail.view();
    EXPECT_NE(text.find("ktest debug line 17\n"), std::string_view::npos);
    EXPECT_NE(text.find("warning: ktest warning 0x2a\n"), std::string_view::npos);
}

KTEST(klog, ring_wraps_and_keeps_newest) {
    for (int i = 0; i < CONFIG_KLOG_RING_SIZE / 32 + 8; ++i) klog::debug("wrap filler line number {:>6}", i);
    klog::debug("the newest line");
    EXPECT_GT(klog::stats().overwritten, 0u);
    TailSink tail;
    klog::dump_ring(tail);
    EXPECT_NE(tail.view().find("the newest line\n"), std::string_view::npos);
}
