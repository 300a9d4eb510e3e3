#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <ktest/order_log.hpp>
#include <sched-edf/edf.hpp>
#include <time/time.hpp>

using namespace tessera;

namespace {

constexpr std::uint64_t kMs = 1000000;
constexpr std::uint64_t kUs = 1000;

// Burns `ns` of this thread's own CPU time: 10 us slices of the clock,
// each counted only if nothing preempted it (a wall-clock spin would
// count the time other threads ran, or the thread sat throttled).
void spin_for_ns(std::uint64_t ns) {
    const time::Ticks slice = time::from_us(10);
    for (time::Ticks left = time::from_ns(ns); left > 0;) {
        time::Ticks start = time::now(), now;
        do now = time::now(); while (now - start < slice);
        if (now - start < 2 * slice) left = left > slice ? left - slice : 0;
    }
}

using Log = ktest::OrderLog<32>;

// A periodic job: log, work (spin), optionally block, end the job.
struct Loop {
    unsigned jobs = 1;
    std::uint64_t work_ns = 0;
    std::uint64_t sleep_ns = 0;
    std::atomic<bool>* stop = nullptr; // run until set, instead of `jobs`
    std::atomic<bool> done{false};
    Log* log = nullptr;
    char tag = 0;
};

void periodic(void* p) {
    auto& l = *static_cast<Loop*>(p);
    for (unsigned i = 0; l.stop ? !l.stop->load() : i < l.jobs; ++i) {
        if (l.log) l.log->add(l.tag);
        spin_for_ns(l.work_ns);
        if (l.sleep_ns) sched::sleep_for_ns(l.sleep_ns);
        if (l.log && l.tag >= 'a') l.log->add(static_cast<char>(l.tag - 'a' + 'A'));
        (void)sched_edf::wait_next_period();
    }
    l.done.store(true);
}

struct Hog {
    std::atomic<bool>* stop;
    std::atomic<std::uint64_t> progress{0};
};

void hog(void* p) {
    auto& h = *static_cast<Hog*>(p);
    while (!h.stop->load()) h.progress.fetch_add(1, std::memory_order_relaxed);
}

// Waits for the loop to finish, reads the thread's statistics, joins it.
sched::DeadlineStats finish(sched::ThreadHandle h, Loop& l) {
    while (!l.done.load()) sched::sleep_for_ns(kMs);
    auto s = sched_edf::stats(h);
    (void)sched::join(h);
    return s.ok() ? s.value() : sched::DeadlineStats{};
}

} // namespace

KTEST(edf, spawn_refuses_nonsense_and_overload_with_clear_errors) {
    Loop nothing;
    EXPECT_ERROR(sched_edf::spawn(periodic, &nothing, {300 * kUs, 200 * kUs, 1 * kMs}), base::Error::InvalidArgument);
    EXPECT_ERROR(sched_edf::spawn(periodic, &nothing, {100 * kUs, 0, 1 * kMs}, {"x", 16384, 7}),
                 base::Error::InvalidArgument); // no such hart
    // Every hart filled to exactly the bound (accepted), then one more
    // thread anywhere is refused. The fillers do no work, so they cost
    // nothing while they hold their reservations.
    unsigned harts = sched::online_harts();
    std::atomic<bool> stop{false};
    Loop fill[arch::kMaxHarts];
    sched::ThreadHandle fillers[arch::kMaxHarts];
    for (unsigned h = 0; h < harts; ++h) {
        fill[h].stop = &stop;
        auto r = sched_edf::spawn(periodic, &fill[h], {95 * kMs, 0, 100 * kMs}, {"fill", 16384, static_cast<int>(h)});
        ASSERT_OK(r);
        fillers[h] = r.value();
        EXPECT_EQ(sched_edf::load(h).used, sched_edf::load(h).bound);
    }
    EXPECT_ERROR(sched_edf::spawn(periodic, &nothing, {1 * kUs, 0, 1000 * kMs}), base::Error::Overloaded);
    EXPECT_ERROR(sched_edf::spawn(periodic, &nothing, {1 * kUs, 0, 1000 * kMs}, {"x", 16384, 0}),
                 base::Error::Overloaded);
    stop.store(true);
    for (unsigned h = 0; h < harts; ++h) EXPECT_OK(sched::join(fillers[h]));
    for (unsigned h = 0; h < harts; ++h) {
        EXPECT_EQ(sched_edf::load(h).used, 0u); // shares returned on exit
        EXPECT_EQ(sched_edf::load(h).threads, 0u);
    }
}

