// Every primitive under load from threads on every hart: a fixed number of
// operations each (kOps), so a case takes about as long on one hart as on
// four. Kept small: 4 vCPUs sharing 2 busy host cores make every
// cross-hart wake-up slow (a vCPU holding the scheduler's lock can be
// descheduled by the host).
#include <arch/hart.hpp>
#include <atomic>
#include <base/verify.hpp>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <sync/barrier.hpp>
#include <sync/condvar.hpp>
#include <sync/mutex.hpp>
#include <sync/rwlock.hpp>
#include <sync/semaphore.hpp>

using namespace tessera;

namespace {

constexpr unsigned kMaxThreads = 2 * arch::kMaxHarts + 2;

constexpr unsigned kOps = 400;

unsigned threads() { return 2 * sched::online_harts() + 1; } // more threads than harts: they block and migrate

// Runs `n` threads of `entry` at priorities 10..12 on any hart and joins
// them (a failure to start one is a broken kernel here: it panics).
void run_all(void (*entry)(void*), void* arg, unsigned n) {
    VERIFY(n <= kMaxThreads);
    sched::ThreadHandle h[kMaxThreads];
    for (unsigned i = 0; i < n; ++i) h[i] = sched::spawn(entry, arg, {"stress", 10 + i % 3}).value();
    for (unsigned i = 0; i < n; ++i) VERIFY(sched::join(h[i]).ok());
}

struct Counter {
    sync::Mutex m;
    std::uint64_t value = 0; // guarded by m; plain on purpose
};
void mutex_count(void* p) {
    auto& c = *static_cast<Counter*>(p);
    for (unsigned i = 0; i < kOps; ++i) {
        if (i % 3 == 0) {
            while (!c.m.lock_until(time::now() + time::from_us(50)).ok()) {} // timeouts mixed in
        } else {
            c.m.lock();
        }
        std::uint64_t v = c.value;
        if (i % 128 == 0) sched::yield();
        c.value = v + 1;
        c.m.unlock();
    }
}

struct Units {
    sync::Semaphore sem{3};
    std::atomic<int> held{0};
    std::atomic<unsigned> too_many{0};
};
void semaphore_hold(void* p) {
    auto& u = *static_cast<Units*>(p);
    for (unsigned i = 0; i < kOps; ++i) {
        if (i % 4 == 0) {
            if (!u.sem.acquire(time::now() + time::from_us(20)).ok()) continue; // a timed-out waiter leaves
        } else if (!u.sem.try_acquire()) {
            (void)u.sem.acquire();
        }
        if (u.held.fetch_add(1) + 1 > 3) u.too_many.fetch_add(1);
        if (i % 64 == 0) sched::yield();
        u.held.fetch_sub(1);
        u.sem.release();
    }
}

struct Queue {
    static constexpr unsigned kSlots = 4;
    sync::Mutex m;
    sync::ConditionVariable not_empty, not_full;
    std::uint32_t items[kSlots] = {}; // guarded by m
    unsigned head = 0, size = 0;      // guarded by m
    std::atomic<std::uint64_t> sum{0};
    std::atomic<unsigned> taken{0};
    std::atomic<unsigned> next_item{1};
    unsigned total = 0;
};
void cv_produce(void* p) {
    auto& q = *static_cast<Queue*>(p);
    for (;;) {
        unsigned item = q.next_item.fetch_add(1);
        if (item > q.total) return;
        sync::MutexGuard guard(q.m);
        while (q.size == Queue::kSlots) q.not_full.wait(q.m);
        q.items[(q.head + q.size++) % Queue::kSlots] = item;
        q.not_empty.signal();
    }
}
void cv_consume(void* p) {
    auto& q = *static_cast<Queue*>(p);
    for (;;) {
        std::uint32_t item;
        {
            sync::MutexGuard guard(q.m);
            while (q.size == 0) {
                if (q.taken.load() >= q.total) return;
                q.not_empty.wait(q.m);
            }
            item = q.items[q.head];
            q.head = (q.head + 1) % Queue::kSlots;
            --q.size;
            if (q.taken.fetch_add(1) + 1 == q.total) q.not_empty.broadcast(); // the other consumers stop
        }
        q.not_full.signal(); // outside the mutex
        q.sum.fetch_add(item);
    }
}
void cv_worker(void* p) {
    static std::atomic<unsigned> role{0};
    (role.fetch_add(1) % 2 ? cv_consume : cv_produce)(p);
}

struct Pair {
    sync::RwLock l;
    std::uint64_t a = 0, b = 0; // invariant under l: a == b (a written first)
    std::atomic<unsigned> broken{0};
    std::atomic<unsigned> reads{0}, writes{0};
};
void rw_mix(void* p) {
    auto& pr = *static_cast<Pair*>(p);
    for (unsigned i = 0; i < kOps; ++i) {
        if (i % 8 == 0) {
            sync::WriteGuard guard(pr.l);
            pr.a = pr.a + 1;
            if (i % 64 == 0) sched::yield(); // readers pile up behind us
            pr.b = pr.b + 1;
            pr.writes.fetch_add(1);
        } else {
            sync::ReadGuard guard(pr.l);
            if (pr.a != pr.b) pr.broken.fetch_add(1);
            pr.reads.fetch_add(1);
        }
    }
}

constexpr unsigned kRounds = 25;

struct Rounds {
    sync::Barrier* barrier;
    std::atomic<unsigned> serial{0};
    std::atomic<unsigned> in_round[64] = {};
    std::atomic<unsigned> early{0};
    unsigned n = 0;
};
void barrier_rounds(void* p) {
    auto& r = *static_cast<Rounds*>(p);
    for (unsigned i = 0; i < kRounds; ++i) {
        r.in_round[i % 64].fetch_add(1);
        if (r.barrier->arrive_and_wait()) r.serial.fetch_add(1);
        // Everyone of this round has arrived; nobody can be two rounds on.
        if (r.in_round[i % 64].load() % r.n != 0) r.early.fetch_add(1);
        if (!r.barrier->arrive_and_wait()) continue; // keep rounds apart for the check
        r.in_round[i % 64].fetch_sub(r.n);
    }
}

} // namespace

