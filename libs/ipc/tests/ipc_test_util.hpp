#pragma once
// Helpers shared by the mailbox and msgqueue ktests: waiting for a thread
// to have blocked (by the channel's own counters, not by sleeping), and
// the multi-hart producer/consumer stress with sequence checks.
#include <arch/hart.hpp>
#include <atomic>
#include <ipc/channel.hpp>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>
#include <time/callout.hpp>

namespace ipc_test {

using namespace tessera;

// Polls `done()` until true or 2 s have passed (a generous bound: only a
// bug makes it expire), sleeping in between so that less urgent threads
// on this hart get to run. Returns done().
template <typename F>
bool wait_for(F done) {
    time::Ticks give_up = time::now() + time::from_us(2'000'000);
    while (!done() && time::now() < give_up) sched::sleep_for_ns(50'000);
    return done();
}

// Until `n` blocking sends (receives) in total have had to wait on `c`.
inline bool wait_for_send_waits(const ipc::detail::Channel& c, std::uint64_t n) {
    return wait_for([&] { return c.stats().send_waits >= n; });
}
inline bool wait_for_receive_waits(const ipc::detail::Channel& c, std::uint64_t n) {
    return wait_for([&] { return c.stats().receive_waits >= n; });
}

// For ktest::FromInterrupt::start_when(): a thread is blocked receiving
// from the channel.
inline bool receiver_waits(const void* channel) {
    return static_cast<const ipc::detail::Channel*>(channel)->stats().receive_waits >= 1;
}

// N producer and N consumer threads (N = harts + 1), spread over every
// hart, move kPerProducer messages each through one channel. Every
// message is received exactly once, each producer's messages reach every
// consumer in the order they were sent (`ordered`), and the counts
// conserve. Adapter: send(producer, seq) and receive(producer&, seq&),
// both blocking, returning Result<void>, `channel` (for its stats), and
// kRetriesTimeouts (its calls time out and retry, so timeouts are expected).
inline constexpr unsigned kPerProducer = 400;
inline constexpr unsigned kMaxProducers = arch::kMaxHarts + 1;

template <typename Adapter>
struct Stress {
    Adapter* adapter = nullptr;
    unsigned producers = 0;
    std::atomic<unsigned> next_id{0};
    std::atomic<std::uint32_t> seen[kMaxProducers][kPerProducer] = {}; // word-sized: RV64 has no byte AMOs
    std::atomic<unsigned> duplicates{0}, out_of_order{0}, failures{0};

    static void produce(void* p) {
        auto& s = *static_cast<Stress*>(p);
        unsigned me = s.next_id.fetch_add(1);
        for (unsigned i = 0; i < kPerProducer; ++i)
            if (!s.adapter->send(me, i).ok()) s.failures.fetch_add(1);
    }
    static void consume(void* p) {
        auto& s = *static_cast<Stress*>(p);
        int last[kMaxProducers];
        for (int& l : last) l = -1;
        for (unsigned i = 0; i < kPerProducer; ++i) { // as many as one producer sends
            unsigned from = 0, seq = 0;
            if (!s.adapter->receive(from, seq).ok() || from >= s.producers || seq >= kPerProducer) {
                s.failures.fetch_add(1);
                continue;
            }
            if (s.seen[from][seq].exchange(1) != 0) s.duplicates.fetch_add(1);
            if (int(seq) <= last[from]) s.out_of_order.fetch_add(1);
            last[from] = int(seq);
        }
    }
};

// Checks with the calling case's ktest_context.
template <typename Adapter>
void run_stress(ktest::Context& ktest_context, Adapter& adapter) {
    static Stress<Adapter> s; // too big for a test thread's stack
    s.adapter = &adapter;
    s.next_id = 0;
    for (auto& row : s.seen)
        for (auto& x : row) x.store(0);
    s.duplicates = 0;
    s.out_of_order = 0;
    s.failures = 0;
    unsigned harts = sched::online_harts();
    s.producers = harts + 1;
    sched::ThreadHandle h[2 * kMaxProducers];
    for (unsigned i = 0; i < s.producers; ++i) {
        std::uint32_t hart = 1u << (i % harts);
        h[2 * i] = sched::spawn(Stress<Adapter>::produce, &s, {"producer", 10, 16384, hart}).value();
        h[2 * i + 1] = sched::spawn(Stress<Adapter>::consume, &s, {"consumer", 10, 16384, 1u << ((i + 1) % harts)}).value();
    }
    for (unsigned i = 0; i < 2 * s.producers; ++i) EXPECT_OK(sched::join(h[i]));
    EXPECT_EQ(s.failures.load(), 0u);
    EXPECT_EQ(s.duplicates.load(), 0u);
    EXPECT_EQ(s.out_of_order.load(), 0u);
    unsigned missing = 0;
    for (unsigned p = 0; p < s.producers; ++p)
        for (unsigned i = 0; i < kPerProducer; ++i) missing += s.seen[p][i].load() == 0;
    EXPECT_EQ(missing, 0u);
    ipc::Stats st = adapter.channel.stats();
    EXPECT_EQ(st.sent, std::uint64_t(s.producers) * kPerProducer);
    EXPECT_EQ(st.received, st.sent);
    EXPECT_EQ(st.depth, 0u);
    if (!Adapter::kRetriesTimeouts) EXPECT_EQ(st.timeouts, 0u);
}

} // namespace ipc_test
