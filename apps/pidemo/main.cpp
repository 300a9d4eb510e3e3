// Priority inversion, with and without priority inheritance, on one hart.
// Each round: `low` (priority 5) takes the mutex and works for work_us
// (a spin on the clock); `high` (20) then wants it with
// lock_until(now + limit_us); `medium` (10), which needs no lock, spins
// for medium_us > limit_us. With priority inheritance `low` runs at 20
// while `high` waits, so `medium` cannot get in between and `high` waits
// at most the rest of the work; without it `medium` holds the hart and
// `high` times out. Lines (test_pidemo.py parses them):
//   pidemo: pi=on|off rounds=N work_us=N limit_us=N medium_us=N
//   pidemo: round=N high waited <ns> ns (bounded|timed out) low_boosted=0|1
//   pidemo: done
#include <atomic>
#include <base/string.hpp>
#include <klog/klog.hpp>
#include <plat/machine.hpp>
#include <sched/sched.hpp>
#include <sched/wait.hpp>
#include <sync/mutex.hpp>
#include <sync/semaphore.hpp>
#include <time/time.hpp>

using namespace tessera;

namespace {

#ifdef CONFIG_SCHED_PRIORITY_INHERITANCE
constexpr bool kPi = true;
#else
constexpr bool kPi = false;
#endif

constexpr unsigned kLow = 5, kMedium = 10, kHigh = 20;

std::uint64_t option(std::string_view key, std::uint64_t fallback) {
    auto value = base::parse_unsigned(plat::boot_option(key));
    return value.ok() ? value.value() : fallback;
}

struct Round {
    std::uint64_t work_us, limit_us, medium_us;
    sync::Mutex mutex;
    sync::Semaphore holding{0}; // low -> main: the mutex is taken
    bool low_boosted = false;   // written by low, read after join
    std::uint64_t waited_ns = 0;
    bool timed_out = false;
};

// CPU work: a spin on the clock (rdtime), so it ends at a fixed time
// after it started whether or not the thread kept the hart meanwhile.
template <typename Check>
void spin_until(time::Ticks end, Check check) {
    for (unsigned i = 0; time::now() < end; ++i)
        if (i % 256 == 0) check();
}

void low(void* p) {
    auto& r = *static_cast<Round*>(p);
    r.mutex.lock();
    time::Ticks end = time::now() + time::from_us(r.work_us);
    r.holding.release();
    spin_until(end, [&] {
        auto prio = sched::priorities(sched::self());
        if (prio.ok() && prio.value().effective > prio.value().base) r.low_boosted = true;
    });
    r.mutex.unlock();
}

void medium(void* p) {
    auto& r = *static_cast<Round*>(p);
    spin_until(time::now() + time::from_us(r.medium_us), [] {});
}

void high(void* p) {
    auto& r = *static_cast<Round*>(p);
    time::Ticks start = time::now();
    auto locked = r.mutex.lock_until(start + time::from_us(r.limit_us));
    r.waited_ns = time::to_ns(time::now() - start);
    r.timed_out = !locked.ok();
    if (locked.ok()) r.mutex.unlock();
}

} // namespace

int main() {
    const std::uint64_t rounds = option("pidemo.rounds", 3);
    Round r;
    r.work_us = option("pidemo.work_us", 2000);
    r.limit_us = option("pidemo.limit_us", 5000);
    r.medium_us = option("pidemo.medium_us", 20000);
    klog::print("pidemo: pi={} rounds={} work_us={} limit_us={} medium_us={}\n", kPi ? "on" : "off", rounds,
                r.work_us, r.limit_us, r.medium_us);
    // main (CONFIG_SCHED_MAIN_PRIORITY, 16) sits between medium and high:
    // it sets a round up and then waits in join().
    for (std::uint64_t i = 1; i <= rounds; ++i) {
        r.low_boosted = false;
        auto l = sched::spawn(low, &r, {"low", kLow, 16384, 1u});
        if (!l.ok()) return 1;
        (void)r.holding.acquire(); // low runs once we block, takes the mutex, wakes us
        auto h = sched::spawn(high, &r, {"high", kHigh, 16384, 1u}); // runs at once and blocks
        auto m = sched::spawn(medium, &r, {"medium", kMedium, 16384, 1u});
        if (!h.ok() || !m.ok()) return 1;
        (void)sched::join(h.value());
        (void)sched::join(m.value());
        (void)sched::join(l.value());
        klog::print("pidemo: round={} high waited {} ns ({}) low_boosted={}\n", i, r.waited_ns,
                    r.timed_out ? "timed out" : "bounded", r.low_boosted ? 1 : 0);
    }
    klog::print("pidemo: done\n");
    return 0;
}
