// The thread API: creation, exit, join, blocking and waking, attributes,
// and the idle loops. The run-queue mechanics are in core.cpp.
#include "internal.hpp"
#include <arch/cpu.hpp>
#include <base/verify.hpp>
#include <cstring>
#include <mm-buddy/buddy.hpp>
#include <new>
#include <plat/boot.hpp>
#include <plat/console.hpp>
#if CONFIG_LIB_MMU
#include <mmu/mmu.hpp>
#endif

extern "C" char __boot_stack_bottom[];
int main();

namespace tessera::sched::detail {

namespace {

static_assert(CONFIG_TIME_EVENTS_PER_HART >= CONFIG_SCHED_MAX_THREADS + 3,
              "CONFIG_TIME_EVENTS_PER_HART must cover one timer per thread plus the scheduler's three per hart");

constinit ThreadList g_dead; // exited and detached: stacks to free
constinit std::uint64_t g_spawned = 0;
constinit std::uint64_t g_exited = 0;
constinit std::uint64_t g_live = 0;

void free_stack(Thread& t) {
    if (!t.stack_block) return;
#if CONFIG_LIB_MMU
    mmu::free_stack({t.stack_block, t.stack_block + mm_buddy::kPageSize, 0});
#else
    mm_buddy::free_pages(reinterpret_cast<void*>(t.stack_block));
#endif
    t.stack_block = 0;
}

void release_slot(Thread& t) {
    free_stack(t);
    t.state = State::Free;
    ++t.generation; // old handles no longer name this slot
    --g_live;
}

[[gnu::noinline]] void reap_dead_slow() {
    while (Thread* t = g_dead.pop_front()) release_slot(*t);
}

// On every block: the common empty case costs a load and a branch.
inline void reap_dead() {
    if (!g_dead.is_empty()) reap_dead_slow();
}

Thread* free_slot() {
    for (Thread& t : g_threads)
        if (t.state == State::Free) return &t;
    return nullptr;
}

// Resets a free slot for a new thread (keeps the generation and the timer's
// callback, which init_core set once for every slot).
void reset_slot(Thread& t, std::string_view name) {
    std::uint32_t generation = t.generation;
    time::Event::Callback timer_callback = t.timer.callback;
    t.~Thread();
    new (&t) Thread();
    t.generation = generation;
    t.timer.callback = timer_callback;
    std::size_t n = name.size() < sizeof(t.name) - 1 ? name.size() : sizeof(t.name) - 1;
    memcpy(t.name, name.data(), n);
    ++g_live;
}

// First code of every thread (after arch_thread_start): finish the switch
// made under the lock, release it, turn interrupts on, run.
void thread_start(void* slot) {
    finish_switch();
    reap_dead();
    g_lock.handed_over(); // taken by the thread that switched to this one
    g_lock.unlock();
    arch::irq_enable();
    Thread* self = static_cast<Thread*>(slot);
    self->entry(self->arg);
    sched::exit(0);
}

void block_current() {
    reschedule();
    reap_dead(); // running again: free what died meanwhile
}

} // namespace

// Creates a thread in state Free->(set up, not yet ready). On success g_lock
// is held (interrupts must already be off) and *out is the new thread.
Result<Thread*> create_thread(void (*entry)(void*), void* arg, const ThreadAttributes& attributes) {
    VERIFY(!arch::in_interrupt());
    if (!entry) return Error::InvalidArgument;
    if (attributes.stack_size < 4096 || attributes.stack_size > (mm_buddy::kPageSize << mm_buddy::kMaxOrder) / 2)
        return Error::InvalidArgument;
    // The stack first, outside the lock (it may take the mmu and zone locks).
#if CONFIG_LIB_MMU
    mmu::Stack stack = TRY(mmu::alloc_stack(attributes.stack_size));
    std::uintptr_t block = stack.guard, limit = stack.bottom, top = stack.top;
#else
    void* pages = TRY(mm_buddy::alloc_pages(mm_buddy::order_for(attributes.stack_size)));
    std::uintptr_t block = reinterpret_cast<std::uintptr_t>(pages), limit = block;
    std::uintptr_t top = block + (mm_buddy::kPageSize << mm_buddy::order_for(attributes.stack_size));
#endif
    g_lock.lock();
    Thread* t = free_slot();
    if (!t) {
        g_lock.unlock();
#if CONFIG_LIB_MMU
        mmu::free_stack(stack);
#else
        mm_buddy::free_pages(pages);
#endif
        return Error::NoMemory;
    }
    reset_slot(*t, attributes.name);
    t->priority = t->base_priority = static_cast<std::uint8_t>(attributes.priority);
    t->affinity = attributes.affinity;
    t->hart = static_cast<std::uint8_t>(arch::this_hart().index);
    t->stack_block = block;
    t->stack_limit = limit;
    t->entry = entry;
    t->arg = arg;
    arch::init_context(t->context, top, thread_start, t);
    ++g_spawned;
    return t;
}

void exit_locked(int status) {
    Thread* self = &current();
    self->exit_status = status;
    self->state = State::Exited;
    ++g_exited;
    if constexpr (kDeadlineClass) {
        if (self->deadline_class) deadline_exited(*self);
    }
    if constexpr (kDomains) domains_exited(*self);
    // Robust owner death: every PI lock it holds with waiters goes to the
    // most urgent waiter, the registered ones nobody waits for are freed,
    // all flagged kPiOwnerDied; no queue keeps a link into this slot.
    release_locks_at_exit(*self);
    (void)time::cancel(self->timer);
    if (self->joiner) {
        // The joiner stays recorded, so no one else can join or detach (and
        // release) the slot before the joiner has collected the status.
        make_ready(*self->joiner);
    } else if (self->detached) {
        g_dead.push_back(*self); // freed by whoever runs next
    }
    reschedule();
    VERIFY_NOT_REACHED();
}

constinit std::atomic<IdlePoll> g_idle_polls[kIdlePolls] = {};

// True if some poll wants to be called again rather than wait.
bool run_idle_polls() {
    bool again = false;
    for (auto& slot : g_idle_polls)
        if (IdlePoll poll = slot.load(std::memory_order_acquire)) again |= poll();
    return again;
}

// The calling context becomes the idle thread of `hart` and runs its loop:
// whatever is ready, else the idle polls, else wait for an interrupt
// (whose exit hook switches away when it made something ready).
[[noreturn]] void idle_loop() {
    for (;;) {
        sched::yield();
        if (run_idle_polls()) continue;
        arch::wfi();
    }
}

Stats sum_stats() {
    Stats s = {};
    for (RunQueue& rq : g_rq) {
        s.switches += rq.stats.switches;
        s.preemptions += rq.stats.preemptions;
        s.migrations += rq.stats.migrations;
        s.steals += rq.stats.steals;
        s.handoffs += rq.stats.handoffs;
        s.throttles += rq.stats.throttles;
        s.deadline_misses += rq.stats.deadline_misses;
        if (rq.stats.switch_ticks_max > s.switch_ticks_max) s.switch_ticks_max = rq.stats.switch_ticks_max;
    }
    s.spawned = g_spawned;
    s.exited = g_exited;
    s.live = g_live;
    return s;
}

Thread* adopt_idle(unsigned hart) {
    Thread* idle = free_slot();
    VERIFY(idle);
    char name[16] = "idle";
    if (hart) { name[4] = '/'; name[5] = static_cast<char>('0' + hart % 10); }
    reset_slot(*idle, name);
    return idle;
}

} // namespace tessera::sched::detail

