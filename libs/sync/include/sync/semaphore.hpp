#pragma once
// A counting semaphore with direct handover: release() gives the unit to
// the most urgent waiter (FIFO among equals) when there is one, instead of
// raising the count for whoever runs first. The fast paths (a unit is
// free; nobody waits) are one compare-and-swap. Threads only; release()
// also from interrupt handlers. SMP-safe.
#include <atomic>
#include <base/result.hpp>
#include <sched/wait.hpp>
#include <time/time.hpp>

namespace tessera::sync {

class Semaphore {
public:
    constexpr explicit Semaphore(unsigned initial = 0) : m_count(initial) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    // TimedOut if `deadline` (absolute) passes before a unit is ours.
    [[nodiscard]] base::Result<void> acquire(time::Ticks deadline = time::kNever);
    [[nodiscard]] bool try_acquire();
    void release();
    unsigned count() const { return m_count.load(std::memory_order_relaxed); }

private:
    static bool none_free(void* self);
    static void put_back(void* self);

    std::atomic<unsigned> m_count;
    sched::WaitQueue m_waiters;
};

} // namespace tessera::sync
