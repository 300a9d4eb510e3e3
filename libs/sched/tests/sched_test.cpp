#include <arch/cpu.hpp>
#include <arch/trap.hpp>
#include <arch/sbi.hpp>
#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <plat/timer.hpp>
#include <sched/sched.hpp>
#include <time/callout.hpp>

using namespace tessera;
using base::Error;

namespace {

struct Log {
    char order[16] = {};
    unsigned n = 0;
    void add(char c) { if (n < sizeof(order) - 1) order[n++] = c; }
    std::string_view view() const { return {order, n}; }
};

struct Tagged {
    Log* log;
    char tag;
};

void append_tag(void* p) {
    auto* t = static_cast<Tagged*>(p);
    t->log->add(t->tag);
}

void return_seven(void*) { sched::exit(7); }

// The cases below check ordering on one hart: their threads stay on the
// boot hart, where the ktest app keeps main (apps/ktest/main.cpp). The
// smp-specific cases spread threads out on purpose.
sched::ThreadAttributes pinned(std::string_view name, unsigned priority) {
    return {name, priority, CONFIG_SCHED_STACK_KIB * 1024, 1u};
}

} // namespace

KTEST(sched, join_returns_the_exit_status) {
    auto h = sched::spawn(return_seven, nullptr, pinned("seven", 20));
    ASSERT_OK(h);
    auto status = sched::join(h.value());
    ASSERT_OK(status);
    EXPECT_EQ(status.value(), 7);
    // The slot is gone: the handle is stale now.
    EXPECT_ERROR(sched::join(h.value()), Error::NotFound);
    EXPECT_ERROR(sched::unpark(h.value()), Error::NotFound);
}

KTEST(sched, stale_handles_never_name_a_new_thread) {
    auto first = sched::spawn(return_seven, nullptr, pinned("first", 20));
    ASSERT_OK(first);
    ASSERT_OK(sched::join(first.value()));
    auto second = sched::spawn(return_seven, nullptr, pinned("second", 20)); // likely the same slot
    ASSERT_OK(second);
    EXPECT_NE(first.value(), second.value());
    EXPECT_ERROR(sched::join(first.value()), Error::NotFound);
    EXPECT_EQ(sched::join(second.value()).value(), 7);
}

KTEST(sched, more_urgent_threads_run_first) {
    Log log;
    Tagged a{&log, 'a'}, b{&log, 'b'}, c{&log, 'c'};
    // All below main (16): none runs until main blocks in join.
    auto ha = sched::spawn(append_tag, &a, pinned("a", 5));
    auto hb = sched::spawn(append_tag, &b, pinned("b", 9));
    auto hc = sched::spawn(append_tag, &c, pinned("c", 7));
    ASSERT_OK(ha);
    ASSERT_OK(hb);
    ASSERT_OK(hc);
    EXPECT_EQ(log.view(), std::string_view(""));
    ASSERT_OK(sched::join(ha.value())); // the others are more urgent than a
    EXPECT_EQ(log.view(), std::string_view("bca"));
    ASSERT_OK(sched::join(hb.value()));
    ASSERT_OK(sched::join(hc.value()));
}

KTEST(sched, a_more_urgent_thread_preempts_its_creator) {
    Log log;
    Tagged t{&log, 'x'};
    auto h = sched::spawn(append_tag, &t, pinned("urgent", 30));
    ASSERT_OK(h);
    EXPECT_EQ(log.view(), std::string_view("x")); // already ran, before spawn returned
    ASSERT_OK(sched::join(h.value()));
}

namespace {
// Flags shared between threads are atomics, not volatile: volatile is no
// synchronization (and GCC 12 with -fsanitize=bool even hoists the re-load
// of a volatile bool out of a loop like this one).
struct Spinner {
    std::atomic<std::uint64_t> count{0};
    std::atomic<bool> stop{false};
};
void spin(void* p) {
    auto* s = static_cast<Spinner*>(p);
    while (!s->stop.load(std::memory_order_relaxed)) s->count.fetch_add(1, std::memory_order_relaxed);
}
} // namespace

