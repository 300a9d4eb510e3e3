// panic() and VERIFY() failures: report, dump the call chain, stop the
// machine with a failing status so a test harness sees it.
#include <arch/backtrace.hpp>
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <plat/power.hpp>

extern "C" char __image_start[], __image_end[], __text_start[], __text_end[];

namespace tessera::arch {

bool is_text_address(std::uint64_t a) {
    return a >= reinterpret_cast<std::uint64_t>(__text_start) && a < reinterpret_cast<std::uint64_t>(__text_end);
}

namespace {
// A frame record must lie in the image (the boot stack) or on the stack the
// hart runs on: thread stacks come from the page allocator, above the
// image, and start `stack_limit` (the guard page is below it, so fp - 16
// is always readable). Stacks are at most a few MiB.
bool plausible_frame(std::uint64_t fp) {
    auto low = reinterpret_cast<std::uint64_t>(__image_start);
    auto high = reinterpret_cast<std::uint64_t>(__image_end);
    constexpr std::uint64_t kMaxStack = 4 << 20;
    std::uint64_t limit = this_hart().stack_limit;
    if (fp % 8 != 0) return false;
    if (fp >= low + 16 && fp <= high) return true;
    return limit && fp >= limit + 16 && fp - limit <= kMaxStack;
}
} // namespace

void print_backtrace(std::uint64_t fp, unsigned index, std::uint64_t leaf_ra) {
    std::uint64_t previous = 0;
    for (unsigned depth = 0; depth < 64; ++depth) {
        if (!plausible_frame(fp) || fp <= previous) return;
        auto* record = reinterpret_cast<const std::uint64_t*>(fp);
        std::uint64_t ra = record[-1];
        std::uint64_t next = record[-2];
        if (!is_text_address(ra)) { // leaf frame: fp-8 holds the caller's fp
            next = ra;
            ra = depth == 0 ? leaf_ra : 0;
            if (ra == 0) {
                klog::print("    #{:<2} (leaf frame, return address not saved)\n", index++);
                previous = fp;
                fp = next;
                continue;
            }
        }
        if (ra == 0) return;
        klog::print("    #{:<2} {:#018x}\n", index++, ra);
        previous = fp;
        fp = next;
    }
    klog::print("    ... (truncated)\n");
}

} // namespace tessera::arch

namespace tessera {

namespace {
[[noreturn]] void stop(const char* file, int line, const char* what, const char* detail) {
    arch::irq_disable_hard();
    klog::enter_panic_mode();
    arch::Hart& hart = arch::this_hart();
    if (hart.reporting) { // panicked while reporting: no second report
        klog::print("\n*** nested panic: {}{} at {}:{}\n", what, detail, file, line);
        plat::exit_machine(plat::kExitPanic);
    }
    hart.reporting = true;
    klog::print("\n*** Kernel panic on hart {}: {}{}\n    at {}:{}\nBacktrace:\n", arch::this_hart().hart_id,
                what, detail, file, line);
    arch::print_backtrace(arch::current_frame_pointer());
    klog::print("*** stopping (exit status {})\n", plat::kExitPanic);
    plat::exit_machine(plat::kExitPanic);
}
} // namespace

void panic_at(const char* file, int line, const char* message) { stop(file, line, message, ""); }

void verify_failed(const char* expression, const char* file, int line) {
    stop(file, line, "VERIFY failed: ", expression);
}

} // namespace tessera
