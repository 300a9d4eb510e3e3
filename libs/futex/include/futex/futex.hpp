#pragma once
// Futexes: blocking keyed by the address of a memory word, so that a lock
// or a condition can live in a plain atomic word whose uncontended paths
// never enter the scheduler.
//
// - wait(word, expected): blocks only if the word still holds `expected`,
//   checked under the scheduler's lock in the same step as the block (a
//   wake that follows a change of the word cannot be lost); Again if it
//   changed.
// - wake(word, n): wakes up to n waiters, most urgent first, FIFO among
//   equals.
// - cmp_requeue: wakes some and moves others to another word's queue
//   without waking them (condition-variable broadcast without a stampede).
// - lock_pi/trylock_pi/unlock_pi: a priority-inheritance lock in a
//   pointer-sized word (sched/wait.hpp's protocol: 0 when free, else the
//   owner's token | kWaiters | kOwnerDied). Uncontended lock and unlock are
//   one compare-and-swap in the caller; contended waiters boost the owner
//   along chains (through sync::Mutex too) and unlock hands over to the
//   most urgent waiter. Robust: held PI futexes are registered with the
//   scheduler, so an owner's exit hands each to its most urgent waiter, or
//   frees it, with kOwnerDied: the next owner's lock call returns
//   OwnerDied, owning the lock.
//
// Why the PI word is pointer-sized while wait/wake words are 32-bit: the
// PI protocol is the scheduler's one implementation (shared with
// sync::Mutex), whose token is the thread's address (one load from tp, no
// id-to-thread lookup, flags in the alignment bits). A 32-bit thread id
// would need a lookup table and a second protocol or a slower Mutex.
//
// Keys are word addresses: a word must not be destroyed while threads wait
// on it or hold it. A key is either a wait/wake key or a PI key while in
// use; mixing the two on one address is refused (InvalidArgument).
//
// SMP-safe. Threads only (wait and lock_pi block; none is meant for
// interrupt handlers: use a semaphore there). Lock order: a bucket's lock
// is taken only with no other lock held and is never held across a
// scheduler call (base/lock_order.hpp).
#include <atomic>
#include <base/result.hpp>
#include <cstdint>
#include <sched/wait.hpp>
#include <time/time.hpp>

namespace tessera::futex {

using Word = std::atomic<std::uint32_t>;
using PiWord = std::atomic<std::uintptr_t>;

inline constexpr std::uintptr_t kWaiters = sched::kPiWaiters;
inline constexpr std::uintptr_t kOwnerDied = sched::kPiOwnerDied;

// Blocks while `word` holds `expected`, until woken. Again if it did not
// hold it at the moment of blocking; TimedOut at `deadline` (absolute);
// InvalidArgument for a misaligned word or one in use as a PI futex;
// NoMemory cannot happen (the key pool covers two per thread).
[[nodiscard]] base::Result<void> wait(Word& word, std::uint32_t expected, time::Ticks deadline = time::kNever);
// Wakes up to n (≥ 1) waiters on `word`; returns how many.
[[nodiscard]] base::Result<unsigned> wake(Word& word, unsigned n);
// If `word` holds `expected` (checked under the scheduler's lock, in the
// same step as the moves), wakes up to n_wake waiters and moves up to
// n_requeue of the rest to `target`'s queue (a later wake(target) wakes
// them; their deadlines still apply). Returns woken + moved. Again if the
// value differs; InvalidArgument if both counts are 0 or word == target.
[[nodiscard]] base::Result<unsigned> cmp_requeue(Word& word, std::uint32_t expected, unsigned n_wake, Word& target,
                                                 unsigned n_requeue);

namespace detail {
// The kernel sides of lock_pi and unlock_pi (futex.cpp), after the fast
// compare-and-swap failed.
base::Result<void> lock_pi_contended(PiWord& word, time::Ticks deadline);
base::Result<void> unlock_pi_contended(PiWord& word);
inline bool misaligned(const PiWord& word) { return reinterpret_cast<std::uintptr_t>(&word) % alignof(PiWord) != 0; }
} // namespace detail

// Takes the PI futex. Ok, or OwnerDied (ours; the previous owner exited
// holding it); TimedOut; InvalidArgument if the caller holds it already or
// the word is misaligned; Overflow if the caller already holds
// CONFIG_SCHED_ROBUST_LOCKS registered locks. Inline fast path: the
// robust registration and one CAS.
[[nodiscard]] inline base::Result<void> lock_pi(PiWord& word, time::Ticks deadline = time::kNever) {
    if (detail::misaligned(word)) return base::Error::InvalidArgument; // an AMO there would trap
    // Registered before it is ours: no window in which we hold it unregistered.
    if (!sched::robust_add(word).ok()) return base::Error::Overflow;
    std::uintptr_t expected = 0;
    if (word.compare_exchange_strong(expected, sched::current_token(), std::memory_order_acquire,
                                     std::memory_order_relaxed))
        return {};
    return detail::lock_pi_contended(word, deadline);
}
// Never blocks: Ok, OwnerDied (taken from a dead owner), WouldBlock if held.
[[nodiscard]] base::Result<void> trylock_pi(PiWord& word);
// PermissionDenied if the caller does not hold it. Inline fast path: one
// CAS and the robust deregistration.
[[nodiscard]] inline base::Result<void> unlock_pi(PiWord& word) {
    if (detail::misaligned(word)) return base::Error::InvalidArgument;
    std::uintptr_t expected = sched::current_token();
    if (!word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
        return detail::unlock_pi_contended(word);
    sched::robust_remove(word);
    return {};
}

// Per-key queue objects in use (a debug count: 0 when nobody waits and no
// futex call is in progress).
unsigned queues_in_use();

} // namespace tessera::futex
