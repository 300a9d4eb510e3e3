#include "ipc_test_util.hpp"
#include <ktest/from_interrupt.hpp>
#include <ipc/mailbox.hpp>
#include <string_view>

using namespace tessera;
using namespace ipc_test;
using base::Error;

namespace {

struct Pair {
    std::uint32_t a;
    std::uint16_t b;
};

// Threads write a tag each into `order` when they get past a point.
struct Log {
    char order[8] = {};
    std::atomic<unsigned> n{0};
    void add(char c) { order[n.fetch_add(1)] = c; }
    std::string_view str() const { return {order, n.load()}; }
};

} // namespace

KTEST(mailbox, full_and_empty_with_try_forms) {
    ipc::Mailbox<Pair, 3> mb;
    EXPECT_EQ(mb.capacity(), 3u);
    EXPECT_ERROR(mb.try_receive(), Error::WouldBlock);
    for (std::uint32_t i = 0; i < 3; ++i) EXPECT_OK(mb.try_send({i, std::uint16_t(i * 2)}));
    EXPECT_ERROR(mb.try_send({9, 9}), Error::WouldBlock);
    for (std::uint32_t i = 0; i < 3; ++i) {
        auto r = mb.try_receive();
        ASSERT_OK(r);
        EXPECT_EQ(r.value().a, i);
        EXPECT_EQ(r.value().b, i * 2);
    }
    EXPECT_ERROR(mb.try_receive(), Error::WouldBlock);
    ipc::Stats s = mb.stats();
    EXPECT_EQ(s.sent, 3u);
    EXPECT_EQ(s.received, 3u);
    EXPECT_EQ(s.peak_depth, 3u);
    EXPECT_EQ(s.depth, 0u);
    EXPECT_EQ(s.full, 1u);
    EXPECT_EQ(s.empty, 2u);
}

KTEST(mailbox, fifo_order_across_the_ring_wrapping) {
    ipc::Mailbox<unsigned, 4> mb;
    unsigned next_in = 0, next_out = 0, bad = 0;
    for (unsigned round = 0; round < 50; ++round) {
        for (unsigned k = 0; k < 1 + round % 4; ++k) EXPECT_OK(mb.send(next_in++));
        while (mb.stats().depth > round % 2) bad += mb.receive().value() != next_out++;
    }
    while (mb.stats().depth) bad += mb.receive().value() != next_out++;
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(next_out, next_in);
}

// A timed-out waiter must leave no trace: no slot or message stays set
// aside for it, so the next try_ forms succeed.
KTEST(mailbox, receive_times_out_at_its_deadline) {
    ipc::Mailbox<unsigned, 2> mb;
    time::Ticks deadline = time::now() + time::from_us(2000);
    EXPECT_ERROR(mb.receive(deadline), Error::TimedOut);
    EXPECT_GE(time::now(), deadline);
    EXPECT_ERROR(mb.receive(time::now() - 1), Error::TimedOut); // already past
    EXPECT_EQ(mb.stats().timeouts, 2u);
    EXPECT_OK(mb.try_send(5));
    auto r = mb.try_receive();
    ASSERT_OK(r);
    EXPECT_EQ(r.value(), 5u);
}

KTEST(mailbox, send_times_out_at_its_deadline) {
    ipc::Mailbox<unsigned, 1> mb;
    EXPECT_OK(mb.try_send(1));
    time::Ticks deadline = time::now() + time::from_us(2000);
    EXPECT_ERROR(mb.send(2, deadline), Error::TimedOut);
    EXPECT_GE(time::now(), deadline);
    EXPECT_ERROR(mb.send(3, time::now() - 1), Error::TimedOut);
    EXPECT_EQ(mb.try_receive().value(), 1u); // nothing of 2 or 3 got in
    EXPECT_OK(mb.try_send(4));               // and the freed slot is not held for anyone
    EXPECT_EQ(mb.try_receive().value(), 4u);
    EXPECT_EQ(mb.stats().sent, 2u);
}

