#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/trap.hpp>
#include <plat/timer.hpp>

namespace tessera::plat::timer {

namespace {
constexpr std::uint64_t kNever = ~0ull;
constinit Handler g_handler = nullptr;
constinit bool g_uses_sstc = false;

// Each hart has its own comparator; only that hart touches its slot, with
// interrupts off.
struct alignas(64) PerHart {
    std::uint64_t deadline = kNever; // what the hardware holds now
    std::uint64_t programmed = 0;
    std::uint64_t skipped = 0;
    std::uint64_t fired = 0;
};
constinit PerHart g_harts[arch::kMaxHarts];

PerHart& mine() { return g_harts[arch::this_hart().index]; }

void program(PerHart& h, std::uint64_t deadline) {
    if (g_uses_sstc)
        arch::csr_write<arch::Csr::stimecmp>(deadline);
    else
        (void)arch::sbi::set_timer(deadline); // clears the pending bit too
    h.deadline = deadline;
    ++h.programmed;
}

void on_timer_interrupt(arch::TrapFrame&) {
    PerHart& h = mine();
    ++h.fired;
    program(h, kNever); // one-shot: clears STIP until re-armed
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
    PerHart& h = mine();
    if (deadline == h.deadline) {
        ++h.skipped;
        return;
    }
    program(h, deadline);
}

void disarm() {
    arch::IrqGuard guard;
    PerHart& h = mine();
    if (h.deadline != kNever) program(h, kNever);
}

std::uint64_t deadline() { return mine().deadline; }

Stats stats() {
    Stats s = {};
    s.uses_sstc = g_uses_sstc;
    for (const PerHart& h : g_harts) {
        s.programmed += h.programmed;
        s.skipped += h.skipped;
        s.fired += h.fired;
    }
    return s;
}

void init_this_hart() {
    arch::IrqGuard guard;
    program(mine(), kNever);
}

} // namespace tessera::plat::timer

namespace tessera::plat {

// Init step plat.timer: pick stimecmp or SBI, start disarmed.
base::Result<void> init_timer() {
    timer::g_uses_sstc = machine().has_sstc;
    if (!machine().has_sstc && !arch::sbi::probe(arch::sbi::Extension::Timer))
        return base::Error::Unavailable;
    timer::init_this_hart();
    arch::set_interrupt_handler(arch::Interrupt::Timer, timer::on_timer_interrupt);
    return {};
}

} // namespace tessera::plat