KTEST(sched, equal_priorities_share_the_hart) {
    // Two busy threads at one level, main (more urgent) sleeping meanwhile:
    // round robin must give both a fair share.
    Spinner one, two;
    auto h1 = sched::spawn(spin, &one, pinned("spin1", 10));
    auto h2 = sched::spawn(spin, &two, pinned("spin2", 10));
    ASSERT_OK(h1);
    ASSERT_OK(h2);
    auto before = sched::stats();
    sched::sleep_for_ns(40'000'000); // 40 ms: about 20 quanta
    one.stop = true;
    two.stop = true;
    std::uint64_t one_count = one.count, two_count = two.count;
    ASSERT_OK(sched::join(h1.value()));
    ASSERT_OK(sched::join(h2.value()));
    EXPECT_GT(one_count, 0u);
    EXPECT_GT(two_count, 0u);
    std::uint64_t low = one_count < two_count ? one_count : two_count;
    std::uint64_t high = one_count < two_count ? two_count : one_count;
    EXPECT_GE(low * 3, high); // within a factor of 3 of each other
    EXPECT_GT(sched::stats().preemptions, before.preemptions + 5);
}

KTEST(sched, sleep_wakes_on_time) {
    for (std::uint64_t us : {300u, 1000u, 5000u}) {
        std::uint64_t start = plat::timer::now();
        sched::sleep_for_ns(us * 1000);
        std::uint64_t slept_ns = plat::timer::ticks_to_ns(plat::timer::now() - start);
        EXPECT_GE(slept_ns, us * 1000);
        EXPECT_LT(slept_ns, us * 1000 + 5'000'000); // generous: the host is shared
    }
}

namespace {
std::atomic<bool> g_woke{false};
sched::ThreadHandle g_parked;

void parker(void*) {
    sched::park();
    g_woke = true;
}

void unpark_from_interrupt(arch::TrapFrame&) {
    arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software));
    (void)sched::unpark(g_parked);
}
} // namespace

KTEST(sched, an_interrupt_that_wakes_an_urgent_thread_preempts_at_once) {
    g_woke = false;
    auto h = sched::spawn(parker, nullptr, pinned("parker", 25));
    ASSERT_OK(h);
    g_parked = h.value(); // it ran (more urgent than main) and parked
    // Borrowed from its owner (the smp library's IPI dispatcher, if any)
    // and given back below.
    auto previous = arch::interrupt_handler(arch::Interrupt::Software);
    arch::set_interrupt_handler(arch::Interrupt::Software, unpark_from_interrupt);
    auto before = sched::stats();
    ASSERT_OK(arch::sbi::send_ipi(1, arch::this_hart().hart_id)); // interrupt ourselves
    // The parked thread must have run before main gets here again.
    for (int i = 0; i < 1000 && !g_woke; ++i) arch::pause();
    EXPECT_TRUE(g_woke.load());
    EXPECT_GT(sched::stats().preemptions, before.preemptions);
    arch::set_interrupt_handler(arch::Interrupt::Software, previous);
    ASSERT_OK(sched::join(h.value()));
}

KTEST(sched, unpark_before_park_is_not_lost) {
    ASSERT_OK(sched::unpark(sched::self()));
    sched::park(); // returns at once: the token was there
    EXPECT_TRUE(true);
}

KTEST(sched, bad_requests) {
    EXPECT_ERROR(sched::spawn(nullptr, nullptr), Error::InvalidArgument);
    EXPECT_ERROR(sched::spawn(return_seven, nullptr, pinned("p0", 0)), Error::InvalidArgument);
    EXPECT_ERROR(sched::spawn(return_seven, nullptr, pinned("p32", 32)), Error::InvalidArgument);
    EXPECT_ERROR(sched::spawn(return_seven, nullptr, {"tiny", 10, 100}), Error::InvalidArgument);
    EXPECT_ERROR(sched::join(sched::self()), Error::InvalidArgument);
    EXPECT_ERROR(sched::join({12345, 1}), Error::NotFound);
}

KTEST(sched, detached_threads_clean_up_after_themselves) {
    auto before = sched::stats();
    for (int i = 0; i < 20; ++i) {
        auto h = sched::spawn(return_seven, nullptr, pinned("detached", 20));
        ASSERT_OK(h);
        // More urgent than main: it has run and exited already; detaching
        // releases it at once.
        ASSERT_OK(sched::detach(h.value()));
        EXPECT_ERROR(sched::detach(h.value()), Error::NotFound);
    }
    auto h = sched::spawn(return_seven, nullptr, pinned("detached", 5)); // lower: still waiting to run
    ASSERT_OK(h);
    ASSERT_OK(sched::detach(h.value()));
    EXPECT_ERROR(sched::join(h.value()), Error::InvalidArgument);
    sched::sleep_for_ns(1'000'000); // let it run, exit and be reaped
    EXPECT_EQ(sched::stats().live, before.live); // every slot came back
}

