// Invariant: threads wait only while the count is 0, and a release that
// finds a waiter hands its unit over without touching the count, so the
// count can only rise when nobody waits. The kWaiters flag in the count
// word makes "nobody waits" visible to the lock-free release: it is set
// (under the scheduler's lock, in wait()'s check) before a thread blocks,
// and cleared under the same lock once the queue is empty again.
#include <sync/semaphore.hpp>

namespace tessera::sync {

// wait()'s check, under the scheduler's lock: take a unit if one is free,
// else flag the waiters and block (one step with the check).
bool Semaphore::none_free(void* self) {
    auto& s = *static_cast<Semaphore*>(self);
    unsigned c = s.m_word.load(std::memory_order_relaxed);
    for (;;) {
        if (c == kWaiters) return true;
        if (c == 0) {
            if (s.m_word.compare_exchange_weak(c, kWaiters, std::memory_order_relaxed, std::memory_order_relaxed))
                return true;
            continue;
        }
        if (s.m_word.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
            return false;
    }
}

// Under the scheduler's lock, after release's wake attempt. Nobody waited:
// put the unit back and drop the (stale) flag. A waiter got the unit: drop
// the flag if it was the last, so the next release is a CAS again.
void Semaphore::after_wake(void* self, bool woke) {
    auto& s = *static_cast<Semaphore*>(self);
    if (woke) {
        (void)clear_if_drained(self);
        return;
    }
    unsigned c = s.m_word.load(std::memory_order_relaxed);
    while (!s.m_word.compare_exchange_weak(c, (c & ~kWaiters) + 1, std::memory_order_release,
                                           std::memory_order_relaxed)) {}
}

// Under the scheduler's lock: nobody but a lock holder changes a flagged
// word (the lock-free paths need it clear), so this cannot race.
bool Semaphore::clear_if_drained(void* self) {
    auto& s = *static_cast<Semaphore*>(self);
    unsigned flagged = kWaiters;
    if (!s.m_waiters.has_waiters())
        (void)s.m_word.compare_exchange_strong(flagged, 0, std::memory_order_relaxed, std::memory_order_relaxed);
    return false; // as wait()'s check: never block
}

base::Result<void> Semaphore::acquire_slow(time::Ticks deadline) {
    // Ok either because a unit was free at the check, or because a
    // release handed one over and woke us.
    auto r = sched::wait(m_waiters, deadline, none_free, this);
    if (!r.ok()) {
        // Timed out: if we were the last waiter, drop the flag now (a
        // check under the scheduler's lock that never blocks).
        (void)sched::wait(m_waiters, time::kNever, clear_if_drained, this);
    }
    return r;
}

// The flag is set: hand the unit to a waiter, or put it back if the
// waiters have all gone (timed out, or handed units) since.
void Semaphore::release_slow() {
    (void)sched::wake_one_and(m_waiters, after_wake, this);
}

} // namespace tessera::sync
