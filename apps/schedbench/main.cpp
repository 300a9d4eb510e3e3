// Context-switch costs in guest instructions, for make bench. Two threads
// of equal priority, less urgent than main, take turns once main blocks in
// join(); the figure is the total divided by the number of switches, call
// overhead included.
#include <arch/csr.hpp>
#include <ipc/mailbox.hpp>
#include <klog/klog.hpp>
#include <sched/sched.hpp>
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
    mailbox_figures();
    for (unsigned ready : {1u, 8u, 64u, 256u})
        klog::print("schedbench: yield_switch_ready_{} {}\n", ready, yield_switch_with_ready(ready));
    klog::print("schedbench: done\n");
    return 0;
}
