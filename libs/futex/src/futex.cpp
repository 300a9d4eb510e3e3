// Futex keys and queues.
//
// A key is a word's address. Each key in use has one KeyQueue from a
// fixed pool, found through a hash table of buckets (a spinlock and a
// chain each). A KeyQueue is reference-counted: one reference per thread
// that is inside a futex call on it (waiting, or waking/requeueing/
// locking), and it goes back to the pool when the last one leaves —
// waiters drop theirs themselves after their wait ends, whatever ended it
// (wake, timeout, hand-over), on the queue they ended on (a requeue moves
// their references with them). A thread holds at most two references at
// once (cmp_requeue: source and target), so 2 × CONFIG_SCHED_MAX_THREADS
// objects always suffice: no allocation, no exhaustion.
//
// Locking: a bucket's lock protects its chain and the reference counts of
// its KeyQueues; the pool lock (inside a bucket lock) the free list. No
// scheduler call is made with either held; the checks that must be atomic
// with blocking or moving (the word's value) run under the scheduler's
// lock in sched::wait's still_wait / wake_and_requeue's proceed and take
// no futex lock. Lock order in base/lock_order.hpp.
#include <arch/spinlock.hpp>
#include <base/container_of.hpp>
#include <base/verify.hpp>
#include <futex/futex.hpp>

