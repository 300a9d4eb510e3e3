#include <base/verify.hpp>
#include <sync/barrier.hpp>
#include <time/time.hpp>

namespace tessera::sync {

struct Barrier::Waiting {
    Barrier* barrier;
    std::uint32_t generation;
};

// Under the scheduler's lock: wait while our generation has not ended.
bool Barrier::same_generation(void* p) {
    auto& w = *static_cast<Waiting*>(p);
    return w.barrier->generation() == w.generation;
}

bool Barrier::arrive_and_wait() {
    VERIFY(m_count >= 1);
    std::uint64_t before = m_state.fetch_add(1, std::memory_order_acq_rel);
    auto generation = std::uint32_t(before >> 32);
    auto arrived = std::uint32_t(before) + 1;
    VERIFY(arrived <= m_count);
    if (arrived == m_count) {
        // Last one: nobody else can arrive in this generation (they all
        // wait in it), so a plain store starts the next one.
        m_state.store(std::uint64_t(generation + 1) << 32, std::memory_order_release);
        (void)sched::wake_all(m_waiters);
        return true;
    }
    Waiting w{this, generation};
    // A wake-up is for the generation that ended; loop in case it was not
    // ours (it always is today; the check is cheap).
    while (same_generation(&w)) (void)sched::wait(m_waiters, time::kNever, same_generation, &w);
    std::atomic_thread_fence(std::memory_order_acquire);
    return false;
}

} // namespace tessera::sync
