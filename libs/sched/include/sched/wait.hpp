#pragma once
// Wait queues: the blocking primitive under the sync library (mutexes,
// semaphores, condition variables), and priority inheritance.
//
// A WaitQueue holds blocked threads, most urgent first (effective priority;
// deadline-class threads count as the highest fixed priority), FIFO among
// equals, so a wake-up always goes to the most urgent waiter and then to
// the one that waited longest. Every operation takes the scheduler's lock,
// so checking a condition and blocking are one step (wait's `still_wait`):
// no wake-up is lost between them. Timeouts are absolute deadlines on the
// monotonic clock.
//
// Priority inheritance (pi_lock_slow / pi_unlock_slow): a queue can have an
// owner, the thread holding the lock the waiters want. The owner runs at
// least at the effective priority of its most urgent waiter, transitively:
// if the owner is itself blocked on another owned queue, that queue's owner
// is boosted too (A waits on B waits on C: C runs at A's priority). When
// the owner releases, the lock passes directly to the most urgent waiter
// and the old owner drops back to what its remaining locks justify.
//
// SMP-safe (the scheduler's lock). Not for interrupt context, except
// wake_one/wake_all.
#include <atomic>
#include <arch/hart.hpp>
#include <base/list.hpp>
#include <base/result.hpp>
#include <cstdint>
#include <sched/sched.hpp>
#include <time/time.hpp>

namespace tessera::sched {

struct WaitNode {
    base::ListNode node;
};

// Members are the scheduler's; zero-initialised storage is an empty queue.
struct WaitQueue {
    base::IntrusiveList<WaitNode, &WaitNode::node> waiters; // most urgent first
    void* owner = nullptr;      // priority-inheritance owner (a thread), if any
    base::ListNode owned_node;  // in that owner's list of queues it owns

    bool has_waiters() { return !waiters.is_empty(); }
};

// Blocks the calling thread on `q` until woken, unless still_wait(arg),
// evaluated under the scheduler's lock, says false (then Ok at once).
// TimedOut when `deadline` passes first (time::kNever: no timeout).
base::Result<void> wait(WaitQueue& q, time::Ticks deadline, bool (*still_wait)(void*), void* arg);
// Wakes the most urgent waiter; false if there was none.
bool wake_one(WaitQueue& q);
// Wakes every waiter; returns how many.
unsigned wake_all(WaitQueue& q);
// Wakes the most urgent waiter, or, if there is none, calls otherwise(arg)
// — both under the lock that wait()'s still_wait runs under, so a
// resource can be handed to a waiter or put back with no window between.
// True if a waiter was woken.
bool wake_one_or(WaitQueue& q, void (*otherwise)(void*), void* arg);
// Wakes the most urgent waiter if there is one, then calls then(arg, woke)
// under the same lock, where q.has_waiters() tells whether others remain
// (how a semaphore clears its "waiters present" flag as the last waiter
// leaves). True if a waiter was woken.
bool wake_one_and(WaitQueue& q, void (*then)(void*, bool woke), void* arg);

// The calling thread, as a non-zero word with its lowest bit clear (the
// lock-word protocol below keeps a flag there). One load from tp.
inline std::uintptr_t current_token() { return reinterpret_cast<std::uintptr_t>(arch::this_hart().thread); }

// The priority-inheritance lock word: 0 when free, else the owner's token,
// with kPiWaiters set while threads wait (so that the owner's release
// takes the slow path). The fast paths are a compare-and-swap of 0 with
// the caller's token and back; the slow paths:
inline constexpr std::uintptr_t kPiWaiters = 1;
// Called after a failed fast acquire. Ok once the caller owns the word
// (possibly handed over by the releasing owner); TimedOut at the deadline;
// InvalidArgument if the caller already owns it (no recursion).
base::Result<void> pi_lock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q, time::Ticks deadline);
// Called by the owner when the fast release failed (waiters): hands the
// word to the most urgent waiter, or frees it. InvalidArgument if the
// caller does not own it.
base::Result<void> pi_unlock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q);

// Effective and base priority of a thread (for tests and statistics).
struct Priorities {
    unsigned base;
    unsigned effective;
};
base::Result<Priorities> priorities(ThreadHandle thread);

} // namespace tessera::sched
