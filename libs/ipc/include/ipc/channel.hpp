#pragma once
// The machinery shared by Mailbox and MessageQueue: one spinlock, a count of
// messages held, two wait queues, and the hand-over protocol between
// blocked and running threads. It is not a template, so every mailbox and
// message queue type shares one copy of it (src/channel.cpp); the derived
// types only say how one message is copied in or out (a Transfer, run
// under the lock).
//
// SMP-safe. The non-blocking forms (try_send/try_receive) may be called
// from interrupt handlers; the blocking forms only from threads.
//
// Locks: m_lock (one per channel) protects the storage and every counter
// below. It is taken under the scheduler's g_lock (in wait()'s still_wait
// and wake_one_or()'s otherwise) and nothing is taken under it, so a
// sched function is never called with it held (base/lock_order.hpp).
//
// Protocol (why no wake-up is lost and a woken thread is never robbed).
// Each direction has a wait queue and two counters:
//   blocked  threads that decided, under m_lock and g_lock together (in
//            still_wait), to block on the queue, and have not yet come
//            back to claim a grant or to clean up after a timeout;
//   granted  free slots (senders' side) or messages (receivers' side) set
//            aside for threads woken from that queue; each woken thread
//            owns exactly one, and no one else may take it.
// A sender may use a slot only if capacity - count - send.granted > 0; a
// receiver a message only if count - receive.granted > 0. Whoever moves a
// message (a put or a get, by either a running or a woken thread) looks at
// the other direction under the same m_lock hold: if blocked > granted,
// someone may be waiting there with nothing set aside, so the freed slot
// (or the new message) is granted, and after m_lock is dropped
// wake_one_or() wakes the most urgent waiter, or, if the queue turns out
// to be empty (that waiter timed out meanwhile), takes the grant back —
// both under g_lock, the lock a timeout also runs under, so exactly one of
// "woken with a grant" and "timed out" happens to each waiter.
//   No lost wake-up: a thread blocks only if still_wait, holding g_lock and
// m_lock, found nothing it may take; it is counted in `blocked` in that same
// step. A move that happens before that step is seen by the check; a move
// after it sees the count, grants, and its wake_one_or (which needs g_lock,
// so it comes after the thread is on the queue) finds the thread, or one
// ahead of it, or nobody because they timed out.
//   No stolen slot: a woken thread claims its grant under m_lock; grants
// are invisible to try_ forms and to still_wait, so a running thread (or
// an interrupt handler) cannot take a slot meant for a waiter; it is
// refused (or blocks) while waiters are owed everything free.
//   A timed-out waiter leaves no trace: wait() removed it from the queue
// under g_lock; it then drops its `blocked` count; a grant made for it in
// between went to another waiter or came back through wake_one_or.
//
// Order: free slots (messages) are granted to blocked threads in wait-queue
// order — most urgent first, FIFO among equal priorities — and a thread
// that finds room does not overtake threads already blocked (their grants
// are reserved). A woken sender's message enters the ring when that sender
// runs and claims its grant, so when several senders are woken close
// together on different harts their messages may enter in the order they
// get to run rather than the order they were woken. One thread's own
// messages always arrive in the order it sent them.
#include <arch/spinlock.hpp>
#include <base/result.hpp>
#include <cstdint>
#include <sched/wait.hpp>
#include <time/time.hpp>

namespace tessera::ipc {

struct Stats {
    std::uint64_t sent;
    std::uint64_t received;
    std::uint32_t depth;      // messages held now
    std::uint32_t peak_depth; // most messages ever held at once
    std::uint64_t full;       // sends that found no free slot: try_send refused, or send went on to wait
    std::uint64_t empty;      // receives that found no message, likewise
    std::uint64_t send_waits; // blocking sends that had to wait (block)
    std::uint64_t receive_waits;
    std::uint64_t timeouts;   // blocking calls that ended with TimedOut
};

namespace detail {

class Channel {
public:
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    Stats stats() const;
    std::uint32_t capacity() const { return m_capacity; }

protected:
    // Moves one message between the caller's description `op` and the
    // storage; runs under m_lock, with room (or a message) guaranteed.
    using Transfer = void (*)(Channel& self, void* op);
    enum class Direction : std::uint8_t { Send, Receive };

    // Destroying a channel that threads still block on is a bug.
    constexpr explicit Channel(std::uint32_t capacity) : m_capacity(capacity) {}

    // Blocks until the message moved or `deadline` (absolute) passed
    // (TimedOut; nothing moved). Threads only. Inline: the fast path is
    // one out-of-line call.
    base::Result<void> transfer(Direction d, Transfer move, void* op, time::Ticks deadline) {
        if (try_move(d, move, op)) return {};
        return block(d, move, op, deadline);
    }
    // WouldBlock at once if nothing may move. Also from interrupt handlers.
    base::Result<void> try_transfer(Direction d, Transfer move, void* op) {
        if (try_move(d, move, op)) return {};
        return base::Error::WouldBlock;
    }

private:
    struct Waiting {
        sched::WaitQueue queue;
        std::uint32_t blocked = 0;
        std::uint32_t granted = 0;
    };
    struct Attempt;

    Waiting& own(Direction d) { return d == Direction::Send ? m_senders : m_receivers; }
    std::uint32_t open_locked(Direction d) const;
    // Moves the message now if it may (see open_locked); else false.
    bool try_move(Direction d, Transfer move, void* op);
    base::Result<void> block(Direction d, Transfer move, void* op, time::Ticks deadline);
    bool move_locked(Direction d, Transfer move, void* op);
    void wake_other(Direction d);
    static bool still_wait(void* attempt);
    static void ungrant_sender(void* self);
    static void ungrant_receiver(void* self);

    mutable arch::Spinlock m_lock; // everything below; under sched g_lock
    const std::uint32_t m_capacity;
    std::uint32_t m_count = 0;
    Waiting m_senders;   // blocked while no slot is free
    Waiting m_receivers; // blocked while no message is there
    Stats m_stats = {};
};

} // namespace detail
} // namespace tessera::ipc
