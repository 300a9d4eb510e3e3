#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <sync/condvar.hpp>

#include "threads.hpp"

using namespace tessera;
using base::Error;

namespace {

using sync::test::let_them_run;
using sync::test::pinned;

struct Box {
    sync::Mutex m;
    sync::ConditionVariable cv;
    unsigned tokens = 0; // guarded by m
    char log[8] = {};    // guarded by m
    unsigned logged = 0; // guarded by m
    std::atomic<unsigned> wakeups{0};
};

struct Taker {
    Box* box;
    char tag;
};

void take_a_token(void* p) {
    auto& t = *static_cast<Taker*>(p);
    Box& b = *t.box;
    sync::MutexGuard guard(b.m);
    while (b.tokens == 0) {
        b.cv.wait(b.m);
        b.wakeups.fetch_add(1);
    }
    --b.tokens;
    b.log[b.logged++] = t.tag;
}

void give(Box& b, unsigned tokens, bool all) {
    {
        sync::MutexGuard guard(b.m);
        b.tokens += tokens;
        if (!all) b.cv.signal(); // with the mutex held ...
    }
    if (all) b.cv.broadcast(); // ... and without
}

} // namespace

KTEST(condvar, signal_wakes_one_waiter_most_urgent_first) {
    Box b;
    Taker lo{&b, 'l'}, hi{&b, 'h'}, mid{&b, 'm'};
    Taker* ts[3] = {&lo, &hi, &mid};
    unsigned prio[3] = {8, 12, 10};
    sched::ThreadHandle h[3];
    for (unsigned i = 0; i < 3; ++i) h[i] = sched::spawn(take_a_token, ts[i], pinned("taker", prio[i])).value();
    let_them_run();
    EXPECT_EQ(b.wakeups.load(), 0u);
    give(b, 1, false);
    let_them_run();
    EXPECT_EQ(b.wakeups.load(), 1u); // one woken, not all
    EXPECT_EQ(std::string_view(b.log, b.logged), "h");
    give(b, 1, false);
    let_them_run();
    give(b, 1, false);
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(std::string_view(b.log, b.logged), "hml");
    EXPECT_EQ(b.wakeups.load(), 3u);
}

KTEST(condvar, broadcast_wakes_every_waiter) {
    Box b;
    Taker t[4] = {{&b, 'a'}, {&b, 'b'}, {&b, 'c'}, {&b, 'd'}};
    sched::ThreadHandle h[4];
    for (unsigned i = 0; i < 4; ++i) h[i] = sched::spawn(take_a_token, &t[i], pinned("taker", 10)).value();
    let_them_run();
    give(b, 4, true);
    for (auto& th : h) EXPECT_OK(sched::join(th));
    EXPECT_EQ(b.wakeups.load(), 4u);
    EXPECT_EQ(b.logged, 4u);
    // Woken FIFO among equals. They then take the mutex in that order only
    // if no round-robin quantum (2 ms) ends between a wake-up and the lock:
    // certain on one hart under -icount, not in host time on several harts,
    // where a vCPU can stall for milliseconds. There, each got one token.
    if (sched::online_harts() == 1) {
        EXPECT_EQ(std::string_view(b.log, b.logged), "abcd");
    } else {
        unsigned seen = 0;
        for (unsigned i = 0; i < b.logged; ++i) seen |= 1u << (b.log[i] - 'a');
        EXPECT_EQ(seen, 0xfu);
    }
}

KTEST(condvar, signal_without_waiters_is_not_remembered) {
    Box b;
    b.cv.signal();
    b.cv.broadcast();
    sync::MutexGuard guard(b.m);
    EXPECT_ERROR(b.cv.wait_until(b.m, time::now() + time::from_us(500)), Error::TimedOut);
}

KTEST(condvar, wait_until_times_out_at_its_deadline_with_the_mutex_held) {
    Box b;
    // Under -icount on one hart the lateness is the wake-up path's
    // (about a microsecond); with several harts QEMU runs in host time.
    const time::Ticks bound = time::from_us(sched::online_harts() == 1 ? 200 : 1000000);
    for (unsigned us : {100u, 1000u, 3000u}) {
        b.m.lock();
        time::Ticks deadline = time::now() + time::from_us(us);
        EXPECT_ERROR(b.cv.wait_until(b.m, deadline), Error::TimedOut);
        time::Ticks back = time::now();
        EXPECT_TRUE(b.m.held_by_me());
        EXPECT_GE(back, deadline);
        EXPECT_LE(back - deadline, bound);
        b.m.unlock();
    }
    b.m.lock(); // a deadline already past still re-locks
    EXPECT_ERROR(b.cv.wait_until(b.m, time::now() - 1), Error::TimedOut);
    EXPECT_TRUE(b.m.held_by_me());
    b.m.unlock();
}

namespace {

// A one-slot mailbox: the tightest producer/consumer hand-off, where a
// lost wake-up stops both sides. Each side waits with a (long) deadline
// and counts timeouts, so a lost wake-up fails the test instead of
// hanging it.
struct Mailbox {
    sync::Mutex m;
    sync::ConditionVariable not_empty, not_full;
    bool full = false;          // guarded by m
    std::uint64_t slot = 0;     // guarded by m
    std::uint64_t sum = 0;      // consumer's
    std::atomic<unsigned> timeouts{0};
    unsigned items = 0;
};

void mail_producer(void* p) {
    auto& mb = *static_cast<Mailbox*>(p);
    for (unsigned i = 1; i <= mb.items; ++i) {
        mb.m.lock();
        while (mb.full)
            if (!mb.not_full.wait_until(mb.m, time::now() + time::from_ns(500'000'000)).ok()) mb.timeouts.fetch_add(1);
        mb.slot = i;
        mb.full = true;
        if (i % 2) {
            mb.not_empty.signal();
            mb.m.unlock();
        } else {
            mb.m.unlock();
            mb.not_empty.signal(); // after the unlock: the window the sequence closes
        }
    }
}

void mail_consumer(void* p) {
    auto& mb = *static_cast<Mailbox*>(p);
    for (unsigned i = 1; i <= mb.items; ++i) {
        mb.m.lock();
        while (!mb.full)
            if (!mb.not_empty.wait_until(mb.m, time::now() + time::from_ns(500'000'000)).ok())
                mb.timeouts.fetch_add(1);
        mb.sum += mb.slot;
        mb.full = false;
        mb.m.unlock();
        mb.not_full.signal();
    }
}

} // namespace

KTEST(condvar, no_wake_up_is_lost_in_a_tight_producer_consumer_loop) {
    Mailbox mb;
    mb.items = 3000;
    auto p = sched::spawn(mail_producer, &mb, {"producer", 10});
    auto c = sched::spawn(mail_consumer, &mb, {"consumer", 10});
    ASSERT_OK(p);
    ASSERT_OK(c);
    EXPECT_OK(sched::join(p.value()));
    EXPECT_OK(sched::join(c.value()));
    EXPECT_EQ(mb.sum, std::uint64_t(mb.items) * (mb.items + 1) / 2);
    EXPECT_EQ(mb.timeouts.load(), 0u);
}
