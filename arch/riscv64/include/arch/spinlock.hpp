#pragma once
// Ticket spinlock (FIFO among harts) plus the lock-and-data bundle that the
// rest of the kernel uses. Interrupts are off while held, so a handler on
// the same hart can never spin on a lock its interrupted code holds.
// SMP-safe. The sync library (mutexes) builds on this; lockdep checks it.
#include <arch/cpu.hpp>
#include <lockdep/lockdep.hpp>
#include <atomic>
#include <cstdint>

namespace tessera::arch {

// The ticket lock itself, with no validation: for lockdep's own lock.
class RawSpinlock {
public:
    constexpr RawSpinlock() = default;
    void lock() {
        std::uint32_t ticket = m_next.fetch_add(1, std::memory_order_relaxed);
        while (m_serving.load(std::memory_order_acquire) != ticket) pause();
    }
    void unlock() { m_serving.fetch_add(1, std::memory_order_release); }
    [[nodiscard]] bool is_locked() const {
        return m_next.load(std::memory_order_relaxed) != m_serving.load(std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint32_t> m_next{0};
    std::atomic<std::uint32_t> m_serving{0};
};

// The kernel's spinlock: a ticket lock that reports to lockdep (which
// costs nothing when LIB_LOCKDEP is off). Locks constructed at one source
// line are one lockdep class; `name` labels it in reports.
class Spinlock {
public:
    constexpr Spinlock(lockdep::Site site = lockdep::Site::current()) : m_map(nullptr, site) {}
    constexpr explicit Spinlock(const char* name, lockdep::Site site = lockdep::Site::current()) : m_map(name, site) {}
    void lock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::acquire(m_map, lockdep::Kind::Spin, site);
        m_raw.lock();
    }
    void unlock(lockdep::Site site = lockdep::Site::current()) {
        lockdep::release(m_map, site);
        m_raw.unlock();
    }
    [[nodiscard]] bool is_locked() const { return m_raw.is_locked(); }
    // The scheduler's lock is held across a context switch and released by
    // the thread switched to: lockdep must see that thread holding it.
    void handed_over(lockdep::Site site = lockdep::Site::current()) { lockdep::handed_over(m_map, site); }

private:
    RawSpinlock m_raw;
    [[no_unique_address]] lockdep::Map m_map;
};

class [[nodiscard]] SpinlockGuard {
public:
    explicit SpinlockGuard(Spinlock& l, lockdep::Site site = lockdep::Site::current()) : m_lock(l), m_site(site) {
        m_lock.lock(site);
    }
    ~SpinlockGuard() { m_lock.unlock(m_site); }
    SpinlockGuard(const SpinlockGuard&) = delete;
    SpinlockGuard& operator=(const SpinlockGuard&) = delete;

private:
    IrqGuard m_irq; // constructed first: interrupts off before spinning
    Spinlock& m_lock;
    lockdep::Site m_site; // unused (and optimised away) without lockdep
};

// Data that can only be reached with its lock held:
//     g_table.with([&](Table& t) { t.insert(x); });
template <typename T>
class SpinlockProtected {
public:
    template <typename... Args>
    constexpr explicit SpinlockProtected(Args&&... args) : m_value(static_cast<Args&&>(args)...) {}

    template <typename F>
    decltype(auto) with(F&& f) {
        SpinlockGuard guard(m_lock);
        return f(m_value);
    }

private:
    Spinlock m_lock;
    T m_value;
};

} // namespace tessera::arch
