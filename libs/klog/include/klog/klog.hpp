#pragma once
// Kernel log. Each line gets a level, optionally a timestamp, goes into a
// ring buffer (always) and onto the console (if its level is at or below
// CONFIG_KLOG_CONSOLE_LEVEL). Formatting is base::format's `{}` syntax.
//
//     klog::info("virtio-mmio slot {} at {:#x}", index, base);
//
// SMP-safe: one IRQ-safe spinlock serializes writers, so lines from
// different harts never interleave. Callable from interrupt context (no
// allocation, no blocking). After enter_panic_mode() the lock is ignored so
// a panicking hart can always print, even if it faulted while holding it.
#include <base/format.hpp>
#include <cstdint>

namespace tessera::klog {

enum class Level : std::uint8_t { Emerg = 0, Error = 3, Warn = 4, Info = 6, Debug = 7 };

void vlog(Level level, std::string_view fmt, std::span<const base::FormatArg> args);
// Raw text (no level, no timestamp, no newline added): banners and reports.
void vprint(std::string_view fmt, std::span<const base::FormatArg> args);

template <typename... Args>
void log(Level level, std::string_view fmt, const Args&... args) {
    if constexpr (sizeof...(Args) == 0) {
        vlog(level, fmt, {});
    } else {
        const base::FormatArg packed[] = {base::FormatArg(args)...};
        vlog(level, fmt, packed);
    }
}

template <typename... Args> void error(std::string_view fmt, const Args&... a) { log(Level::Error, fmt, a...); }
template <typename... Args> void warn(std::string_view fmt, const Args&... a) { log(Level::Warn, fmt, a...); }
template <typename... Args> void info(std::string_view fmt, const Args&... a) { log(Level::Info, fmt, a...); }
template <typename... Args> void debug(std::string_view fmt, const Args&... a) { log(Level::Debug, fmt, a...); }

template <typename... Args>
void print(std::string_view fmt, const Args&... args) {
    if constexpr (sizeof...(Args) == 0) {
        vprint(fmt, {});
    } else {
        const base::FormatArg packed[] = {base::FormatArg(args)...};
        vprint(fmt, packed);
    }
}

void enter_panic_mode();

// Copies the newest min(out.size(), bytes held) bytes of the ring into
// `out`, oldest first, and returns how many. A copy, not a callback: no
// caller code ever runs under the log lock.
std::size_t copy_ring(std::span<char> out);

struct Stats {
    std::uint64_t lines;
    std::uint64_t bytes;
    std::uint64_t overwritten; // bytes lost to ring wrap-around
};
Stats stats();

} // namespace tessera::klog
