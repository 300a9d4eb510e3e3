// The send/receive protocol shared by mailboxes and message queues; the
// reasoning (grants, no lost wake-up, order) is in ipc/channel.hpp.
#include <base/verify.hpp>
#include <ipc/channel.hpp>

namespace tessera::ipc::detail {

// One blocking call's state, shared with still_wait (which runs in the
// scheduler under g_lock).
struct Channel::Attempt {
    Channel* self;
    Direction direction;
    Transfer move;
    void* op;
    bool moved = false; // still_wait moved the message itself
    bool wake = false;  // and owes the other direction a wake-up
};

Stats Channel::stats() const {
    arch::SpinlockGuard guard(m_lock);
    Stats s = m_stats;
    s.depth = m_count;
    return s;
}

// What a running thread (not one holding a grant) may take now: free slots
// or messages, less those granted to woken threads.
std::uint32_t Channel::open_locked(Direction d) const {
    if (d == Direction::Send) return m_capacity - m_count - m_senders.granted;
    return m_count - m_receivers.granted;
}

// Moves one message and decides whether the other direction is owed a
// wake-up (granting it the slot or message just made available). True:
// the caller must call wake_other() once m_lock is dropped.
[[gnu::always_inline]] inline bool Channel::move_locked(Direction d, Transfer move, void* op) {
    move(*this, op);
    Waiting* other;
    if (d == Direction::Send) {
        ++m_count;
        ++m_stats.sent;
        if (m_count > m_stats.peak_depth) m_stats.peak_depth = m_count;
        other = &m_receivers;
    } else {
        --m_count;
        ++m_stats.received;
        other = &m_senders;
    }
    // blocked can dip below granted for a moment (a waiter timed out and
    // cleaned up while a grant for it was on its way); then nobody is owed.
    if (other->blocked <= other->granted) return false;
    ++other->granted;
    return true;
}

void Channel::ungrant_sender(void* self) {
    auto& c = *static_cast<Channel*>(self);
    arch::SpinlockGuard guard(c.m_lock);
    --c.m_senders.granted;
}

void Channel::ungrant_receiver(void* self) {
    auto& c = *static_cast<Channel*>(self);
    arch::SpinlockGuard guard(c.m_lock);
    --c.m_receivers.granted;
}

// After a move in direction d granted something to the other direction:
// wake its most urgent waiter, or take the grant back if nobody waits any
// more (under g_lock, so no waiter can block or time out in between).
void Channel::wake_other(Direction d) {
    if (d == Direction::Send)
        (void)sched::wake_one_or(m_receivers.queue, ungrant_receiver, this);
    else
        (void)sched::wake_one_or(m_senders.queue, ungrant_sender, this);
}

// Under g_lock: move the message if we may (then do not block), else count
// ourselves as blocked in the same step.
bool Channel::still_wait(void* attempt) {
    auto& a = *static_cast<Attempt*>(attempt);
    Channel& c = *a.self;
    arch::SpinlockGuard guard(c.m_lock);
    if (c.open_locked(a.direction) > 0) {
        a.wake = c.move_locked(a.direction, a.move, a.op);
        a.moved = true;
        return false;
    }
    ++c.own(a.direction).blocked;
    ++(a.direction == Direction::Send ? c.m_stats.send_waits : c.m_stats.receive_waits);
    return true;
}

// Moves the message now if room (a message) is open to anyone, without
// the scheduler's lock. False, and a refusal counted, if not.
bool Channel::try_move(Direction d, Transfer move, void* op) {
    bool wake;
    {
        arch::SpinlockGuard guard(m_lock);
        if (open_locked(d) == 0) {
            ++(d == Direction::Send ? m_stats.full : m_stats.empty);
            return false;
        }
        wake = move_locked(d, move, op);
    }
    if (wake) wake_other(d);
    return true;
}

// transfer()'s slow path: wait until the message moved or the deadline.
base::Result<void> Channel::block(Direction d, Transfer move, void* op, time::Ticks deadline) {
    Attempt a{this, d, move, op};
    base::Result<void> r = sched::wait(own(d).queue, deadline, still_wait, &a);
    if (!r.ok()) {
        // Off the queue already (under g_lock); a grant meant for us went
        // to the next waiter or was taken back. Only our count remains.
        arch::SpinlockGuard guard(m_lock);
        --own(d).blocked;
        ++m_stats.timeouts;
        return r;
    }
    if (!a.moved) {
        // Woken by a move that granted us a slot (or a message): claim it.
        arch::SpinlockGuard guard(m_lock);
        Waiting& w = own(d);
        VERIFY(w.granted > 0 && w.blocked > 0);
        --w.granted;
        --w.blocked;
        a.wake = move_locked(d, move, op);
    }
    if (a.wake) wake_other(d);
    return {};
}

} // namespace tessera::ipc::detail
