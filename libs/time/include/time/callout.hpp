#pragma once
// Callouts: a function run from the timer interrupt at a deadline, once or
// periodically.
//
// The function runs in interrupt context with interrupts off, on the hart
// that started (or last re-armed) the callout: it must be short and must
// not block or allocate. A periodic callout fires at first, first+period,
// first+2·period, ... (no drift); it is re-armed when the call returns,
// and periods that have passed by then (a callback slower than its period,
// or a hart that ran late) are skipped and counted, never run back to back.
//
// Stopping is safe against a callback running concurrently on another
// hart: once cancel() returns, no firing that had not begun will run and a
// periodic callout is not re-armed; cancel_and_wait() also waits for a
// callback that had begun. Storage must outlive any pending or running
// firing (cancel_and_wait() before destroying it).
//
// SMP-safe (one spinlock per callout, inside the time locks' users and
// outside the time queues in base/lock_order.hpp).
#include <arch/spinlock.hpp>
#include <atomic>
#include <time/time.hpp>

namespace tessera::time {

class Callout {
public:
    using Function = void (*)(void* arg);

    constexpr Callout(Function function, void* arg) : m_function(function), m_arg(arg) {
        m_event.callback = fire;
    }
    Callout(const Callout&) = delete;
    Callout& operator=(const Callout&) = delete;

    // Runs once at `deadline` (absolute ticks). Restarting a pending callout
    // moves it. NoMemory if this hart's event queue is full.
    base::Result<void> start_at(Ticks deadline);
    // Runs at first, first + period, ... InvalidArgument for a zero period.
    base::Result<void> start_periodic(Ticks first, Ticks period);
    // True if a pending firing was removed.
    bool cancel();
    // cancel(), then waits until no callback of this callout runs on any
    // hart. Only from a thread: from interrupt context (the callback
    // itself included, which would wait for itself) it is InvalidArgument.
    base::Result<void> cancel_and_wait();

    bool pending() const;
    bool running() const { return m_running.load(std::memory_order_acquire) != 0; }

    struct Stats {
        std::uint64_t fired;
        std::uint64_t skipped; // periodic firings dropped because they were already late by a period
    };
    Stats stats() const;

private:
    static void fire(Event& event, Ticks now);
    base::Result<void> start(Ticks first, Ticks period);

    Event m_event;
    Function m_function;
    void* m_arg;
    mutable arch::Spinlock m_lock; // m_period, m_armed, m_stats
    Ticks m_period = 0;
    // An arming exists that has neither fired nor been cancelled. A firing
    // that finds it clear (or the event queued again) belongs to an arming
    // that was replaced while it raced on another hart, and is dropped.
    bool m_armed = false;
    std::atomic<std::uint32_t> m_running{0};
    Stats m_stats = {};
};

} // namespace tessera::time
