// Condition variable: a sequence counter closes the window between the
// waiter's unlock and its enqueue, a waiter count lets signal skip the
// scheduler's lock when nobody waits.
//
// Why no wake-up is lost. The waiter reads the sequence (s) before it
// unlocks the mutex; its check under the scheduler's lock compares the
// sequence with s and enqueues in the same step. A signal bumps the
// sequence and then wakes under the same lock. Either the signal's wake
// comes after the enqueue (it finds the waiter), or before it; then the
// bump came before the check as well (both sides' lock operations order
// them), the check sees the change and the waiter returns at once.
//
// Why signal may skip the lock when m_waiting is 0: the waiter raises
// m_waiting before its check reads the sequence, the signaller bumps the
// sequence before it reads m_waiting (all sequentially consistent). So
// either the signaller sees the waiter counted, or the waiter's check sees
// the bump (Dekker's argument).
#include <sync/condvar.hpp>

namespace tessera::sync {

struct ConditionVariable::Waiting {
    ConditionVariable* cv;
    std::uint32_t sequence;
};

bool ConditionVariable::unchanged(void* p) {
    auto& w = *static_cast<Waiting*>(p);
    return w.cv->m_sequence.load() == w.sequence;
}

base::Result<void> ConditionVariable::wait_until(Mutex& m, time::Ticks deadline) {
    m_waiting.fetch_add(1);
    Waiting w{this, m_sequence.load()};
    m.unlock();
    auto r = sched::wait(m_waiters, deadline, unchanged, &w);
    m_waiting.fetch_sub(1);
    m.lock();
    return r;
}

void ConditionVariable::signal() {
    m_sequence.fetch_add(1);
    if (m_waiting.load() != 0) (void)sched::wake_one(m_waiters);
}

void ConditionVariable::broadcast() {
    m_sequence.fetch_add(1);
    if (m_waiting.load() != 0) (void)sched::wake_all(m_waiters);
}

} // namespace tessera::sync
