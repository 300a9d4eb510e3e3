#include <arch/cpu.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <sched-domains/domains.hpp>
#include <sched-edf/edf.hpp>
#include <time/time.hpp>

using namespace tessera;
using base::Error;

namespace {

constexpr std::uint64_t kMs = 1000000;

struct Hog {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> progress{0};
};

void hog(void* p) {
    auto& h = *static_cast<Hog*>(p);
    while (!h.stop.load(std::memory_order_relaxed)) h.progress.fetch_add(1, std::memory_order_relaxed);
}

sched::ThreadAttributes pinned(std::string_view name, unsigned priority) {
    return {name, priority, 16384, 1u};
}

// Burns `ns` of the caller's own CPU time in 10 us slices, counting only
// slices nothing preempted.
void spin_for_ns(std::uint64_t ns) {
    const time::Ticks slice = time::from_us(10);
    for (time::Ticks left = time::from_ns(ns); left > 0;) {
        time::Ticks start = time::now(), now;
        do now = time::now(); while (now - start < slice);
        if (now - start < 2 * slice) left = left > slice ? left - slice : 0;
    }
}

} // namespace

KTEST(domains, bad_requests) {
    EXPECT_ERROR(sched_domains::create_group(2 * kMs, 1 * kMs), Error::InvalidArgument);
    EXPECT_ERROR(sched_domains::create_group(0, 1 * kMs), Error::InvalidArgument);
    auto g = sched_domains::create_group(1 * kMs, 10 * kMs);
    ASSERT_OK(g);
    Hog h;
    auto t = sched::spawn(hog, &h, pinned("member", 5));
    ASSERT_OK(t);
    ASSERT_OK(sched_domains::join(g.value(), t.value()));
    EXPECT_ERROR(sched_domains::join(g.value(), t.value()), Error::InvalidArgument); // one group at a time
    EXPECT_ERROR(sched_domains::destroy_group(g.value()), Error::Busy);
    EXPECT_ERROR(sched_domains::set_criticality(t.value(), sched::Criticality::High), Error::InvalidArgument);
    EXPECT_ERROR(sched_domains::join(12345, t.value()), Error::NotFound);
    h.stop.store(true);
    EXPECT_OK(sched::join(t.value())); // exiting leaves the group
    EXPECT_OK(sched_domains::destroy_group(g.value()));
    EXPECT_ERROR(sched_domains::stats(g.value()), Error::NotFound);
}

KTEST(domains, a_budget_group_gets_its_share_and_no_more) {
    // Two members (above main) share 2 ms every 10 ms; a non-member below
    // them runs in the rest.
    auto g = sched_domains::create_group(2 * kMs, 10 * kMs);
    ASSERT_OK(g);
    Hog a, b, outsider;
    // Spawned below main so that they can join before they run.
    auto ta = sched::spawn(hog, &a, pinned("member-a", 4));
    auto tb = sched::spawn(hog, &b, pinned("member-b", 4));
    ASSERT_OK(ta);
    ASSERT_OK(tb);
    ASSERT_OK(sched_domains::join(g.value(), ta.value()));
    ASSERT_OK(sched_domains::join(g.value(), tb.value()));
    auto to = sched::spawn(hog, &outsider, pinned("outsider", 3));
    ASSERT_OK(to);
    ASSERT_OK(sched::set_priority(ta.value(), 20));
    ASSERT_OK(sched::set_priority(tb.value(), 20));
    // main (16) is below the members: it runs only while they are throttled.
    sched::sleep_for_ns(105 * kMs);
    sched::GroupStats s = sched_domains::stats(g.value()).value();
    a.stop.store(true);
    b.stop.store(true);
    outsider.stop.store(true);
    EXPECT_OK(sched::join(ta.value()));
    EXPECT_OK(sched::join(tb.value()));
    EXPECT_OK(sched::join(to.value()));
    EXPECT_OK(sched_domains::destroy_group(g.value()));
    EXPECT_GE(s.periods, 9u);
    EXPECT_GE(s.throttles, 9u);              // it wanted more every period
    // Never more than the budget, give or take the interrupt latency (a
    // tick under -icount; host noise without it).
    EXPECT_LE(s.max_used, time::from_us(2500));
    EXPECT_GE(s.max_used, time::from_us(1900));
    EXPECT_GT(a.progress.load(), 0u);
    EXPECT_GT(b.progress.load(), 0u);          // round robin inside the group
    EXPECT_GT(outsider.progress.load(), 0u);   // the other 80% went to the rest
}

namespace {

struct MixedCriticality {
    Hog* low;
    Hog* normal;
    unsigned jobs = 0;
    sched::Mode mode_after_overrun = sched::Mode::Lo;
    sched::Mode mode_next_job = sched::Mode::Hi;
    std::uint64_t low_before = 0, low_after = 0;
    std::uint64_t normal_before = 0, normal_after = 0;
    std::atomic<bool> done{false};
};

// Job 0: normal (1 ms of work, LO budget 2 ms). Job 1: 4 ms of work, past
// its LO budget: HI mode; it finishes on its HI budget (6 ms). Job 2: the
// release that returns the system to LO mode.
void high_thread(void* p) {
    auto& m = *static_cast<MixedCriticality*>(p);
    for (unsigned job = 0; job < 3; ++job) {
        if (job == 2) {
            m.mode_next_job = sched::criticality().mode;
            m.low_after = m.low->progress.load();
            m.normal_after = m.normal->progress.load();
        }
        spin_for_ns(job == 1 ? 4 * kMs : 1 * kMs);
        if (job == 1) {
            m.mode_after_overrun = sched::criticality().mode;
            m.low_before = m.low->progress.load();
            m.normal_before = m.normal->progress.load();
        }
        ++m.jobs;
        (void)sched_edf::wait_next_period();
    }
    m.done.store(true);
}

} // namespace

KTEST(domains, a_high_overrun_switches_to_hi_mode_and_suspends_low_work_until_its_refill) {
    Hog low, normal;
    // Low above Normal: in LO mode the Normal hog gets nothing.
    auto tl = sched::spawn(hog, &low, pinned("low", 12));
    auto tn = sched::spawn(hog, &normal, pinned("normal", 11));
    ASSERT_OK(tl);
    ASSERT_OK(tn);
    ASSERT_OK(sched_domains::set_criticality(tl.value(), sched::Criticality::Low));
    sched::ModeStats before = sched_domains::mode();
    MixedCriticality m{&low, &normal};
    auto th = sched_edf::spawn(high_thread, &m, {2 * kMs, 0, 20 * kMs, 6 * kMs}, {"high", 16384, 0});
    ASSERT_OK(th);
    while (!m.done.load()) sched::sleep_for_ns(1 * kMs);
    sched::ModeStats after = sched_domains::mode();
    EXPECT_OK(sched::join(th.value()));
    low.stop.store(true);
    normal.stop.store(true);
    EXPECT_OK(sched::join(tl.value()));
    EXPECT_OK(sched::join(tn.value()));

    EXPECT_EQ(m.jobs, 3u);
    EXPECT_TRUE(m.mode_after_overrun == sched::Mode::Hi);  // observable from the thread
    EXPECT_TRUE(m.mode_next_job == sched::Mode::Lo);       // back at its next release
    EXPECT_EQ(after.to_hi - before.to_hi, 1u);
    EXPECT_EQ(after.to_lo - before.to_lo, 1u);
    EXPECT_TRUE(after.trigger == th.value());
    EXPECT_EQ(m.low_after, m.low_before);     // Low work was suspended for the HI episode
    EXPECT_GT(m.normal_after, m.normal_before); // Normal work ran meanwhile
}