namespace tessera::futex {

using base::Error;
using base::Result;

namespace {

static_assert((CONFIG_FUTEX_HASH_BUCKETS & (CONFIG_FUTEX_HASH_BUCKETS - 1)) == 0,
              "CONFIG_FUTEX_HASH_BUCKETS must be a power of two");

inline constexpr unsigned kPoolSize = 2 * CONFIG_SCHED_MAX_THREADS;

struct KeyQueue {
    sched::WaitQueue queue;
    std::uintptr_t key = 0;  // the word's address; 0 while in the pool
    std::uint32_t refs = 0;  // guarded by the key's bucket lock
    bool pi = false;         // a PI key (lock_pi) rather than a wait/wake one
    KeyQueue* next = nullptr; // bucket chain, or the pool's free list
};

struct Bucket {
    arch::Spinlock lock; // lock order: alone (no other lock held); the pool lock nests inside
    KeyQueue* head = nullptr;
};

constinit Bucket g_buckets[CONFIG_FUTEX_HASH_BUCKETS];
constinit KeyQueue g_pool[kPoolSize];
constinit arch::Spinlock g_pool_lock; // lock order: inside a bucket lock; guards the three below
constinit KeyQueue* g_free = nullptr;  // returned objects
constinit unsigned g_never_used = 0;   // g_pool[g_never_used..] were never handed out
constinit unsigned g_in_use = 0;

Bucket& bucket_of(std::uintptr_t key) {
    // Fibonacci hashing of the word index: neighbouring words spread out.
    std::uint64_t h = (key >> 2) * 0x9e3779b97f4a7c15ull;
    return g_buckets[h >> 32 & (CONFIG_FUTEX_HASH_BUCKETS - 1)];
}

template <typename W>
std::uintptr_t key_of(W& word) { return reinterpret_cast<std::uintptr_t>(&word); }

template <typename W>
bool misaligned(W& word) { return key_of(word) % alignof(W) != 0; }

KeyQueue* pool_take() {
    arch::SpinlockGuard guard(g_pool_lock);
    KeyQueue* k = g_free;
    if (k)
        g_free = k->next;
    else if (g_never_used < kPoolSize)
        k = &g_pool[g_never_used++];
    if (k) ++g_in_use;
    return k;
}

void pool_return(KeyQueue& k) {
    arch::SpinlockGuard guard(g_pool_lock);
    k.next = g_free;
    g_free = &k;
    --g_in_use;
}

enum class Create : bool { No, Yes };

// A reference to key's queue; NotFound if none and !create (nobody waits).
Result<KeyQueue*> get(std::uintptr_t key, bool pi, Create create) {
    Bucket& b = bucket_of(key);
    arch::SpinlockGuard guard(b.lock);
    for (KeyQueue* k = b.head; k; k = k->next) {
        if (k->key != key) continue;
        if (k->pi != pi) return Error::InvalidArgument; // one address, two protocols
        ++k->refs;
        return k;
    }
    if (create == Create::No) return Error::NotFound;
    KeyQueue* k = pool_take();
    VERIFY(k); // two per thread cover every thread's references
    k->key = key;
    k->pi = pi;
    k->refs = 1;
    k->next = b.head;
    b.head = k;
    return k;
}

// Adds n references (cmp_requeue reserves its target's before moving).
void add_refs(KeyQueue& k, unsigned n) {
    arch::SpinlockGuard guard(bucket_of(k.key).lock);
    k.refs += n;
}

// Drops n references; the last one returns the queue to the pool.
void put(KeyQueue& k, unsigned n = 1) {
    Bucket& b = bucket_of(k.key);
    arch::SpinlockGuard guard(b.lock);
    VERIFY(k.refs >= n);
    k.refs -= n;
    if (k.refs) return;
    // Every waiter holds a reference, and an owned queue has waiters: an
    // unreferenced queue is empty and unowned.
    VERIFY(!k.queue.has_waiters() && !k.queue.owner);
    KeyQueue** link = &b.head;
    while (*link != &k) link = &(*link)->next;
    *link = k.next;
    k.key = 0;
    pool_return(k);
}

KeyQueue& key_queue_of(sched::WaitQueue& q) { return base::container_of(q, &KeyQueue::queue); }

// Checked under the scheduler's lock, in the same step as blocking/moving.
struct ValueCheck {
    Word* word;
    std::uint32_t expected;
    bool changed = false;
    static bool holds(void* p) {
        auto& c = *static_cast<ValueCheck*>(p);
        c.changed = c.word->load(std::memory_order_acquire) != c.expected;
        return !c.changed;
    }
};

std::uintptr_t me() { return sched::current_token(); }

} // namespace

Result<void> wait(Word& word, std::uint32_t expected, time::Ticks deadline) {
    if (misaligned(word)) return Error::InvalidArgument;
    if (word.load(std::memory_order_acquire) != expected) return Error::Again; // no need to look the key up
    KeyQueue* k = TRY(get(key_of(word), false, Create::Yes));
    ValueCheck check{&word, expected};
    sched::WaitQueue* ended_on = nullptr;
    auto r = sched::wait(k->queue, deadline, ValueCheck::holds, &check, &ended_on);
    put(key_queue_of(*ended_on)); // where a requeue may have moved us (and our reference)
    if (check.changed) return Error::Again;
    return r;
}

Result<unsigned> wake(Word& word, unsigned n) {
    if (misaligned(word) || n == 0) return Error::InvalidArgument;
    auto k = get(key_of(word), false, Create::No);
    if (!k.ok()) return k.error() == Error::NotFound ? Result<unsigned>(0u) : Result<unsigned>(k.error());
    auto r = sched::wake_and_requeue(k.value()->queue, n, k.value()->queue, 0, nullptr, nullptr);
    put(*k.value());
    return r.value().woken;
}

Result<unsigned> cmp_requeue(Word& word, std::uint32_t expected, unsigned n_wake, Word& target, unsigned n_requeue) {
    if (misaligned(word) || misaligned(target) || &word == &target || (n_wake == 0 && n_requeue == 0))
        return Error::InvalidArgument;
    // More waiters than threads cannot exist; the bound keeps the
    // reference arithmetic below from overflowing.
    if (n_requeue > CONFIG_SCHED_MAX_THREADS) n_requeue = CONFIG_SCHED_MAX_THREADS;
    auto s = get(key_of(word), false, Create::No);
    if (!s.ok()) {
        if (s.error() != Error::NotFound) return s.error();
        return word.load(std::memory_order_acquire) == expected ? Result<unsigned>(0u) : Result<unsigned>(Error::Again);
    }
    KeyQueue& src = *s.value();
    KeyQueue* dst = nullptr;
    if (n_requeue) {
        auto d = get(key_of(target), false, Create::Yes);
        if (!d.ok()) {
            put(src);
            return d.error();
        }
        dst = d.value();
        // Reserve the moved waiters' references before they move: one that
        // times out on dst at once drops a reference already there.
        add_refs(*dst, n_requeue);
    }
    ValueCheck check{&word, expected};
    auto r = sched::wake_and_requeue(src.queue, n_wake, dst ? dst->queue : src.queue, dst ? n_requeue : 0,
                                     ValueCheck::holds, &check);
    unsigned moved = r.ok() ? r.value().moved : 0;
    if (dst) put(*dst, n_requeue - moved + 1); // the unused reservation and our own
    put(src, moved + 1);                        // the moved waiters' (now on dst) and our own
    if (!r.ok()) return r.error();
    return r.value().woken + moved;
}

namespace detail {

// The word is registered as robust (lock_pi's fast path did it).
Result<void> lock_pi_contended(PiWord& word, time::Ticks deadline) {
    auto k = get(key_of(word), true, Create::Yes);
    auto r = k.ok() ? sched::pi_lock_slow(word, k.value()->queue, deadline) : Result<void>(k.error());
    // If waiters remain, they keep the queue (the one we now own) alive.
    if (k.ok()) put(*k.value());
    if (!r.ok() && r.error() != Error::OwnerDied) sched::robust_remove(word);
    return r;
}

Result<void> unlock_pi_contended(PiWord& word) {
    if ((word.load(std::memory_order_relaxed) & ~sched::kPiFlags) != me()) return Error::PermissionDenied;
    KeyQueue* k = TRY(get(key_of(word), true, Create::Yes));
    auto r = sched::pi_unlock_slow(word, k->queue);
    put(*k);
    TRY(r);
    sched::robust_remove(word);
    return {};
}

} // namespace detail

Result<void> trylock_pi(PiWord& word) {
    if (misaligned(word)) return Error::InvalidArgument;
    TRY(sched::robust_add(word));
    std::uintptr_t v = word.load(std::memory_order_relaxed);
    // Free, or freed by a dead owner (kOwnerDied alone): take it in one CAS.
    // A free word left flagged kWaiters by a waiter that timed out needs
    // the slow path's queue check: report it held (rare, transient).
    if ((v == 0 || v == kOwnerDied) &&
        word.compare_exchange_strong(v, me(), std::memory_order_acquire, std::memory_order_relaxed))
        return v == kOwnerDied ? Result<void>(Error::OwnerDied) : Result<void>();
    sched::robust_remove(word);
    return (v & ~sched::kPiFlags) == me() ? Error::InvalidArgument : Error::WouldBlock;
}

unsigned queues_in_use() {
    arch::SpinlockGuard guard(g_pool_lock);
    return g_in_use;
}

} // namespace tessera::futex
