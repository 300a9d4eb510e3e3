#pragma once
// A sleeping mutex with priority inheritance.
//
// Uncontended lock and unlock are one compare-and-swap each on a word that
// holds the owner (sched/wait.hpp's lock-word protocol). Under contention
// the waiter blocks on the mutex's wait queue and lends its priority to
// the owner, transitively along chains of owners; unlock hands the mutex
// directly to the most urgent waiter (FIFO among equals), which owns it
// before it even runs. Not recursive. Threads only (never in interrupt
// context). SMP-safe. lockdep checks its use (lockdep/lockdep.hpp).
//
// Owner death: a thread that exits holding the mutex while others wait
// hands it to the most urgent waiter, whose lock_until()/lock_robust()
// returns OwnerDied (lock() returns normally): it owns the mutex and must
// repair what it guards. Taken with lock_robust(), a mutex held with
// nobody waiting is also freed at its owner's exit, and the next locker
// gets OwnerDied; a mutex taken by lock() is recovered likewise only while
// the dead owner's thread slot is not reused (sched/wait.hpp).
#include <atomic>
#include <base/result.hpp>
#include <lockdep/lockdep.hpp>
#include <sched/wait.hpp>
#include <time/time.hpp>

namespace tessera::sync {

class Mutex {
public:
    // Mutexes constructed at one source line are one lockdep class; `name`
    // labels it in lockdep's reports.
    constexpr Mutex(lockdep::Site site = lockdep::Site::current()) : m_map(nullptr, site) {}
    constexpr explicit Mutex(const char* name, lockdep::Site site = lockdep::Site::current()) : m_map(name, site) {}
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    // Locking a mutex the caller holds is a bug: it panics. An owner's
    // death is not reported (use lock_until or lock_robust for that).
    void lock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::acquire(m_map, lockdep::Kind::Sleep, site);
        lockdep::might_sleep(site);
        if (!take_free()) lock_slow_or_panic();
    }
    // TimedOut if `deadline` (absolute) passes first; OwnerDied when the
    // caller owns the mutex but the previous owner exited holding it.
    [[nodiscard]] base::Result<void> lock_until(time::Ticks deadline, lockdep::Site site = lockdep::Site::current()) {
        lockdep::acquire(m_map, lockdep::Kind::Sleep, site);
        lockdep::might_sleep(site);
        if (take_free()) return {};
        auto r = sched::pi_lock_slow(m_word, m_waiters, deadline);
        if (!r.ok() && r.error() != base::Error::OwnerDied) lockdep::abandon(m_map);
        return r;
    }
    // lock_until, and registered with the scheduler while held, so that
    // the owner's exit frees it for the next locker (with OwnerDied) even
    // when nobody waits. Overflow if the thread already holds
    // CONFIG_SCHED_ROBUST_LOCKS registered locks.
    [[nodiscard]] base::Result<void> lock_robust(time::Ticks deadline = time::kNever,
                                                 lockdep::Site site = lockdep::Site::current());
    // Also takes a mutex left free by a dead owner (without telling).
    [[nodiscard]] bool try_lock(lockdep::Site site = lockdep::Site::current()) {
        std::uintptr_t died = sched::kPiOwnerDied;
        if (!take_free() && !m_word.compare_exchange_strong(died, sched::current_token(), std::memory_order_acquire,
                                                            std::memory_order_relaxed))
            return false;
        lockdep::acquired_try(m_map, lockdep::Kind::Sleep, site);
        return true;
    }
    // Unlocking a mutex the caller does not hold panics.
    void unlock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::release(m_map, site);
        if (m_robust) forget_robust(); // before the release: m_robust is the owner's
        std::uintptr_t expected = sched::current_token();
        if (!m_word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
            unlock_slow();
    }
    bool is_locked() const { return (m_word.load(std::memory_order_relaxed) & ~sched::kPiFlags) != 0; }
    bool held_by_me() const {
        return (m_word.load(std::memory_order_relaxed) & ~sched::kPiFlags) == sched::current_token();
    }

private:
    bool take_free() {
        std::uintptr_t expected = 0;
        return m_word.compare_exchange_strong(expected, sched::current_token(), std::memory_order_acquire,
                                              std::memory_order_relaxed);
    }
    void lock_slow_or_panic();
    void unlock_slow();
    void forget_robust();

    std::atomic<std::uintptr_t> m_word{0};
    sched::WaitQueue m_waiters;
    bool m_robust = false; // taken by lock_robust(); guarded by the mutex itself
    [[no_unique_address]] lockdep::Map m_map;
};

class [[nodiscard]] MutexGuard {
public:
    explicit MutexGuard(Mutex& m, lockdep::Site site = lockdep::Site::current()) : m_mutex(m), m_site(site) {
        m_mutex.lock(site);
    }
    ~MutexGuard() { m_mutex.unlock(m_site); }
    MutexGuard(const MutexGuard&) = delete;
    MutexGuard& operator=(const MutexGuard&) = delete;

private:
    Mutex& m_mutex;
    lockdep::Site m_site; // unused (and optimised away) without lockdep
};

} // namespace tessera::sync
