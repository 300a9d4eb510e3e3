// The scheduler. State lives in fixed tables (no allocation but stacks):
// the thread table, one run queue (a list per priority plus a bitmap of the
// non-empty ones) and a deadline-sorted list of sleepers.
//
// Switching: the scheduler lock is held, with interrupts off, across
// arch_switch_context(); the thread that resumes releases it. A thread
// preempted by an interrupt is switched out from the interrupt-exit hook,
// so its trap frame stays on its own stack until it runs again.
#include <arch/context.hpp>
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <arch/trap.hpp>
#include <base/list.hpp>
#include <cstring>
#include <new>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <plat/boot.hpp>
#include <plat/timer.hpp>
#include <sched/sched.hpp>
#if CONFIG_LIB_MMU
#include <mmu/mmu.hpp>
#endif

extern "C" char __boot_stack_bottom[];
int main();

namespace tessera::sched {

namespace {

using base::Error;
using base::Result;

enum class State : std::uint8_t { Free, Ready, Running, Sleeping, Parked, Joining, Exited };

struct Thread {
    arch::Context context = {};
    base::ListNode node;         // in a run queue level or the sleep list
    State state = State::Free;
    std::uint8_t priority = 0;
    bool detached = false;
    bool unpark_token = false;
    std::uint32_t generation = 1;
    std::uint32_t saved_trap_depth = 0;
    int exit_status = 0;
    std::uint64_t wake_at = 0;
    Thread* joiner = nullptr;
    std::uint64_t stack_limit = 0;
    std::uintptr_t stack_block = 0; // what to free (0: the boot stack)
    void (*entry)(void*) = nullptr;
    void* arg = nullptr;
    char name[24] = {};
};

using ThreadList = base::IntrusiveList<Thread, &Thread::node>;

constexpr unsigned kMaxThreads = CONFIG_SCHED_MAX_THREADS;

// Everything below is protected by g_lock (lock order: outermost of the
// kernel's locks, base/lock_order.hpp; mmu and mm-buddy locks are taken
// inside it when stacks are freed).
constinit arch::Spinlock g_lock;
constinit Thread g_threads[kMaxThreads];
constinit ThreadList g_ready[kPriorities];
constinit std::uint32_t g_ready_bitmap = 0;
constinit ThreadList g_sleepers; // sorted by wake_at
constinit ThreadList g_dead;     // exited and detached: stacks to free
constinit Thread* g_current = nullptr;
constinit Thread* g_idle = nullptr;
constinit bool g_need_resched = false;
constinit std::uint64_t g_slice_end = 0;
constinit std::uint64_t g_quantum_ticks = 0; // CONFIG_SCHED_QUANTUM_US, converted once
constinit Stats g_stats = {};

Thread* lookup(ThreadHandle h) {
    if (h.index >= kMaxThreads) return nullptr;
    Thread& t = g_threads[h.index];
    return (t.state != State::Free && t.generation == h.generation) ? &t : nullptr;
}

ThreadHandle handle_of(const Thread& t) {
    return {static_cast<std::uint32_t>(&t - g_threads), t.generation};
}

void program_timer();

void make_ready(Thread& t) {
    t.state = State::Ready;
    g_ready[t.priority].push_back(t);
    g_ready_bitmap |= 1u << t.priority;
    if (!g_current) return;
    if (t.priority > g_current->priority) g_need_resched = true;
    // Someone now waits for the running thread's level: its slice must end
    // (the slice timer is only armed while a peer is waiting).
    else if (t.priority == g_current->priority && g_current != g_idle && &t != g_current) program_timer();
}

// Puts the running thread back in line before a switch. The idle thread is
// never queued: it runs when the queues are empty.
void requeue_current() {
    if (g_current != g_idle) make_ready(*g_current);
}

Thread* take_most_urgent() {
    if (!g_ready_bitmap) return g_idle;
    unsigned level = 31 - static_cast<unsigned>(__builtin_clz(g_ready_bitmap));
    Thread* t = g_ready[level].pop_front();
    if (g_ready[level].is_empty()) g_ready_bitmap &= ~(1u << level);
    return t;
}

constexpr std::uint64_t kNever = ~0ull;

// The one-shot timer must fire no later than the nearest of: the first
// sleeper's wake-up, the end of the running thread's slice (only if another
// thread of its priority is waiting for it). It is only moved *earlier*
// here; a timer that fires before anything is due just re-evaluates
// (on_timer), which keeps timer writes off most context switches.
void program_timer() {
    std::uint64_t deadline = kNever;
    if (Thread* first = g_sleepers.first()) deadline = first->wake_at;
    if (g_current != g_idle && (g_ready_bitmap >> g_current->priority) & 1)
        deadline = g_slice_end < deadline ? g_slice_end : deadline;
    // Compared with what the hardware really holds (someone else, a test
    // borrowing plat::timer, may have changed it), and re-armed when that
    // is later than needed or already in the past.
    std::uint64_t armed = plat::timer::deadline();
    if (deadline < armed || armed <= plat::timer::now()) {
        if (deadline == kNever) plat::timer::disarm(); else plat::timer::arm(deadline);
    }
}

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
    --g_stats.live;
}

void reap_dead() {
    while (Thread* t = g_dead.pop_front()) release_slot(*t);
}

// Switches to the most urgent ready thread (or idle). The caller holds
// g_lock with interrupts off, and has already queued or blocked the
// current thread. Returns when this thread is switched back in.
void reschedule() {
    Thread* prev = g_current;
    Thread* next = take_most_urgent();
    g_need_resched = false;
    if (next == prev) {
        prev->state = State::Running;
        return;
    }
    arch::Hart& hart = arch::this_hart();
    prev->saved_trap_depth = hart.trap_depth;
    hart.trap_depth = next->saved_trap_depth;
    hart.stack_limit = next->stack_limit;
    hart.thread_name = next->name;
    next->state = State::Running;
    g_current = next;
    g_slice_end = plat::timer::now() + g_quantum_ticks;
    program_timer();
    ++g_stats.switches;
    arch_switch_context(&prev->context, &next->context);
    // Running again (g_current == prev): free what died meanwhile.
    reap_dead();
}

// Timer interrupt: wake sleepers that are due, rotate a slice that is over.
void on_timer() {
    arch::SpinlockGuard guard(g_lock);
    std::uint64_t now = plat::timer::now();
    while (Thread* t = g_sleepers.first()) {
        if (t->wake_at > now) break;
        g_sleepers.remove(*t);
        make_ready(*t);
    }
    if (g_current != g_idle && now >= g_slice_end) {
        if ((g_ready_bitmap >> g_current->priority) & 1)
            g_need_resched = true; // an equal-priority thread is waiting: its turn
        else
            g_slice_end = now + g_quantum_ticks;
    }
    program_timer();
}

// Interrupt exit: preempt if the interrupt made something more urgent ready
// (or ended a slice). Interrupts are off; we are back in thread context.
void on_interrupt_exit() {
    if (!g_need_resched) return;
    g_lock.lock();
    if (g_need_resched) {
        // Back to the end of its level: round robin, and a preempted thread
        // of lower priority simply waits for its turn.
        requeue_current();
        ++g_stats.preemptions;
        reschedule();
    }
    g_lock.unlock();
}

[[noreturn]] void exit_locked(int status) {
    Thread* self = g_current;
    self->exit_status = status;
    self->state = State::Exited;
    ++g_stats.exited;
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

// First code of every thread (after arch_thread_start): release the lock
// the switch was made under, turn interrupts on, run.
void thread_start(void* slot) {
    reap_dead();
    g_lock.unlock();
    arch::irq_enable();
    Thread* self = static_cast<Thread*>(slot);
    self->entry(self->arg);
    exit(0);
}

} // namespace

Result<ThreadHandle> spawn(void (*entry)(void*), void* arg, const ThreadAttributes& attributes) {
    VERIFY(!arch::in_interrupt());
    if (!entry || attributes.priority == kIdlePriority || attributes.priority >= kPriorities)
        return Error::InvalidArgument;
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
    arch::IrqGuard irq;
    g_lock.lock();
    Thread* t = nullptr;
    for (Thread& candidate : g_threads)
        if (candidate.state == State::Free) { t = &candidate; break; }
    if (!t) {
        g_lock.unlock();
#if CONFIG_LIB_MMU
        mmu::free_stack(stack);
#else
        mm_buddy::free_pages(pages);
#endif
        return Error::NoMemory;
    }
    std::uint32_t generation = t->generation;
    t->~Thread();
    new (t) Thread();
    t->generation = generation;
    t->priority = static_cast<std::uint8_t>(attributes.priority);
    t->stack_block = block;
    t->stack_limit = limit;
    t->entry = entry;
    t->arg = arg;
    std::size_t n = attributes.name.size() < sizeof(t->name) - 1 ? attributes.name.size() : sizeof(t->name) - 1;
    memcpy(t->name, attributes.name.data(), n);
    arch::init_context(t->context, top, thread_start, t);
    ++g_stats.spawned;
    ++g_stats.live;
    make_ready(*t);
    ThreadHandle h = handle_of(*t);
    if (g_need_resched) { // more urgent than us: it runs now
        requeue_current();
        reschedule();
    }
    g_lock.unlock();
    return h;
}

Result<int> join(ThreadHandle h) {
    VERIFY(!arch::in_interrupt());
    VERIFY(g_current != g_idle); // the idle (boot) context never blocks
    arch::IrqGuard irq;
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t) return Error::NotFound;
    if (t == g_current || t->detached) return Error::InvalidArgument;
    if (t->joiner) return Error::Busy;
    if (t->state != State::Exited) {
        t->joiner = g_current;
        g_current->state = State::Joining;
        reschedule();
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
    if (t->detached || t == g_idle) return Error::InvalidArgument;
    if (t->joiner) return Error::Busy;
    t->detached = true;
    if (t->state == State::Exited) release_slot(*t); // already gone: clean up now
    return {};
}

void exit(int status) {
    VERIFY(!arch::in_interrupt() && g_current != g_idle);
    arch::irq_disable();
    g_lock.lock();
    exit_locked(status);
}

void yield() {
    VERIFY(!arch::in_interrupt()); // a handler must not switch away mid-way
    arch::IrqGuard irq;
    arch::SpinlockGuard guard(g_lock);
    requeue_current();
    reschedule();
}

void sleep_until(std::uint64_t deadline) {
    VERIFY(!arch::in_interrupt());
    VERIFY(g_current != g_idle); // the idle (boot) context never blocks
    arch::IrqGuard irq;
    arch::SpinlockGuard guard(g_lock);
    if (deadline <= plat::timer::now()) return;
    Thread* self = g_current;
    self->wake_at = deadline;
    self->state = State::Sleeping;
    Thread* after = nullptr; // keep the list sorted: FIFO among equal deadlines
    for (Thread& s : g_sleepers)
        if (s.wake_at > deadline) { after = &s; break; }
    if (after) g_sleepers.insert_before(*after, *self); else g_sleepers.push_back(*self);
    reschedule();
}

void sleep_for_ns(std::uint64_t ns) { sleep_until(plat::timer::now() + plat::timer::ns_to_ticks(ns)); }

void park() {
    VERIFY(!arch::in_interrupt());
    VERIFY(g_current != g_idle); // the idle (boot) context never blocks
    arch::IrqGuard irq;
    arch::SpinlockGuard guard(g_lock);
    if (g_current->unpark_token) {
        g_current->unpark_token = false;
        return;
    }
    g_current->state = State::Parked;
    reschedule();
    g_current->unpark_token = false;
}

Result<void> unpark(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t || t->state == State::Exited) return Error::NotFound;
    if (t->state == State::Parked) {
        make_ready(*t);
        // From a thread, switch at once if it is more urgent; from an
        // interrupt, the interrupt-exit hook does it.
        if (g_need_resched && !arch::in_interrupt()) {
            requeue_current();
            reschedule();
        }
    } else {
        t->unpark_token = true;
    }
    return {};
}

