// Echoes console input line by line. The UART receive interrupt fills a
// ring; between bytes main() sleeps in wfi, or, with the scheduler, blocks
// in read() while a lowest-priority background thread counts (its count is
// echoed: proof that a reader does not hold the hart).
#include <base/string.hpp>
#include <klog/klog.hpp>
#include <plat/console.hpp>
#include <plat/power.hpp>
#if CONFIG_LIB_SCHED
#include <atomic>
#include <sched/sched.hpp>
#endif

using namespace tessera;

namespace {
#if CONFIG_LIB_SCHED
std::atomic<std::uint64_t> g_background{0};
void background(void*) {
    for (;;) g_background.fetch_add(1, std::memory_order_relaxed);
}
#endif
std::uint64_t background_count() {
#if CONFIG_LIB_SCHED
    return g_background.load(std::memory_order_relaxed);
#else
    return 0;
#endif
}
} // namespace

int main() {
#if CONFIG_LIB_SCHED
    (void)sched::detach(sched::spawn(background, nullptr, {"background", 1}).value());
#endif
    klog::print("echo: ready\n");
    char line[128];
    std::size_t length = 0;
    for (;;) {
        char c = plat::console::read();
        if (c != '\r' && c != '\n') {
            if (length < sizeof(line)) line[length++] = c;
            continue;
        }
        std::string_view text(line, length);
        length = 0;
        if (text.empty()) continue;
        auto stats = plat::console::stats();
        klog::print("echo: {} (rx {} bytes, {} interrupts, background {})\n", text, stats.rx_bytes,
                    stats.rx_interrupts, background_count());
        if (text.substr(0, 5) == "exit ") {
            auto status = base::parse_unsigned(text.substr(5));
            return status.ok() ? static_cast<int>(status.value() & 0xff) : 2;
        }
        if (text == "reboot") plat::reboot();
    }
}
