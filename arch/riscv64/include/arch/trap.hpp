#pragma once
// The trap frame saved by the trap vector, and interrupt dispatch.
#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::arch {

// Layout shared with src/trap_entry.S (offsets checked below).
struct TrapFrame {
    std::uint64_t x[32];     // x[0] unused; x[2] is the interrupted sp
    std::uint64_t sepc;
    std::uint64_t sstatus;
    std::uint64_t scause;
    std::uint64_t stval;
    std::uint64_t f[32];     // valid only if fs_at_entry is Initial (1) or Dirty (3): see trap_entry.S
    std::uint64_t fcsr;      // valid if fs_at_entry != 0 (Off)
    std::uint64_t fs_at_entry; // sstatus.FS when the trap was taken

    [[nodiscard]] bool is_interrupt() const { return scause >> 63; }
    [[nodiscard]] std::uint64_t code() const { return scause & ~(1ull << 63); }
    std::uint64_t& ra() { return x[1]; }
    std::uint64_t& sp() { return x[2]; }
    std::uint64_t& fp() { return x[8]; }
};
static_assert(offsetof(TrapFrame, sepc) == 256);
static_assert(offsetof(TrapFrame, f) == 288);
static_assert(offsetof(TrapFrame, fcsr) == 544);
static_assert(sizeof(TrapFrame) == 560 && sizeof(TrapFrame) % 16 == 0);

using InterruptHandler = void (*)(TrapFrame&);

// Installs the handler for one interrupt kind and enables it in sie. The
// handler runs with interrupts disabled and must not block or allocate.
// The table is shared by all harts; the sie bit is this hart's only
// (secondaries enable software and timer interrupts when they start).
// With the smp library the software interrupt (IPI) belongs to smp: hook
// into it with smp::set_ipi_handler instead.
void set_interrupt_handler(Interrupt which, InterruptHandler handler);
// The handler installed for `which` (nullptr if none), e.g. to restore it.
InterruptHandler interrupt_handler(Interrupt which);

// Called after every handled interrupt, with interrupts still disabled and
// the hart already out of interrupt context (trap_depth decremented): the
// scheduler switches threads here when the interrupt made a more urgent
// thread runnable (preemption). The interrupted thread's trap frame stays
// on its own stack until it is switched back in.
// The hook is per hart: this installs it for the calling hart only, so a
// scheduler runs it only on the harts it schedules (a secondary started by
// the smp library has none until its scheduler installs one there).
// InterruptExitHook is declared in arch/hart.hpp.
void set_interrupt_exit_hook(InterruptExitHook hook);

// Exception causes (privileged spec, table "Supervisor cause register").
std::string_view exception_name(std::uint64_t code);

// Prints cause, sepc, stval, all registers and a frame-pointer backtrace.
void report_trap(const TrapFrame& frame);

// Lets a memory-management library say what a faulting address is (kernel
// text, a guard page...) in fault reports. Returns nullptr if it has
// nothing to say. Must not take locks that a faulting hart could hold.
using AddressDescriber = const char* (*)(std::uint64_t address);
void set_address_describer(AddressDescriber describer);

} // namespace tessera::arch