ThreadHandle self() {
    arch::SpinlockGuard guard(g_lock);
    return handle_of(*g_current);
}

std::string_view name(ThreadHandle h) {
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    return t ? std::string_view(t->name) : std::string_view();
}

Result<void> set_priority(ThreadHandle h, unsigned priority) {
    VERIFY(!arch::in_interrupt());
    if (priority == kIdlePriority || priority >= kPriorities) return Error::InvalidArgument;
    arch::IrqGuard irq;
    arch::SpinlockGuard guard(g_lock);
    Thread* t = lookup(h);
    if (!t || t == g_idle) return t ? Error::InvalidArgument : Error::NotFound;
    if (t->state == State::Ready) {
        g_ready[t->priority].remove(*t);
        if (g_ready[t->priority].is_empty()) g_ready_bitmap &= ~(1u << t->priority);
        t->priority = static_cast<std::uint8_t>(priority);
        make_ready(*t);
    } else {
        t->priority = static_cast<std::uint8_t>(priority);
    }
    // Lowered ourselves below a ready thread, or raised one above us.
    if (g_ready_bitmap && (31 - static_cast<unsigned>(__builtin_clz(g_ready_bitmap))) > g_current->priority &&
        !arch::in_interrupt()) {
        requeue_current();
        reschedule();
    }
    return {};
}

Stats stats() {
    arch::SpinlockGuard guard(g_lock);
    return g_stats;
}

// Init step sched.start: the boot context becomes the idle thread.
Result<void> init_start() {
    Thread& idle = g_threads[0];
    idle.state = State::Running;
    idle.priority = kIdlePriority;
    idle.stack_limit = reinterpret_cast<std::uint64_t>(__boot_stack_bottom);
    memcpy(idle.name, "idle", 5);
    g_idle = g_current = &idle;
    g_quantum_ticks = plat::timer::ns_to_ticks(CONFIG_SCHED_QUANTUM_US * 1000ull);
    g_stats.live = 1;
    arch::this_hart().thread_name = idle.name;
    (void)plat::timer::set_handler(on_timer);
    arch::set_interrupt_exit_hook(on_interrupt_exit);
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
    for (;;) {
        sched::yield(); // runs whatever is ready
        arch::wfi();    // nothing is: an interrupt's exit hook will switch away
    }
}
