#pragma once
// Secondary harts and inter-processor interrupts.
//
// The smp.start init step starts every usable hart of plat::machine().harts
// through SBI HSM (hart_start) and waits, bounded, until each has checked
// in. Dense index i is plat::machine().harts[i]; index 0 is the boot hart.
// A started hart has its own stack, its own tp (arch::Hart), the kernel's
// page table, and the software and timer interrupts enabled (external
// interrupts stay with the boot hart). It then runs
// tessera_secondary_run(index) (plat/boot.hpp), by default a wfi loop.
//
// IPIs: send_ipi() raises the software interrupt on one hart (SBI sPI).
// The target clears sip.SSIP, counts it, and calls the handler installed
// with set_ipi_handler(), in interrupt context; the hart's interrupt-exit
// hook runs after it as after any interrupt (that is where a scheduler
// preempts). IPIs coalesce: several sent before the target takes the
// interrupt are one interrupt and one handler call, so a handler must look
// at shared state for what to do, not count calls.
//
// Concurrency: no locks. Per-hart counters are atomics written by their own
// hart; the online flags are written once (release) by the hart that checks
// in. Everything here may be called from interrupt context except
// init_start.
#include <arch/hart.hpp>
#include <base/result.hpp>
#include <cstdint>

namespace tessera::smp {

// Harts that have checked in, the boot hart included (1 before smp.start
// and on a one-hart machine).
unsigned online_harts();
bool is_online(unsigned hart_index);

// Raises a software interrupt on the hart with that dense index (itself
// included). InvalidArgument for an index that is not online (unknown,
// never started, or beyond arch::kMaxHarts); firmware errors as
// arch::sbi::send_ipi.
base::Result<void> send_ipi(unsigned hart_index);

// What every hart calls when it takes an IPI (nullptr: only counted).
// Runs in interrupt context with interrupts off: must not block or
// allocate. Also (re)installs the library's software-interrupt dispatcher
// in arch, should other code have replaced it with
// arch::set_interrupt_handler. Returns the previous handler.
using IpiHandler = void (*)();
IpiHandler set_ipi_handler(IpiHandler handler);

struct HartStats {
    bool online;
    std::uint64_t hart_id;        // platform numbering
    std::uint64_t ipis_sent;      // by this hart, to any hart
    std::uint64_t ipis_received;  // software interrupts this hart took
    // The stack the hart was started on (the boot stack for hart 0):
    // lowest usable address and initial sp.
    std::uintptr_t stack_bottom;
    std::uintptr_t stack_top;
};
// InvalidArgument for an index the machine does not have.
base::Result<HartStats> hart_stats(unsigned hart_index);

} // namespace tessera::smp