namespace tessera::sched {

using namespace detail;

Result<void> add_idle_poll(IdlePoll poll) {
    if (!poll) return Error::InvalidArgument;
    arch::SpinlockGuard guard(g_lock); // serializes adders; the idle loop reads the slots without it
    for (auto& slot : g_idle_polls)
        if (slot.load(std::memory_order_relaxed) == poll) return Error::Busy;
    for (auto& slot : g_idle_polls) {
        if (!slot.load(std::memory_order_relaxed)) {
            slot.store(poll, std::memory_order_release);
            return {};
        }
    }
    return Error::NoMemory;
}

void remove_idle_poll(IdlePoll poll) {
    arch::SpinlockGuard guard(g_lock);
    for (auto& slot : g_idle_polls)
        if (slot.load(std::memory_order_relaxed) == poll) slot.store(nullptr, std::memory_order_release);
}

Result<ThreadHandle> spawn(void (*entry)(void*), void* arg, const ThreadAttributes& attributes) {
    if (attributes.priority == kIdlePriority || attributes.priority >= kPriorities) return Error::InvalidArgument;
    if (!(attributes.affinity & online_mask())) return Error::InvalidArgument;
    arch::IrqGuard irq;
    Thread* t = TRY(create_thread(entry, arg, attributes));
    make_ready(*t);
    ThreadHandle h = handle_of(*t);
    preempt_if_needed(); // more urgent than us (on this hart): it runs now
    g_lock.unlock();
    return h;
}

Result<int> join(ThreadHandle h) {
    may_block();
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    VERIFY(&self != this_rq().idle); // the idle context never blocks
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t == &self || t->detached || t->priority == kIdlePriority) return Error::InvalidArgument; // idle threads never exit
    if (t->joiner) return Error::Busy;
    if (t->state != State::Exited) {
        t->joiner = &self;
        self.state = State::Joining;
        block_current();
    }
    int status = t->exit_status;
    release_slot(*t);
    return status;
}

Result<void> detach(ThreadHandle h) {
    VERIFY(!arch::in_interrupt());
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t->detached || t->priority == kIdlePriority) return Error::InvalidArgument;
    if (t->joiner) return Error::Busy;
    t->detached = true;
    if (t->state == State::Exited) release_slot(*t); // already gone: clean up now
    return {};
}

void exit(int status) {
    VERIFY(!arch::in_interrupt() && &current() != this_rq().idle);
    arch::irq_disable();
    g_lock.lock();
    exit_locked(status);
}

void yield() {
    may_block(); // a handler must not switch away mid-way
    arch::SpinlockGuard guard(g_lock);
    requeue_current(this_rq());
    block_current();
}

