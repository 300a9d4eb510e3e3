// Run queues, placement, the switch, the scheduler's timers and the
// interrupt-exit preemption. See internal.hpp for the state and locking.
#include "internal.hpp"
#include <base/container_of.hpp>
#include <arch/cpu.hpp>
#include <atomic>
#include <arch/trap.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#if CONFIG_LIB_SMP
#include <smp/smp.hpp>
#endif

namespace tessera::sched::detail {

constinit arch::Spinlock g_lock;
constinit Thread g_threads[kMaxThreads];
constinit RunQueue g_rq[arch::kMaxHarts] = {};

namespace {

constinit std::uint32_t g_online_mask = 0;
constinit time::Ticks g_quantum = 0;
constinit time::Ticks g_balance_period = 0;

// Stored, not computed: RunQueue's size is not a power of two, and the
// division would be on every switch.
unsigned index_of(const RunQueue& rq) { return rq.index; }

// Is `a` more urgent than `b`? Deadline class above fixed priorities,
// earlier deadline first within it.
bool more_urgent(const Thread& a, const Thread& b) {
    if (a.deadline_class != b.deadline_class) return a.deadline_class;
    if (a.deadline_class) return a.dl.deadline < b.dl.deadline;
    return a.priority > b.priority;
}

bool migratable_to(const Thread& t, unsigned hart) {
    return !t.deadline_class && (t.affinity >> hart & 1);
}


void enqueue(RunQueue& rq, Thread& t) {
    unsigned hart = index_of(rq);
    if (t.hart != hart) {
        ++rq.stats.migrations;
        t.hart = static_cast<std::uint8_t>(hart);
    }
    t.state = State::Ready;
    if (t.deadline_class) {
        Thread* after = nullptr;
        for (Thread& r : rq.deadline_ready)
            if (r.dl.deadline > t.dl.deadline) { after = &r; break; }
        if (after) rq.deadline_ready.insert_before(*after, t); else rq.deadline_ready.push_back(t);
    } else {
        rq.ready[t.priority].push_back(t);
        rq.bitmap |= 1u << t.priority;
    }
    ++rq.nr_ready;
}

void send_kick(RunQueue& rq) {
#if CONFIG_LIB_SMP
    if (&rq != &this_rq()) (void)smp::send_ipi(index_of(rq));
#else
    (void)rq;
#endif
}

void arm_slice(RunQueue& rq);

bool is_idle(const RunQueue& rq) { return rq.current == rq.idle && rq.nr_ready == 0; }

std::uint32_t allowed_harts(const Thread& t) {
    std::uint32_t allowed = t.affinity & g_online_mask;
    return allowed ? allowed : g_online_mask; // affinity names no online hart: refused by set_affinity, kept safe here
}

// An idle hart `t` may move to, if any. Idle harts wait for an interrupt
// and look for work only when they get one, so a thread left waiting
// behind another while such a hart exists could wait for ever.
RunQueue* idle_hart_for(const Thread& t) {
    if (t.deadline_class || g_online_mask == 1u) return nullptr;
    std::uint32_t allowed = allowed_harts(t);
    for (unsigned i = 0; i < arch::kMaxHarts; ++i)
        if ((allowed >> i & 1) && is_idle(g_rq[i])) return &g_rq[i];
    return nullptr;
}

// Where a thread that becomes ready should wait. Deadline-class threads
// stay on their admitted hart. Others: the hart they ran on last if they
// would run there at once (warm caches), else an idle hart they may use,
// else the allowed hart with the fewest ready threads.
RunQueue& place(Thread& t) {
    if (t.deadline_class || g_online_mask == 1u) return g_rq[t.hart];
    std::uint32_t allowed = allowed_harts(t);
    RunQueue& last = g_rq[t.hart];
    if ((allowed >> t.hart & 1) && (is_idle(last) || (last.nr_ready == 0 && more_urgent(t, *last.current))))
        return last;
    if (RunQueue* idle = idle_hart_for(t)) return *idle;
    RunQueue* best = nullptr;
    for (unsigned i = 0; i < arch::kMaxHarts; ++i) {
        if (!(allowed >> i & 1)) continue;
        RunQueue& rq = g_rq[i];
        if (!best || rq.nr_ready < best->nr_ready || (rq.nr_ready == best->nr_ready && i == t.hart)) best = &rq;
    }
    return *best;
}

// Takes the most urgent thread on `rq` that may move to `to` (for stealing
// and balancing). Deadline-class and pinned threads are never taken.
Thread* take_migratable(RunQueue& rq, unsigned to) {
    for (std::uint32_t levels = rq.bitmap; levels;) {
        unsigned level = 31 - static_cast<unsigned>(__builtin_clz(levels));
        levels &= ~(1u << level);
        for (Thread& t : rq.ready[level]) {
            if (!migratable_to(t, to)) continue;
            dequeue(rq, t);
            return &t;
        }
    }
    return nullptr;
}

RunQueue* busiest_other(unsigned me) {
    RunQueue* busiest = nullptr;
    for (unsigned i = 0; i < arch::kMaxHarts; ++i) {
        if (i == me || !(g_online_mask >> i & 1)) continue;
        if (!busiest || g_rq[i].nr_ready > busiest->nr_ready) busiest = &g_rq[i];
    }
    return busiest && busiest->nr_ready ? busiest : nullptr;
}

// A hart about to idle takes work from another. Out of line: kept off the
// register allocation of the switch path, which it would otherwise bloat.
[[gnu::noinline, gnu::cold]] Thread* steal(RunQueue& rq) {
    if (g_online_mask == 1u) return nullptr;
    unsigned me = index_of(rq);
    for (unsigned i = 0; i < arch::kMaxHarts; ++i) {
        if (i == me || !(g_online_mask >> i & 1) || !g_rq[i].nr_ready) continue;
        if (Thread* t = take_migratable(g_rq[i], me)) {
            ++rq.stats.steals;
            ++rq.stats.migrations;
            t->hart = static_cast<std::uint8_t>(me);
            return t;
        }
    }
    return nullptr;
}

Thread* take_next(RunQueue& rq) {
    if constexpr (kDeadlineClass) {
        if (Thread* t = rq.deadline_ready.pop_front()) {
            --rq.nr_ready;
            return t;
        }
    }
    if (rq.bitmap) {
        unsigned level = 31 - static_cast<unsigned>(__builtin_clz(rq.bitmap));
        Thread* t = rq.ready[level].pop_front();
        if (rq.ready[level].is_empty()) rq.bitmap &= ~(1u << level);
        --rq.nr_ready;
        return t;
    }
    if (Thread* t = steal(rq)) return t;
    return rq.idle;
}

bool has_peer(const RunQueue& rq, const Thread& t) {
    return !t.deadline_class && &t != rq.idle && (rq.bitmap >> t.priority & 1);
}

// The slice event only ever moves earlier: a firing that comes before the
// slice really ends just re-arms (on_slice). This keeps timer writes off
// most switches.
void arm_slice(RunQueue& rq) {
    if (rq.slice_event.queued() && rq.slice_event.deadline <= rq.slice_end) return;
    (void)time::arm(rq.slice_event, rq.slice_end);
}

void arm_balance(RunQueue& rq, time::Ticks now) {
    if (g_online_mask == 1u || rq.balance_event.queued()) return;
    (void)time::arm(rq.balance_event, now + g_balance_period);
}

void check_invariants();

[[gnu::noinline]] void record_wakeup(RunQueue& rq, Thread& t, time::Ticks now) {
    rq.wakeup.record(time::to_ns(now > t.wake_due ? now - t.wake_due : 0));
    t.wake_due = time::kNever;
}

// The bookkeeping of a switch on `rq` from the current thread to `next`, at
// time `now`.
void switch_in(RunQueue& rq, Thread& next, time::Ticks now) {
    Thread& prev = *rq.current;
    bool from_idle = &prev == rq.idle;
    (from_idle ? rq.stats.idle_ticks : rq.stats.busy_ticks) += now - rq.run_start;
    if (from_idle) prev.state = State::Idle;
    rq.run_start = now;
    next.state = State::Running;
    next.hart = static_cast<std::uint8_t>(index_of(rq));
    rq.current = &next;
    if (next.wake_due != time::kNever) record_wakeup(rq, next, now);
    if (&next == rq.idle) return;
    rq.slice_end = now + g_quantum;
    if (has_peer(rq, next)) arm_slice(rq);
    if constexpr (kDeadlineClass) {
        if (next.deadline_class) arm_budget(rq, now + next.dl.budget);
    }
    if constexpr (kDomains) arm_group_budget(rq, next, now);
    arm_balance(rq, now);
}

// Timer callbacks (interrupt context, this hart).

void on_slice(time::Event& event, time::Ticks now) {
    arch::SpinlockGuard guard(g_lock);
    RunQueue& rq = base::container_of(event, &RunQueue::slice_event);
    Thread& cur = *rq.current;
    if (!has_peer(rq, cur)) return; // alone at its level: nothing to rotate
    if (now >= rq.slice_end) rq.need_resched = true; // a peer waits: its turn
    else (void)time::arm(rq.slice_event, rq.slice_end);
}

// A relaxed look at the queue lengths, without the lock: is a pull worth
// taking the scheduler's lock for? Every busy hart asks every period, and
// the lock is shared by all harts.
bool imbalance_likely(unsigned me) {
    unsigned mine = std::atomic_ref<std::uint32_t>(g_rq[me].nr_ready).load(std::memory_order_relaxed);
    for (unsigned i = 0; i < arch::kMaxHarts; ++i)
        if (i != me && (g_online_mask >> i & 1) &&
            std::atomic_ref<std::uint32_t>(g_rq[i].nr_ready).load(std::memory_order_relaxed) >= mine + 2)
            return true;
    return false;
}

void on_balance(time::Event& event, time::Ticks now) {
    RunQueue& rq = base::container_of(event, &RunQueue::balance_event);
    unsigned me = index_of(rq);
    if (!imbalance_likely(me)) {
        // Re-armed without the lock: the event is this hart's, and only
        // this hart arms it (arm_balance, on a switch, runs here too with
        // interrupts off, so it cannot interleave with this callback).
        if (std::atomic_ref<Thread*>(rq.current).load(std::memory_order_relaxed) != rq.idle)
            (void)time::arm(rq.balance_event, now + g_balance_period);
        return;
    }
    arch::SpinlockGuard guard(g_lock);
    if (rq.current == rq.idle) return; // idle harts steal instead; no periodic wake-ups
    if (RunQueue* busiest = busiest_other(me); busiest && busiest->nr_ready >= rq.nr_ready + 2) {
        if (Thread* t = take_migratable(*busiest, me)) {
            enqueue(rq, *t);
            if (more_urgent(*t, *rq.current)) rq.need_resched = true;
            else if (has_peer(rq, *rq.current)) arm_slice(rq);
        }
    }
    arm_balance(rq, now);
}

void on_budget(time::Event& event, time::Ticks now) {
    arch::SpinlockGuard guard(g_lock);
    RunQueue& rq = base::container_of(event, &RunQueue::budget_event);
    if constexpr (kDeadlineClass) deadline_budget_expired(rq, now);
    if constexpr (kDomains) group_budget_expired(rq, now);
}

void on_thread_timer(time::Event& event, time::Ticks) {
    arch::SpinlockGuard guard(g_lock);
    Thread& t = base::container_of(event, &Thread::timer);
    if (event.queued()) return; // re-armed meanwhile: that arming will call again
    switch (t.state) {
    case State::Sleeping:
        t.wake_due = event.deadline;
        make_ready(t);
        break;
    case State::AwaitingRelease:
    case State::Throttled:
        if constexpr (kDeadlineClass) deadline_timer(t);
        break;
    case State::Blocked:
        // Only a timed wait's own firing. A wait that ended otherwise
        // cancels its timer, but a firing already under way on another
        // hart (waiting here for the lock) is past cancelling, and by now
        // the thread may have run elsewhere and blocked again without a
        // deadline: that wait must not time out. (A new timed wait
        // re-armed the timer: the firing returned above.)
        if (t.wait_timed) wait_timed_out(t);
        break;
    default:
        break; // a stale firing for a wait that ended otherwise
    }
}

// Interrupt exit: switch if the interrupt made something more urgent ready
// (or ended a slice, or throttled the running thread). Interrupts are off;
// we are back in thread context.
void on_interrupt_exit() {
    RunQueue& rq = this_rq();
    if (!rq.need_resched && !rq.slice_check) return;
    g_lock.lock();
    if (rq.slice_check) {
        rq.slice_check = false;
        if (has_peer(rq, *rq.current)) arm_slice(rq);
    }
    if (rq.need_resched) {
        // Back to the end of its level: round robin, and a preempted thread
        // of lower priority simply waits for its turn.
        requeue_current(rq);
        ++rq.stats.preemptions;
        reschedule();
    }
    g_lock.unlock();
}

void on_ipi() {} // the interrupt-exit hook does the work

} // namespace

void dequeue(RunQueue& rq, Thread& t) {
    if (t.deadline_class) {
        rq.deadline_ready.remove(t);
    } else {
        rq.ready[t.priority].remove(t);
        if (rq.ready[t.priority].is_empty()) rq.bitmap &= ~(1u << t.priority);
    }
    --rq.nr_ready;
}

void set_effective_priority(Thread& t, unsigned priority) {
    if (t.priority == priority) return;
    bool lowered = priority < t.priority;
    if (t.state == State::Ready && !t.deadline_class) {
        RunQueue& rq = g_rq[t.hart];
        dequeue(rq, t);
        t.priority = static_cast<std::uint8_t>(priority);
        enqueue(rq, t);
        // Raised above what its hart runs: preempt there.
        if (rq.current != &t && more_urgent(t, *rq.current)) kick(rq);
    } else {
        t.priority = static_cast<std::uint8_t>(priority);
        // Running and lowered: a ready thread may now be more urgent.
        if (t.state == State::Running && lowered) kick(g_rq[t.hart]);
    }
}

void finish_switch() {
    RunQueue& rq = this_rq(); // perhaps another hart than the one we left
    time::Ticks cost = time::now() - rq.switch_start;
    rq.stats.switch_ticks += cost;
    if (cost > rq.stats.switch_ticks_max) rq.stats.switch_ticks_max = cost;
}

Thread* lookup(ThreadHandle h) {
    if (h.index >= kMaxThreads) return nullptr;
    Thread& t = g_threads[h.index];
    return (t.state != State::Free && t.generation == h.generation) ? &t : nullptr;
}

ThreadHandle handle_of(const Thread& t) { return {static_cast<std::uint32_t>(&t - g_threads), t.generation}; }

void make_ready(Thread& t) {
    if constexpr (kDomains) {
        if (gated(t)) { // its group is throttled, or it is Low in HI mode
            t.state = State::Suspended;
            return;
        }
    }
    RunQueue& rq = place(t);
    enqueue(rq, t);
    Thread& cur = *rq.current;
    if (&cur == rq.idle || more_urgent(t, cur)) {
        kick(rq);
    } else if (has_peer(rq, cur)) {
        // Someone now waits for the running thread's level: its slice must
        // end (the slice timer is only armed while a peer is waiting).
        if (&rq == &this_rq()) {
            arm_slice(rq);
        } else {
            rq.slice_check = true;
            send_kick(rq);
        }
    }
}

// Preempted, rotated out or yielding to a thread waiting on `rq` while
// another hart idles: `cur` runs there now rather than waiting (the idle
// hart would not come for it); else it waits on `rq`. The scheduler lock,
// held until this hart has saved its context, keeps the other hart from
// switching to it before then. Out of line and reached by a tail call,
// like steal(): the one-hart switch path keeps its short form.
namespace {
[[gnu::noinline]] void requeue_or_hand_off(RunQueue& rq, Thread& cur) {
    if (RunQueue* idle = idle_hart_for(cur)) {
        ++idle->stats.handoffs;
        enqueue(*idle, cur);
        kick(*idle);
        return;
    }
    enqueue(rq, cur);
}
} // namespace

void requeue_current(RunQueue& rq) {
    Thread& cur = *rq.current;
    if (&cur == rq.idle || cur.state != State::Running) return;
    if constexpr (kDomains) {
        if (gated(cur)) {
            cur.state = State::Suspended;
            return;
        }
    }
    if (!(cur.affinity >> index_of(rq) & 1)) {
        make_ready(cur); // its affinity changed: to an allowed hart
        return;
    }
    // With nothing waiting here it stays: it runs on at once. One hart:
    // nowhere else to go.
    if (rq.nr_ready && g_online_mask != 1u) return requeue_or_hand_off(rq, cur);
    enqueue(rq, cur);
}

// The budget event is only ever moved earlier; a firing before the budget
// is spent re-arms (on_budget's callees).
void arm_budget(RunQueue& rq, time::Ticks end) {
    if (!rq.budget_event.queued() || rq.budget_event.deadline > end) (void)time::arm(rq.budget_event, end);
}

void kick(RunQueue& rq) {
    rq.need_resched = true;
    send_kick(rq);
}

void charge_current(RunQueue& rq, time::Ticks now) {
    Thread& cur = *rq.current;
    if (!cur.deadline_class) return;
    time::Ticks used = now - rq.run_start;
    cur.dl.budget = used < cur.dl.budget ? cur.dl.budget - used : 0;
    rq.stats.busy_ticks += used;
    rq.run_start = now;
}

void reschedule() {
    RunQueue& rq = this_rq();
    Thread* prev = rq.current;
    time::Ticks now = time::now();
    if constexpr (kDeadlineClass) charge_current(rq, now);
    if constexpr (kDomains) charge_group(rq, *prev, now);
    Thread* next = take_next(rq);
    rq.need_resched = false;
    if (next == prev) {
        prev->state = State::Running;
        return;
    }
    arch::Hart& hart = arch::this_hart();
    prev->saved_trap_depth = hart.trap_depth;
    hart.trap_depth = next->saved_trap_depth;
    hart.stack_limit = next->stack_limit;
    hart.thread_name = next->name;
    hart.thread = next;
    lockdep::switch_to(next->locks);
    switch_in(rq, *next, now);
    ++rq.stats.switches;
    if constexpr (kCheckInvariants) check_invariants();
    rq.switch_start = now;
    arch_switch_context(&prev->context, &next->context);
    finish_switch();
}

void preempt_if_needed() {
    RunQueue& rq = this_rq();
    if (!rq.need_resched || arch::in_interrupt()) return; // from an interrupt: at its exit
    requeue_current(rq);
    reschedule();
}

// Invariants (CONFIG_SCHED_CHECK_INVARIANTS), on every switch: each online
// hart runs exactly one thread, marked Running and recorded on that hart;
// the bitmap agrees with the queues; every Ready thread is on exactly one
// queue, of its own hart, at its own level; counts agree.
namespace {
void check_invariants() {
    std::uint16_t seen[kMaxThreads] = {};
    unsigned running = 0;
    for (unsigned h = 0; h < arch::kMaxHarts; ++h) {
        RunQueue& rq = g_rq[h];
        if (!rq.online) continue;
        // Running, or throttled by its budget with the switch due at that
        // hart's interrupt exit (the one state change made outside a switch).
        VERIFY(rq.current && (rq.current->state == State::Running ||
                              (rq.current->state == State::Throttled && rq.need_resched)));
        if (rq.current->state == State::Throttled) ++running;
        VERIFY(rq.current->hart == h);
        VERIFY(rq.idle->state == (rq.current == rq.idle ? State::Running : State::Idle));
        unsigned n = 0;
        for (unsigned p = 0; p < kPriorities; ++p) {
            VERIFY(((rq.bitmap >> p) & 1) == !rq.ready[p].is_empty());
            for (Thread& t : rq.ready[p]) {
                VERIFY(t.state == State::Ready && t.priority == p && t.hart == h && !t.deadline_class);
                ++seen[&t - g_threads];
                ++n;
            }
        }
        time::Ticks last = 0;
        for (Thread& t : rq.deadline_ready) {
            VERIFY(t.state == State::Ready && t.deadline_class && t.hart == h && t.dl.deadline >= last);
            last = t.dl.deadline;
            ++seen[&t - g_threads];
            ++n;
        }
        VERIFY(n == rq.nr_ready);
    }
    for (Thread& t : g_threads) {
        VERIFY(seen[&t - g_threads] <= 1);
        if (t.state == State::Ready) VERIFY(seen[&t - g_threads] == 1);
        if (t.state == State::Running) ++running;
    }
    VERIFY(running == static_cast<unsigned>(__builtin_popcount(g_online_mask))); // one per hart
}
} // namespace

// Brings this hart's run queue online with the calling context as its idle
// thread (the boot context on the boot hart, the start-up stack elsewhere).
void hart_online(Thread& idle, unsigned hart, std::uint64_t stack_limit) {
    RunQueue& rq = g_rq[hart];
    rq.index = hart;
    arch::this_hart().scheduler = &rq;
    idle.state = State::Running;
    idle.priority = kIdlePriority;
    idle.hart = static_cast<std::uint8_t>(hart);
    idle.affinity = 1u << hart;
    idle.stack_limit = stack_limit;
    rq.idle = rq.current = &idle;
    arch::this_hart().thread = &idle;
    lockdep::adopt_boot_context(idle.locks); // the calling context becomes `idle`
    rq.slice_event.callback = on_slice;
    rq.budget_event.callback = on_budget;
    rq.balance_event.callback = on_balance;
    rq.run_start = time::now();
    arch::this_hart().thread_name = idle.name;
    rq.online = true;
    g_online_mask |= 1u << hart;
}

void install_hart_hooks() { arch::set_interrupt_exit_hook(on_interrupt_exit); }

void init_core() {
    g_quantum = time::from_us(CONFIG_SCHED_QUANTUM_US);
    g_balance_period = time::from_us(CONFIG_SCHED_BALANCE_MS * 1000ull);
    for (Thread& t : g_threads) t.timer.callback = on_thread_timer;
    install_hart_hooks();
#if CONFIG_LIB_SMP
    smp::set_ipi_handler(on_ipi);
#else
    (void)on_ipi;
#endif
}

std::uint32_t online_mask() { return g_online_mask; }

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

unsigned current_hart() { return arch::this_hart_field<std::uint32_t, offsetof(arch::Hart, index)>(); }
unsigned online_harts() { return static_cast<unsigned>(__builtin_popcount(online_mask())); }

HartStats hart_stats(unsigned hart) {
    if (hart >= arch::kMaxHarts) return {};
    arch::SpinlockGuard guard(g_lock);
    RunQueue& rq = g_rq[hart];
    HartStats s = rq.stats;
    s.ready = rq.nr_ready;
    // Count the running stretch so far, so that load figures are current.
    if (rq.online) (rq.current == rq.idle ? s.idle_ticks : s.busy_ticks) += time::now() - rq.run_start;
    return s;
}

time::Histogram wakeup_latency() {
    time::Histogram merged;
    arch::SpinlockGuard guard(g_lock);
    for (RunQueue& rq : g_rq) merged.merge(rq.wakeup);
    return merged;
}

void reset_wakeup_latency() {
    arch::SpinlockGuard guard(g_lock);
    for (RunQueue& rq : g_rq) rq.wakeup.reset();
}

} // namespace tessera::sched
