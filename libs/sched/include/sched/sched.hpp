#pragma once
// Kernel threads and the fixed-priority scheduler.
//
// Priorities 1..31 (higher is more urgent; 0 is the idle thread's). The
// most urgent ready thread runs; threads of equal priority share the hart
// in round robin, CONFIG_SCHED_QUANTUM_US each. Picking is O(1): a bitmap
// of non-empty priority levels. Preemption is mandatory: when an interrupt
// makes a more urgent thread ready, the switch happens as the interrupt
// returns. Each thread gets its own stack (with an unmapped guard page
// below it when the mmu library is enabled).
//
// Handles carry a generation: once a thread is gone and its slot reused, an
// old handle is rejected (NotFound), never mistaken for the new thread.
//
// SMP: one hart for now (the smp library will add per-hart run queues).
// One IRQ-safe spinlock protects all scheduler state; lock order: outermost
// (base/lock_order.hpp). unpark() may be called from interrupt handlers;
// everything else only from threads.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::sched {

inline constexpr unsigned kPriorities = 32;
inline constexpr unsigned kIdlePriority = 0;

struct ThreadHandle {
    std::uint32_t index = ~0u;
    std::uint32_t generation = 0;
    bool operator==(const ThreadHandle&) const = default;
};

struct ThreadAttributes {
    std::string_view name = "thread";
    unsigned priority = CONFIG_SCHED_MAIN_PRIORITY; // 1..31
    std::size_t stack_size = CONFIG_SCHED_STACK_KIB * 1024;
};

// Starts entry(arg) in a new thread. InvalidArgument for a bad priority or
// stack size, NoMemory when the table or memory is full.
base::Result<ThreadHandle> spawn(void (*entry)(void*), void* arg, const ThreadAttributes& attributes = {});
// Waits for the thread to exit and returns its status; the slot is then
// free. InvalidArgument for self or a detached thread, Busy if someone else
// already joins it, NotFound for a stale handle.
base::Result<int> join(ThreadHandle thread);
// The thread cleans up after itself when it exits; it can no longer be joined.
base::Result<void> detach(ThreadHandle thread);
// Ends the calling thread (returning from the entry function does the same, status 0).
[[noreturn]] void exit(int status);

void yield();
// Sleeps until the monotonic clock (plat::timer ticks) reaches `deadline`.
void sleep_until(std::uint64_t deadline_ticks);
void sleep_for_ns(std::uint64_t ns);

// Blocks until unpark(); an unpark that comes first is remembered (one
// token), so no wake-up is lost between a check and park().
void park();
base::Result<void> unpark(ThreadHandle thread); // also from interrupt context

ThreadHandle self();
std::string_view name(ThreadHandle thread);
base::Result<void> set_priority(ThreadHandle thread, unsigned priority);

struct Stats {
    std::uint64_t switches;
    std::uint64_t preemptions;  // switches made as an interrupt returned
    std::uint64_t spawned;
    std::uint64_t exited;
    std::uint64_t live;         // threads that exist now, idle included
};
Stats stats();

} // namespace tessera::sched
