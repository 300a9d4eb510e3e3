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
// SMP-safe. Each hart has its own run queue and idle thread (the smp
// library starts the other harts). A thread that becomes ready goes to the
// hart it last ran on if it would run there now, else to an idle hart it
// may use, else to the least loaded one; a thread preempted while another
// hart idles moves there; a hart about to idle steals a
// ready thread from another; a busy hart pulls work from one that has at
// least two more ready threads every CONFIG_SCHED_BALANCE_MS. Threads
// never leave the harts their affinity mask allows (pinned threads stay
// put) and deadline-class threads (sched-edf) never migrate. One IRQ-safe
// spinlock protects all scheduler state; lock order: outermost
// (base/lock_order.hpp). unpark() may be called from interrupt handlers;
// everything else only from threads.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <time/histogram.hpp>

namespace tessera::sched {

inline constexpr unsigned kPriorities = 32;
inline constexpr unsigned kIdlePriority = 0;
inline constexpr std::uint32_t kAnyHart = ~0u; // affinity: bit i allows hart index i

struct ThreadHandle {
    std::uint32_t index = ~0u;
    std::uint32_t generation = 0;
    bool operator==(const ThreadHandle&) const = default;
};

struct ThreadAttributes {
    std::string_view name = "thread";
    unsigned priority = CONFIG_SCHED_MAIN_PRIORITY; // 1..31
    std::size_t stack_size = CONFIG_SCHED_STACK_KIB * 1024;
    std::uint32_t affinity = kAnyHart; // must include an online hart
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

// Idle polls: what an idle hart checks before it waits for an interrupt
// (wfi). A poll returns true while it wants to be called again instead
// (it is watching for work that comes without an interrupt, such as a
// device ring whose interrupts it turned off while traffic lasts); the
// hart then runs whatever became ready and calls the polls again. Polls
// run in each hart's idle thread, with interrupts enabled between calls,
// so any thread made ready preempts them: they only use time no thread
// wants. A poll must not block and must be safe on several harts at
// once. At most kIdlePolls; NoMemory beyond, Busy if already added.
inline constexpr unsigned kIdlePolls = 4;
using IdlePoll = bool (*)();
base::Result<void> add_idle_poll(IdlePoll poll);
// An idle thread that loaded the poll just before may still be running
// it when this returns: the function must stay callable.
void remove_idle_poll(IdlePoll poll);
// Sleeps until the monotonic clock (plat::timer ticks) reaches `deadline`.
void sleep_until(std::uint64_t deadline_ticks);
void sleep_for_ns(std::uint64_t ns);

// Blocks until unpark(); an unpark that comes first is remembered (one
// token), so no wake-up is lost between a check and park(). Like any
// one-token park, it can return for an unpark meant for an earlier wait
// (e.g. a console read that found its byte anyway): callers re-check
// their condition in a loop.
void park();
base::Result<void> unpark(ThreadHandle thread); // also from interrupt context

ThreadHandle self();
std::string_view name(ThreadHandle thread);
base::Result<void> set_priority(ThreadHandle thread, unsigned priority);
// InvalidArgument if the mask allows no online hart; a running or ready
// thread moves at once if its hart is no longer allowed.
base::Result<void> set_affinity(ThreadHandle thread, std::uint32_t mask);
// Dense index of the hart the caller runs on (0 = boot hart).
unsigned current_hart();
unsigned online_harts();

struct HartStats {
    std::uint64_t switches;
    std::uint64_t preemptions;   // switches made as an interrupt returned
    std::uint64_t migrations;    // threads that arrived from another hart
    std::uint64_t steals;        // of those, taken by this hart when it would idle
    std::uint64_t handoffs;      // of those, preempted elsewhere while this hart idled
    std::uint64_t throttles;     // deadline-class budgets exhausted here
    std::uint64_t deadline_misses;
    std::uint64_t switch_ticks;  // summed cost of the switches (time ticks)
    std::uint64_t switch_ticks_max;
    std::uint64_t busy_ticks;    // time spent running threads other than idle
    std::uint64_t idle_ticks;
    std::uint32_t ready;         // threads waiting in its run queue now
};
HartStats hart_stats(unsigned hart);

struct Stats {
    std::uint64_t switches;
    std::uint64_t preemptions;
    std::uint64_t migrations;
    std::uint64_t steals;
    std::uint64_t handoffs;
    std::uint64_t throttles;
    std::uint64_t deadline_misses;
    std::uint64_t switch_ticks_max;
    std::uint64_t spawned;
    std::uint64_t exited;
    std::uint64_t live;          // threads that exist now, idle threads included
};
Stats stats();                   // sums over the harts
// How late threads ran after the moment they were due (a sleep's deadline,
// a deadline-class release), in ns, merged over the harts.
time::Histogram wakeup_latency();
void reset_wakeup_latency();

} // namespace tessera::sched
