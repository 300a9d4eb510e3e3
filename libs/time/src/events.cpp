// Timer events: one binary min-heap per hart, ordered by deadline. Each
// queued event records its heap index (slot), so cancel is O(log n) without
// a search. The hart's hardware timer is armed for the head; see time.hpp.
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <atomic>
#include <base/verify.hpp>
#include <plat/timer.hpp>
#include <time/time.hpp>

namespace tessera::time {

namespace {

constexpr std::uint32_t kCapacity = CONFIG_TIME_EVENTS_PER_HART;

struct alignas(64) Queue {
    // Lock order: inside the scheduler's lock (which arms sleep and budget
    // events), outside klog (base/lock_order.hpp). Never two queues at once.
    arch::Spinlock lock;
    std::uint32_t size;
    std::uint64_t armed;
    std::uint64_t cancelled;
    std::uint64_t fired;
    std::uint64_t max_pending;
    Event* heap[kCapacity];
    Histogram lateness;
};

constinit Queue g_queues[arch::kMaxHarts] = {};

std::uint32_t slot_of(const Event& e) {
    return std::atomic_ref<const std::uint32_t>(e.slot).load(std::memory_order_relaxed);
}

void place(Queue& q, std::uint32_t i, Event* e) {
    q.heap[i] = e;
    std::atomic_ref<std::uint32_t>(e->slot).store(i + 1, std::memory_order_relaxed);
}

void sift_up(Queue& q, std::uint32_t i) {
    Event* e = q.heap[i];
    while (i > 0) {
        std::uint32_t parent = (i - 1) / 2;
        if (q.heap[parent]->deadline <= e->deadline) break;
        place(q, i, q.heap[parent]);
        i = parent;
    }
    place(q, i, e);
}

void sift_down(Queue& q, std::uint32_t i) {
    Event* e = q.heap[i];
    for (;;) {
        std::uint32_t child = 2 * i + 1;
        if (child >= q.size) break;
        if (child + 1 < q.size && q.heap[child + 1]->deadline < q.heap[child]->deadline) ++child;
        if (e->deadline <= q.heap[child]->deadline) break;
        place(q, i, q.heap[child]);
        i = child;
    }
    place(q, i, e);
}

void remove_at(Queue& q, std::uint32_t i) {
    Event* e = q.heap[i];
    std::atomic_ref<std::uint32_t>(e->slot).store(0, std::memory_order_relaxed);
    Event* last = q.heap[--q.size];
    if (i == q.size) return;
    q.heap[i] = last;
    if (i > 0 && q.heap[(i - 1) / 2]->deadline > last->deadline) sift_up(q, i);
    else sift_down(q, i);
}

void arm_hardware(Ticks deadline) {
    if (deadline == kNever) plat::timer::disarm();
    else plat::timer::arm(deadline);
}

// The timer interrupt of this hart: run every event that is due, then arm
// the hardware for the next one. Callbacks run with the queue unlocked.
void on_timer() {
    Queue& q = g_queues[arch::this_hart().index];
    for (;;) {
        Ticks t = plat::timer::now();
        q.lock.lock();
        Event* e = q.size ? q.heap[0] : nullptr;
        if (!e || e->deadline > t) {
            Ticks next = e ? e->deadline : kNever;
            q.lock.unlock();
            arm_hardware(next);
            return;
        }
        remove_at(q, 0);
        ++q.fired;
        q.lateness.record(to_ns(t - e->deadline));
        q.lock.unlock();
        e->callback(*e, t);
    }
}

} // namespace

std::uint64_t to_ns(Ticks ticks) { return plat::timer::ticks_to_ns(ticks); }
Ticks from_ns(std::uint64_t ns) { return plat::timer::ns_to_ticks(ns); }

base::Result<void> arm(Event& event, Ticks deadline) {
    if (!event.callback) return base::Error::InvalidArgument;
    if (event.queued()) (void)cancel(event);
    arch::IrqGuard irq; // the hardware below is this hart's: stay on it
    unsigned index = arch::this_hart().index;
    Queue& q = g_queues[index];
    q.lock.lock();
    if (q.size == kCapacity) {
        q.lock.unlock();
        return base::Error::NoMemory;
    }
    event.deadline = deadline;
    event.hart = static_cast<std::uint16_t>(index);
    q.heap[q.size] = &event;
    sift_up(q, q.size++);
    ++q.armed;
    if (q.size > q.max_pending) q.max_pending = q.size;
    Ticks head = q.heap[0]->deadline;
    q.lock.unlock();
    // The hardware must fire no later than the head. Compared with what it
    // really holds (not with the event just armed), so a hardware timer
    // that someone borrowed and left disarmed is put right here too; a
    // later deadline is found when the armed one fires and re-evaluates.
    if (head < plat::timer::deadline()) plat::timer::arm(head);
    return {};
}

bool cancel(Event& event) {
    if (!slot_of(event)) return false;
    Queue& q = g_queues[event.hart];
    arch::SpinlockGuard guard(q.lock);
    std::uint32_t slot = slot_of(event);
    // Popped by a firing between the check above and the lock.
    if (!slot || q.heap[slot - 1] != &event) return false;
    remove_at(q, slot - 1);
    ++q.cancelled;
    return true;
}

Stats stats() {
    Stats s = {};
    for (Queue& q : g_queues) {
        arch::SpinlockGuard guard(q.lock);
        s.armed += q.armed;
        s.cancelled += q.cancelled;
        s.fired += q.fired;
        s.pending += q.size;
        if (q.max_pending > s.max_pending) s.max_pending = q.max_pending;
    }
    plat::timer::Stats hw = plat::timer::stats();
    s.hardware_writes = hw.programmed;
    s.hardware_skips = hw.skipped;
    return s;
}

Histogram lateness() {
    Histogram merged;
    for (Queue& q : g_queues) {
        arch::SpinlockGuard guard(q.lock);
        merged.merge(q.lateness);
    }
    return merged;
}

void reset_lateness() {
    for (Queue& q : g_queues) {
        arch::SpinlockGuard guard(q.lock);
        q.lateness.reset();
    }
}

// Init step time.start: the time library owns the hardware timer from now.
base::Result<void> init_start() {
    (void)plat::timer::set_handler(on_timer);
    return {};
}

} // namespace tessera::time