KTEST(edf, control_loop_meets_every_deadline_beside_a_cpu_hog) {
    Loop control;
    control.jobs = 30;
    control.work_ns = 1 * kMs;
    auto t = sched_edf::spawn(periodic, &control, {2 * kMs, 0, 5 * kMs}, {"control", 16384, 0});
    ASSERT_OK(t);
    // More urgent than main and every fixed priority below it; pinned
    // beside the control loop.
    Hog h{&control.done};
    auto hog_thread = sched::spawn(hog, &h, {"hog", 30, 16384, 1u});
    ASSERT_OK(hog_thread);
    sched::DeadlineStats s = finish(t.value(), control);
    EXPECT_OK(sched::join(hog_thread.value()));
    EXPECT_GE(s.jobs, 30u);
    EXPECT_EQ(s.misses, 0u);
    EXPECT_EQ(s.overruns, 0u);
    EXPECT_LE(s.max_response, time::from_ns(5 * kMs));
    EXPECT_GT(h.progress.load(), 0u); // the hog ran in the other 80%
}

KTEST(edf, an_overrunning_thread_is_throttled_and_only_it_suffers) {
    Loop greedy;
    greedy.jobs = 4;
    greedy.work_ns = 3500 * kUs; // wants 3.5x its runtime
    auto t = sched_edf::spawn(periodic, &greedy, {1 * kMs, 0, 5 * kMs}, {"greedy", 16384, 0});
    ASSERT_OK(t);
    std::uint64_t throttles_before = sched::hart_stats(0).throttles;
    Hog h{&greedy.done};
    auto hog_thread = sched::spawn(hog, &h, {"hog", 30, 16384, 1u});
    ASSERT_OK(hog_thread);
    sched::DeadlineStats s = finish(t.value(), greedy);
    EXPECT_OK(sched::join(hog_thread.value()));
    EXPECT_GE(s.overruns, 8u);     // about three per job
    EXPECT_EQ(s.misses, 4u);       // every job ended periods after its deadline
    EXPECT_GE(sched::hart_stats(0).throttles - throttles_before, 8u);
    EXPECT_GT(h.progress.load(), 0u);
}

KTEST(edf, earlier_deadline_preempts_a_later_one) {
    Log log;
    Loop urgent, relaxed;
    urgent.jobs = 2;
    urgent.log = &log;
    urgent.tag = 'b';
    relaxed.jobs = 1;
    relaxed.work_ns = 5 * kMs;
    relaxed.log = &log;
    relaxed.tag = 'a';
    // b: released now and again 4 ms later, 2 ms to finish each time.
    auto b = sched_edf::spawn(periodic, &urgent, {1 * kMs, 2 * kMs, 4 * kMs}, {"urgent", 16384, 0});
    ASSERT_OK(b);
    // a: one 5 ms job with a 20 ms deadline, started after b's first job;
    // b's second release (deadline 6 ms) must interrupt it.
    auto a = sched_edf::spawn(periodic, &relaxed, {6 * kMs, 20 * kMs, 20 * kMs}, {"relaxed", 16384, 0});
    ASSERT_OK(a);
    (void)finish(a.value(), relaxed);
    (void)finish(b.value(), urgent);
    EXPECT_EQ(log.view(), "bBabBA");
}

KTEST(edf, jobs_finishing_after_their_deadline_are_counted_as_misses) {
    Loop late;
    late.jobs = 3;
    late.sleep_ns = 1500 * kUs; // blocks past its 1 ms deadline, within its 2 ms period
    std::uint64_t misses_before = sched::stats().deadline_misses;
    auto t = sched_edf::spawn(periodic, &late, {200 * kUs, 1 * kMs, 2 * kMs}, {"late", 16384, 0});
    ASSERT_OK(t);
    sched::DeadlineStats s = finish(t.value(), late);
    EXPECT_EQ(s.misses, 3u);
    EXPECT_EQ(s.overruns, 0u);
    EXPECT_EQ(sched::stats().deadline_misses - misses_before, 3u);
}
