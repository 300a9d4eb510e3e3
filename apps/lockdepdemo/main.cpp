// Locking bugs lockdep finds even when the run happens not to deadlock.
// Prints "lockdepdemo: scenario <name>" first and, if no report stopped the
// kernel, "lockdepdemo: done"; test_lockdep.py checks the reports.
#include <arch/spinlock.hpp>
#include <atomic>
#include <klog/klog.hpp>
#include <plat/machine.hpp>
#include <sched/sched.hpp>
#include <sync/mutex.hpp>
#include <time/callout.hpp>
#include <time/time.hpp>

using namespace tessera;

namespace {

// A bank: transfers lock the accounts, then the ledger; the audit (buggy
// version) locks the ledger, then the accounts. Run one after the other
// they never deadlock, which is why only lockdep notices.
sync::Mutex g_accounts("accounts");
sync::Mutex g_ledger("ledger");

void transfer(void*) {
    sync::MutexGuard a(g_accounts);
    sync::MutexGuard l(g_ledger);
    klog::print("lockdepdemo: transfer booked\n");
}

void audit(void* buggy) {
    if (buggy) {
        sync::MutexGuard l(g_ledger);
        sync::MutexGuard a(g_accounts); // the inversion
        klog::print("lockdepdemo: audit done\n");
    } else {
        sync::MutexGuard a(g_accounts);
        sync::MutexGuard l(g_ledger);
        klog::print("lockdepdemo: audit done\n");
    }
}

void run_in_order(void (*first)(void*), void (*second)(void*), void* arg) {
    for (auto fn : {first, second}) {
        auto t = sched::spawn(fn, arg, {"bank", CONFIG_SCHED_MAIN_PRIORITY, 16384});
        if (t.ok()) (void)sched::join(t.value());
    }
}

// Sensor samples written by a timer callout (interrupt context) and read by
// a thread. The buggy reader takes the lock with interrupts enabled: a
// sample arriving while it holds the lock would spin forever on its hart.
arch::Spinlock g_samples_lock("sensor-samples");
std::uint64_t g_samples = 0;
std::atomic<unsigned> g_ticks{0};

void on_sample(void*) {
    arch::SpinlockGuard g(g_samples_lock);
    ++g_samples;
    g_ticks.fetch_add(1, std::memory_order_relaxed);
}

void read_samples(bool buggy) {
    time::Callout sampler(on_sample, nullptr);
    (void)sampler.start_periodic(time::now() + time::from_us(200), time::from_us(200));
    for (int i = 0; i < 5; ++i) {
        std::uint64_t seen;
        if (buggy) {
            g_samples_lock.lock(); // interrupts still enabled
            seen = g_samples;
            g_samples_lock.unlock();
        } else {
            arch::SpinlockGuard g(g_samples_lock);
            seen = g_samples;
        }
        klog::print("lockdepdemo: samples {}\n", seen);
        sched::sleep_for_ns(300'000);
    }
    (void)sampler.cancel_and_wait();
}

// Statistics under a spinlock; the buggy version sleeps (waiting for the
// next period) before letting go of it.
arch::Spinlock g_stats_lock("stats");

void update_stats(bool buggy) {
    arch::SpinlockGuard g(g_stats_lock);
    if (buggy) sched::sleep_for_ns(100'000);
}

} // namespace

int main() {
    std::string_view scenario = plat::boot_option("lockdepdemo.scenario");
    if (scenario.empty()) scenario = "clean";
    klog::print("lockdepdemo: scenario {}\n", scenario);
    bool all = scenario == "clean";
    if (all || scenario == "abba") run_in_order(transfer, audit, all ? nullptr : &g_ledger);
    if (all || scenario == "irq") read_samples(!all);
    if (all || scenario == "sleep") {
        update_stats(!all);
        sched::sleep_for_ns(100'000);
    }
    if (!all && scenario != "abba" && scenario != "irq" && scenario != "sleep") {
        klog::print("lockdepdemo: unknown scenario '{}'\n", scenario);
        return 2;
    }
    klog::print("lockdepdemo: done\n");
    return 0;
}
