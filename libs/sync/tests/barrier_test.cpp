#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <sync/barrier.hpp>

using namespace tessera;

namespace {

constexpr unsigned kThreads = 5;
constexpr unsigned kRounds = 40;

struct Rounds {
    sync::Barrier barrier{kThreads};
    std::atomic<unsigned> arrived[kRounds] = {};
    std::atomic<unsigned> serial[kRounds] = {};
    std::atomic<unsigned> early{0}; // left a round before everyone arrived in it
};

void run_rounds(void* p) {
    auto& r = *static_cast<Rounds*>(p);
    for (unsigned i = 0; i < kRounds; ++i) {
        r.arrived[i].fetch_add(1);
        if (r.barrier.arrive_and_wait()) r.serial[i].fetch_add(1);
        if (r.arrived[i].load() != kThreads) r.early.fetch_add(1);
        if (i % 16 == 0) sched::yield(); // vary who arrives last
    }
}

} // namespace

KTEST(barrier, a_single_thread_barrier_is_always_serial) {
    sync::Barrier b(1);
    for (unsigned i = 0; i < 3; ++i) EXPECT_TRUE(b.arrive_and_wait());
    EXPECT_EQ(b.generation(), 3u);
}

KTEST(barrier, threads_meet_every_generation_with_one_serial_thread) {
    static Rounds r; // big for a stack
    for (auto& a : r.arrived) a.store(0);
    for (auto& s : r.serial) s.store(0);
    r.early.store(0);
    unsigned start = r.barrier.generation();
    sched::ThreadHandle h[kThreads];
    for (unsigned i = 0; i < kThreads; ++i) h[i] = sched::spawn(run_rounds, &r, {"round", 10 + i % 2}).value();
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(r.early.load(), 0u); // nobody slipped through a generation
    unsigned wrong = 0;
    for (unsigned i = 0; i < kRounds; ++i) wrong += r.serial[i].load() != 1;
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(r.barrier.generation() - start, kRounds);
}
