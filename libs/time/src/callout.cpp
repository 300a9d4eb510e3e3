#include <base/container_of.hpp>
#include <arch/hart.hpp>
#include <cstddef>
#include <time/callout.hpp>

namespace tessera::time {

base::Result<void> Callout::start(Ticks first, Ticks period) {
    arch::SpinlockGuard guard(m_lock);
    m_period = period;
    // Armed while holding m_lock: a firing racing on another hart waits
    // for it and then sees the new arming.
    TRY(arm(m_event, first));
    m_armed = true;
    return {};
}

base::Result<void> Callout::start_at(Ticks deadline) { return start(deadline, 0); }

base::Result<void> Callout::start_periodic(Ticks first, Ticks period) {
    if (period == 0) return base::Error::InvalidArgument;
    return start(first, period);
}

bool Callout::cancel() {
    arch::SpinlockGuard guard(m_lock);
    m_armed = false;
    m_period = 0;
    return time::cancel(m_event);
}

base::Result<void> Callout::cancel_and_wait() {
    if (arch::in_interrupt()) return base::Error::InvalidArgument;
    (void)cancel();
    // A callback that had begun finishes in bounded time (it runs with
    // interrupts off and may not block).
    while (running()) arch::pause();
    return {};
}

bool Callout::pending() const {
    arch::SpinlockGuard guard(m_lock);
    return m_armed;
}

Callout::Stats Callout::stats() const {
    arch::SpinlockGuard guard(m_lock);
    return m_stats;
}

void Callout::fire(Event& event, Ticks) {
    Callout& self = base::container_of(event, &Callout::m_event);
    {
        arch::SpinlockGuard guard(self.m_lock);
        if (!self.m_armed || event.queued()) return; // cancelled or replaced meanwhile
        ++self.m_stats.fired;
        // A periodic callout stays armed through the call; cancel() during
        // it clears this, and the re-arm below then does not happen.
        self.m_armed = self.m_period != 0;
        self.m_running.fetch_add(1, std::memory_order_relaxed);
    }
    self.m_function(self.m_arg);
    arch::SpinlockGuard guard(self.m_lock);
    if (self.m_armed && self.m_period && !event.queued()) {
        // Re-armed after the call, from the clock after it: a callback
        // that takes longer than its period skips periods instead of
        // firing back to back forever (which would starve the hart).
        Ticks now = time::now();
        Ticks next = event.deadline + self.m_period;
        while (next <= now) {
            next += self.m_period;
            ++self.m_stats.skipped;
        }
        self.m_armed = arm(event, next).ok(); // a full queue stops it
    }
    self.m_running.fetch_sub(1, std::memory_order_release);
}

} // namespace tessera::time
