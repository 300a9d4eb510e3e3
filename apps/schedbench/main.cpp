// Context-switch costs in guest instructions, for make bench. Two threads
// of equal priority, less urgent than main, take turns once main blocks in
// join(); the figure is the total divided by the number of switches, call
// overhead included.
#include <arch/csr.hpp>
#include <klog/klog.hpp>
#include <sched/sched.hpp>

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

} // namespace

int main() {
    // yield: each call is one switch to the other thread.
    auto a = sched::spawn(yielder, nullptr, {"yield-a", 10}).value();
    auto b = sched::spawn(yielder, nullptr, {"yield-b", 10}).value();
    auto before = sched::stats().switches;
    std::uint64_t start = arch::rdinstret();
    (void)sched::join(a);
    (void)sched::join(b);
    std::uint64_t switches = sched::stats().switches - before;
    klog::print("schedbench: yield_switch {}\n", (arch::rdinstret() - start) / switches);

    // park/unpark ping-pong: the pattern of a thread waking another and
    // going to sleep (a request handed to a worker).
    g_peer[0] = sched::spawn(pinger, reinterpret_cast<void*>(0), {"ping", 10}).value();
    g_peer[1] = sched::spawn(pinger, reinterpret_cast<void*>(1), {"pong", 10}).value();
    before = sched::stats().switches;
    start = arch::rdinstret();
    (void)sched::unpark(g_peer[0]);
    (void)sched::join(g_peer[0]);
    (void)sched::join(g_peer[1]);
    switches = sched::stats().switches - before;
    klog::print("schedbench: park_unpark_switch {}\n", (arch::rdinstret() - start) / switches);
    klog::print("schedbench: switches {}\n", switches);
    klog::print("schedbench: done\n");
    return 0;
}