namespace {
struct Party {
    ipc::Mailbox<unsigned, 1>* mb;
    unsigned value;
    Log* log;
    char tag;
    unsigned got = 0;
};
void send_and_log(void* p) {
    auto& t = *static_cast<Party*>(p);
    if (t.mb->send(t.value).ok()) t.log->add(t.tag);
}
void receive_and_log(void* p) {
    auto& t = *static_cast<Party*>(p);
    auto r = t.mb->receive();
    if (!r.ok()) return;
    t.got = r.value();
    t.log->add(t.tag);
}
} // namespace

KTEST(mailbox, blocked_receiver_is_released_by_a_send) {
    ipc::Mailbox<unsigned, 1> mb;
    Log log;
    Party r{&mb, 0, &log, 'r'};
    auto h = sched::spawn(receive_and_log, &r, {"receiver", 10}).value();
    ASSERT_TRUE(wait_for_receive_waits(mb, 1));
    EXPECT_OK(mb.send(42));
    EXPECT_OK(sched::join(h));
    EXPECT_EQ(r.got, 42u);
    EXPECT_EQ(mb.stats().depth, 0u);
}

KTEST(mailbox, blocked_sender_is_released_by_a_receive) {
    ipc::Mailbox<unsigned, 1> mb;
    Log log;
    EXPECT_OK(mb.send(1));
    Party s{&mb, 2, &log, 's'};
    auto h = sched::spawn(send_and_log, &s, {"sender", 10}).value();
    ASSERT_TRUE(wait_for_send_waits(mb, 1));
    EXPECT_EQ(log.str(), "");
    EXPECT_EQ(mb.receive().value(), 1u);
    EXPECT_OK(sched::join(h));
    EXPECT_EQ(log.str(), "s");
    EXPECT_EQ(mb.try_receive().value(), 2u);
}

// Blocked senders get the freed slots most urgent first, FIFO among
// equals: a (8), b (12), c (10), d (12) block in that order.
KTEST(mailbox, blocked_senders_are_served_by_priority_then_fifo) {
    ipc::Mailbox<unsigned, 1> mb;
    Log log;
    EXPECT_OK(mb.send('0'));
    Party p[4] = {{&mb, 'a', &log, 'a'}, {&mb, 'b', &log, 'b'}, {&mb, 'c', &log, 'c'}, {&mb, 'd', &log, 'd'}};
    unsigned prio[4] = {8, 12, 10, 12};
    sched::ThreadHandle h[4];
    for (unsigned i = 0; i < 4; ++i) {
        h[i] = sched::spawn(send_and_log, &p[i], {"sender", prio[i]}).value();
        ASSERT_TRUE(wait_for_send_waits(mb, i + 1)); // each one blocks before the next starts
    }
    char got[6] = {};
    for (unsigned i = 0; i < 5; ++i) got[i] = char(mb.receive().value());
    for (auto& t : h) EXPECT_OK(sched::join(t));
    EXPECT_EQ(std::string_view(got, 5), "0bdca");
}

namespace {
// `urgent` (priority 20) blocks first, then `other` (priority 5) does the
// operation that releases it, both on hart 0; returns the log.
std::string_view handover(Log& log, ipc::Mailbox<unsigned, 1>& mb, void (*urgent)(void*), Party& hi,
                          void (*other)(void*), Party& lo) {
    std::uint64_t waits = mb.stats().send_waits + mb.stats().receive_waits;
    auto first = sched::spawn(urgent, &hi, {"urgent", 20, 16384, 1u}).value();
    if (!wait_for([&] { return mb.stats().send_waits + mb.stats().receive_waits > waits; })) return "<not blocked>";
    auto second = sched::spawn(other, &lo, {"other", 5, 16384, 1u}).value();
    (void)sched::join(second);
    (void)sched::join(first);
    return log.str();
}
} // namespace

