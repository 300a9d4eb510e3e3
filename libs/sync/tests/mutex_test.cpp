#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <ktest/order_log.hpp>
#include <sched/sched.hpp>
#include <sync/mutex.hpp>

#include "threads.hpp"

using namespace tessera;
using base::Error;

namespace {

using sync::test::pinned;

unsigned effective(sched::ThreadHandle h) { return sched::priorities(h).value().effective; }

constexpr bool kInheritance = sched::kPriorityInheritance;

using Log = ktest::OrderLog<>;

struct Contender {
    sync::Mutex* mutex;
    Log* log;
    char tag;
};

void take_and_log(void* p) {
    auto& c = *static_cast<Contender*>(p);
    sync::MutexGuard guard(*c.mutex);
    c.log->add(c.tag);
}

} // namespace

KTEST(mutex, uncontended_lock_unlock_and_try_lock) {
    sync::Mutex m;
    EXPECT_FALSE(m.is_locked());
    m.lock();
    EXPECT_TRUE(m.held_by_me());
    EXPECT_FALSE(m.try_lock()); // not recursive
    m.unlock();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    EXPECT_FALSE(m.is_locked());
}

KTEST(mutex, handover_goes_by_priority_then_fifo) {
    sync::Mutex m;
    Log log;
    Contender c10{&m, &log, 'd'}, c12a{&m, &log, 'a'}, c12b{&m, &log, 'b'}, c11{&m, &log, 'c'};
    m.lock();
    sched::ThreadHandle h[4];
    Contender* cs[4] = {&c10, &c12a, &c12b, &c11};
    unsigned prio[4] = {10, 12, 12, 11};
    for (unsigned i = 0; i < 4; ++i) h[i] = sched::spawn(take_and_log, cs[i], pinned("contender", prio[i])).value();
    // Below them all on this hart, main runs again only once every
    // contender has blocked on m (timing-independent).
    ASSERT_OK(sched::set_priority(sched::self(), 2));
    ASSERT_OK(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY));
    EXPECT_EQ(log.view(), "");
    m.unlock();                   // each hands over to the next as it leaves
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(log.view(), "abcd");
}

namespace {

struct Holder {
    sync::Mutex* first;        // held while waiting for `then`
    sync::Mutex* then = nullptr;
    std::atomic<bool> holding{false};
    std::atomic<bool> release{false};
};

void hold_until_released(void* p) {
    auto& h = *static_cast<Holder*>(p);
    h.first->lock();
    h.holding.store(true);
    if (h.then) {
        h.then->lock(); // blocks: lends our (inherited) priority onwards
        h.then->unlock();
    }
    while (!h.release.load()) sched::sleep_for_ns(200000);
    h.first->unlock();
}

void lock_once(void* p) {
    auto* m = static_cast<sync::Mutex*>(p);
    m->lock();
    m->unlock();
}

} // namespace

KTEST(mutex, an_owner_inherits_its_waiters_priority_and_drops_it_on_release) {
    if (!kInheritance) KTEST_SKIP("SCHED_PRIORITY_INHERITANCE is off");
    sync::Mutex m;
    Holder low{&m};
    auto l = sched::spawn(hold_until_released, &low, pinned("low", 5));
    ASSERT_OK(l);
    while (!low.holding.load()) sched::sleep_for_ns(100000);
    EXPECT_EQ(effective(l.value()), 5u);
    auto h = sched::spawn(lock_once, &m, pinned("high", 20)); // blocks at once
    ASSERT_OK(h);
    EXPECT_EQ(effective(l.value()), 20u);
    low.release.store(true);
    EXPECT_OK(sched::join(h.value()));
    EXPECT_OK(sched::join(l.value()));
}

KTEST(mutex, inheritance_follows_a_chain_of_owners) {
    if (!kInheritance) KTEST_SKIP("SCHED_PRIORITY_INHERITANCE is off");
    // c holds m2; b holds m1 and waits for m2; a waits for m1: c runs at
    // a's priority, and so does b.
    sync::Mutex m1, m2;
    Holder c{&m2}, b{&m1, &m2};
    auto tc = sched::spawn(hold_until_released, &c, pinned("c", 3));
    ASSERT_OK(tc);
    while (!c.holding.load()) sched::sleep_for_ns(100000);
    auto tb = sched::spawn(hold_until_released, &b, pinned("b", 6));
    ASSERT_OK(tb);
    while (!b.holding.load()) sched::sleep_for_ns(100000);
    // Below b and c on this hart, main runs again once b has blocked on m2.
    ASSERT_OK(sched::set_priority(sched::self(), 2));
    ASSERT_OK(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY));
    EXPECT_EQ(effective(tc.value()), 6u);
    auto ta = sched::spawn(lock_once, &m1, pinned("a", 25));
    ASSERT_OK(ta);
    EXPECT_EQ(effective(tb.value()), 25u);
    EXPECT_EQ(effective(tc.value()), 25u);
    c.release.store(true);
    b.release.store(true);
    EXPECT_OK(sched::join(ta.value()));
    EXPECT_OK(sched::join(tb.value()));
    EXPECT_OK(sched::join(tc.value()));
}

