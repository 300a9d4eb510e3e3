// Secondary-hart bring-up and IPIs. The entry protocol (SBI HSM hart_start
// -> _start_secondary -> arch's C++ entry -> check_in) is described in
// arch/hart.hpp and docs/libs/smp.md.
#include <arch/cpu.hpp>
#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/trap.hpp>
#include <atomic>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <plat/boot.hpp>
#include <plat/machine.hpp>
#include <plat/timer.hpp>
#include <smp/smp.hpp>
#if CONFIG_LIB_MMU
#include <mmu/mmu.hpp>
#endif

extern "C" char __boot_stack_bottom[], __boot_stack_top[];

namespace tessera::smp {

namespace {

using base::Error;
using base::Result;

// One cache line per hart, so that counting on one hart never bounces a
// line another hart is writing.
struct alignas(64) PerHart {
    // Set once, with release, by the hart itself as its last act of
    // bring-up (check_in); read with acquire by everyone else.
    std::atomic<bool> online{false};
    // Written only by this hart; read (relaxed) by anyone for statistics.
    std::atomic<std::uint64_t> ipis_sent{0};
    std::atomic<std::uint64_t> ipis_received{0};
    // Written by the boot hart before hart_start, read-only afterwards.
    std::uint64_t hart_id = 0;
    std::uintptr_t stack_bottom = 0;
    std::uintptr_t stack_top = 0;
    arch::SecondaryStart start{};
};

constinit PerHart g_harts[arch::kMaxHarts];
constinit std::atomic<IpiHandler> g_ipi_handler{nullptr};

// Where hart_start sends a hart: the kernel's first address only in the
// test of the entry code's recovery from the firmware's start race.
#if CONFIG_SMP_START_AT_KERNEL_ENTRY
constexpr auto kStartAt = arch::StartAt::KernelEntry;
#else
constexpr auto kStartAt = arch::StartAt::SecondaryEntry;
#endif

// Software interrupt, on any hart. SSIP is cleared before the handler
// looks at anything, so an IPI sent while it runs raises the interrupt
// again (taken after return) instead of being lost.
void on_software_interrupt(arch::TrapFrame&) {
    arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software));
    g_harts[arch::this_hart().index].ipis_received.fetch_add(1, std::memory_order_relaxed);
    if (IpiHandler handler = g_ipi_handler.load(std::memory_order_acquire)) handler();
}

// Runs on the new hart, called by arch's secondary entry with tp, stack,
// satp and sie set up and interrupts still masked.
[[noreturn]] void check_in(unsigned index) {
    g_harts[index].online.store(true, std::memory_order_release);
    // Wakes the boot hart, which waits in wfi (wait_for_check_in). Sent
    // after the store, so the boot hart cannot wake, miss the flag and
    // sleep again with nothing left to wake it.
    if (arch::sbi::send_ipi(1, g_harts[0].hart_id).ok())
        g_harts[index].ipis_sent.fetch_add(1, std::memory_order_relaxed);
    tessera_secondary_run(index);
}

bool all_checked_in(unsigned count) {
    for (unsigned i = 1; i < count; ++i)
        if (!is_online(i)) return false;
    return true;
}

// Waits until harts 1..count-1 are online or `timeout` ticks have passed,
// with interrupts masked (init steps run so). It sleeps in wfi rather than
// spinning: under single-threaded TCG (QEMU -icount) a spinning boot hart
// keeps the others from running for a whole scheduling slice (100 ms)
// each time, and under -icount shift=0 some never got to check in within
// a second. wfi wakes on a pending interrupt that sie enables even with
// sstatus.SIE clear: the check-in IPI (SSIE, set by init_start), or the
// timer armed here for the timeout (STIE, set by plat.timer).
bool wait_for_check_in(unsigned count, std::uint64_t timeout) {
    const std::uint64_t deadline = arch::rdtime() + timeout;
    const std::uint64_t previous = plat::timer::deadline();
    if (deadline < previous) plat::timer::arm(deadline);
    bool all = false;
    for (;;) {
        // Cleared before the check: a check-in after it leaves SSIP set,
        // so the wfi below returns at once instead of missing it. A
        // check-in IPI that lands after the loop is taken later as an
        // ordinary IPI (counted; the handler finds nothing to do).
        arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software));
        all = all_checked_in(count);
        if (all || arch::rdtime() >= deadline) break;
        arch::wfi();
    }
    // Put back what was armed before (at boot: nothing).
    if (previous == ~std::uint64_t(0))
        plat::timer::disarm();
    else
        plat::timer::arm(previous);
    return all;
}

// A stack for one secondary: with a guard page below it when there is an
// MMU, so an overflow faults (and is reported by the trap-entry check)
// instead of silently overwriting the neighbouring block.
Result<void> alloc_stack(PerHart& hart) {
    constexpr std::size_t kSize = std::size_t(CONFIG_SMP_STACK_KIB) * 1024;
#if CONFIG_LIB_MMU
    if (mmu::satp()) {
        mmu::Stack stack = TRY(mmu::alloc_stack(kSize));
        hart.stack_bottom = stack.bottom;
        hart.stack_top = stack.top;
        return {};
    }
#endif
    void* block = TRY(mm_buddy::alloc_pages(mm_buddy::order_for(kSize)));
    hart.stack_bottom = reinterpret_cast<std::uintptr_t>(block);
    hart.stack_top = hart.stack_bottom + (mm_buddy::kPageSize << mm_buddy::order_for(kSize));
    return {};
}