// On one hart: a send to a blocked, more urgent receiver runs the receiver
// at once (it logs before the sender continues), and a receive that frees
// a slot for a blocked, more urgent sender runs the sender at once.
KTEST(mailbox, handover_to_a_more_urgent_thread_runs_it_at_once) {
    {
        ipc::Mailbox<unsigned, 1> mb;
        Log log;
        Party hi{&mb, 0, &log, 'r'}, lo{&mb, 7, &log, 's'};
        EXPECT_EQ(handover(log, mb, receive_and_log, hi, send_and_log, lo), "rs");
        EXPECT_EQ(hi.got, 7u);
    }
    {
        ipc::Mailbox<unsigned, 1> mb;
        Log log;
        EXPECT_OK(mb.send(1));
        Party hi{&mb, 2, &log, 's'}, lo{&mb, 0, &log, 'r'};
        EXPECT_EQ(handover(log, mb, send_and_log, hi, receive_and_log, lo), "sr");
        EXPECT_EQ(lo.got, 1u);
        EXPECT_EQ(mb.try_receive().value(), 2u);
    }
}

namespace {
struct IrqSend {
    ipc::Mailbox<unsigned, 1>* mb;
    bool first_ok = false;
    bool second_refused = false;
};
void send_twice_from_irq(void* p) {
    auto& s = *static_cast<IrqSend*>(p);
    s.first_ok = s.mb->try_send(77).ok();
    auto second = s.mb->try_send(78); // the mailbox holds one: full now
    s.second_refused = !second.ok() && second.error() == Error::WouldBlock;
}
} // namespace

// The main use: an interrupt handler defers work to a thread. The thread
// is already blocked in receive() when the handler sends.
KTEST(mailbox, send_from_interrupt_context_wakes_a_blocked_receiver) {
    ipc::Mailbox<unsigned, 1> mb;
    IrqSend s{&mb};
    // The handler fires on this hart, where the ktest app keeps the case's
    // thread: the receiver it wakes runs only once it is done, as the
    // counts below assume.
    ktest::FromInterrupt irq(send_twice_from_irq, &s);
    ASSERT_OK(irq.start_when(ipc_test::receiver_waits, static_cast<const ipc::detail::Channel*>(&mb)));
    auto r = mb.receive(time::now() + time::from_us(1'000'000));
    ASSERT_OK(r);
    EXPECT_EQ(r.value(), 77u);
    EXPECT_TRUE(wait_for([&] { return irq.ran(); }));
    EXPECT_TRUE(irq.was_in_interrupt());
    EXPECT_TRUE(s.first_ok);
    EXPECT_TRUE(s.second_refused);
    EXPECT_EQ(mb.stats().receive_waits, 1u);
}

namespace {
struct Tagged {
    std::uint16_t producer;
    std::uint16_t seq;
};
// With a timeout (µs) every call waits at most that long and then tries
// again: waiters keep timing out while grants are on their way to them,
// the race the grant protocol must survive without losing or doubling a
// message.
template <unsigned N, unsigned TimeoutUs>
struct MailboxAdapter {
    static constexpr bool kRetriesTimeouts = TimeoutUs != 0;
    ipc::Mailbox<Tagged, N> channel;
    static time::Ticks deadline() { return TimeoutUs ? time::now() + time::from_us(TimeoutUs) : time::kNever; }
    base::Result<void> send(unsigned producer, unsigned seq) {
        for (;;) {
            auto r = channel.send({std::uint16_t(producer), std::uint16_t(seq)}, deadline());
            if (r.ok() || r.error() != Error::TimedOut) return r;
        }
    }
    base::Result<void> receive(unsigned& producer, unsigned& seq) {
        for (;;) {
            auto r = channel.receive(deadline());
            if (!r.ok() && r.error() == Error::TimedOut) continue;
            Tagged t = TRY(r);
            producer = t.producer;
            seq = t.seq;
            return {};
        }
    }
};
} // namespace

KTEST(mailbox, producers_and_consumers_on_every_hart_move_every_message_once_in_order) {
    static MailboxAdapter<4, 0> adapter;
    ipc_test::run_stress(ktest_context, adapter);
}

KTEST(mailbox, stress_with_waiters_timing_out_loses_and_doubles_nothing) {
    static MailboxAdapter<1, 2> adapter;
    ipc_test::run_stress(ktest_context, adapter);
    EXPECT_GT(adapter.channel.stats().timeouts, 0u); // the race was exercised
}
