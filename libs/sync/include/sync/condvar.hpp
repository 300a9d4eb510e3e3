#pragma once
// A condition variable for use with sync::Mutex.
//
// wait(m) releases m and blocks until signal()/broadcast(), then re-locks
// m before returning. No lost wake-up: the waiter reads a sequence counter
// before it unlocks, and checks it again under the scheduler's lock in the
// same step as it enqueues (sched::wait's still_wait), while signal bumps
// the counter before it looks for waiters; a signal issued after the
// unlock therefore either finds the waiter queued or makes it return at
// once. Like any condition variable it may return without a signal
// meant for this waiter (a signal that raced with its enqueue, or one that
// another waiter consumed first): callers re-check their predicate in a
// loop.
//
// signal() wakes the most urgent waiter (FIFO among equals); broadcast()
// wakes them all, which then take turns on the mutex (woken threads
// contend for it: a thundering herd that the mutex's direct handover
// serialises; moving waiters onto the mutex's queue instead, as Linux's
// FUTEX_CMP_REQUEUE does, is left for the futex work). Both may be called
// with or without the mutex held; with no waiter they cost two atomic
// operations and take no lock.
//
// Threads only (never in interrupt context). SMP-safe.
#include <atomic>
#include <base/result.hpp>
#include <sched/wait.hpp>
#include <sync/mutex.hpp>
#include <time/time.hpp>

namespace tessera::sync {

class ConditionVariable {
public:
    constexpr ConditionVariable() = default;
    ConditionVariable(const ConditionVariable&) = delete;
    ConditionVariable& operator=(const ConditionVariable&) = delete;

    // The caller must hold m; it holds m again when these return.
    void wait(Mutex& m) { (void)wait_until(m, time::kNever); }
    // TimedOut once `deadline` (absolute) has passed without a wake-up;
    // m is re-acquired in every case (that may take longer).
    [[nodiscard]] base::Result<void> wait_until(Mutex& m, time::Ticks deadline);

    void signal();
    void broadcast();

private:
    struct Waiting;
    static bool unchanged(void* waiting);

    std::atomic<std::uint32_t> m_sequence{0}; // bumped by every signal and broadcast
    std::atomic<std::uint32_t> m_waiting{0};  // threads inside wait_until past the check
    sched::WaitQueue m_waiters;
};

} // namespace tessera::sync
