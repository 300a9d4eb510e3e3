// Invariant: threads wait only while the count is 0, and a release that
// finds a waiter hands its unit over without touching the count, so the
// count can only rise when nobody waits.
#include <sync/semaphore.hpp>

namespace tessera::sync {

bool Semaphore::try_acquire() {
    unsigned c = m_count.load(std::memory_order_relaxed);
    while (c > 0)
        if (m_count.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
            return true;
    return false;
}

// wait()'s check, under the scheduler's lock: take a unit if one is free.
bool Semaphore::none_free(void* self) { return !static_cast<Semaphore*>(self)->try_acquire(); }

void Semaphore::put_back(void* self) { static_cast<Semaphore*>(self)->m_count.fetch_add(1, std::memory_order_release); }

base::Result<void> Semaphore::acquire(time::Ticks deadline) {
    if (try_acquire()) return {};
    // Ok either because a unit was free at the check, or because a
    // release handed one over and woke us.
    return sched::wait(m_waiters, deadline, none_free, this);
}

void Semaphore::release() {
    // Fast path: units are free, so nobody waits; raise the count (retry
    // if it changed, it may have dropped to 0 with a waiter since).
    unsigned c = m_count.load(std::memory_order_relaxed);
    while (c > 0)
        if (m_count.compare_exchange_weak(c, c + 1, std::memory_order_release, std::memory_order_relaxed)) return;
    (void)sched::wake_one_or(m_waiters, put_back, this);
}

} // namespace tessera::sync