KTEST(sync_stress, mutex_counter) {
    Counter c;
    unsigned n = threads();
    run_all(mutex_count, &c, n);
    EXPECT_EQ(c.value, std::uint64_t(n) * kOps);
    EXPECT_FALSE(c.m.is_locked());
}

KTEST(sync_stress, semaphore_units_are_conserved) {
    Units u;
    run_all(semaphore_hold, &u, threads());
    EXPECT_EQ(u.too_many.load(), 0u);
    EXPECT_EQ(u.sem.count(), 3u);
    EXPECT_FALSE(u.sem.waiters_flagged());
}

KTEST(sync_stress, condvar_queue_loses_no_item) {
    Queue q;
    q.total = 400;
    unsigned n = threads() + 1; // an even split of producers and consumers
    run_all(cv_worker, &q, n);
    EXPECT_EQ(q.taken.load(), q.total);
    EXPECT_EQ(q.sum.load(), std::uint64_t(q.total) * (q.total + 1) / 2);
}

KTEST(sync_stress, rwlock_readers_see_the_writers_invariant) {
    Pair pr;
    unsigned n = threads();
    run_all(rw_mix, &pr, n);
    EXPECT_EQ(pr.broken.load(), 0u);
    EXPECT_EQ(pr.writes.load(), n * (kOps / 8));
    EXPECT_EQ(pr.a, std::uint64_t(n) * (kOps / 8));
    EXPECT_EQ(pr.l.readers(), 0u);
    EXPECT_EQ(pr.l.writers(), 0u);
}

KTEST(sync_stress, barrier_rounds) {
    unsigned n = threads();
    sync::Barrier b(n);
    Rounds r;
    r.barrier = &b;
    r.n = n;
    run_all(barrier_rounds, &r, n);
    EXPECT_EQ(r.serial.load(), kRounds);
    EXPECT_EQ(r.early.load(), 0u);
    EXPECT_EQ(b.generation(), 2 * kRounds);
}
