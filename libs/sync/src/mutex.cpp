#include <base/verify.hpp>
#include <sync/mutex.hpp>

namespace tessera::sync {

void Mutex::lock_slow_or_panic() {
    auto r = sched::pi_lock_slow(m_word, m_waiters, time::kNever);
    // OwnerDied: ours all the same; lock() callers did not ask to know.
    if (r.ok() || r.error() == base::Error::OwnerDied) return;
    if (r.error() == base::Error::InvalidArgument) PANIC("sync: a thread locked a mutex it holds");
    PANIC("sync: an untimed mutex lock failed"); // a broken kernel: nothing else can fail
}

base::Result<void> Mutex::lock_robust(time::Ticks deadline, lockdep::Site site) {
    TRY(sched::robust_add(m_word)); // first: no window in which we hold it unregistered
    auto r = lock_until(deadline, site);
    if (r.ok() || r.error() == base::Error::OwnerDied)
        m_robust = true;
    else
        sched::robust_remove(m_word);
    return r;
}

void Mutex::forget_robust() {
    m_robust = false;
    sched::robust_remove(m_word);
}

void Mutex::unlock_slow() {
    if (!sched::pi_unlock_slow(m_word, m_waiters).ok()) PANIC("sync: a thread unlocked a mutex it does not hold");
}

} // namespace tessera::sync
