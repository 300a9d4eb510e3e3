#pragma once
// Earliest-deadline-first threads with admission control.
//
// A periodic thread declares (runtime, deadline, period): every period it
// needs at most `runtime` of CPU, finished within `deadline` of the
// period's start. EDF threads run before every fixed-priority thread,
// earliest absolute deadline first, each on one hart (partitioned EDF:
// they never migrate). Admission control accepts a thread only if its hart
// can keep every admitted promise (admission.hpp); the scheduler enforces
// the budgets, so a thread that overruns is throttled and delays only
// itself. Deadline misses, overruns and response times are counted per
// thread and per hart.
//
//     auto t = sched_edf::spawn(control_loop, &state,
//                               {.runtime_ns = 200'000, .period_ns = 1'000'000});
//     void control_loop(void*) {
//         for (;;) { step(); (void)sched_edf::wait_next_period(); }
//     }
//
// SMP-safe: one spinlock for the admission ledgers, never held while the
// scheduler's lock is taken from here (the scheduler calls back into it
// under its own lock when an EDF thread exits: lock order sched, then edf).
#include <base/result.hpp>
#include <sched-edf/admission.hpp>
#include <sched/deadline.hpp>
#include <sched/sched.hpp>

namespace tessera::sched_edf {

inline constexpr int kAnyHart = -1;

struct Attributes {
    std::string_view name = "edf";
    std::size_t stack_size = CONFIG_SCHED_STACK_KIB * 1024;
    int hart = kAnyHart; // kAnyHart: the first online hart where it fits
};

// Admits and starts the thread; its first period begins now.
// InvalidArgument for inconsistent parameters (see density()) or an
// unknown hart; Overloaded if no allowed hart can admit it; NoMemory if
// the thread table or memory is full.
base::Result<sched::ThreadHandle> spawn(void (*entry)(void*), void* arg, const Params& params,
                                        const Attributes& attributes = {});
// Ends this period's job; returns when the next period begins.
base::Result<void> wait_next_period();

base::Result<sched::DeadlineStats> stats(sched::ThreadHandle thread);

struct HartLoad {
    std::uint64_t used;  // sum of admitted densities, parts per 10^12
    std::uint64_t bound;
    unsigned threads;
};
HartLoad load(unsigned hart);

} // namespace tessera::sched_edf
