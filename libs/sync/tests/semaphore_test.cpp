#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <sync/semaphore.hpp>

#include "threads.hpp"

using namespace tessera;
using base::Error;

namespace {

struct Waiter {
    sync::Semaphore* sem;
    char tag;
    char* order;
    std::atomic<unsigned>* n;
};

void acquire_and_log(void* p) {
    auto& w = *static_cast<Waiter*>(p);
    if (!w.sem->acquire().ok()) return;
    w.order[w.n->fetch_add(1)] = w.tag;
}

} // namespace

KTEST(semaphore, counts_units) {
    sync::Semaphore s(2);
    EXPECT_TRUE(s.try_acquire());
    EXPECT_TRUE(s.try_acquire());
    EXPECT_FALSE(s.try_acquire());
    s.release();
    EXPECT_EQ(s.count(), 1u);
    EXPECT_OK(s.acquire());
    EXPECT_EQ(s.count(), 0u);
}

KTEST(semaphore, release_hands_the_unit_to_the_most_urgent_waiter) {
    sync::Semaphore s(0);
    char order[4] = {};
    std::atomic<unsigned> n{0};
    Waiter lo{&s, 'l', order, &n}, hi{&s, 'h', order, &n}, mid{&s, 'm', order, &n};
    sched::ThreadHandle h[3];
    Waiter* ws[3] = {&lo, &hi, &mid};
    unsigned prio[3] = {8, 12, 10};
    for (unsigned i = 0; i < 3; ++i) h[i] = sched::spawn(acquire_and_log, ws[i], {"waiter", prio[i], 16384, 1u}).value();
    // Below them all on this hart, main runs again only once all three wait.
    ASSERT_OK(sched::set_priority(sched::self(), 2));
    ASSERT_OK(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY));
    for (int i = 0; i < 3; ++i) s.release();
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(std::string_view(order, 3), "hml");
    EXPECT_EQ(s.count(), 0u); // handed over, never counted
}

KTEST(semaphore, acquire_times_out_at_its_deadline) {
    sync::Semaphore s(0);
    time::Ticks deadline = time::now() + time::from_us(2000);
    EXPECT_ERROR(s.acquire(deadline), Error::TimedOut);
    EXPECT_GE(time::now(), deadline);
    EXPECT_ERROR(s.acquire(time::now() - 1), Error::TimedOut); // already past
}

// The "waiters present" flag in the count word sends release() to the
// slow path; it must go as soon as nobody waits, or every later release
// would take the scheduler's lock.
KTEST(semaphore, the_waiters_flag_clears_when_the_last_waiter_leaves) {
    sync::Semaphore s(0);
    EXPECT_ERROR(s.acquire(time::now() + time::from_us(500)), Error::TimedOut);
    EXPECT_FALSE(s.waiters_flagged()); // by timeout
    char order[2] = {};
    std::atomic<unsigned> n{0};
    Waiter a{&s, 'a', order, &n}, b{&s, 'b', order, &n};
    auto ta = sched::spawn(acquire_and_log, &a, sync::test::pinned("waiter", 10)).value();
    auto tb = sched::spawn(acquire_and_log, &b, sync::test::pinned("waiter", 10)).value();
    sync::test::let_them_run();
    EXPECT_TRUE(s.waiters_flagged());
    s.release();
    EXPECT_TRUE(s.waiters_flagged()); // one still waits
    s.release();
    EXPECT_FALSE(s.waiters_flagged()); // by handover to the last
    EXPECT_EQ(s.count(), 0u);
    EXPECT_OK(sched::join(ta));
    EXPECT_OK(sched::join(tb));
    EXPECT_EQ(std::string_view(order, 2), "ab");
    s.release(); // the fast path again
    EXPECT_EQ(s.count(), 1u);
}

namespace {
struct Pipe {
    sync::Semaphore items{0};
    sync::Semaphore slots{4};
    std::atomic<std::uint64_t> produced{0}, consumed{0};
    unsigned per_thread = 0;
};
void produce(void* p) {
    auto& pipe = *static_cast<Pipe*>(p);
    for (unsigned i = 0; i < pipe.per_thread; ++i) {
        (void)pipe.slots.acquire();
        pipe.produced.fetch_add(1);
        pipe.items.release();
    }
}
void consume(void* p) {
    auto& pipe = *static_cast<Pipe*>(p);
    for (unsigned i = 0; i < pipe.per_thread; ++i) {
        (void)pipe.items.acquire();
        pipe.consumed.fetch_add(1);
        pipe.slots.release();
    }
}
} // namespace

KTEST(semaphore, producers_and_consumers_on_every_hart_conserve_units) {
    Pipe pipe;
    pipe.per_thread = 500;
    unsigned pairs = sched::online_harts() + 1;
    sched::ThreadHandle h[2 * (arch::kMaxHarts + 1)];
    for (unsigned i = 0; i < pairs; ++i) {
        h[2 * i] = sched::spawn(produce, &pipe, {"producer", 10}).value();
        h[2 * i + 1] = sched::spawn(consume, &pipe, {"consumer", 11}).value();
    }
    for (unsigned i = 0; i < 2 * pairs; ++i) EXPECT_OK(sched::join(h[i]));
    EXPECT_EQ(pipe.produced.load(), std::uint64_t(pairs) * pipe.per_thread);
    EXPECT_EQ(pipe.consumed.load(), pipe.produced.load());
    EXPECT_EQ(pipe.items.count(), 0u);
    EXPECT_EQ(pipe.slots.count(), 4u);
}