void sleep_until(std::uint64_t deadline) {
    may_block();
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    VERIFY(&self != this_rq().idle); // the idle context never blocks
    if (deadline <= time::now()) return;
    // Cannot fail: the queue holds a timer for every thread (static_assert above).
    VERIFY(time::arm(self.timer, deadline).ok());
    self.state = State::Sleeping;
    block_current();
}

void sleep_for_ns(std::uint64_t ns) { sleep_until(time::now() + time::from_ns(ns)); }

void park() {
    may_block();
    arch::SpinlockGuard guard(g_lock);
    Thread& self = current();
    VERIFY(&self != this_rq().idle); // the idle context never blocks
    if (self.unpark_token) {
        self.unpark_token = false;
        return;
    }
    self.state = State::Parked;
    block_current();
    current().unpark_token = false;
}

Result<void> unpark(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t || t->state == State::Exited) return Error::NotFound;
    if (t->state == State::Parked) {
        make_ready(*t);
        // From a thread, switch at once if it is more urgent; from an
        // interrupt, the interrupt-exit hook does it.
        preempt_if_needed();
    } else {
        t->unpark_token = true;
    }
    return {};
}

ThreadHandle self() {
    arch::SpinlockGuard guard(g_lock);
    return handle_of(current());
}

std::string_view name(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    return t ? std::string_view(t->name) : std::string_view();
}

Result<void> set_priority(ThreadHandle h, unsigned priority) {
    VERIFY(!arch::in_interrupt());
    if (priority == kIdlePriority || priority >= kPriorities) return Error::InvalidArgument;
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t->priority == kIdlePriority || t->deadline_class) return Error::InvalidArgument;
    t->base_priority = static_cast<std::uint8_t>(priority);
    recompute_priority(*t); // inherited priority, if higher, still rules
    // Lowered ourselves below a ready thread, or raised one above us.
    RunQueue& rq = this_rq();
    if (rq.bitmap && (31 - static_cast<unsigned>(__builtin_clz(rq.bitmap))) > current().priority)
        rq.need_resched = true;
    preempt_if_needed();
    return {};
}

Result<void> set_affinity(ThreadHandle h, std::uint32_t mask) {
    VERIFY(!arch::in_interrupt());
    arch::SpinlockGuard guard(g_lock);
    if (!(mask & online_mask())) return Error::InvalidArgument;
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t->priority == kIdlePriority || t->deadline_class) return Error::InvalidArgument;
    t->affinity = mask;
    if (t->state == State::Ready) {
        // Placed again under the new mask: off a hart it may no longer
        // use, or onto one it now may (an idle hart would not notice it
        // waiting elsewhere until it next looked for work).
        dequeue(g_rq[t->hart], *t);
        make_ready(*t);
    } else if (t->state == State::Running && !(mask >> t->hart & 1)) {
        kick(g_rq[t->hart]); // requeue_current() places it on an allowed hart
    }
    preempt_if_needed();
    return {};
}

Stats stats() {
    arch::SpinlockGuard guard(g_lock);
    return sum_stats();
}

namespace {
// A thread blocked in plat::console::read() parks; the receive interrupt
// unparks it.
constexpr plat::console::ReaderBlocking kConsoleBlocking = {
    [] {
        ThreadHandle h = self();
        return std::uint64_t(h.index) << 32 | h.generation;
    },
    [] { park(); },
    [](std::uint64_t token) {
        (void)unpark({static_cast<std::uint32_t>(token >> 32), static_cast<std::uint32_t>(token)});
    },
};
} // namespace

// Init step sched.start: the boot context becomes hart 0's idle thread.
Result<void> init_start() {
    init_core();
    plat::console::set_reader_blocking(&kConsoleBlocking);
    Thread& idle = g_threads[0];
    reset_slot(idle, "idle");
    hart_online(idle, 0, reinterpret_cast<std::uint64_t>(__boot_stack_bottom));
    return {};
}

} // namespace tessera::sched

using namespace tessera;

namespace {
void main_thread(void*) { plat::boot::finish_main(main()); }
} // namespace

// main() gets a thread of its own; the boot context becomes the idle thread
// and waits for interrupts whenever nothing else is ready.
extern "C" [[noreturn]] void tessera_run_main() {
    auto main_handle = sched::spawn(main_thread, nullptr, {"main", CONFIG_SCHED_MAIN_PRIORITY,
                                                          CONFIG_SCHED_STACK_KIB * 1024});
    if (!main_handle.ok()) PANIC("sched: cannot start the main thread");
    sched::detail::idle_loop();
}

#if CONFIG_LIB_SMP
// A secondary hart started by the smp library: its start-up context becomes
// the hart's idle thread, and the hart joins the scheduler.
extern "C" [[noreturn]] void tessera_secondary_run(unsigned index) {
    using namespace sched::detail;
    arch::irq_disable();
    g_lock.lock();
    hart_online(*adopt_idle(index), index, arch::this_hart().stack_limit);
    g_lock.unlock();
    install_hart_hooks(); // after hart_online: the hook finds the run queue through tp
    arch::irq_enable();
    idle_loop();
}
#endif
