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

    // Locking a mutex the caller holds is a bug: it panics.
    void lock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::acquire(m_map, lockdep::Kind::Sleep, site);
        lockdep::might_sleep(site);
        if (!take()) lock_slow_or_panic();
    }
    // TimedOut if `deadline` (absolute) passes first.
    [[nodiscard]] base::Result<void> lock_until(time::Ticks deadline, lockdep::Site site = lockdep::Site::current()) {
        lockdep::acquire(m_map, lockdep::Kind::Sleep, site);
        lockdep::might_sleep(site);
        if (take()) return {};
        auto r = sched::pi_lock_slow(m_word, m_waiters, deadline);
        if (!r.ok()) lockdep::abandon(m_map);
        return r;
    }
    [[nodiscard]] bool try_lock(lockdep::Site site = lockdep::Site::current()) {
        if (!take()) return false;
        lockdep::acquired_try(m_map, lockdep::Kind::Sleep, site);
        return true;
    }
    // Unlocking a mutex the caller does not hold panics.
    void unlock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::release(m_map, site);
        std::uintptr_t expected = sched::current_token();
        if (!m_word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
            unlock_slow();
    }
    bool is_locked() const { return m_word.load(std::memory_order_relaxed) != 0; }
    bool held_by_me() const {
        return (m_word.load(std::memory_order_relaxed) & ~sched::kPiWaiters) == sched::current_token();
    }

private:
    bool take() {
        std::uintptr_t expected = 0;
        return m_word.compare_exchange_strong(expected, sched::current_token(), std::memory_order_acquire,
                                              std::memory_order_relaxed);
    }
    void lock_slow_or_panic();
    void unlock_slow();

    std::atomic<std::uintptr_t> m_word{0};
    sched::WaitQueue m_waiters;
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