namespace {
sched::ThreadHandle g_target;
std::atomic<int> g_rival_join{-1000};

void rival(void*) { // tries to join a thread another thread is joining
    auto r = sched::join(g_target);
    g_rival_join = r.ok() ? r.value() : -static_cast<int>(r.error());
}

void exits_after_starting_a_rival(void*) {
    sched::sleep_for_ns(500'000);
    // The rival is less urgent than us but more urgent than main: it runs
    // right after we exit, before main (the joiner) collects our status.
    (void)sched::spawn(rival, nullptr, pinned("rival", 18));
    sched::exit(3);
}
} // namespace

KTEST(sched, a_thread_being_joined_cannot_be_joined_or_released_by_another) {
    auto before = sched::stats();
    g_rival_join = -1000;
    auto t = sched::spawn(exits_after_starting_a_rival, nullptr, pinned("target", 20));
    ASSERT_OK(t);
    g_target = t.value();
    auto status = sched::join(t.value());
    ASSERT_OK(status);
    EXPECT_EQ(status.value(), 3);
    EXPECT_EQ(g_rival_join.load(), -static_cast<int>(Error::Busy)); // regression: it used to succeed
    sched::sleep_for_ns(1'000'000); // the rival (joinable, never joined) has exited
    EXPECT_EQ(sched::stats().live, before.live + 1); // the rival's slot, not one less
}

namespace {
std::atomic<bool> g_peer_ran{false};
void set_peer_ran(void*) { g_peer_ran = true; }
} // namespace

KTEST(sched, a_peer_of_equal_priority_gets_the_hart_within_a_quantum) {
    // Regression: a peer made ready outside the timer path armed no slice
    // end, so a busy thread of the same priority kept the hart for ever.
    g_peer_ran = false;
    auto peer = sched::spawn(set_peer_ran, nullptr, pinned("peer", CONFIG_SCHED_MAIN_PRIORITY));
    ASSERT_OK(peer);
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(500'000'000);
    while (!g_peer_ran && plat::timer::now() < give_up) arch::pause(); // busy: no yield
    EXPECT_TRUE(g_peer_ran.load());
    ASSERT_OK(sched::join(peer.value()));
}

// Several harts (run in the smp2/smp4 variants too; trivially true on one).

namespace {

// Spinners that stay busy until all of them run on distinct harts at the
// same moment (bounded). Where each starts proves nothing: a thread of the
// kernel's own may hold a hart for a moment, so two spinners can start on
// one hart by turns before the scheduler moves one to the freed hart.
struct Spread {
    static constexpr unsigned kNowhere = ~0u;
    std::atomic<unsigned> arrived{0};
    std::atomic<unsigned> where[arch::kMaxHarts];
    std::atomic<bool> apart{false};
    unsigned expected = 0;

