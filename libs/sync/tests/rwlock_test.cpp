#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <sync/rwlock.hpp>

#include "threads.hpp"

using namespace tessera;
using base::Error;

namespace {

using sync::test::let_them_run;
using sync::test::pinned;

struct Shared {
    sync::RwLock lock;
    char log[16] = {};
    std::atomic<unsigned> logged{0};
    std::atomic<unsigned> inside{0};     // readers inside at once
    std::atomic<unsigned> max_inside{0};
    std::atomic<bool> release{false};    // readers hold until this
    void add(char c) { log[logged.fetch_add(1)] = c; }
    std::string_view view() const { return {log, logged.load()}; }
};

void read_and_log(void* p) {
    auto& s = *static_cast<Shared*>(p);
    sync::ReadGuard guard(s.lock);
    s.add('r');
    unsigned now = s.inside.fetch_add(1) + 1;
    unsigned seen = s.max_inside.load();
    while (now > seen && !s.max_inside.compare_exchange_weak(seen, now)) {}
    while (!s.release.load()) sched::sleep_for_ns(100000);
    s.inside.fetch_sub(1);
}

void write_and_log(void* p) {
    auto& s = *static_cast<Shared*>(p);
    sync::WriteGuard guard(s.lock);
    s.add('w');
}

struct Timed {
    sync::RwLock* lock;
    bool write;
    base::Result<void> result = Error::Busy;
};

void lock_with_timeout(void* p) {
    auto& t = *static_cast<Timed*>(p);
    time::Ticks deadline = time::now() + time::from_us(1000);
    if (t.write) {
        t.result = t.lock->lock_until(deadline);
        if (t.result.ok()) t.lock->unlock();
    } else {
        t.result = t.lock->lock_shared_until(deadline);
        if (t.result.ok()) t.lock->unlock_shared();
    }
}

} // namespace

KTEST(rwlock, readers_share_and_a_writer_excludes) {
    sync::RwLock l;
    EXPECT_TRUE(l.try_lock_shared());
    EXPECT_TRUE(l.try_lock_shared()); // readers share
    EXPECT_EQ(l.readers(), 2u);
    EXPECT_FALSE(l.try_lock());
    l.unlock_shared();
    l.unlock_shared();
    EXPECT_TRUE(l.try_lock());
    EXPECT_FALSE(l.try_lock_shared()); // the writer excludes readers ...
    EXPECT_FALSE(l.try_lock());        // ... and writers
    l.unlock();
    EXPECT_EQ(l.readers(), 0u);
    EXPECT_EQ(l.writers(), 0u);
}

KTEST(rwlock, readers_hold_it_together) {
    Shared s;
    sched::ThreadHandle h[3];
    for (auto& t : h) t = sched::spawn(read_and_log, &s, pinned("reader", 10)).value();
    let_them_run();
    EXPECT_EQ(s.inside.load(), 3u);
    EXPECT_EQ(s.lock.readers(), 3u);
    s.release.store(true);
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(s.max_inside.load(), 3u);
}

KTEST(rwlock, a_waiting_writer_blocks_new_readers) {
    Shared s;
    s.lock.lock_shared();
    auto w = sched::spawn(write_and_log, &s, pinned("writer", 10)).value();
    let_them_run(); // the writer now waits for us to leave
    EXPECT_EQ(s.lock.writers(), 1u);
    EXPECT_FALSE(s.lock.try_lock_shared()); // writer preference
    s.release.store(true);
    auto r = sched::spawn(read_and_log, &s, pinned("reader", 12)).value();
    let_them_run(); // more urgent than the writer, the reader waits anyway
    EXPECT_EQ(s.view(), "");
    s.lock.unlock_shared();
    EXPECT_OK(sched::join(w));
    EXPECT_OK(sched::join(r));
    EXPECT_EQ(s.view(), "wr");
}

KTEST(rwlock, a_leaving_writer_admits_every_waiting_reader) {
    Shared s;
    s.lock.lock();
    sched::ThreadHandle h[3];
    unsigned prio[3] = {10, 11, 12};
    for (unsigned i = 0; i < 3; ++i) h[i] = sched::spawn(read_and_log, &s, pinned("reader", prio[i])).value();
    let_them_run();
    EXPECT_EQ(s.view(), "");
    s.lock.unlock();
    let_them_run(); // all admitted at once: they hold it together
    EXPECT_EQ(s.inside.load(), 3u);
    EXPECT_EQ(s.lock.readers(), 3u);
    s.release.store(true);
    for (auto& t : h) EXPECT_OK(sched::join(t));
}

KTEST(rwlock, a_leaving_writer_hands_over_to_the_next_writer_before_readers) {
    Shared s;
    s.release.store(true);
    s.lock.lock();
    auto r = sched::spawn(read_and_log, &s, pinned("reader", 12)).value();
    auto w = sched::spawn(write_and_log, &s, pinned("writer", 10)).value();
    let_them_run();
    EXPECT_EQ(s.lock.writers(), 2u);
    s.lock.unlock();
    EXPECT_OK(sched::join(r));
    EXPECT_OK(sched::join(w));
    EXPECT_EQ(s.view(), "wr");
}

KTEST(rwlock, timed_locks_time_out_and_leave_the_lock_usable) {
    sync::RwLock l;
    l.lock();
    Timed reader{&l, false}, writer{&l, true};
    auto tr = sched::spawn(lock_with_timeout, &reader, pinned("reader", 12)).value();
    auto tw = sched::spawn(lock_with_timeout, &writer, pinned("writer", 12)).value();
    EXPECT_OK(sched::join(tr));
    EXPECT_OK(sched::join(tw));
    EXPECT_ERROR(reader.result, Error::TimedOut);
    EXPECT_ERROR(writer.result, Error::TimedOut); // waiting for the writers' mutex
    l.unlock();
    EXPECT_EQ(l.writers(), 0u);

    // A writer timing out while it waits for readers to leave lets
    // readers in again.
    l.lock_shared();
    Timed drained{&l, true};
    auto td = sched::spawn(lock_with_timeout, &drained, pinned("writer", 12)).value();
    EXPECT_OK(sched::join(td));
    EXPECT_ERROR(drained.result, Error::TimedOut);
    EXPECT_EQ(l.writers(), 0u);
    EXPECT_TRUE(l.try_lock_shared());
    l.unlock_shared();
    l.unlock_shared();
    EXPECT_OK(l.lock_shared_until(time::now() - 1)); // free: a past deadline does not matter
    l.unlock_shared();
    EXPECT_EQ(l.readers(), 0u);
}
