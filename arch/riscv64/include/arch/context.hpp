#pragma once
// Kernel thread context: what a voluntary switch must keep, i.e. the
// callee-saved registers of the lp64d ABI (ra, sp, s0-s11, fs0-fs11) and fcsr.
// Everything else is either caller-saved (the compiler already saved what
// it needs before calling switch_context) or lives in a trap frame on the
// thread's own stack when the thread was preempted.
#include <cstddef>
#include <cstdint>

namespace tessera::arch {

struct Context {
    std::uint64_t ra;
    std::uint64_t sp;
    std::uint64_t s[12];
    std::uint64_t fs[12];
    std::uint64_t fcsr; // rounding mode and flags are per thread too
};
static_assert(sizeof(Context) == 216 && offsetof(Context, fs) == 112 && offsetof(Context, fcsr) == 208,
              "switch.S uses this layout");

// Prepares `context` so that switching to it calls entry(arg) on a fresh
// stack whose highest address is `stack_top`. entry starts with interrupts
// disabled (the switch happened with them off) and turns them on when it
// may; it must not return (the scheduler's start wrapper exits the thread).
void init_context(Context& context, std::uintptr_t stack_top, void (*entry)(void*), void* arg);

} // namespace tessera::arch

// Saves the current context into *from and resumes *to. Interrupts must be
// disabled by the caller; each side restores its own interrupt state.
extern "C" void arch_switch_context(tessera::arch::Context* from, const tessera::arch::Context* to);
