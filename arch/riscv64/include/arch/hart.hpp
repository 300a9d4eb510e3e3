#pragma once
// Per-hart data, reached in O(1) through the tp register, and the entry
// protocol for secondary harts.
#include <arch/cpu.hpp>
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>

namespace tessera::arch {

using InterruptExitHook = void (*)();

struct alignas(64) Hart {
    std::uint64_t hart_id = 0;   // as numbered by the platform (mhartid)
    std::uint32_t index = 0;     // dense 0..N-1 index for per-hart arrays
    std::uint32_t trap_depth = 0;
    bool reporting = false;      // a fault report or panic is being printed
    // Lazy interrupt masking (arch/cpu.hpp): irq_masked is the mask the
    // kernel sees; sie_off says sstatus.SIE is really clear on this hart
    // (at start, in a trap, or after the trap vector held back an interrupt
    // that came while masked), so unmasking must set it. Both are written
    // only by this hart: by arch/cpu.hpp in single instructions through tp,
    // by the trap vector and tessera_trap with SIE clear.
    std::uint8_t irq_masked = 1;
    std::uint8_t sie_off = 1;
    std::uint64_t interrupts = 0;
    // Interrupts that arrived while masked and were held back (the trap
    // vector counts them).
    std::uint64_t interrupts_held = 0;
    // Lowest usable address of the stack this hart runs on (0: unknown).
    // The trap vector refuses to push a frame below it (trap_entry.S).
    // The scheduler updates it on every switch.
    std::uint64_t stack_limit = 0;
    std::uint64_t emergency_stack_top = 0; // for reporting stack overflows
    const char* thread_name = "boot";      // named in fault reports
    // Run after every handled interrupt on this hart (arch/trap.hpp
    // set_interrupt_exit_hook). Per hart, because a scheduler preempts only
    // on the harts it runs on.
    InterruptExitHook interrupt_exit = nullptr;
    // The scheduler's per-hart state (its run queue) and the thread running
    // here, one load away from tp.
    void* scheduler = nullptr;
    void* thread = nullptr;
#ifdef CONFIG_LIB_LOCKDEP
    // The locks the running context holds (lockdep::HeldLocks); null
    // until the scheduler runs threads here.
    void* lockdep = nullptr;
#endif
};
static_assert(offsetof(Hart, irq_masked) == detail::kIrqMaskedOffset && offsetof(Hart, sie_off) == detail::kSieOffOffset &&
                  offsetof(Hart, interrupts_held) == 32 && offsetof(Hart, stack_limit) == 40 &&
                  offsetof(Hart, emergency_stack_top) == 48,
              "trap_entry.S and arch/cpu.hpp use these offsets");

inline constexpr unsigned kMaxHarts = 8;

// This hart's slot. With interrupts on, the caller may be preempted and
// resume on another hart between this and any use of the result: read
// fields that belong to the running thread with this_hart_field() instead.
inline Hart& this_hart() {
    Hart* h;
    asm volatile("mv %0, tp" : "=r"(h));
    return *h;
}

// One field of this hart's slot, read in a single instruction through tp.
// A thread is only preempted between instructions, so the value is the
// hart's it runs on at that instruction; the two steps of
// this_hart().field (tp, then a load through it) could straddle a
// preemption that moves the thread, and read another hart's field (its
// running thread, say). Offset is offsetof(Hart, field).
template <typename T, std::size_t Offset>
inline T this_hart_field() {
    static_assert(sizeof(T) == 8 || sizeof(T) == 4);
    T value;
    if constexpr (sizeof(T) == 8)
        asm volatile("ld %0, %1(tp)" : "=r"(value) : "i"(Offset) : "memory");
    else
        asm volatile("lw %0, %1(tp)" : "=r"(value) : "i"(Offset) : "memory");
    return value;
}

// The thread running here (the scheduler's, as void*), migration-safe.
inline void* this_thread() { return this_hart_field<void*, offsetof(Hart, thread)>(); }

// True while this hart runs a trap handler (interrupt or exception):
// allocators and sleeping primitives refuse to run there. One load: a
// thread that migrated between tp and the load would read the depth of
// another hart, perhaps one in a handler.
inline bool in_interrupt() { return this_hart_field<std::uint32_t, offsetof(Hart, trap_depth)>() != 0; }

// Points tp at the slot for `index`, records the hardware id and the
// lowest usable address of the stack the hart runs on, and adds the hart to
// running_hart_mask(). Called once per hart, first thing: by tessera_boot
// for the boot hart (index 0), by the secondary entry for the others.
void init_hart(unsigned index, std::uint64_t hart_id, std::uint64_t stack_limit);

// The harts that run kernel code (init_hart has run on them), as an SBI
// hart mask with base 0: bit n is hart id n. Remote TLB shootdowns go to
// these harts. Hart ids of 64 and above are never added (smp refuses to
// start such harts), so the mask is complete for every hart that runs.
std::uint64_t running_hart_mask();

// Secondary harts: how one starts (SBI HSM hart_start, docs/arch-riscv64.md).
// The hart enters _start_secondary (entry.S) with a0 = its hart id and
// a1 = the address of this block, which must stay valid until `entry` runs.
// The entry code takes the block from a table indexed by hart id, written
// before hart_start, not from a1: a firmware can let a hart go with stale
// arguments (OpenSBI 1.1's hart_start races the hart's warm boot), and a
// hart that arrives at the kernel's first address (_start) after the boot
// hart goes the same way. There it masks interrupts, takes sp from the
// block, turns the FPU on, points stvec at the trap vector and calls C++,
// which runs
// init_hart(index, hart_id, stack_limit), loads `satp` (if not 0) with the
// TLB flushed, disarms the hart's timer, enables the software and timer
// interrupts in sie (external interrupts stay with the boot hart) and calls
// entry(index) with sstatus.SIE still clear.
struct SecondaryStart {
    std::uint64_t stack_top;    // initial sp, 16-byte aligned
    std::uint64_t stack_limit;  // lowest usable stack address (Hart::stack_limit)
    std::uint64_t satp;         // the kernel's satp, or 0 when translation is off
    unsigned index;             // dense index, 1..kMaxHarts-1
    void (*entry)(unsigned index); // must not return
};
static_assert(offsetof(SecondaryStart, stack_top) == 0, "entry.S reads stack_top at offset 0");

// How many harts came in at the kernel's first address after the boot hart
// (and were sent on to the secondary entry): each is a firmware that let a
// hart go with stale arguments, or a test that asked for it (StartAt).
unsigned late_kernel_entries();

// Where hart_start sends the hart. KernelEntry is for tests only: the
// kernel's first address with a null argument, as a firmware that lost
// the race above does.
enum class StartAt : bool { SecondaryEntry, KernelEntry };

// Asks the firmware to start `hart_id` as described by `start`. Errors as
// sbi::hart_start (Busy: already started; InvalidArgument: no such hart).
base::Result<void> start_secondary(std::uint64_t hart_id, const SecondaryStart& start,
                                   StartAt at = StartAt::SecondaryEntry);

} // namespace tessera::arch
