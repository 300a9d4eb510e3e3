#pragma once
// Scheduler internals shared by its source files (not a public header).
//
// State: a fixed thread table and one run queue per hart. A run queue holds
// the hart's ready threads: deadline-class threads in a list sorted by
// absolute deadline (picked first, when sched-edf is enabled), then one
// FIFO list per fixed priority plus a bitmap of the non-empty levels.
//
// Locking: one IRQ-safe spinlock (g_lock) guards every thread and every run
// queue, on all harts. It is held with interrupts off across
// arch_switch_context(); the thread that resumes releases it. A global
// lock keeps cross-hart wake-ups, migration and stealing free of lock-order
// puzzles, and its hold times are short and bounded (the pick is O(1) for
// fixed priorities); per-hart locks are the next step if 8-hart contention
// ever shows in the statistics. Lock order: outermost
// (base/lock_order.hpp); the time queues, mmu and zone locks nest inside.
#include <arch/context.hpp>
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <base/list.hpp>
#include <base/verify.hpp>
#include <lockdep/lockdep.hpp>
#include <sched/deadline.hpp>
#include <sched/domains.hpp>
#include <sched/wait.hpp>
#include <sched/sched.hpp>
#include <time/histogram.hpp>
#include <time/time.hpp>

namespace tessera::sched::detail {

#ifdef CONFIG_LIB_SCHED_EDF
inline constexpr bool kDeadlineClass = true;
#else
inline constexpr bool kDeadlineClass = false;
#endif
#ifdef CONFIG_LIB_SCHED_DOMAINS
inline constexpr bool kDomains = true;
#else
inline constexpr bool kDomains = false;
#endif
#ifdef CONFIG_SCHED_CHECK_INVARIANTS
inline constexpr bool kCheckInvariants = true;
#else
inline constexpr bool kCheckInvariants = false;
#endif

enum class State : std::uint8_t {
    Free,
    Ready,
    Running,
    Sleeping,
    Parked,
    Joining,
    Exited,
    AwaitingRelease, // deadline class: job done, next period not yet begun
    Throttled,       // deadline class: budget spent, waiting for the refill
    Idle,            // an idle thread while its hart runs something else
    Suspended,       // runnable, but held back by its throttled group or the HI mode
    Blocked,         // on a WaitQueue (sched/wait.hpp)
};

struct Group;

// Deadline-class parameters and the state of the current job.
struct DeadlineState {
    DeadlineParams params;
    time::Ticks release;     // start of the current (or next) period
    time::Ticks deadline;    // scheduling deadline: moves with each refill of a throttled job
    time::Ticks job_deadline; // the current job's own deadline, for miss accounting
    bool hi_extended;        // High thread: this job already switched to HI mode
    time::Ticks budget;      // runtime left in this period
    DeadlineStats stats;
};

struct Thread {
    arch::Context context = {};
    base::ListNode node;         // in a run queue or the dead list
    State state = State::Free;
    std::uint8_t priority = 0;      // effective: base, or inherited through owned wait queues
    std::uint8_t base_priority = 0; // as spawned or set_priority()
    std::uint8_t hart = 0;       // the run queue it is on, or ran on last
    bool detached = false;
    bool unpark_token = false;
    bool deadline_class = false;
    Criticality criticality = Criticality::Normal;
    Group* group = nullptr;
    base::ListNode group_node;   // in its group's member list
    WaitNode waiting;            // in blocked_on's waiters
    WaitQueue* blocked_on = nullptr;
    bool timed_out = false;
    bool wait_timed = false;     // the wait in blocked_on has a deadline (the timer is its)
    WaitQueue* last_queue = nullptr; // the queue its latest wait was on (wait's ended_on)
    base::IntrusiveList<WaitQueue, &WaitQueue::owned_node> owned; // PI queues it owns (with waiters)
    std::atomic<std::uintptr_t>* robust[CONFIG_SCHED_ROBUST_LOCKS] = {}; // PI words held, freed at exit
    std::uint32_t affinity = kAnyHart;
    std::uint32_t generation = 1;
    std::uint32_t saved_trap_depth = 0;
    int exit_status = 0;
    time::Event timer;           // sleep wake-up or deadline-class release/refill
    time::Ticks wake_due = time::kNever; // when it should have run: latency is measured from here
    Thread* joiner = nullptr;
    std::uint64_t stack_limit = 0;
    std::uintptr_t stack_block = 0; // what to free (0: a boot stack)
    void (*entry)(void*) = nullptr;
    void* arg = nullptr;
    DeadlineState dl = {};
    [[no_unique_address]] lockdep::HeldLocks locks; // what it holds (lockdep)
    char name[24] = {};
};

using ThreadList = base::IntrusiveList<Thread, &Thread::node>;
using GroupMembers = base::IntrusiveList<Thread, &Thread::group_node>;

struct Group {
    bool in_use;
    bool throttled;
    GroupParams params;
    time::Ticks remaining;        // budget left in this period
    time::Ticks used_this_period;
    time::Event refill;           // at each period boundary
    GroupMembers members;
    GroupStats stats;
};

struct alignas(64) RunQueue {
    ThreadList ready[kPriorities];
    ThreadList deadline_ready;   // sorted by dl.deadline, FIFO among equals
    std::uint32_t index;         // the hart's dense index (set when it comes online)
    std::uint32_t bitmap;        // bit p: ready[p] is not empty
    std::uint32_t nr_ready;
    Thread* current;
    Thread* idle;
    bool online;
    bool need_resched;           // switch at the next interrupt exit (or now)
    bool slice_check;            // a remote hart queued an equal-priority peer
    time::Ticks run_start;       // when `current` was switched in (or last charged)
    time::Ticks slice_end;
    time::Ticks switch_start;
    time::Event slice_event;
    time::Event budget_event;
    time::Event balance_event;
    HartStats stats;
    time::Histogram wakeup;      // ns from wake_due to running
};

inline constexpr unsigned kMaxThreads = CONFIG_SCHED_MAX_THREADS;

extern arch::Spinlock g_lock;
extern Thread g_threads[kMaxThreads];
extern RunQueue g_rq[arch::kMaxHarts];

inline RunQueue& this_rq() { return *static_cast<RunQueue*>(arch::this_hart().scheduler); }
inline Thread& current() { return *this_rq().current; }

using base::Error;
using base::Result;

Thread* lookup(ThreadHandle h);
ThreadHandle handle_of(const Thread& t);

// All of these: g_lock held, interrupts off.
void make_ready(Thread& t);          // queue on a suitable hart, preempting if more urgent
void dequeue(RunQueue& rq, Thread& t); // a Ready thread off its run queue (state unchanged)
void requeue_current(RunQueue& rq);  // the running thread goes back in line (if still Running)
void kick(RunQueue& rq);             // that hart must re-evaluate (IPI if remote)
void reschedule();                   // switch to this hart's most urgent thread
// The entry of every call that may switch away: never from an interrupt
// handler, and (lockdep) never while holding a spinlock.
inline void may_block(lockdep::Site site = lockdep::Site::current()) {
    VERIFY(!arch::in_interrupt());
    lockdep::might_sleep(site);
}
void finish_switch();                // the resumed side of a switch: account its cost
void preempt_if_needed();            // from thread context: switch now if something more urgent is ready
void charge_current(RunQueue& rq, time::Ticks now); // deadline class: spend budget
Result<Thread*> create_thread(void (*entry)(void*), void* arg, const ThreadAttributes& attributes); // returns with g_lock held
[[noreturn]] void idle_loop();
[[noreturn]] void exit_locked(int status);
void hart_online(Thread& idle, unsigned hart, std::uint64_t stack_limit);
void init_core();
void install_hart_hooks(); // the interrupt-exit hook is per hart
void set_effective_priority(Thread& t, unsigned priority); // requeues a ready thread, kicks a running one
void wait_timed_out(Thread& t);    // its wait's deadline passed (timer callback)
void recompute_priority(Thread& t); // base or inherited, along the chain of owners
void release_locks_at_exit(Thread& t); // hands over (or frees) the PI locks it holds, with kPiOwnerDied
std::uint32_t online_mask();

// Deadline class (deadline.cpp; stubs when sched-edf is off).
void deadline_timer(Thread& t);      // release or refill due (timer callback, g_lock held)
void deadline_budget_expired(RunQueue& rq, time::Ticks now);
void deadline_exited(Thread& t);

// Budget groups and criticality (domains.cpp; compiled out without
// sched-domains).
bool gated(const Thread& t);                       // held back now?
void charge_group(RunQueue& rq, Thread& t, time::Ticks now);
void arm_group_budget(RunQueue& rq, Thread& t, time::Ticks now);
void group_budget_expired(RunQueue& rq, time::Ticks now);
bool enter_hi_mode(Thread& t);                     // a High thread spent its LO budget
void leave_hi_mode_if(Thread& t);                  // t's release: back to LO if t caused HI
void domains_exited(Thread& t);
void arm_budget(RunQueue& rq, time::Ticks end);    // only ever earlier (core.cpp)

} // namespace tessera::sched::detail