namespace {
struct TimedLocker {
    sync::Mutex* m;
    base::Result<void> result = base::Error::Busy;
};
void lock_with_timeout(void* p) {
    auto& t = *static_cast<TimedLocker*>(p);
    // Long enough for the case to see the boost before it times out: 2 ms
    // of guest time under -icount on one hart; in host time on several
    // harts a stalled vCPU can take that long, so 200 ms there.
    const auto timeout = time::from_us(sched::online_harts() == 1 ? 2000 : 200'000);
    t.result = t.m->lock_until(time::now() + timeout);
    if (t.result.ok()) t.m->unlock();
}
} // namespace

KTEST(mutex, a_timed_lock_times_out_and_returns_the_boost) {
    if (!kInheritance) KTEST_SKIP("SCHED_PRIORITY_INHERITANCE is off");
    sync::Mutex m;
    Holder low{&m};
    auto l = sched::spawn(hold_until_released, &low, pinned("low", 5));
    ASSERT_OK(l);
    while (!low.holding.load()) sched::sleep_for_ns(100000);
    TimedLocker t{&m};
    auto h = sched::spawn(lock_with_timeout, &t, pinned("impatient", 20));
    ASSERT_OK(h);
    EXPECT_EQ(effective(l.value()), 20u);
    EXPECT_OK(sched::join(h.value()));
    EXPECT_ERROR(t.result, Error::TimedOut);
    EXPECT_EQ(effective(l.value()), 5u); // the boost left with the waiter
    low.release.store(true);
    EXPECT_OK(sched::join(l.value()));
    EXPECT_FALSE(m.is_locked());
}

KTEST(mutex, without_inheritance_the_owner_keeps_its_priority_and_still_hands_over) {
    if (kInheritance) KTEST_SKIP("SCHED_PRIORITY_INHERITANCE is on");
    sync::Mutex m;
    Holder low{&m};
    auto l = sched::spawn(hold_until_released, &low, pinned("low", 5));
    ASSERT_OK(l);
    while (!low.holding.load()) sched::sleep_for_ns(100000);
    auto h = sched::spawn(lock_once, &m, pinned("high", 20)); // blocks at once
    ASSERT_OK(h);
    EXPECT_EQ(effective(l.value()), 5u); // no boost
    EXPECT_TRUE(m.is_locked());
    low.release.store(true);
    EXPECT_OK(sched::join(h.value())); // handed over all the same
    EXPECT_OK(sched::join(l.value()));
    EXPECT_FALSE(m.is_locked());
}

namespace {
struct Counter {
    sync::Mutex m;
    std::uint64_t value = 0; // guarded by m; plain on purpose
    unsigned rounds = 0;
};
void count_under_mutex(void* p) {
    auto& c = *static_cast<Counter*>(p);
    for (unsigned i = 0; i < c.rounds; ++i) {
        sync::MutexGuard guard(c.m);
        std::uint64_t v = c.value;
        if (i % 64 == 0) sched::yield(); // hold it across a switch now and then
        c.value = v + 1;
    }
}
} // namespace

KTEST(mutex, threads_on_every_hart_count_without_losing_an_increment) {
    Counter c;
    c.rounds = 3000;
    unsigned n = 2 * sched::online_harts() + 1;
    sched::ThreadHandle h[2 * arch::kMaxHarts + 1];
    for (unsigned i = 0; i < n; ++i) {
        auto r = sched::spawn(count_under_mutex, &c, {"counter", 10 + i % 3});
        ASSERT_OK(r);
        h[i] = r.value();
    }
    for (unsigned i = 0; i < n; ++i) EXPECT_OK(sched::join(h[i]));
    EXPECT_EQ(c.value, std::uint64_t(n) * c.rounds);
    EXPECT_FALSE(c.m.is_locked());
}

namespace {
struct Leaker {
    sync::Mutex* m;
    bool robust = false;
    std::atomic<bool> holding{false};
    std::atomic<bool> exit{false};
};
// Takes the mutex and exits holding it (when told to).
void lock_and_exit(void* p) {
    auto& l = *static_cast<Leaker*>(p);
    if (l.robust) {
        if (!l.m->lock_robust().ok()) return;
    } else {
        l.m->lock();
    }
    l.holding.store(true);
    while (!l.exit.load()) sched::sleep_for_ns(100000);
}
struct Heir {
    sync::Mutex* m;
    base::Result<void> result = base::Error::Busy;
    bool owned = false;
};
void lock_and_report(void* p) {
    auto& h = *static_cast<Heir*>(p);
    h.result = h.m->lock_until(time::kNever);
    h.owned = h.m->held_by_me();
    if (h.owned) h.m->unlock();
}
void reuse_slots() {
    sync::Mutex other;
    for (int i = 0; i < 4; ++i) { // the dead thread's slot comes back into use
        auto r = sched::spawn(lock_once, &other, pinned("reuse", 12));
        if (r.ok()) (void)sched::join(r.value());
    }
}
} // namespace

// Robust owner death: the mutex goes to the waiter, which learns it.
KTEST(mutex, an_owner_exiting_with_a_waiter_hands_it_over_with_owner_died) {
    sync::Mutex m;
    Leaker l{&m};
    auto owner = sched::spawn(lock_and_exit, &l, pinned("leaker", 5));
    ASSERT_OK(owner);
    while (!l.holding.load()) sched::sleep_for_ns(100000);
    Heir h{&m};
    auto heir = sched::spawn(lock_and_report, &h, pinned("heir", 20)); // blocks at once
    ASSERT_OK(heir);
    if (kInheritance) EXPECT_EQ(effective(owner.value()), 20u);
    l.exit.store(true);
    EXPECT_OK(sched::join(owner.value()));
    EXPECT_OK(sched::join(heir.value()));
    EXPECT_ERROR(h.result, Error::OwnerDied);
    EXPECT_TRUE(h.owned);
    EXPECT_FALSE(m.is_locked());
    reuse_slots();
    EXPECT_OK(m.lock_until(time::kNever)); // reported once
    m.unlock();
}

// lock_robust registers the mutex: the exit frees it even with nobody
// waiting, however soon the slot is reused.
KTEST(mutex, a_robust_owner_exiting_alone_leaves_owner_died_for_the_next_locker) {
    sync::Mutex m;
    Leaker l{&m, true};
    l.exit.store(true);
    auto owner = sched::spawn(lock_and_exit, &l, pinned("leaker", 20));
    ASSERT_OK(owner);
    EXPECT_OK(sched::join(owner.value()));
    EXPECT_TRUE(l.holding.load());
    EXPECT_FALSE(m.is_locked());
    reuse_slots();
    EXPECT_ERROR(m.lock_robust(), Error::OwnerDied);
    EXPECT_TRUE(m.held_by_me());
    m.unlock();
    EXPECT_OK(m.lock_until(time::kNever));
    m.unlock();
    // try_lock takes such a mutex too (it cannot say so).
    Leaker again{&m, true};
    again.exit.store(true);
    owner = sched::spawn(lock_and_exit, &again, pinned("leaker", 20));
    ASSERT_OK(owner);
    EXPECT_OK(sched::join(owner.value()));
    EXPECT_TRUE(m.try_lock());
    m.unlock();
}

// lock() does not register: still recovered while the dead thread's slot
// is not reused (the locker sees an exited owner); lock() itself does not
// report it.
KTEST(mutex, a_plain_owner_exiting_alone_is_recovered_while_its_slot_is_free) {
    sync::Mutex m;
    Leaker l{&m};
    l.exit.store(true);
    auto owner = sched::spawn(lock_and_exit, &l, pinned("leaker", 20));
    ASSERT_OK(owner);
    EXPECT_OK(sched::join(owner.value()));
    EXPECT_TRUE(m.is_locked());
    EXPECT_ERROR(m.lock_until(time::kNever), Error::OwnerDied);
    m.unlock();
    Leaker again{&m};
    again.exit.store(true);
    owner = sched::spawn(lock_and_exit, &again, pinned("leaker", 20));
    ASSERT_OK(owner);
    EXPECT_OK(sched::join(owner.value()));
    m.lock(); // takes it over silently
    EXPECT_TRUE(m.held_by_me());
    m.unlock();
}
