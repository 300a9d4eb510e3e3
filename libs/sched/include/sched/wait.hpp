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
// Owner death: a thread that exits holding PI locks hands each one with
// waiters to its most urgent waiter (kPiOwnerDied below), and frees the
// robust ones nobody waits for with kPiOwnerDied set.
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
// Invariant: a queue is recorded as owned only while it has waiters (the
// record serves inheritance and the hand-over at the owner's exit, both
// about waiters), so an owner never keeps a link into a lock that was
// released by the fast path and may be gone.
struct WaitQueue {
    base::IntrusiveList<WaitNode, &WaitNode::node> waiters; // most urgent first
    void* owner = nullptr;      // priority-inheritance owner (a thread), if any
    std::atomic<std::uintptr_t>* word = nullptr; // the owned lock's word (hand-over at the owner's exit)
    base::ListNode owned_node;  // in that owner's list of queues it owns

    bool has_waiters() { return !waiters.is_empty(); }
};

// Blocks the calling thread on `q` until woken, unless still_wait(arg),
// evaluated under the scheduler's lock, says false (then Ok at once).
// TimedOut when `deadline` passes first (time::kNever: no timeout).
// If `ended_on` is given, it receives the queue the thread was on when its
// wait ended (`q`, or where wake_and_requeue moved it).
base::Result<void> wait(WaitQueue& q, time::Ticks deadline, bool (*still_wait)(void*), void* arg,
                        WaitQueue** ended_on = nullptr);
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
// In one step under the scheduler's lock: unless proceed(arg) says false
// (then Again, nothing done), wakes up to n_wake of `from`'s most urgent
// waiters, then moves up to n_move of the rest, most urgent first, to `to`
// without waking them (a condition variable's broadcast: the others queue
// on the mutex instead of stampeding). A moved waiter keeps its deadline
// and ranks in `to` by its urgency, FIFO behind equals already there.
// `to` must not be an owned (PI) queue. proceed may be null.
struct Requeued {
    unsigned woken;
    unsigned moved;
};
base::Result<Requeued> wake_and_requeue(WaitQueue& from, unsigned n_wake, WaitQueue& to, unsigned n_move,
                                        bool (*proceed)(void*), void* arg);

// The calling thread, as a non-zero word with its two lowest bits clear
// (the lock-word protocol below keeps its flags there). One load from tp.
inline std::uintptr_t current_token() { return reinterpret_cast<std::uintptr_t>(arch::this_thread()); }

// The priority-inheritance lock word: 0 when free, else the owner's token,
// with kPiWaiters set while threads wait (so that the owner's release
// takes the slow path). kPiOwnerDied marks a lock whose owner exited
// holding it: set in a free word, or in the word handed to the most urgent
// waiter at the exit; the lock call that receives such a word clears the
// flag and returns OwnerDied (it owns the lock). The word is pointer-sized
// because the token is the thread's address: one load from tp, no table
// lookup, and the flags fit in its alignment bits. The fast paths are a
// compare-and-swap of 0 with the caller's token and back; the slow paths:
inline constexpr std::uintptr_t kPiWaiters = 1;
// SCHED_PRIORITY_INHERITANCE: off, owners are still recorded (handover,
// and the hand-over at an owner's exit, work as described) but nothing is
// inherited: no boost, no chain walk (the code is not built).
#ifdef CONFIG_SCHED_PRIORITY_INHERITANCE
inline constexpr bool kPriorityInheritance = true;
#else
inline constexpr bool kPriorityInheritance = false;
#endif
inline constexpr std::uintptr_t kPiOwnerDied = 2;
inline constexpr std::uintptr_t kPiFlags = kPiWaiters | kPiOwnerDied;
// Called after a failed fast acquire. Ok once the caller owns the word
// (possibly handed over by the releasing owner); OwnerDied if it owns it
// now but the previous owner exited holding it (also when the word names
// a thread that has exited and whose slot is not yet reused: a lock taken
// by the fast path and never registered as robust); TimedOut at the
// deadline; InvalidArgument if the caller already owns it (no recursion).
base::Result<void> pi_lock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q, time::Ticks deadline);
// Called by the owner when the fast release failed (waiters): hands the
// word to the most urgent waiter, or frees it. PermissionDenied if the
// caller does not own it.
base::Result<void> pi_unlock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q);

// Robust PI locks. A thread that exits holding PI locks hands every one
// that has waiters to its most urgent waiter, with kPiOwnerDied. A lock
// taken by the fast path with nobody waiting is invisible to the
// scheduler; to have it freed with kPiOwnerDied at exit too, its owner
// registers the word while it holds it (at most CONFIG_SCHED_ROBUST_LOCKS
// at once: Overflow beyond). The calling thread's own list only; no lock
// (only the thread itself and its exit path touch it). A registered word
// must stay valid until it is removed.
base::Result<void> robust_add(std::atomic<std::uintptr_t>& word);
void robust_remove(std::atomic<std::uintptr_t>& word); // one registration of it, if any

// Effective and base priority of a thread (for tests and statistics).
struct Priorities {
    unsigned base;
    unsigned effective;
};
base::Result<Priorities> priorities(ThreadHandle thread);

} // namespace tessera::sched
