#include <arch/cpu.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <time/callout.hpp>

using namespace tessera;

namespace {

struct Probe {
    std::atomic<unsigned> calls{0};
    time::Ticks at[16] = {};
    time::Ticks busy_for = 0; // to make the callback overrun its period
    time::Callout* self = nullptr;
    base::Result<void> self_wait = {};
};

void probe(void* p) {
    auto& pr = *static_cast<Probe*>(p);
    unsigned i = pr.calls.load();
    if (i < 16) pr.at[i] = time::now();
    if (pr.busy_for) {
        time::Ticks end = time::now() + pr.busy_for;
        while (time::now() < end) {}
    }
    if (pr.self) pr.self_wait = pr.self->cancel_and_wait();
    pr.calls.store(i + 1);
}

// Waits (in wfi) until the clock reaches `until`: the timer is tickless,
// so an event must be armed for the wait to end.
void wait_until_time(time::Ticks until) {
    std::atomic<bool> reached{false};
    struct Alarm {
        time::Event event;
        std::atomic<bool>* reached;
    } alarm{{[](time::Event& e, time::Ticks) { reinterpret_cast<Alarm*>(&e)->reached->store(true); }}, &reached};
    if (!time::arm(alarm.event, until).ok()) return;
    arch::wait_until([&] { return reached.load(); });
}

} // namespace

KTEST(time_callout, one_shot_fires_once) {
    Probe p;
    time::Callout c(probe, &p);
    time::Ticks d = time::now() + time::from_us(500);
    ASSERT_OK(c.start_at(d));
    EXPECT_TRUE(c.pending());
    arch::wait_until([&] { return p.calls.load() == 1; });
    EXPECT_GE(p.at[0], d);
    EXPECT_FALSE(c.pending());
    time::Ticks later = time::now() + time::from_us(2000);
    wait_until_time(later);
    EXPECT_EQ(p.calls.load(), 1u);
    EXPECT_EQ(c.stats().fired, 1u);
}

KTEST(time_callout, periodic_fires_on_a_grid_without_drift) {
    Probe p;
    time::Callout c(probe, &p);
    time::Ticks period = time::from_us(1000), first = time::now() + period;
    ASSERT_OK(c.start_periodic(first, period));
    arch::wait_until([&] { return p.calls.load() >= 8; });
    EXPECT_TRUE(c.cancel() || !c.pending());
    ASSERT_OK(c.cancel_and_wait());
    unsigned n = p.calls.load();
    for (unsigned i = 0; i < 8; ++i) {
        EXPECT_GE(p.at[i], first + i * period);     // never early
        EXPECT_LT(p.at[i], first + (i + 1) * period); // on its own slot of the grid
    }
    time::Ticks later = time::now() + 3 * period;
    wait_until_time(later);
    EXPECT_EQ(p.calls.load(), n); // stopped for good
}

KTEST(time_callout, zero_period_is_refused) {
    Probe p;
    time::Callout c(probe, &p);
    EXPECT_ERROR(c.start_periodic(time::now(), 0), base::Error::InvalidArgument);
    EXPECT_FALSE(c.pending());
}

KTEST(time_callout, cancel_before_the_deadline_prevents_the_call) {
    Probe p;
    time::Callout c(probe, &p);
    ASSERT_OK(c.start_at(time::now() + time::from_us(1000)));
    EXPECT_TRUE(c.cancel());
    EXPECT_FALSE(c.pending());
    time::Ticks later = time::now() + time::from_us(3000);
    wait_until_time(later);
    EXPECT_EQ(p.calls.load(), 0u);
}

KTEST(time_callout, overrunning_periodic_callback_skips_periods) {
    Probe p;
    time::Ticks period = time::from_us(500);
    p.busy_for = 3 * period;
    time::Callout c(probe, &p);
    ASSERT_OK(c.start_periodic(time::now() + period, period));
    arch::wait_until([&] { return p.calls.load() >= 3; });
    ASSERT_OK(c.cancel_and_wait());
    EXPECT_GE(c.stats().skipped, 4u); // each 3-period call skips the periods it covered
    EXPECT_FALSE(c.running());
}

KTEST(time_callout, cancel_and_wait_from_the_callback_is_refused) {
    Probe p;
    time::Callout c(probe, &p);
    p.self = &c;
    ASSERT_OK(c.start_at(time::now() + time::from_us(200)));
    arch::wait_until([&] { return p.calls.load() == 1; });
    EXPECT_ERROR(p.self_wait, base::Error::InvalidArgument);
    ASSERT_OK(c.cancel_and_wait());
}

