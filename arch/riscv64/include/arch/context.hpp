#pragma once
// Kernel thread context: what a voluntary switch must keep, i.e. the
// callee-saved registers of the lp64d ABI (ra, sp, s0-s11, fs0-fs11) and fcsr.
// Everything else is either caller-saved (the compiler already saved what
// it needs before calling switch_context) or lives in a trap frame on the
// thread's own stack when the thread was preempted.
//
// The FP part is saved lazily (switch.S): only when sstatus.FS says the
// thread wrote FP state since it was switched in (Dirty), and restored only
// if it was ever saved (fp_saved). After a switch FS is Clean, meaning "the
// registers hold what this Context holds", so a thread that never writes
// an FP register never has its FP registers saved or loaded. FS is per hart
// and the Context per thread; since Dirty state is always saved on the way
// out, a thread's FP state is in its Context whenever it is off-CPU, and it
// may resume on any hart.
#include <cstddef>
#include <cstdint>

namespace tessera::arch {

struct Context {
    std::uint64_t ra;
    std::uint64_t sp;
    std::uint64_t s[12];
    std::uint64_t fs[12];    // valid only if fp_saved
    std::uint64_t fcsr;      // rounding mode and flags are per thread too; valid only if fp_saved
    std::uint64_t fp_saved;  // 0 until the first switch-out that found FS Dirty
};
static_assert(sizeof(Context) == 224 && offsetof(Context, fs) == 112 && offsetof(Context, fcsr) == 208 &&
                  offsetof(Context, fp_saved) == 216,
              "switch.S uses this layout");

// Prepares `context` so that switching to it calls entry(arg) on a fresh
// stack whose highest address is `stack_top`. entry starts with interrupts
// disabled (the switch happened with them off) and turns them on when it
// may; it must not return (the scheduler's start wrapper exits the thread).
// The new thread has no FP state yet (fp_saved = 0): it starts with
// fcsr = 0, FS not Dirty and whatever the FP registers hold, and gets a
// saved copy at its first switch-out after it writes any.
void init_context(Context& context, std::uintptr_t stack_top, void (*entry)(void*), void* arg);

} // namespace tessera::arch

// Saves the current context into *from and resumes *to. Interrupts must be
// disabled by the caller; each side restores its own interrupt state.
// Returns with sstatus.FS Clean if it saved, loaded or reset FP state, else
// as it was (Clean, or Initial before the first switch of a hart).
extern "C" void arch_switch_context(tessera::arch::Context* from, const tessera::arch::Context* to);
