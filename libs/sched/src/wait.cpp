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
    // Most waits join behind equals (a pool of same-priority threads on one
    // queue): the tail check makes that O(1) instead of a walk of the queue.
    if (WaitNode* tail = q.waiters.last(); !tail || urgency(thread_of(*tail)) >= urgency(t)) {
        q.waiters.push_back(t.waiting);
        return;
    }
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
    if constexpr (!kPriorityInheritance) return p;
    for (WaitQueue& q : t.owned)
        if (WaitNode* first = q.waiters.first()) {
            unsigned u = urgency(thread_of(*first));
            if (u > p) p = u;
        }
    return p;
}

std::uintptr_t token(const Thread& t) { return reinterpret_cast<std::uintptr_t>(&t); }
static_assert(alignof(Thread) > kPiFlags, "the lock word keeps its flags in a token's low bits");

// Records (or clears, owner = nullptr) who holds the lock q's waiters want,
// and its word. Only while q has waiters (wait.hpp's invariant).
void take_ownership(WaitQueue& q, Thread* owner, std::atomic<std::uintptr_t>* word) {
    if (q.owner != owner) {
        if (q.owner) static_cast<Thread*>(q.owner)->owned.remove(q);
        q.owner = owner;
        if (owner) owner->owned.push_back(q);
    }
    q.word = owner ? word : nullptr;
}

// A waiter has left q (woken, timed out, moved away): the owner stops
// owning a queue nobody waits on and drops what that waiter lent it.
void waiter_left(WaitQueue& q) {
    Thread* owner = static_cast<Thread*>(q.owner);
    if (!owner) return;
    if (!q.has_waiters()) take_ownership(q, nullptr, nullptr);
    recompute_priority(*owner);
}

// Takes a waiter off its queue and makes it ready (its wait is over). The
// caller then calls waiter_left(q).
void release_waiter(WaitQueue& q, Thread& t) {
    q.waiters.remove(t.waiting);
    t.blocked_on = nullptr;
    (void)time::cancel(t.timer);
    make_ready(t);
}

// Direct hand-over of the PI lock `word` to `next`, q's most urgent
// waiter: it owns the lock before it runs, so nobody can take it in
// between; it inherits from the waiters that remain. `died`: kPiOwnerDied
// when the previous owner is exiting.
void hand_over(std::atomic<std::uintptr_t>& word, WaitQueue& q, Thread& next, std::uintptr_t died) {
    q.waiters.remove(next.waiting);
    next.blocked_on = nullptr;
    (void)time::cancel(next.timer);
    bool more = q.has_waiters();
    take_ownership(q, more ? &next : nullptr, &word);
    word.store(token(next) | died | (more ? kPiWaiters : 0), std::memory_order_release);
    recompute_priority(next);
    make_ready(next);
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
    self.wait_timed = deadline != time::kNever;
    self.blocked_on = &q;
    self.last_queue = &q;
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
    waiter_left(*q); // it no longer lends its urgency
}

// Owner death (from exit_locked; t is exiting). Each owned queue has
// waiters (the invariant) and its recorded word names t: the lock goes to
// the most urgent waiter, flagged. Then the registered robust words that
// still name t (held with nobody waiting) are freed, flagged, so the next
// locker takes them with OwnerDied.
void release_locks_at_exit(Thread& t) {
    while (WaitQueue* q = t.owned.first()) {
        WaitNode* first = q->waiters.first();
        std::atomic<std::uintptr_t>* word = q->word;
        if (first && word && (word->load(std::memory_order_relaxed) & ~kPiFlags) == token(t))
            hand_over(*word, *q, thread_of(*first), kPiOwnerDied); // also unlinks q from t
        else
            take_ownership(*q, nullptr, nullptr); // cannot happen; never keep a link into this slot
    }
    for (auto*& word : t.robust) {
        if (word && (word->load(std::memory_order_relaxed) & ~kPiFlags) == token(t))
            word->store(kPiOwnerDied, std::memory_order_release);
        word = nullptr;
    }
}

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

Result<void> wait(WaitQueue& q, time::Ticks deadline, bool (*still_wait)(void*), void* arg, WaitQueue** ended_on) {
    may_block();
    if (ended_on) *ended_on = &q;
    arch::SpinlockGuard guard(g_lock);
    if (still_wait && !still_wait(arg)) return {};
    if (deadline != time::kNever && deadline <= time::now()) return Error::TimedOut;
    bool timed_out = block_on(q, deadline).timed_out;
    if (ended_on) *ended_on = current().last_queue;
    if (timed_out) return Error::TimedOut;
    return {};
}

namespace {
// Wakes up to n of q's most urgent waiters (g_lock held).
unsigned wake_locked(WaitQueue& q, unsigned n) {
    unsigned woken = 0;
    for (; woken < n; ++woken) {
        WaitNode* first = q.waiters.first();
        if (!first) break;
        release_waiter(q, thread_of(*first));
    }
    if (woken) waiter_left(q);
    return woken;
}
} // namespace