std::uint64_t kernel_satp() {
#if CONFIG_LIB_MMU
    return mmu::satp();
#else
    return 0;
#endif
}

} // namespace

unsigned online_harts() {
    unsigned n = 0;
    for (const PerHart& h : g_harts) n += h.online.load(std::memory_order_acquire);
    return n ? n : 1; // before smp.start: the boot hart alone
}

bool is_online(unsigned hart_index) {
    return hart_index < arch::kMaxHarts && g_harts[hart_index].online.load(std::memory_order_acquire);
}

Result<void> send_ipi(unsigned hart_index) {
    if (!is_online(hart_index)) return Error::InvalidArgument;
    // hart_mask 1 at base = the target's id: any id works, no 64-bit limit.
    TRY(arch::sbi::send_ipi(1, g_harts[hart_index].hart_id));
    g_harts[arch::this_hart().index].ipis_sent.fetch_add(1, std::memory_order_relaxed);
    return {};
}

IpiHandler set_ipi_handler(IpiHandler handler) {
    IpiHandler previous = g_ipi_handler.exchange(handler, std::memory_order_acq_rel);
    arch::set_interrupt_handler(arch::Interrupt::Software, on_software_interrupt);
    return previous;
}

Result<HartStats> hart_stats(unsigned hart_index) {
    if (hart_index >= plat::machine().hart_count) return Error::InvalidArgument;
    const PerHart& h = g_harts[hart_index];
    return HartStats{h.online.load(std::memory_order_acquire), h.hart_id,
                     h.ipis_sent.load(std::memory_order_relaxed), h.ipis_received.load(std::memory_order_relaxed),
                     h.stack_bottom, h.stack_top};
}

// Init step smp.start: start every other usable hart, wait until all have
// checked in. Runs on the boot hart with interrupts masked.
Result<void> init_start() {
    const plat::MachineInfo& m = plat::machine();
    PerHart& boot = g_harts[0];
    boot.hart_id = m.harts[0];
    boot.stack_bottom = reinterpret_cast<std::uintptr_t>(__boot_stack_bottom);
    boot.stack_top = reinterpret_cast<std::uintptr_t>(__boot_stack_top);
    boot.online.store(true, std::memory_order_release);
    // The boot hart takes IPIs too (sie.SSIE on here; secondaries set it
    // in their entry).
    arch::set_interrupt_handler(arch::Interrupt::Software, on_software_interrupt);
    if (m.hart_count == 1) return {};

    if (!arch::sbi::probe(arch::sbi::Extension::Hsm)) {
        klog::error("smp: the firmware has no SBI HSM extension; cannot start {} more harts", m.hart_count - 1);
        return Error::NotSupported;
    }
    std::uint64_t satp = kernel_satp();
    if (satp && !arch::sbi::probe(arch::sbi::Extension::Rfence)) {
        // libs/mmu could not keep the other harts' TLBs coherent.
        klog::error("smp: the firmware has no SBI RFENCE extension; cannot run {} more harts under the MMU",
                    m.hart_count - 1);
        return Error::NotSupported;
    }
    // All stacks first: each guard page is an unmap, which would otherwise
    // have to be shot down in the harts already started.
    for (unsigned i = 1; i < m.hart_count; ++i) {
        PerHart& h = g_harts[i];
        h.hart_id = m.harts[i];
        if (auto r = alloc_stack(h); !r.ok()) {
            klog::error("smp: no stack for hart {} (index {}): {}", h.hart_id, i, r.error());
            return r.error();
        }
        h.start = {h.stack_top, h.stack_bottom, satp, i, check_in};
    }
    for (unsigned i = 1; i < m.hart_count; ++i) {
        PerHart& h = g_harts[i];
        if (auto r = arch::start_secondary(h.hart_id, h.start, kStartAt); !r.ok()) {
            klog::error("smp: SBI hart_start of hart {} (index {}) failed: {}", h.hart_id, i, r.error());
            return r.error();
        }
    }
    // Bounded wait: a hart that never arrives must stop the boot with its
    // name, not hang it.
    if (!wait_for_check_in(m.hart_count, m.timebase_hz * CONFIG_SMP_START_TIMEOUT_MS / 1000)) {
        for (unsigned i = 1; i < m.hart_count; ++i)
            if (!is_online(i))
                klog::error("smp: hart {} (index {}) did not check in within {} ms", g_harts[i].hart_id, i,
                            CONFIG_SMP_START_TIMEOUT_MS);
        return Error::TimedOut;
    }
    if (unsigned late = arch::late_kernel_entries())
        klog::info("smp: {} harts online ({} came in at the kernel entry: the firmware's start race)", m.hart_count,
                   late);
    else
        klog::info("smp: {} harts online", m.hart_count);
    return {};
}

} // namespace tessera::smp

using namespace tessera;

// What a secondary does once it is up, until something better is linked
// in: take interrupts (IPIs are counted and handed to the IPI handler) and
// sleep in between. The scheduler overrides this with the hart's idle loop.
extern "C" [[gnu::weak]] [[noreturn]] void tessera_secondary_run(unsigned) {
    arch::irq_enable();
    for (;;) arch::wfi();
}
