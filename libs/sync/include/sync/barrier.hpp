#pragma once
// A reusable barrier for a fixed number of threads.
//
// arrive_and_wait() blocks until `count` threads have arrived in the
// current generation, then releases them all and starts the next
// generation, so the same barrier serves round after round. Exactly one
// thread per generation, the last to arrive, gets `true` (the "serial"
// thread, like PTHREAD_BARRIER_SERIAL_THREAD). Waiters wait for their own
// generation to end, so a fast thread that re-enters at once counts
// towards the next generation and cannot slip through the one still being
// released. The last arrival releases everyone (all must run: there is no
// herd to avoid). No priority inheritance (there is no owner).
//
// Threads only (never in interrupt context). SMP-safe. More than `count`
// threads using one barrier is a bug (as with pthread barriers).
#include <atomic>
#include <cstdint>
#include <sched/wait.hpp>

namespace tessera::sync {

class Barrier {
public:
    // count >= 1 (1 makes every call return true at once).
    constexpr explicit Barrier(std::uint32_t count) : m_count(count) {}
    Barrier(const Barrier&) = delete;
    Barrier& operator=(const Barrier&) = delete;

    // True for exactly one thread per generation.
    [[nodiscard]] bool arrive_and_wait();
    std::uint32_t generation() const { return std::uint32_t(m_state.load(std::memory_order_relaxed) >> 32); }

private:
    struct Waiting;
    static bool same_generation(void* waiting);

    const std::uint32_t m_count;
    // Generation (high 32 bits) and arrivals in it (low 32 bits): one word,
    // so that an arrival and the generation it counts towards are one
    // atomic step.
    std::atomic<std::uint64_t> m_state{0};
    sched::WaitQueue m_waiters;
};

} // namespace tessera::sync