    explicit Spread(unsigned n) : expected(n) {
        for (auto& w : where) w.store(kNowhere);
    }
    bool all_apart() const {
        std::uint32_t seen = 0;
        for (unsigned i = 0; i < expected; ++i) {
            unsigned hart = where[i].load();
            if (hart == kNowhere || (seen >> hart & 1)) return false;
            seen |= 1u << hart;
        }
        return true;
    }
};

void spread_spinner(void* p) {
    auto& s = *static_cast<Spread*>(p);
    unsigned me = s.arrived.fetch_add(1);
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(2'000'000'000);
    while (!s.apart.load() && plat::timer::now() < give_up) {
        s.where[me].store(sched::current_hart());
        if (s.all_apart()) s.apart.store(true);
        arch::pause();
    }
}

struct Mover {
    std::atomic<unsigned> hart{~0u};
    std::atomic<bool> stop{false};
};

void mover(void* p) {
    auto& m = *static_cast<Mover*>(p);
    while (!m.stop.load()) m.hart.store(sched::current_hart());
}

} // namespace

KTEST(sched_smp, ready_threads_spread_over_idle_harts) {
    unsigned harts = sched::online_harts();
    Spread s(harts);
    std::uint64_t migrations_before = sched::stats().migrations;
    sched::ThreadHandle h[arch::kMaxHarts];
    for (unsigned i = 0; i < harts; ++i) {
        auto r = sched::spawn(spread_spinner, &s, {"spread", 10});
        ASSERT_OK(r);
        h[i] = r.value();
    }
    for (unsigned i = 0; i < harts; ++i) EXPECT_OK(sched::join(h[i]));
    EXPECT_EQ(s.arrived.load(), harts);
    EXPECT_TRUE(s.apart.load()); // one thread per hart
    if (harts > 1) EXPECT_GT(sched::stats().migrations, migrations_before);
}

KTEST(sched_smp, affinity_moves_a_running_thread_and_rejects_offline_masks) {
    unsigned last = sched::online_harts() - 1;
    Mover m;
    auto t = sched::spawn(mover, &m, {"mover", 10});
    ASSERT_OK(t);
    EXPECT_ERROR(sched::set_affinity(t.value(), 0), Error::InvalidArgument);
    EXPECT_ERROR(sched::set_affinity(t.value(), 1u << (arch::kMaxHarts - 1)), Error::InvalidArgument);
    ASSERT_OK(sched::set_affinity(t.value(), 1u << last));
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(1'000'000'000);
    while (m.hart.load() != last && plat::timer::now() < give_up) sched::sleep_for_ns(100'000);
    EXPECT_EQ(m.hart.load(), last);
    // Pinned: it stays there.
    sched::sleep_for_ns(5'000'000);
    EXPECT_EQ(m.hart.load(), last);
    m.stop.store(true);
    EXPECT_OK(sched::join(t.value()));
    sched::HartStats hs = sched::hart_stats(last);
    EXPECT_GT(hs.switches, 0u);
    EXPECT_GT(hs.busy_ticks, 0u);
}

namespace {

struct PingPong {
    sched::ThreadHandle peer[2];
    std::atomic<unsigned> ready{0};
    unsigned rounds = 0;
    unsigned done[2] = {};
};

struct PingPongArg {
    PingPong* game;
    unsigned me;
};

void ping_pong(void* p) {
    auto& a = *static_cast<PingPongArg*>(p);
    PingPong& g = *a.game;
    g.ready.fetch_add(1);
    while (g.ready.load() < 2) sched::yield();
    for (unsigned i = 0; i < g.rounds; ++i) {
        (void)sched::unpark(g.peer[1 - a.me]);
        sched::park();
        ++g.done[a.me];
    }
    (void)sched::unpark(g.peer[1 - a.me]);
}

} // namespace

// Each wake-up crosses harts (an IPI to a hart that may be idle in wfi):
// a lost one would hang the game.
KTEST(sched_smp, park_unpark_across_harts_loses_no_wake_up) {
    unsigned last = sched::online_harts() - 1;
    PingPong g;
    g.rounds = 2000;
    PingPongArg a0{&g, 0}, a1{&g, 1};
    // Parked threads are handed to peers before they run: create both first.
    auto t0 = sched::spawn(ping_pong, &a0, {"ping", 10, 16384, 1u});
    auto t1 = sched::spawn(ping_pong, &a1, {"pong", 10, 16384, 1u << last});
    ASSERT_OK(t0);
    ASSERT_OK(t1);
    g.peer[0] = t0.value();
    g.peer[1] = t1.value();
    EXPECT_OK(sched::join(t0.value()));
    EXPECT_OK(sched::join(t1.value()));
    EXPECT_EQ(g.done[0], g.rounds);
    EXPECT_EQ(g.done[1], g.rounds);
}


namespace {

struct Remote {
    time::Callout* callout;
    std::atomic<bool> started{false};
    std::atomic<bool> inside{false};
    std::atomic<unsigned> calls{0};
    std::atomic<unsigned> finished{0};
};

void slow_callback(void* p) {
    auto& r = *static_cast<Remote*>(p);
    r.inside.store(true);
    r.calls.fetch_add(1);
    time::Ticks end = time::now() + time::from_us(2000);
    while (time::now() < end) {}
    r.finished.fetch_add(1);
    r.inside.store(false);
}

void start_remote(void* p) {
    auto& r = *static_cast<Remote*>(p);
    // Armed from this thread's hart: it fires there.
    (void)r.callout->start_periodic(time::now() + time::from_us(500), time::from_us(3000));
    r.started.store(true);
}

} // namespace

// time::Callout across harts (here because it needs threads to arm the
// callout on another hart). The callback runs on another hart (on one hart: in this hart's timer
// interrupt) while this thread cancels: cancel_and_wait returns only once
// it has finished, and nothing fires afterwards.
KTEST(sched_smp, callout_cancel_and_wait_waits_for_a_callback_running_elsewhere) {
    unsigned last = sched::online_harts() - 1;
    Remote r;
    time::Callout c(slow_callback, &r);
    r.callout = &c;
    auto t = sched::spawn(start_remote, &r, {"arm-remote", 20, 16384, 1u << last});
    ASSERT_OK(t);
    ASSERT_OK(sched::join(t.value()));
    std::uint64_t give_up = time::now() + time::from_us(1000000);
    while (!r.inside.load() && time::now() < give_up) sched::yield();
    ASSERT_TRUE(r.calls.load() >= 1);
    ASSERT_OK(c.cancel_and_wait());
    EXPECT_FALSE(c.running());
    EXPECT_EQ(r.finished.load(), r.calls.load()); // nothing was cut short
    unsigned calls = r.calls.load();
    sched::sleep_for_ns(10'000'000);
    EXPECT_EQ(r.calls.load(), calls); // and nothing ran after
}

// Threads queued behind each other on one hart spread out as soon as their
// affinity allows other harts (placement again, not waiting for a pull).
KTEST(sched_smp, widening_affinity_lets_queued_threads_spread) {
    unsigned harts = sched::online_harts();
    Spread s(harts);
    sched::ThreadHandle h[arch::kMaxHarts];
    for (unsigned i = 0; i < harts; ++i) {
        // Below main: they wait, queued on the boot hart, until main blocks.
        auto r = sched::spawn(spread_spinner, &s, {"queued", 10, 16384, 1u});
        ASSERT_OK(r);
        h[i] = r.value();
    }
    for (unsigned i = 0; i < harts; ++i) ASSERT_OK(sched::set_affinity(h[i], sched::kAnyHart));
    for (unsigned i = 0; i < harts; ++i) EXPECT_OK(sched::join(h[i]));
    EXPECT_EQ(s.arrived.load(), harts);
    EXPECT_TRUE(s.apart.load());
}

namespace {

struct Preempted {
    std::atomic<std::uint64_t> progress{0};
    std::atomic<unsigned> hart{~0u};
    std::atomic<bool> stop{false};
    std::atomic<bool> went_on{false};
    std::atomic<bool> done{false};
    std::atomic<bool> parked{false};
};

void preempted_worker(void* p) {
    auto& w = *static_cast<Preempted*>(p);
    while (!w.stop.load()) {
        w.hart.store(sched::current_hart());
        w.progress.fetch_add(1);
    }
}

// Pinned to the worker's hart and more urgent: it takes that hart, and
// spins until the worker has made progress elsewhere (bounded).
void preempting_spinner(void* p) {
    auto& w = *static_cast<Preempted*>(p);
    // Spawning wakes idle harts in passing (the firmware's remote fence
    // for the new stack's guard page returns them from wfi), and an idle
    // hart that wakes steals the worker: the preemption that counts is the
    // unpark's, which wakes only the worker's hart.
    w.parked.store(true);
    sched::park();
    std::uint64_t start = w.progress.load();
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(1'000'000'000);
    while (w.progress.load() < start + 1000 && plat::timer::now() < give_up) arch::pause();
    w.went_on.store(w.progress.load() >= start + 1000);
    w.done.store(true);
}

} // namespace

// A thread preempted on its hart while another hart idles moves there at
// once. Idle harts wait for an interrupt and would not come for it: it
// used to wait until one happened to wake, up to as long as the
// preempting thread ran. Main stays busy meanwhile, so its hart does not
// go idle and steal the worker: a third hart is the idle one.
KTEST(sched_smp, a_preempted_thread_moves_to_an_idle_hart) {
    if (sched::online_harts() < 3) KTEST_SKIP("fewer than three harts");
    // Main keeps its hart (the ktest app pins it there) and the worker
    // keeps off it: main's own wake-ups would otherwise preempt and move
    // the worker too.
    unsigned main_hart = sched::current_hart();
    Preempted w;
    auto worker = sched::spawn(preempted_worker, &w, {"worker", 10, 16384, sched::kAnyHart & ~(1u << main_hart)});
    ASSERT_OK(worker);
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(1'000'000'000);
    while (w.progress.load() == 0 && plat::timer::now() < give_up) sched::sleep_for_ns(100'000);
    auto urgent = sched::spawn(preempting_spinner, &w, {"urgent", 12, 16384, 1u << w.hart.load()});
    if (urgent) {
        give_up = plat::timer::now() + plat::timer::ns_to_ticks(1'000'000'000);
        while (!w.parked.load() && plat::timer::now() < give_up) sched::sleep_for_ns(100'000);
        // Into park(), the worker running again, and past the one balance
        // check each idle hart still has pending from when it was busy (it
        // would wake the hart, which would then steal the worker).
        sched::sleep_for_ns((2ull * CONFIG_SCHED_BALANCE_MS + 1) * 1'000'000);
        // Pinned to where the worker runs now, and woken there.
        unsigned hart = w.hart.load();
        EXPECT_OK(sched::set_affinity(urgent.value(), 1u << hart));
        std::uint64_t handoffs = sched::stats().handoffs;
        EXPECT_OK(sched::unpark(urgent.value()));
        give_up = plat::timer::now() + plat::timer::ns_to_ticks(2'000'000'000);
        while (!w.done.load() && plat::timer::now() < give_up) arch::pause(); // busy: see above
        EXPECT_OK(sched::join(urgent.value()));
        EXPECT_TRUE(w.went_on.load());
        EXPECT_NE(w.hart.load(), hart);
        // Handed over as it was preempted, not found later by an idle hart
        // that happened to wake (a timer, another hart's remote fence).
        EXPECT_GT(sched::stats().handoffs, handoffs);
    }
    w.stop.store(true);
    EXPECT_OK(sched::join(worker.value()));
    ASSERT_OK(urgent);
}

namespace {
std::atomic<std::uint64_t> g_idle_calls{0};
std::atomic<bool> g_idle_keep_polling{false};
bool counting_idle_poll() {
    g_idle_calls.fetch_add(1, std::memory_order_relaxed);
    return g_idle_keep_polling.load(std::memory_order_relaxed);
}
template <int N> bool idle_poll_that_never_waits() { return false; }
} // namespace

KTEST(sched, idle_polls_run_while_harts_idle_and_never_hold_a_thread_up) {
    EXPECT_ERROR(sched::add_idle_poll(nullptr), Error::InvalidArgument);
    g_idle_keep_polling.store(true);
    ASSERT_OK(sched::add_idle_poll(counting_idle_poll));
    EXPECT_ERROR(sched::add_idle_poll(counting_idle_poll), Error::Busy);
    const std::uint64_t before = g_idle_calls.load();
    // The poll asks to be called again every time, so idle harts never
    // wait in wfi; the timer still wakes this thread and it runs: the
    // poll only has time no thread wants. (A poll that held the hart
    // would hang the case here.)
    for (unsigned i = 0; i < 10; ++i) sched::sleep_for_ns(200'000);
    const std::uint64_t during = g_idle_calls.load();
    EXPECT_GT(during - before, 10u); // called over and over while this thread slept
    // A spawned thread gets the hart from a polling idle thread at once.
    std::atomic<int> ran{0};
    auto t = sched::spawn([](void* p) { static_cast<std::atomic<int>*>(p)->store(1); }, &ran, {"pollee", 10, 16384, sched::kAnyHart});
    ASSERT_OK(t);
    EXPECT_OK(sched::join(t.value()));
    EXPECT_EQ(ran.load(), 1);
    // Removed: no more calls once any call under way has returned.
    sched::remove_idle_poll(counting_idle_poll);
    g_idle_keep_polling.store(false);
    sched::sleep_for_ns(1'000'000);
    const std::uint64_t after = g_idle_calls.load();
    sched::sleep_for_ns(1'000'000);
    EXPECT_EQ(g_idle_calls.load(), after);
}

KTEST(sched, idle_poll_slots_are_bounded) {
    // Some may be taken (virtio-net's receive poll): fill what is left.
    sched::IdlePoll polls[] = {idle_poll_that_never_waits<0>, idle_poll_that_never_waits<1>,
                               idle_poll_that_never_waits<2>, idle_poll_that_never_waits<3>};
    static_assert(std::size(polls) == sched::kIdlePolls);
    unsigned added = 0;
    base::Result<void> r;
    for (auto poll : polls) {
        r = sched::add_idle_poll(poll);
        if (!r.ok()) break;
        ++added;
    }
    EXPECT_GT(added, 0u);
    if (added < std::size(polls)) {
        EXPECT_ERROR(r, Error::NoMemory);
    } else {
        EXPECT_ERROR(sched::add_idle_poll(counting_idle_poll), Error::NoMemory);
    }
    for (unsigned i = 0; i < added; ++i) sched::remove_idle_poll(polls[i]);
    ASSERT_OK(sched::add_idle_poll(counting_idle_poll)); // room again
    sched::remove_idle_poll(counting_idle_poll);
}
