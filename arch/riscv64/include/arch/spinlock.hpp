#pragma once
// Ticket spinlock (FIFO among harts) plus the lock-and-data bundle that the
// rest of the kernel uses. Interrupts are off while held, so a handler on
// the same hart can never spin on a lock its interrupted code holds.
// SMP-safe. The full sync library (mutexes, lockdep) builds on this.
#include <arch/cpu.hpp>
#include <atomic>
#include <cstdint>

namespace tessera::arch {

class Spinlock {
public:
    constexpr Spinlock() = default;
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

class [[nodiscard]] SpinlockGuard {
public:
    explicit SpinlockGuard(Spinlock& l) : m_lock(l) { m_lock.lock(); }
    ~SpinlockGuard() { m_lock.unlock(); }
    SpinlockGuard(const SpinlockGuard&) = delete;
    SpinlockGuard& operator=(const SpinlockGuard&) = delete;

private:
    IrqGuard m_irq; // constructed first: interrupts off before spinning
    Spinlock& m_lock;
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
