#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <klog/klog.hpp>
#include <sched-edf/edf.hpp>
#include <time/time.hpp>

namespace tessera::sched_edf {

namespace {

// Lock order: inside the scheduler's lock (the exit hook runs under it).
constinit arch::Spinlock g_lock;
constinit Ledger g_ledgers[arch::kMaxHarts];

sched::DeadlineParams to_ticks(const Params& p) {
    std::uint64_t deadline = p.deadline_ns ? p.deadline_ns : p.period_ns;
    return {time::from_ns(p.runtime_ns), time::from_ns(deadline), time::from_ns(p.period_ns),
            time::from_ns(p.runtime_hi_ns)};
}

std::uint64_t density_of(const sched::DeadlineParams& p) {
    // The same arithmetic as at admission, from the parameters the thread
    // holds (ticks: the ratio is what matters).
    time::Ticks budget = p.runtime_hi ? p.runtime_hi : p.runtime;
    unsigned __int128 scaled = static_cast<unsigned __int128>(budget) * kDensityScale;
    return static_cast<std::uint64_t>((scaled + p.deadline - 1) / p.deadline);
}

void on_exit(unsigned hart, const sched::DeadlineParams& params) {
    arch::SpinlockGuard guard(g_lock);
    g_ledgers[hart].release(density_of(params));
}

} // namespace

base::Result<sched::ThreadHandle> spawn(void (*entry)(void*), void* arg, const Params& params,
                                        const Attributes& attributes) {
    TRY(density(params)); // parameter checks, in the caller's units
    sched::DeadlineParams ticks = to_ticks(params);
    // Ticks are coarser than ns: what is admitted and released is the
    // density of the parameters the scheduler will enforce.
    if (ticks.runtime == 0) return base::Error::InvalidArgument;
    std::uint64_t d = density_of(ticks);
    unsigned online = sched::online_harts();
    if (attributes.hart != kAnyHart && (attributes.hart < 0 || static_cast<unsigned>(attributes.hart) >= online))
        return base::Error::InvalidArgument;
    int chosen = -1;
    {
        arch::SpinlockGuard guard(g_lock);
        for (unsigned h = 0; h < online; ++h) {
            if (attributes.hart != kAnyHart && static_cast<unsigned>(attributes.hart) != h) continue;
            if (g_ledgers[h].admit(d).ok()) {
                chosen = static_cast<int>(h);
                break;
            }
        }
    }
    if (chosen < 0) {
        klog::warn("edf: '{}' ({} ns every {} ns) refused: no hart has room under the {}% bound",
                   attributes.name, params.runtime_ns, params.period_ns, CONFIG_SCHED_EDF_BOUND_PERCENT);
        return base::Error::Overloaded;
    }
    auto handle = sched::spawn_deadline(entry, arg, {attributes.name, sched::kPriorities - 1, attributes.stack_size},
                                        ticks, static_cast<unsigned>(chosen));
    if (!handle.ok()) {
        arch::SpinlockGuard guard(g_lock);
        g_ledgers[chosen].release(d);
    }
    return handle;
}

base::Result<void> wait_next_period() { return sched::end_job(); }

base::Result<sched::DeadlineStats> stats(sched::ThreadHandle thread) { return sched::deadline_stats(thread); }

HartLoad load(unsigned hart) {
    if (hart >= arch::kMaxHarts) return {};
    arch::SpinlockGuard guard(g_lock);
    const Ledger& l = g_ledgers[hart];
    return {l.used(), l.bound(), l.threads()};
}

// Init step sched_edf.start: the configured bound, and the exit hook that
// returns a thread's share.
base::Result<void> init_start() {
    for (Ledger& l : g_ledgers) l = Ledger(CONFIG_SCHED_EDF_BOUND_PERCENT);
    sched::set_deadline_exit_hook(on_exit);
    return {};
}

} // namespace tessera::sched_edf
