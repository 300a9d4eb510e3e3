// Context-switch and sync costs in guest instructions, for make bench.
// Switches: two threads of equal priority, less urgent than main, take
// turns once main blocks in join(); the figure is the total divided by the
// number of switches, call overhead included. Sync: see each figure.
#include <arch/csr.hpp>
#include <arch/spinlock.hpp>
#include <atomic>
#include <futex/futex.hpp>
#include <ipc/mailbox.hpp>
#include <klog/klog.hpp>
#include <sched/sched.hpp>
#include <sync/condvar.hpp>
#include <sync/mutex.hpp>
#include <sync/semaphore.hpp>

using namespace tessera;

namespace {

constexpr unsigned kRounds = 10000;
sched::ThreadHandle g_peer[2];
void yielder(void*) {
    for (unsigned i = 0; i < kRounds; ++i) sched::yield();
}

void pinger(void* arg) {
    auto me = reinterpret_cast<std::uintptr_t>(arg);
    sched::park(); // wait for the start signal
    for (unsigned i = 0; i < kRounds; ++i) {
        (void)sched::unpark(g_peer[1 - me]);
        sched::park();
    }
    (void)sched::unpark(g_peer[1 - me]);
}

void nothing(void*) {}

// Yield switches between two priority-10 threads while `ready` more
// threads wait, ready, at priority 2 (they never get the hart until the
// yielders finish): the pick must not slow down as the queues fill.
std::uint64_t yield_switch_with_ready(unsigned ready) {
    static sched::ThreadHandle waiting[256];
    for (unsigned i = 0; i < ready; ++i) waiting[i] = sched::spawn(nothing, nullptr, {"ready", 2, 4096}).value();
    auto a = sched::spawn(yielder, nullptr, {"yield-a", 10}).value();
    auto b = sched::spawn(yielder, nullptr, {"yield-b", 10}).value();
    auto before = sched::stats().switches;
    std::uint64_t start = arch::rdinstret();
    (void)sched::join(a);
    (void)sched::join(b);
    std::uint64_t per_switch = (arch::rdinstret() - start) / (sched::stats().switches - before);
    for (unsigned i = 0; i < ready; ++i) (void)sched::join(waiting[i]);
    return per_switch;
}

// Futex wake latency: a waiter more urgent than main, on main's hart,
// blocks in futex::wait; main samples rdinstret and calls wake(); the
// waiter samples it as wait returns. The mean over kRounds of the
// difference is the instructions from the wake call to the woken thread
// running (lookup, the scheduler's wake and switch, the waiter's return).
futex::Word g_futex{0};
std::atomic<std::uint64_t> g_wake_at{0};
std::uint64_t g_latency_sum = 0;

void futex_waiter(void*) {
    for (unsigned i = 0; i < kRounds; ++i) {
        (void)futex::wait(g_futex, 0);
        g_latency_sum += arch::rdinstret() - g_wake_at.load(std::memory_order_relaxed);
    }
}

void futex_figures() {
    std::uint32_t here = 1u << sched::current_hart();
    (void)sched::set_affinity(sched::self(), here);
    auto waiter = sched::spawn(futex_waiter, nullptr, {"futex-waiter", CONFIG_SCHED_MAIN_PRIORITY + 1,
                                                       CONFIG_SCHED_STACK_KIB * 1024, here}).value();
    for (unsigned i = 0; i < kRounds; ++i) {
        g_wake_at.store(arch::rdinstret(), std::memory_order_relaxed);
        (void)futex::wake(g_futex, 1); // the waiter runs before this returns
    }
    (void)sched::join(waiter);
    klog::print("schedbench: futex_wake_latency {}\n", g_latency_sum / kRounds);

    // Uncontended PI futex: one CAS each way plus the robust registration.
    static futex::PiWord pi{0};
    constexpr unsigned kPairs = 20000;
    std::uint64_t start = arch::rdinstret();
    for (unsigned i = 0; i < kPairs; ++i) {
        (void)futex::lock_pi(pi);
        (void)futex::unlock_pi(pi);
    }
    klog::print("schedbench: futex_lock_pi_unlock_pi {}\n", (arch::rdinstret() - start) / kPairs);
    (void)sched::set_affinity(sched::self(), sched::kAnyHart);
}

// Semaphore handover latency: a more urgent thread on the same hart
// blocks in acquire(); main stamps rdinstret and releases; the waiter
// stamps again as its acquire() returns. Includes the wake-up, the
// preemption of main and the switch.
constexpr unsigned kHandovers = 2000;
sync::Semaphore g_handover{0};
std::uint64_t g_released_at = 0;
std::uint64_t g_handover_total = 0;
void handover_waiter(void*) {
    for (unsigned i = 0; i < kHandovers; ++i) {
        (void)g_handover.acquire();
        g_handover_total += arch::rdinstret() - g_released_at;
    }
}
std::uint64_t semaphore_handover_latency() {
    auto waiter = sched::spawn(handover_waiter, nullptr, {"waiter", CONFIG_SCHED_MAIN_PRIORITY + 1}).value();
    for (unsigned i = 0; i < kHandovers; ++i) {
        g_released_at = arch::rdinstret();
        g_handover.release(); // the waiter runs and blocks again before this returns
    }
    (void)sched::join(waiter);
    return g_handover_total / kHandovers;
}

// Condition-variable ping-pong: two threads take turns under one mutex,
// each waiting for its turn and signalling the other. One round trip is
// two signal+wait hand-offs (and two switches).
constexpr unsigned kRoundTrips = 5000;
struct PingPong {
    sync::Mutex m;
    sync::ConditionVariable cv;
    unsigned turn = 0; // guarded by m
};
PingPong g_pingpong;
void take_turns(void* arg) {
    auto me = unsigned(reinterpret_cast<std::uintptr_t>(arg));
    for (unsigned i = 0; i < kRoundTrips; ++i) {
        sync::MutexGuard guard(g_pingpong.m);
        while (g_pingpong.turn != me) g_pingpong.cv.wait(g_pingpong.m);
        g_pingpong.turn = 1 - me;
        g_pingpong.cv.signal();
    }
}
std::uint64_t condvar_round_trip() {
    std::uint64_t start = arch::rdinstret();
    auto a = sched::spawn(take_turns, reinterpret_cast<void*>(0), {"turn-a", 10}).value();
    auto b = sched::spawn(take_turns, reinterpret_cast<void*>(1), {"turn-b", 10}).value();
    (void)sched::join(a);
    (void)sched::join(b);
    return (arch::rdinstret() - start) / kRoundTrips;
}

// Mailboxes (ipc): a send+receive pair in one thread with the mailbox
// never full or empty (the fast paths: one spinlock hold each), and a
// round trip between two threads: ping sends a request and waits for the
// reply, pong receives it and replies on a second mailbox. Each round trip
// is two blocking receives, two wake-ups and two switches.
ipc::Mailbox<std::uint64_t, 4> g_requests, g_replies;

void ping(void*) {
    for (std::uint64_t i = 0; i < kRounds; ++i) {
        (void)g_requests.send(i);
        (void)g_replies.receive();
    }
}

void pong(void*) {
    for (unsigned i = 0; i < kRounds; ++i) (void)g_replies.send(g_requests.receive().value_or(0) + 1);
}

void mailbox_figures() {
    constexpr unsigned kPairs = 20000;
    static ipc::Mailbox<std::uint64_t, 4> mailbox;
    std::uint64_t start = arch::rdinstret();
    for (std::uint64_t i = 0; i < kPairs; ++i) {
        (void)mailbox.send(i);
        (void)mailbox.receive();
    }
    klog::print("schedbench: mailbox_send_receive {}\n", (arch::rdinstret() - start) / kPairs);

    // Both run only once main blocks in join (they are less urgent).
    auto b = sched::spawn(pong, nullptr, {"pong", 10}).value();
    auto a = sched::spawn(ping, nullptr, {"ping", 10}).value();
    start = arch::rdinstret();
    (void)sched::join(a);
    (void)sched::join(b);
    klog::print("schedbench: mailbox_round_trip {}\n", (arch::rdinstret() - start) / kRounds);
}

} // namespace

