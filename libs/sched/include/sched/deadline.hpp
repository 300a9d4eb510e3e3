#pragma once
// The deadline scheduling class: the mechanism under sched-edf. Threads of
// this class run before any fixed-priority thread, earliest absolute
// deadline first, each on the one hart it was admitted to. Each period the
// thread gets `runtime` of budget to be spent before `deadline` (relative
// to the period's start); a thread that exhausts it is throttled until its
// next period begins (constant-bandwidth reservation: it can never take
// more than runtime/period of its hart, whatever it does).
//
// Applications use sched-edf/edf.hpp, which adds admission control; these
// calls do not check that the hart can keep the promise.
#include <base/result.hpp>
#include <cstdint>
#include <sched/sched.hpp>
#include <time/time.hpp>

namespace tessera::sched {

struct DeadlineParams {
    time::Ticks runtime;
    time::Ticks deadline; // relative; runtime <= deadline <= period
    time::Ticks period;
    // Mixed criticality (sched-domains): a High thread's budget in HI mode,
    // runtime < runtime_hi <= deadline. 0: not a High thread.
    time::Ticks runtime_hi = 0;
};

struct DeadlineStats {
    std::uint64_t jobs;      // periods begun
    std::uint64_t misses;    // jobs finished after their deadline, or skipped
    std::uint64_t overruns;  // jobs that exhausted their budget (throttled)
    std::uint64_t skipped;   // periods that passed entirely while the thread was late
    time::Ticks max_response; // longest release-to-completion seen
};

// Starts entry(arg) as a deadline-class thread on `hart`, its first period
// beginning now. attributes.priority and affinity are ignored.
// InvalidArgument for inconsistent parameters or an offline hart.
base::Result<ThreadHandle> spawn_deadline(void (*entry)(void*), void* arg, const ThreadAttributes& attributes,
                                          const DeadlineParams& params, unsigned hart);
// Ends the caller's current job and blocks until its next period begins.
// InvalidArgument if the caller is not deadline-class.
base::Result<void> end_job();
base::Result<DeadlineStats> deadline_stats(ThreadHandle thread);
base::Result<DeadlineParams> deadline_params(ThreadHandle thread);

// Called (under the scheduler lock) when a deadline-class thread exits, so
// that admission control can return its share. One hook; sched-edf sets it.
using DeadlineExitHook = void (*)(unsigned hart, const DeadlineParams& params);
void set_deadline_exit_hook(DeadlineExitHook hook);

} // namespace tessera::sched
