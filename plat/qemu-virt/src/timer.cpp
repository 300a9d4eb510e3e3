#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/sbi.hpp>
#include <arch/trap.hpp>
#include <plat/timer.hpp>

namespace tessera::plat::timer {

namespace {
constexpr std::uint64_t kNever = ~0ull;
constinit Handler g_handler = nullptr;
constinit std::uint64_t g_deadline = kNever; // what the hardware holds now
constinit Stats g_stats = {};

void program(std::uint64_t deadline) {
    if (g_stats.uses_sstc)
        arch::csr_write<arch::Csr::stimecmp>(deadline);
    else
        (void)arch::sbi::set_timer(deadline); // clears the pending bit too
    g_deadline = deadline;
    ++g_stats.programmed;
}

void on_timer_interrupt(arch::TrapFrame&) {
    ++g_stats.fired;
    program(kNever); // one-shot: clears STIP until re-armed
    if (g_handler) g_handler();
}
} // namespace

std::uint64_t now() { return arch::rdtime(); }
std::uint64_t frequency() { return machine().timebase_hz; }

std::uint64_t ticks_to_ns(std::uint64_t ticks) {
    std::uint64_t f = frequency();
    if (f == 0) return 0; // before the device tree is read
    // Split to avoid overflowing ticks * 1e9 (which happens after ~30 min).
    return ticks / f * 1000000000ull + ticks % f * 1000000000ull / f;
}

std::uint64_t ns_to_ticks(std::uint64_t ns) {
    std::uint64_t f = frequency();
    return ns / 1000000000ull * f + ns % 1000000000ull * f / 1000000000ull;
}

Handler set_handler(Handler handler) {
    arch::IrqGuard guard;
    Handler previous = g_handler;
    g_handler = handler;
    return previous;
}

void arm(std::uint64_t deadline) {
    arch::IrqGuard guard;
    if (deadline == g_deadline) {
        ++g_stats.skipped;
        return;
    }
    program(deadline);
}

void disarm() {
    arch::IrqGuard guard;
    if (g_deadline != kNever) program(kNever);
}

std::uint64_t deadline() { return g_deadline; }

Stats stats() { return g_stats; }

} // namespace tessera::plat::timer

namespace tessera::plat {

// Init step plat.timer: pick stimecmp or SBI, start disarmed.
base::Result<void> init_timer() {
    timer::g_stats.uses_sstc = machine().has_sstc;
    if (!machine().has_sstc && !arch::sbi::probe(arch::sbi::Extension::Timer))
        return base::Error::Unavailable;
    timer::program(timer::kNever);
    arch::set_interrupt_handler(arch::Interrupt::Timer, timer::on_timer_interrupt);
    return {};
}

} // namespace tessera::plat
