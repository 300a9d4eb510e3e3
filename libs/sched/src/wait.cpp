// Wait queues and priority inheritance (sched/wait.hpp). Everything here
// runs under g_lock.
#include "internal.hpp"
#include <base/container_of.hpp>
#include <base/verify.hpp>
#include <cstddef>

namespace tessera::sched::detail {

namespace {

Thread& thread_of(WaitNode& n) {
    return base::container_of(n, &Thread::waiting);
}

// Deadline-class waiters count as the highest fixed priority when they
// rank in a queue or lend their urgency to an owner.
unsigned urgency(const Thread& t) { return t.deadline_class ? kPriorities - 1 : t.priority; }

void insert_sorted(WaitQueue& q, Thread& t) {
    for (WaitNode& n : q.waiters) {
        if (urgency(thread_of(n)) < urgency(t)) {
            q.waiters.insert_before(n, t.waiting);
            return;
        }
    }
    q.waiters.push_back(t.waiting); // FIFO among equals
}

unsigned inherited(Thread& t) {
    unsigned p = t.base_priority;
    for (WaitQueue& q : t.owned)
        if (WaitNode* first = q.waiters.first()) {
            unsigned u = urgency(thread_of(*first));
            if (u > p) p = u;
        }
    return p;
}

// sync's SYNC_PRIORITY_INHERITANCE switch. Off, no queue ever gets an
// owner, so nothing is inherited (no boost, no chain walk) while the
// lock-word protocol and its direct handover stay as they are.
#ifdef CONFIG_SYNC_PRIORITY_INHERITANCE
inline constexpr bool kPriorityInheritance = true;
#else
inline constexpr bool kPriorityInheritance = false;
#endif

void take_ownership(WaitQueue& q, Thread* owner) {
    if constexpr (!kPriorityInheritance) return;
    if (q.owner == owner) return;
    if (q.owner) static_cast<Thread*>(q.owner)->owned.remove(q);
    q.owner = owner;
    if (owner) owner->owned.push_back(q);
}

// Takes a waiter off its queue and makes it ready (its wait is over).
void release_waiter(WaitQueue& q, Thread& t) {
    q.waiters.remove(t.waiting);
    t.blocked_on = nullptr;
    (void)time::cancel(t.timer);
    make_ready(t);
}

struct BlockResult {
    bool timed_out;
};

// Blocks the current thread on q (state and queue set by the caller's
// protocol here), with an optional deadline.
BlockResult block_on(WaitQueue& q, time::Ticks deadline) {
    Thread& self = current();
    VERIFY(&self != this_rq().idle); // the idle context never blocks
    self.timed_out = false;
    self.blocked_on = &q;
    self.state = State::Blocked;
    insert_sorted(q, self);
    if (q.owner) recompute_priority(*static_cast<Thread*>(q.owner));
    if (deadline != time::kNever) VERIFY(time::arm(self.timer, deadline).ok());
    reschedule();
    return {current().timed_out};
}

} // namespace

// The effective priority of t is its base or the most urgent waiter of any
// queue it owns; a change moves it within the queue it waits on and
// carries on to that queue's owner. The walk is bounded: a cycle (a
// deadlock) must not hang the kernel here.
void recompute_priority(Thread& start) {
    Thread* t = &start;
    for (unsigned depth = 0; t && depth < kMaxThreads; ++depth) {
        if (t->deadline_class) return; // EDF order does not use priorities
        unsigned p = inherited(*t);
        if (p == t->priority) return;
        set_effective_priority(*t, p);
        WaitQueue* q = t->blocked_on;
        if (!q) return;
        q->waiters.remove(t->waiting);
        insert_sorted(*q, *t);
        t = static_cast<Thread*>(q->owner);
    }
}

void wait_timed_out(Thread& t) {
    WaitQueue* q = t.blocked_on;
    if (!q) return;
    t.timed_out = true;
    q->waiters.remove(t.waiting);
    t.blocked_on = nullptr;
    make_ready(t);
    if (q->owner) recompute_priority(*static_cast<Thread*>(q->owner)); // it no longer lends its urgency
}

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

Result<void> wait(WaitQueue& q, time::Ticks deadline, bool (*still_wait)(void*), void* arg) {
    VERIFY(!arch::in_interrupt());
    arch::SpinlockGuard guard(g_lock);
    if (still_wait && !still_wait(arg)) return {};
    if (deadline != time::kNever && deadline <= time::now()) return Error::TimedOut;
    if (block_on(q, deadline).timed_out) return Error::TimedOut;
    return {};
}

bool wake_one_and(WaitQueue& q, void (*then)(void*, bool), void* arg) {
    arch::SpinlockGuard guard(g_lock);
    WaitNode* first = q.waiters.first();
    if (first) {
        release_waiter(q, thread_of(*first));
        if (q.owner) recompute_priority(*static_cast<Thread*>(q.owner));
    }
    then(arg, first != nullptr);
    if (first) preempt_if_needed();
    return first != nullptr;
}

bool wake_one_or(WaitQueue& q, void (*otherwise)(void*), void* arg) {
    struct Otherwise {
        void (*call)(void*);
        void* arg;
    } o{otherwise, arg};
    return wake_one_and(
        q,
        [](void* p, bool woke) {
            auto& o = *static_cast<Otherwise*>(p);
            if (!woke) o.call(o.arg);
        },
        &o);
}

bool wake_one(WaitQueue& q) {
    return wake_one_or(q, [](void*) {}, nullptr);
}

unsigned wake_all(WaitQueue& q) {
    arch::SpinlockGuard guard(g_lock);
    unsigned n = 0;
    while (WaitNode* first = q.waiters.first()) {
        release_waiter(q, thread_of(*first));
        ++n;
    }
    if (q.owner) recompute_priority(*static_cast<Thread*>(q.owner));
    preempt_if_needed();
    return n;
}

Result<void> pi_lock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q, time::Ticks deadline) {
    VERIFY(!arch::in_interrupt());
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    const std::uintptr_t me = reinterpret_cast<std::uintptr_t>(&self);
    for (;;) {
        std::uintptr_t v = word.load(std::memory_order_relaxed);
        if ((v & ~kPiWaiters) == me) return Error::InvalidArgument; // already ours: no recursion
        if (v == 0 || v == kPiWaiters) {
            // Free (perhaps left flagged by a waiter that timed out).
            std::uintptr_t mine = me | (q.has_waiters() ? kPiWaiters : 0);
            if (word.compare_exchange_weak(v, mine, std::memory_order_acquire, std::memory_order_relaxed)) {
                take_ownership(q, &self);
                recompute_priority(self);
                return {};
            }
            continue;
        }
        // Held: flag the waiters, so that the release comes here (under
        // g_lock) and hands over instead of freeing.
        if (!(v & kPiWaiters) &&
            !word.compare_exchange_weak(v, v | kPiWaiters, std::memory_order_relaxed, std::memory_order_relaxed))
            continue;
        // The owner may have taken it by the fast path: make it the
        // queue's owner so that it inherits. An owner that has exited
        // (a bug in it: the lock stays held) gets no links into its slot.
        Thread* owner = reinterpret_cast<Thread*>(v & ~kPiWaiters);
        bool alive = owner->state != State::Free && owner->state != State::Exited;
        take_ownership(q, alive ? owner : nullptr);
        if (deadline != time::kNever && deadline <= time::now()) return Error::TimedOut;
        if (block_on(q, deadline).timed_out) {
            // Our word may still be flagged: the next release sorts it out.
            return Error::TimedOut;
        }
        // Handed over: the releaser wrote our token into the word.
        VERIFY((word.load(std::memory_order_relaxed) & ~kPiWaiters) == me);
        return {};
    }
}

Result<void> pi_unlock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q) {
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    std::uintptr_t v = word.load(std::memory_order_relaxed);
    if ((v & ~kPiWaiters) != reinterpret_cast<std::uintptr_t>(&self)) return Error::InvalidArgument;
    WaitNode* first = q.waiters.first();
    if (!first) {
        take_ownership(q, nullptr);
        word.store(0, std::memory_order_release);
    } else {
        // Direct handover to the most urgent waiter: it owns the lock
        // before it runs, so nobody can take it in between.
        Thread& next = thread_of(*first);
        q.waiters.remove(next.waiting);
        next.blocked_on = nullptr;
        (void)time::cancel(next.timer);
        take_ownership(q, &next);
        word.store(reinterpret_cast<std::uintptr_t>(&next) | (q.has_waiters() ? kPiWaiters : 0),
                   std::memory_order_release);
        recompute_priority(next); // inherits from the waiters that remain
        make_ready(next);
    }
    recompute_priority(self); // back to what its other locks justify
    preempt_if_needed();
    return {};
}

Result<Priorities> priorities(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    return Priorities{t->base_priority, t->priority};
}

} // namespace tessera::sched
