#include <arch/csr.hpp>
#include <cstring>
#include <arch/spinlock.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <plat/console.hpp>
#include <plat/timer.hpp>

namespace tessera::klog {

namespace {

static_assert((CONFIG_KLOG_RING_SIZE & (CONFIG_KLOG_RING_SIZE - 1)) == 0,
              "CONFIG_KLOG_RING_SIZE must be a power of two");

// The bytes live in .noinit: only data[0..head) is ever read.
NOINIT char g_ring_data[CONFIG_KLOG_RING_SIZE];

struct Ring {
    char (&data)[CONFIG_KLOG_RING_SIZE] = g_ring_data;
    std::uint64_t head = 0; // total bytes ever written; data[head % size] is next
    Stats stats = {};

    void append(std::string_view text) {
        stats.bytes += text.size();
        // Text longer than the ring: only its tail can survive.
        if (text.size() > sizeof(data)) {
            head += text.size() - sizeof(data);
            text = text.substr(text.size() - sizeof(data));
        }
        // Copy in at most two runs (before and after the wrap point).
        std::size_t at = head % sizeof(data);
        std::size_t first = text.size() < sizeof(data) - at ? text.size() : sizeof(data) - at;
        memcpy(data + at, text.data(), first);
        memcpy(data, text.data() + first, text.size() - first);
        head += text.size();
        if (head > sizeof(data)) stats.overwritten = head - sizeof(data);
    }
};

// Lock order (base/lock_order.hpp): g_lock is a leaf; nothing is acquired
// while holding it, and no caller code runs under it.
constinit arch::Spinlock g_lock;
constinit Ring g_ring;
constinit bool g_panic_mode = false;

// Writes to the ring, and to the console when `to_console`.
class LogSink final : public base::Sink {
public:
    explicit LogSink(bool to_console) : m_console(to_console) {}
    void write(std::string_view text) override {
        g_ring.append(text);
        if (m_console) plat::console::write(text);
    }

private:
    bool m_console;
};

// Holds the log lock unless the kernel is panicking.
class LogGuard {
public:
    LogGuard() : m_locked(!g_panic_mode) { if (m_locked) g_lock.lock(); }
    ~LogGuard() { if (m_locked) g_lock.unlock(); }

private:
    arch::IrqGuard m_irq;
    bool m_locked;
};

constexpr std::string_view level_tag(Level level) {
    switch (level) {
    case Level::Emerg: return "EMERG ";
    case Level::Error: return "error: ";
    case Level::Warn: return "warning: ";
    default: return "";
    }
}

} // namespace

void vlog(Level level, std::string_view fmt, std::span<const base::FormatArg> args) {
    LogGuard guard;
    LogSink sink(static_cast<int>(level) <= CONFIG_KLOG_CONSOLE_LEVEL || g_panic_mode);
#if CONFIG_KLOG_TIMESTAMPS
    std::uint64_t us = plat::timer::ticks_to_ns(plat::timer::now()) / 1000;
    base::format_to(sink, "[{:>5}.{:06}] ", us / 1000000, us % 1000000);
#endif
    sink.write(level_tag(level));
    base::vformat(sink, fmt, args);
    sink.write("\n");
    ++g_ring.stats.lines;
}

void vprint(std::string_view fmt, std::span<const base::FormatArg> args) {
    LogGuard guard;
    LogSink sink(true);
    base::vformat(sink, fmt, args);
}

void enter_panic_mode() { g_panic_mode = true; }

std::size_t copy_ring(std::span<char> out) {
    LogGuard guard;
    std::uint64_t size = sizeof(g_ring.data);
    std::uint64_t held = g_ring.head < size ? g_ring.head : size;
    std::uint64_t n = out.size() < held ? out.size() : held;
    std::uint64_t start = g_ring.head - n;
    std::uint64_t at = start % size;
    std::uint64_t first = n < size - at ? n : size - at; // up to the wrap point
    memcpy(out.data(), &g_ring.data[at], first);
    memcpy(out.data() + first, &g_ring.data[0], n - first);
    return n;
}

Stats stats() {
    LogGuard guard;
    return g_ring.stats;
}

} // namespace tessera::klog
