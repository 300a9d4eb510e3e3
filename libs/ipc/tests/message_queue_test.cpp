#include "ipc_test_util.hpp"
#include <ktest/from_interrupt.hpp>
#include <cstring>
#include <ipc/message_queue.hpp>
#include <string_view>

using namespace tessera;
using namespace ipc_test;
using base::Error;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

template <typename Q>
std::string_view take(Q& q, std::span<std::byte> buf, unsigned* priority = nullptr) {
    auto r = q.try_receive(buf);
    if (!r.ok()) return "<none>";
    if (priority) *priority = r.value().priority;
    return {reinterpret_cast<const char*>(buf.data()), r.value().size};
}

} // namespace

KTEST(msgqueue, priority_order_with_fifo_within_a_priority) {
    ipc::MessageQueue<16, 8> q;
    EXPECT_OK(q.send(bytes("a1"), 1));
    EXPECT_OK(q.send(bytes("b1"), 5));
    EXPECT_OK(q.send(bytes("a2"), 1));
    EXPECT_OK(q.send(bytes("top"), 31));
    EXPECT_OK(q.send(bytes("b2"), 5));
    EXPECT_OK(q.send(bytes("zero"), 0));
    EXPECT_OK(q.send(bytes("b3"), 5));
    std::byte buf[16];
    const char* expect[] = {"top", "b1", "b2", "b3", "a1", "a2", "zero"};
    unsigned prio[] = {31, 5, 5, 5, 1, 1, 0};
    for (unsigned i = 0; i < 7; ++i) {
        unsigned p = 99;
        EXPECT_EQ(take(q, buf, &p), std::string_view(expect[i]));
        EXPECT_EQ(p, prio[i]);
    }
    EXPECT_EQ(take(q, buf), "<none>");
}

// POSIX EMSGSIZE: a message longer than the maximum, or a receive buffer
// shorter than the maximum (even when the next message would fit), is
// refused without touching the queue.
KTEST(msgqueue, message_and_buffer_sizes_are_checked_against_the_maximum) {
    ipc::MessageQueue<8, 2> q;
    EXPECT_EQ(q.max_message_size(), 8u);
    EXPECT_ERROR(q.try_send(bytes("123456789"), 0), Error::InvalidArgument);
    EXPECT_ERROR(q.send(bytes("123456789"), 0), Error::InvalidArgument);
    EXPECT_ERROR(q.try_send(bytes("x"), ipc::kMessagePriorities), Error::InvalidArgument);
    EXPECT_OK(q.try_send(bytes("12345678"), 0)); // exactly the maximum
    EXPECT_OK(q.try_send({}, 3));                // empty messages are messages
    std::byte small[7], buf[8];
    EXPECT_ERROR(q.try_receive(small), Error::InvalidArgument);
    EXPECT_ERROR(q.receive(small), Error::InvalidArgument);
    EXPECT_EQ(q.stats().depth, 2u);
    auto r = q.try_receive(buf);
    ASSERT_OK(r);
    EXPECT_EQ(r.value().size, 0u);
    EXPECT_EQ(r.value().priority, 3u);
    EXPECT_EQ(take(q, buf), "12345678");
    EXPECT_EQ(q.stats().sent, 2u);
}

// Slots are recycled through the free list: many rounds through a small
// queue, at mixed priorities, keep every message intact.
KTEST(msgqueue, full_and_empty_and_slot_reuse) {
    ipc::MessageQueue<4, 3> q;
    std::byte buf[4];
    EXPECT_ERROR(q.try_receive(buf), Error::WouldBlock);
    unsigned bad = 0;
    for (unsigned round = 0; round < 40; ++round) {
        char m[3][4];
        for (unsigned i = 0; i < 3; ++i) {
            std::memcpy(m[i], "m000", 4);
            m[i][1] = char('0' + round % 10);
            m[i][3] = char('0' + i);
            EXPECT_OK(q.try_send(bytes({m[i], 4}), (round + i) % 2));
        }
        EXPECT_ERROR(q.try_send(bytes("x"), 31), Error::WouldBlock);
        // Level 1 first (FIFO inside it), then level 0.
        for (unsigned level : {1u, 0u})
            for (unsigned i = 0; i < 3; ++i)
                if ((round + i) % 2 == level) bad += take(q, buf) != std::string_view(m[i], 4);
        EXPECT_ERROR(q.try_receive(buf), Error::WouldBlock);
    }
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(q.stats().peak_depth, 3u);
    EXPECT_EQ(q.stats().full, 40u);
}

KTEST(msgqueue, send_and_receive_time_out_at_their_deadlines) {
    ipc::MessageQueue<4, 1> q;
    std::byte buf[4];
    time::Ticks deadline = time::now() + time::from_us(2000);
    EXPECT_ERROR(q.receive(buf, deadline), Error::TimedOut);
    EXPECT_GE(time::now(), deadline);
    EXPECT_OK(q.send(bytes("a"), 0));
    deadline = time::now() + time::from_us(2000);
    EXPECT_ERROR(q.send(bytes("b"), 31, deadline), Error::TimedOut);
    EXPECT_GE(time::now(), deadline);
    EXPECT_EQ(q.stats().timeouts, 2u);
    // No trace: the message is there for a try_receive, the slot then free.
    EXPECT_EQ(take(q, buf), "a");
    EXPECT_OK(q.try_send(bytes("c"), 0));
    EXPECT_EQ(take(q, buf), "c");
}