bool wake_one_and(WaitQueue& q, void (*then)(void*, bool), void* arg) {
    arch::SpinlockGuard guard(g_lock);
    bool woke = wake_locked(q, 1) != 0;
    then(arg, woke);
    if (woke) preempt_if_needed();
    return woke;
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
    unsigned n = wake_locked(q, ~0u);
    preempt_if_needed();
    return n;
}

Result<Requeued> wake_and_requeue(WaitQueue& from, unsigned n_wake, WaitQueue& to, unsigned n_move,
                                  bool (*proceed)(void*), void* arg) {
    arch::SpinlockGuard guard(g_lock);
    if (proceed && !proceed(arg)) return Error::Again;
    VERIFY(!to.owner || &to == &from); // moving onto an owned queue would bypass the PI protocol
    Requeued r{wake_locked(from, n_wake), 0};
    if (&to != &from) {
        for (; r.moved < n_move; ++r.moved) {
            WaitNode* first = from.waiters.first();
            if (!first) break;
            // Still Blocked, its timer still armed: a deadline that passes
            // finds it through blocked_on, now `to`.
            Thread& t = thread_of(*first);
            from.waiters.remove(t.waiting);
            insert_sorted(to, t);
            t.blocked_on = &to;
            t.last_queue = &to;
        }
        if (r.moved) waiter_left(from);
    }
    preempt_if_needed();
    return r;
}

Result<void> pi_lock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q, time::Ticks deadline) {
    may_block();
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    const std::uintptr_t me = token(self);
    for (;;) {
        std::uintptr_t v = word.load(std::memory_order_relaxed);
        if ((v & ~kPiFlags) == me) return Error::InvalidArgument; // already ours: no recursion
        Thread* owner = reinterpret_cast<Thread*>(v & ~kPiFlags);
        // An owner that exited without handing the lock over took it by the
        // fast path, unregistered, with nobody waiting. While its slot is
        // not reused we can tell, and recover the lock as from a dead owner.
        bool dead = owner && (owner->state == State::Free || owner->state == State::Exited);
        if (!owner || dead) {
            // Free (perhaps left flagged by a waiter that timed out, or by a
            // dead owner).
            bool more = q.has_waiters();
            if (word.compare_exchange_weak(v, me | (more ? kPiWaiters : 0), std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
                take_ownership(q, more ? &self : nullptr, &word);
                recompute_priority(self);
                if (dead || (v & kPiOwnerDied)) return Error::OwnerDied;
                return {};
            }
            continue;
        }
        // Held: flag the waiters, so that the release comes here (under
        // g_lock) and hands over instead of freeing.
        if (!(v & kPiWaiters) &&
            !word.compare_exchange_weak(v, v | kPiWaiters, std::memory_order_relaxed, std::memory_order_relaxed))
            continue;
        if (deadline != time::kNever && deadline <= time::now()) return Error::TimedOut;
        // The owner may have taken it by the fast path: make it the
        // queue's owner so that it inherits (and hands over if it exits).
        take_ownership(q, owner, &word);
        if (block_on(q, deadline).timed_out) {
            // Our word may still be flagged: the next release sorts it out.
            return Error::TimedOut;
        }
        // Handed over: the releaser wrote our token into the word; an
        // exiting owner flagged its death, which we report once.
        v = word.load(std::memory_order_relaxed);
        VERIFY((v & ~kPiFlags) == me);
        if (v & kPiOwnerDied) {
            word.fetch_and(~kPiOwnerDied, std::memory_order_relaxed);
            return Error::OwnerDied;
        }
        return {};
    }
}

Result<void> pi_unlock_slow(std::atomic<std::uintptr_t>& word, WaitQueue& q) {
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    if ((word.load(std::memory_order_relaxed) & ~kPiFlags) != token(self)) return Error::PermissionDenied;
    if (WaitNode* first = q.waiters.first()) {
        hand_over(word, q, thread_of(*first), 0);
    } else {
        take_ownership(q, nullptr, nullptr);
        word.store(0, std::memory_order_release);
    }
    recompute_priority(self); // back to what its other locks justify
    preempt_if_needed();
    return {};
}

namespace {
// The calling thread, safely: one load of the hart's current thread (a
// thread that migrates between two loads could read another's).
Thread& self_thread() { return *static_cast<Thread*>(arch::this_thread()); }
} // namespace

Result<void> robust_add(std::atomic<std::uintptr_t>& word) {
    for (auto*& slot : self_thread().robust)
        if (!slot) {
            slot = &word;
            return {};
        }
    return Error::Overflow;
}

void robust_remove(std::atomic<std::uintptr_t>& word) {
    for (auto*& slot : self_thread().robust)
        if (slot == &word) {
            slot = nullptr;
            return;
        }
}

Result<Priorities> priorities(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    return Priorities{t->base_priority, t->priority};
}

} // namespace tessera::sched