int main() {
    // yield: each call is one switch to the other thread.
    klog::print("schedbench: yield_switch {}\n", yield_switch_with_ready(0));

    // park/unpark ping-pong: the pattern of a thread waking another and
    // going to sleep (a request handed to a worker).
    g_peer[0] = sched::spawn(pinger, reinterpret_cast<void*>(0), {"ping", 10}).value();
    g_peer[1] = sched::spawn(pinger, reinterpret_cast<void*>(1), {"pong", 10}).value();
    auto before = sched::stats().switches;
    std::uint64_t start = arch::rdinstret();
    (void)sched::unpark(g_peer[0]);
    (void)sched::join(g_peer[0]);
    (void)sched::join(g_peer[1]);
    std::uint64_t switches = sched::stats().switches - before;
    klog::print("schedbench: park_unpark_switch {}\n", (arch::rdinstret() - start) / switches);
    klog::print("schedbench: switches {}\n", switches);

    // Uncontended mutex lock+unlock, and a semaphore acquire+release with
    // a unit free: the fast paths, with call overhead.
    static sync::Mutex mutex;
    constexpr unsigned kPairs = 20000;
    start = arch::rdinstret();
    for (unsigned i = 0; i < kPairs; ++i) {
        mutex.lock();
        mutex.unlock();
    }
    klog::print("schedbench: mutex_lock_unlock {}\n", (arch::rdinstret() - start) / kPairs);
    static sync::Semaphore sem(1);
    start = arch::rdinstret();
    for (unsigned i = 0; i < kPairs; ++i) {
        (void)sem.acquire();
        sem.release();
    }
    klog::print("schedbench: semaphore_acquire_release {}\n", (arch::rdinstret() - start) / kPairs);
    futex_figures();
    // The kernel's spinlock with its interrupt guard: lock+unlock.
    static arch::Spinlock spinlock;
    start = arch::rdinstret();
    for (unsigned i = 0; i < kPairs; ++i) arch::SpinlockGuard guard(spinlock);
    klog::print("schedbench: spinlock_pair {}\n", (arch::rdinstret() - start) / kPairs);
    klog::print("schedbench: semaphore_handover_latency {}\n", semaphore_handover_latency());
    klog::print("schedbench: condvar_signal_wait_round_trip {}\n", condvar_round_trip());
    mailbox_figures();
    for (unsigned ready : {1u, 8u, 64u, 256u})
        klog::print("schedbench: yield_switch_ready_{} {}\n", ready, yield_switch_with_ready(ready));
    klog::print("schedbench: done\n");
    return 0;
}
