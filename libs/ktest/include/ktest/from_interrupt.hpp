#pragma once
// Test helper: runs a function once in interrupt context, from a timer
// callout on the calling hart, for the cases that check what a library
// allows (or reports) there. Header-only, so only the test images that use
// it need the time and sched libraries.
#include <arch/hart.hpp>
#include <atomic>
#include <base/result.hpp>
#include <sched/sched.hpp>
#include <time/callout.hpp>

namespace tessera::ktest {

class FromInterrupt {
public:
    FromInterrupt(void (*fn)(void*), void* arg) : m_fn(fn), m_arg(arg) {}
    FromInterrupt(const FromInterrupt&) = delete;
    FromInterrupt& operator=(const FromInterrupt&) = delete;
    ~FromInterrupt() {
        if (m_arming != sched::ThreadHandle{}) (void)sched::join(m_arming);
        (void)m_callout.cancel_and_wait();
    }

    // Arms the callout 100 µs from now.
    base::Result<void> start() { return m_callout.start_at(time::now() + time::from_us(100)); }

    // Arms it only once ready(ready_arg) holds, from a helper thread pinned
    // to this hart, so the caller may block meanwhile (say, in the receive
    // the handler must find waiting): the handler then always finds that
    // state, however slow the host, and runs on this hart. ready is polled
    // every 50 µs for 2 s at most (only a bug makes that expire; the
    // callout is then not armed). A thread the handler wakes runs only
    // after it if it is pinned to this hart too (the ktest app pins its
    // main thread, which runs the cases, to the boot hart); one that may
    // run elsewhere can run while the handler is still going.
    base::Result<void> start_when(bool (*ready)(const void*), const void* ready_arg) {
        m_ready = ready;
        m_ready_arg = ready_arg;
        m_arming = TRY(sched::spawn(arm, this, {"arm-irq", 20, 16 * 1024, 1u << arch::this_hart().index}));
        return {};
    }

    // Waits until the function has run: yielding, or spinning with
    // interrupts on when the caller must not sleep (say, it holds a
    // spinlock on purpose).
    void wait(bool may_yield = true) const {
        while (!ran()) {
            if (may_yield) sched::yield();
            else arch::pause();
        }
    }

    [[nodiscard]] bool ran() const { return m_ran.load(std::memory_order_acquire); }
    [[nodiscard]] bool was_in_interrupt() const { return m_in_interrupt.load(std::memory_order_relaxed); }

private:
    static void arm(void* p) {
        auto& self = *static_cast<FromInterrupt*>(p);
        time::Ticks give_up = time::now() + time::from_us(2'000'000);
        while (!self.m_ready(self.m_ready_arg)) {
            if (time::now() >= give_up) return;
            sched::sleep_for_ns(50'000);
        }
        (void)self.start();
    }
    static void trampoline(void* p) {
        auto& self = *static_cast<FromInterrupt*>(p);
        self.m_in_interrupt.store(arch::in_interrupt(), std::memory_order_relaxed);
        self.m_fn(self.m_arg);
        self.m_ran.store(true, std::memory_order_release);
    }

    void (*m_fn)(void*);
    void* m_arg;
    bool (*m_ready)(const void*) = nullptr;
    const void* m_ready_arg = nullptr;
    std::atomic<bool> m_ran{false};
    std::atomic<bool> m_in_interrupt{false};
    time::Callout m_callout{trampoline, this};
    sched::ThreadHandle m_arming{};
};

} // namespace tessera::ktest
