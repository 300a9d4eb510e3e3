#include <base/verify.hpp>
#include <sync/mutex.hpp>

namespace tessera::sync {

void Mutex::lock_slow_or_panic() {
    if (!sched::pi_lock_slow(m_word, m_waiters, time::kNever).ok()) PANIC("sync: a thread locked a mutex it holds");
}

void Mutex::unlock_slow() {
    if (!sched::pi_unlock_slow(m_word, m_waiters).ok()) PANIC("sync: a thread unlocked a mutex it does not hold");
}

} // namespace tessera::sync
