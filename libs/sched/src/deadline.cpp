// The deadline class (built when sched-edf is enabled): job releases,
// budgets, throttling and miss accounting. Picking and preemption order
// are in core.cpp (more_urgent, take_next).
//
// Overrun policy: a job that spends its runtime before finishing is
// throttled until its next period, then continues with a fresh budget and
// that period's deadline as its scheduling deadline (hard reservation: the
// thread can never take more than runtime/period of its hart). A job that
// finishes after its own deadline (release + deadline of the period it was
// released in) counts as a miss; periods that pass entirely before the thread catches up
// are skipped (counted as misses and in `skipped`), so a late control loop
// resumes on its grid with current data instead of replaying stale jobs.
#include "internal.hpp"
#include <base/verify.hpp>

namespace tessera::sched::detail {

namespace {
constinit DeadlineExitHook g_exit_hook = nullptr;

// Starts the period beginning at t.dl.release.
void begin_period(Thread& t) {
    t.dl.budget = t.dl.params.runtime;
    t.dl.hi_extended = false;
    t.dl.deadline = t.dl.release + t.dl.params.deadline;
}

// Moves t.dl.release to the next period that can still meet its deadline.
void advance_release(Thread& t, time::Ticks now) {
    t.dl.release += t.dl.params.period;
    while (t.dl.release + t.dl.params.deadline <= now) {
        t.dl.release += t.dl.params.period;
        ++t.dl.stats.skipped;
        ++t.dl.stats.misses;
        ++g_rq[t.hart].stats.deadline_misses;
    }
}

// A new job begins with the period at t.dl.release.
void begin_job(Thread& t) {
    ++t.dl.stats.jobs;
    t.dl.job_deadline = t.dl.release + t.dl.params.deadline;
}
} // namespace

void deadline_timer(Thread& t) {
    if constexpr (kDomains) leave_hi_mode_if(t); // its refill ends the HI episode it caused
    if (t.state == State::AwaitingRelease) begin_job(t);
    begin_period(t);
    t.wake_due = t.dl.release;
    make_ready(t);
}

void deadline_budget_expired(RunQueue& rq, time::Ticks now) {
    Thread& cur = *rq.current;
    if (!cur.deadline_class) return; // it left the hart before its budget ran out
    charge_current(rq, now);
    if (cur.dl.budget > 0) {
        // The event is only ever moved earlier (core.cpp); not yet due.
        arm_budget(rq, now + cur.dl.budget);
        return;
    }
    if constexpr (kDomains) {
        // A High thread past its LO budget: HI mode, and its HI remainder.
        if (enter_hi_mode(cur)) {
            arm_budget(rq, now + cur.dl.budget);
            return;
        }
    }
    ++cur.dl.stats.overruns;
    ++rq.stats.throttles;
    cur.state = State::Throttled;
    advance_release(cur, now);
    VERIFY(time::arm(cur.timer, cur.dl.release).ok());
    rq.need_resched = true; // switched out at this interrupt's exit
}

void deadline_exited(Thread& t) {
    if (g_exit_hook) g_exit_hook(t.hart, t.dl.params);
}

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

Result<ThreadHandle> spawn_deadline(void (*entry)(void*), void* arg, const ThreadAttributes& attributes,
                                    const DeadlineParams& params, unsigned hart) {
    if (!params.runtime || params.runtime > params.deadline || params.deadline > params.period)
        return Error::InvalidArgument;
    if (params.runtime_hi && (!kDomains || params.runtime_hi <= params.runtime || params.runtime_hi > params.deadline))
        return Error::InvalidArgument; // HI budgets need sched-domains

    if (hart >= arch::kMaxHarts || !(online_mask() >> hart & 1)) return Error::InvalidArgument;
    ThreadAttributes a = attributes;
    a.priority = kPriorities - 1; // unused while deadline-class; keeps the slot valid
    a.affinity = 1u << hart;
    arch::IrqGuard irq;
    Thread* t = TRY(create_thread(entry, arg, a));
    t->deadline_class = true;
    t->hart = static_cast<std::uint8_t>(hart);
    t->dl.params = params;
    if (params.runtime_hi) t->criticality = Criticality::High;
    t->dl.release = time::now();
    begin_job(*t);
    begin_period(*t);
    make_ready(*t);
    ThreadHandle h = handle_of(*t);
    preempt_if_needed();
    g_lock.unlock();
    return h;
}

Result<void> end_job() {
    may_block();
    arch::SpinlockGuard guard(g_lock);
    RunQueue& rq = this_rq();
    Thread& self = current();
    if (!self.deadline_class) return Error::InvalidArgument;
    time::Ticks now = time::now();
    charge_current(rq, now);
    time::Ticks response = now - self.dl.release;
    if (response > self.dl.stats.max_response) self.dl.stats.max_response = response;
    if (now > self.dl.job_deadline) {
        ++self.dl.stats.misses;
        ++rq.stats.deadline_misses;
    }
    advance_release(self, now);
    if (self.dl.release <= now) {
        // The next period has begun already: a new job, in deadline order.
        begin_job(self);
        begin_period(self);
        requeue_current(rq);
    } else {
        VERIFY(time::arm(self.timer, self.dl.release).ok());
        self.state = State::AwaitingRelease;
    }
    reschedule();
    return {};
}

Result<DeadlineStats> deadline_stats(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (!t->deadline_class) return Error::InvalidArgument;
    return t->dl.stats;
}

Result<DeadlineParams> deadline_params(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (!t->deadline_class) return Error::InvalidArgument;
    return t->dl.params;
}

void set_deadline_exit_hook(DeadlineExitHook hook) {
    arch::SpinlockGuard guard(g_lock);
    g_exit_hook = hook;
}

} // namespace tessera::sched
