// Budget groups and mixed criticality (built when sched-domains is
// enabled). See sched/domains.hpp for the rules; core.cpp calls in at the
// points where a thread would be queued (gated), charged (charge_group) or
// given the hart (arm_group_budget).
#include "internal.hpp"
#include <base/container_of.hpp>
#include <base/verify.hpp>
#include <new>

namespace tessera::sched::detail {

namespace {

constexpr unsigned kMaxGroups = CONFIG_SCHED_DOMAINS_MAX_GROUPS;
constinit Group g_groups[kMaxGroups] = {};
constinit ModeStats g_mode = {};
constinit Thread* g_hi_trigger = nullptr;

Group* group_of(GroupId id) {
    return id < kMaxGroups && g_groups[id].in_use ? &g_groups[id] : nullptr;
}

// Takes a thread that is now gated off its hart: out of its run queue if
// ready, or switched out at its hart's next interrupt exit if running.
void hold_back(Thread& t) {
    if (t.state == State::Ready) {
        dequeue(g_rq[t.hart], t);
        t.state = State::Suspended;
    } else if (t.state == State::Running) {
        kick(g_rq[t.hart]); // requeue_current() suspends it there
    }
}

void release_if_free(Thread& t) {
    if (t.state == State::Suspended && !gated(t)) make_ready(t);
}

void on_refill(time::Event& event, time::Ticks now) {
    arch::SpinlockGuard guard(g_lock);
    Group& g = base::container_of(event, &Group::refill);
    if (!g.in_use) return;
    // Charge what running members used up to the boundary to the period
    // that ends, so the figures are per period.
    for (unsigned h = 0; h < arch::kMaxHarts; ++h) {
        RunQueue& rq = g_rq[h];
        if (rq.online && rq.current->group == &g) charge_group(rq, *rq.current, now);
    }
    ++g.stats.periods;
    g.stats.used_last_period = g.used_this_period;
    if (g.used_this_period > g.stats.max_used) g.stats.max_used = g.used_this_period;
    g.used_this_period = 0;
    g.remaining = g.params.budget;
    (void)time::arm(g.refill, event.deadline + g.params.period);
    if (g.throttled) {
        g.throttled = false;
        for (Thread& t : g.members) release_if_free(t);
    }
    // Members running now keep their budget events: one that fires before
    // the fresh budget is spent re-arms (group_budget_expired).
}

void throttle(Group& g) {
    g.throttled = true;
    ++g.stats.throttles;
    // Members are released at the refill in list order: the ones that
    // were running go to the back, so that the others run first next
    // period (round robin across periods, not only within one).
    Thread* running[arch::kMaxHarts];
    unsigned n = 0;
    for (Thread& t : g.members) {
        if (t.state == State::Running && n < arch::kMaxHarts) running[n++] = &t;
        hold_back(t);
    }
    for (unsigned i = 0; i < n; ++i) {
        g.members.remove(*running[i]);
        g.members.push_back(*running[i]);
    }
}

} // namespace

bool gated(const Thread& t) {
    return (t.group && t.group->throttled) || (t.criticality == Criticality::Low && g_mode.mode == Mode::Hi);
}

void charge_group(RunQueue& rq, Thread& t, time::Ticks now) {
    Group* g = t.group;
    if (!g || &t != rq.current) return;
    time::Ticks used = now - rq.run_start;
    g->remaining = used < g->remaining ? g->remaining - used : 0;
    g->used_this_period += used;
    rq.stats.busy_ticks += used;
    rq.run_start = now;
}

void arm_group_budget(RunQueue& rq, Thread& t, time::Ticks now) {
    if (t.group) arm_budget(rq, now + t.group->remaining);
}

void group_budget_expired(RunQueue& rq, time::Ticks now) {
    Thread& cur = *rq.current;
    Group* g = cur.group;
    if (!g || g->throttled) return;
    charge_group(rq, cur, now);
    if (g->remaining > 0) {
        arm_budget(rq, now + g->remaining);
        return;
    }
    ++rq.stats.throttles;
    throttle(*g);
}

bool enter_hi_mode(Thread& t) {
    if (t.criticality != Criticality::High || t.dl.hi_extended || t.dl.params.runtime_hi <= t.dl.params.runtime)
        return false;
    t.dl.hi_extended = true;
    t.dl.budget = t.dl.params.runtime_hi - t.dl.params.runtime;
    g_hi_trigger = &t;
    if (g_mode.mode == Mode::Hi) return true; // another High thread already switched
    g_mode.mode = Mode::Hi;
    ++g_mode.to_hi;
    g_mode.last_switch = time::now();
    g_mode.trigger = handle_of(t);
    for (Thread& other : g_threads)
        if (other.criticality == Criticality::Low && other.state != State::Free) hold_back(other);
    return true;
}

void leave_hi_mode_if(Thread& t) {
    if (g_mode.mode != Mode::Hi || g_hi_trigger != &t) return;
    g_mode.mode = Mode::Lo;
    ++g_mode.to_lo;
    g_mode.last_switch = time::now();
    g_hi_trigger = nullptr;
    for (Thread& other : g_threads) release_if_free(other);
}

void domains_exited(Thread& t) {
    if (t.group) {
        t.group->members.remove(t);
        --t.group->stats.members;
        t.group = nullptr;
    }
    leave_hi_mode_if(t); // the trigger leaving ends its HI episode
}

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

Result<GroupId> group_create(const GroupParams& params) {
    if (!params.budget || params.budget > params.period) return Error::InvalidArgument;
    arch::SpinlockGuard guard(g_lock);
    for (unsigned i = 0; i < kMaxGroups; ++i) {
        Group& g = g_groups[i];
        if (g.in_use) continue;
        g.~Group();
        new (&g) Group();
        g.in_use = true;
        g.params = params;
        g.remaining = params.budget;
        g.refill.callback = on_refill;
        VERIFY(time::arm(g.refill, time::now() + params.period).ok());
        return i;
    }
    return Error::NoMemory;
}

Result<void> group_destroy(GroupId id) {
    arch::SpinlockGuard guard(g_lock);
    Group* g = group_of(id);
    if (!g) return Error::NotFound;
    if (!g->members.is_empty()) return Error::Busy;
    (void)time::cancel(g->refill);
    g->in_use = false;
    return {};
}

Result<void> group_join(GroupId id, ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Group* g = group_of(id);
    Thread* t = lookup(h);
    if (!g || !t) return Error::NotFound;
    if (t->deadline_class || t->group || t->priority == kIdlePriority || t->state == State::Exited)
        return Error::InvalidArgument;
    t->group = g;
    g->members.push_back(*t);
    ++g->stats.members;
    if (gated(*t)) hold_back(*t);
    preempt_if_needed();
    return {};
}

Result<void> group_leave(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (!t->group) return Error::InvalidArgument;
    if (t == this_rq().current) charge_group(this_rq(), *t, time::now());
    t->group->members.remove(*t);
    --t->group->stats.members;
    t->group = nullptr;
    release_if_free(*t);
    preempt_if_needed();
    return {};
}

Result<GroupStats> group_stats(GroupId id) {
    arch::SpinlockGuard guard(g_lock);
    Group* g = group_of(id);
    if (!g) return Error::NotFound;
    return g->stats;
}

Result<void> set_criticality(ThreadHandle h, Criticality c) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t->priority == kIdlePriority) return Error::InvalidArgument;
    if (c == Criticality::High && (!t->deadline_class || t->dl.params.runtime_hi <= t->dl.params.runtime))
        return Error::InvalidArgument;
    t->criticality = c;
    if (gated(*t)) hold_back(*t);
    else release_if_free(*t);
    preempt_if_needed();
    return {};
}

ModeStats criticality() {
    arch::SpinlockGuard guard(g_lock);
    ModeStats s = g_mode;
    s.suspended_now = 0;
    for (Thread& t : g_threads)
        if (t.state == State::Suspended) ++s.suspended_now;
    return s;
}

} // namespace tessera::sched
