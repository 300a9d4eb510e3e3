#pragma once
// A counting semaphore with direct handover: release() gives the unit to
// the most urgent waiter (FIFO among equals) when there is one, instead of
// raising the count for whoever runs first. The count word carries a
// "waiters present" flag, so the fast paths (a unit is free; nobody waits)
// are one compare-and-swap each, release at count 0 included. Threads
// only; release() also from interrupt handlers. SMP-safe.
#include <atomic>
#include <base/result.hpp>
#include <sched/wait.hpp>
#include <time/time.hpp>

namespace tessera::sync {

class Semaphore {
public:
    constexpr explicit Semaphore(unsigned initial = 0) : m_word(initial) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    // TimedOut if `deadline` (absolute) passes before a unit is ours.
    [[nodiscard]] base::Result<void> acquire(time::Ticks deadline = time::kNever) {
        if (try_acquire()) return {};
        return acquire_slow(deadline);
    }
    [[nodiscard]] bool try_acquire() {
        unsigned c = m_word.load(std::memory_order_relaxed);
        while (c > 0 && c != kWaiters) // units free (the flag is never set with units)
            if (m_word.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    }
    void release() {
        // Fast path: nobody waits (flag clear), so raise the count.
        unsigned c = m_word.load(std::memory_order_relaxed);
        while (!(c & kWaiters))
            if (m_word.compare_exchange_weak(c, c + 1, std::memory_order_release, std::memory_order_relaxed))
                return;
        release_slow();
    }
    unsigned count() const { return m_word.load(std::memory_order_relaxed) & ~kWaiters; }
    // The flag is set while threads may wait (tests check it is cleared).
    bool waiters_flagged() const { return m_word.load(std::memory_order_relaxed) & kWaiters; }

private:
    // m_word: the free units, plus kWaiters. The flag is only ever set
    // with the count at 0, only set or cleared under the scheduler's lock,
    // and set before a waiter blocks (in the same step), so a release that
    // finds it clear may raise the count with one CAS: nobody waits.
    static constexpr unsigned kWaiters = 1u << 31;

    base::Result<void> acquire_slow(time::Ticks deadline);
    void release_slow();
    static bool none_free(void* self);
    static void after_wake(void* self, bool woke);
    static bool clear_if_drained(void* self);

    std::atomic<unsigned> m_word;
    sched::WaitQueue m_waiters;
};

} // namespace tessera::sync