namespace {
struct Receiver {
    ipc::MessageQueue<8, 2>* q;
    char got[8] = {};
    std::size_t size = 0;
    unsigned priority = 0;
};
void receive_one(void* p) {
    auto& r = *static_cast<Receiver*>(p);
    std::byte buf[8];
    auto res = r.q->receive(buf);
    if (!res.ok()) return;
    r.size = res.value().size;
    r.priority = res.value().priority;
    std::memcpy(r.got, buf, r.size);
}
struct Sender {
    ipc::MessageQueue<8, 2>* q;
    const char* text;
    unsigned priority;
};
void send_one(void* p) {
    auto& s = *static_cast<Sender*>(p);
    (void)s.q->send(bytes(s.text), s.priority);
}
} // namespace

KTEST(msgqueue, blocked_receiver_is_released_by_a_send) {
    ipc::MessageQueue<8, 2> q;
    Receiver r{&q};
    auto h = sched::spawn(receive_one, &r, {"receiver", 10}).value();
    ASSERT_TRUE(wait_for_receive_waits(q, 1));
    EXPECT_OK(q.send(bytes("hello"), 7));
    EXPECT_OK(sched::join(h));
    EXPECT_EQ(std::string_view(r.got, r.size), "hello");
    EXPECT_EQ(r.priority, 7u);
}

KTEST(msgqueue, blocked_sender_is_released_by_a_receive) {
    ipc::MessageQueue<8, 2> q;
    EXPECT_OK(q.send(bytes("one"), 1));
    EXPECT_OK(q.send(bytes("two"), 2));
    Sender s{&q, "three", 3};
    auto h = sched::spawn(send_one, &s, {"sender", 10}).value();
    ASSERT_TRUE(wait_for_send_waits(q, 1));
    std::byte buf[8];
    EXPECT_EQ(take(q, buf), "two");
    EXPECT_OK(sched::join(h));
    EXPECT_EQ(take(q, buf), "three"); // priority 3 overtakes "one"
    EXPECT_EQ(take(q, buf), "one");
}

namespace {
struct IrqSend {
    ipc::MessageQueue<8, 2>* q;
    unsigned accepted = 0;
};
void send_from_irq(void* p) {
    auto& s = *static_cast<IrqSend*>(p);
    s.accepted += s.q->try_send(bytes("low"), 1).ok();
    s.accepted += s.q->try_send(bytes("high"), 9).ok();
    s.accepted += s.q->try_send(bytes("over"), 31).ok(); // full: refused
}
} // namespace

KTEST(msgqueue, send_from_interrupt_context_wakes_a_blocked_receiver) {
    ipc::MessageQueue<8, 2> q;
    IrqSend s{&q};
    // The handler fires on this hart, where the ktest app keeps the case's
    // thread: the receiver it wakes runs only once it is done, as the
    // counts below assume.
    ktest::FromInterrupt irq(send_from_irq, &s);
    ASSERT_OK(irq.start_when(ipc_test::receiver_waits, static_cast<const ipc::detail::Channel*>(&q)));
    std::byte buf[8];
    auto r = q.receive(buf, time::now() + time::from_us(1'000'000));
    ASSERT_OK(r);
    // The receiver was granted the first message while the handler was
    // still sending ("low"); what it is handed is the best at its claim.
    EXPECT_TRUE(wait_for([&] { return irq.ran(); }));
    EXPECT_TRUE(irq.was_in_interrupt());
    EXPECT_EQ(s.accepted, 2u);
    EXPECT_EQ(q.stats().full, 1u);
    EXPECT_EQ(q.stats().received + q.stats().depth, 2u);
    EXPECT_EQ(q.stats().receive_waits, 1u);
}

namespace {
// Each producer sends at its own priority, so its messages stay FIFO; the
// padding makes the sizes vary.
struct QueueAdapter {
    static constexpr bool kRetriesTimeouts = false;
    ipc::MessageQueue<12, 6> channel;
    base::Result<void> send(unsigned producer, unsigned seq) {
        std::byte m[12] = {};
        m[0] = std::byte(producer);
        m[1] = std::byte(seq & 0xff);
        m[2] = std::byte(seq >> 8);
        std::size_t size = 3 + (producer + seq) % 10;
        return channel.send({m, size}, producer % ipc::kMessagePriorities);
    }
    base::Result<void> receive(unsigned& producer, unsigned& seq) {
        std::byte m[12];
        ipc::Received r = TRY(channel.receive(m));
        producer = unsigned(m[0]);
        seq = unsigned(m[1]) | unsigned(m[2]) << 8;
        if (r.size != 3 + (producer + seq) % 10 || r.priority != producer % ipc::kMessagePriorities)
            return Error::Malformed;
        return {};
    }
};
} // namespace

KTEST(msgqueue, producers_and_consumers_on_every_hart_move_every_message_once_in_order) {
    static QueueAdapter adapter;
    ipc_test::run_stress(ktest_context, adapter);
}
