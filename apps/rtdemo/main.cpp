// An EDF control loop beside CPU-hungry best-effort threads on one hart:
// every job must finish by its deadline whatever the hogs do. Reports, in
// lines test_edf.py and make bench parse:
//   rtdemo: mode=edf period_us=1000 runtime_us=200 work_us=100 hogs=3 seconds=10
//   rtdemo: jobs=N misses=N overruns=N skipped=N max_response_ns=N
//   histogram wakeup count=... p99=... max=... unit=ns      (release -> running)
//   rtdemo: hog_iterations=N
//   rtdemo: overload refused: <error>       (admission control)
//   rtdemo: done
#include <atomic>
#include <base/string.hpp>
#include <klog/klog.hpp>
#include <plat/machine.hpp>
#include <sched-edf/edf.hpp>
#include <time/time.hpp>

using namespace tessera;

namespace {

std::uint64_t option(std::string_view key, std::uint64_t fallback) {
    auto value = base::parse_unsigned(plat::boot_option(key));
    return value.ok() ? value.value() : fallback;
}

struct Config {
    std::uint64_t seconds, period_us, runtime_us, work_us, hogs;
    bool edf;
};
Config g_config;
std::atomic<bool> g_stop{false};
std::atomic<std::uint64_t> g_hog_iterations{0};
std::atomic<std::uint64_t> g_jobs{0};
// Fixed-priority mode keeps its own miss count: a job ends late if it
// finishes after the next release.
std::atomic<std::uint64_t> g_fixed_misses{0};

// The control law stands in as a spin of the clock: the loop is never
// preempted by the hogs, so this is CPU time.
void work(std::uint64_t us) {
    time::Ticks end = time::now() + time::from_us(us);
    while (time::now() < end) {}
}

void edf_loop(void*) {
    while (!g_stop.load(std::memory_order_relaxed)) {
        work(g_config.work_us);
        g_jobs.fetch_add(1, std::memory_order_relaxed);
        (void)sched_edf::wait_next_period();
    }
}

void fixed_loop(void*) {
    time::Ticks period = time::from_us(g_config.period_us);
    time::Ticks next = time::now();
    while (!g_stop.load(std::memory_order_relaxed)) {
        work(g_config.work_us);
        g_jobs.fetch_add(1, std::memory_order_relaxed);
        next += period;
        if (time::now() > next) g_fixed_misses.fetch_add(1, std::memory_order_relaxed);
        sched::sleep_until(next);
    }
}

void hog(void*) {
    while (!g_stop.load(std::memory_order_relaxed)) g_hog_iterations.fetch_add(1, std::memory_order_relaxed);
}

void idle_job(void*) {}

} // namespace

int main() {
    g_config = {option("rtdemo.seconds", 10), option("rtdemo.period_us", 1000), option("rtdemo.runtime_us", 200),
                option("rtdemo.work_us", 100), option("rtdemo.hogs", 3), plat::boot_option("rtdemo.mode") != "fixed"};
    const Config& c = g_config;
    klog::print("rtdemo: mode={} period_us={} runtime_us={} work_us={} hogs={} seconds={}\n",
                c.edf ? "edf" : "fixed", c.period_us, c.runtime_us, c.work_us, c.hogs, c.seconds);

    // Best-effort hogs below main (main must wake to end the run), all on
    // the control loop's hart.
    sched::ThreadHandle hogs[8];
    unsigned hog_count = c.hogs < 8 ? static_cast<unsigned>(c.hogs) : 8;
    for (unsigned i = 0; i < hog_count; ++i) {
        auto h = sched::spawn(hog, nullptr, {"hog", 5 + i, 16384, 1u});
        if (!h.ok()) {
            klog::print("rtdemo: cannot start hog: {}\n", h.error());
            return 1;
        }
        hogs[i] = h.value();
    }

    sched::reset_wakeup_latency();
    time::reset_lateness();
    time::Ticks end = time::now() + time::from_us(c.seconds * 1000000);
    base::Result<sched::ThreadHandle> loop = base::Error::NotFound;
    if (c.edf) {
        loop = sched_edf::spawn(edf_loop, nullptr, {c.runtime_us * 1000, 0, c.period_us * 1000}, {"control", 16384, 0});
    } else {
        loop = sched::spawn(fixed_loop, nullptr, {"control", 30, 16384, 1u});
    }
    if (!loop.ok()) {
        klog::print("rtdemo: cannot start the control loop: {}\n", loop.error());
        return 1;
    }
    sched::sleep_until(end);

    // The measurement window ends here, with the loop still running.
    sched::DeadlineStats s = {};
    if (c.edf) s = sched_edf::stats(loop.value()).value_or(sched::DeadlineStats{});
    else s.misses = g_fixed_misses.load();
    std::uint64_t jobs = g_jobs.load();
    time::Histogram wakeup = sched::wakeup_latency();
    time::Histogram lateness = time::lateness();
    sched::Stats st = sched::stats();

    // Overload: one more EDF thread that would take the hart past the
    // admission bound must be refused, before anything of it runs.
    if (c.edf) {
        std::uint64_t period_ns = c.period_us * 1000;
        auto extra = sched_edf::spawn(idle_job, nullptr, {period_ns - c.runtime_us * 1000 + period_ns / 100, 0,
                                                          period_ns}, {"extra", 16384, 0});
        if (extra.ok()) klog::print("rtdemo: overload ADMITTED (admission control failed)\n");
        else klog::print("rtdemo: overload refused: {}\n", extra.error());
    }

    g_stop.store(true);
    (void)sched::join(loop.value());
    for (unsigned i = 0; i < hog_count; ++i) (void)sched::join(hogs[i]);

    klog::print("rtdemo: jobs={} misses={} overruns={} skipped={} max_response_ns={}\n", jobs, s.misses,
                s.overruns, s.skipped, time::to_ns(s.max_response));
    wakeup.print("wakeup");
    lateness.print("timer_lateness");
    klog::print("rtdemo: hog_iterations={} switches={} preemptions={} throttles={}\n", g_hog_iterations.load(),
                st.switches, st.preemptions, st.throttles);
    klog::print("rtdemo: done\n");
    return 0;
}
