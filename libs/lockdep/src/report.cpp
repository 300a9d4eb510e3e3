// Reports: what lockdep prints when it finds a problem.
#include "internal.hpp"
#include <arch/backtrace.hpp>
#include <arch/hart.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>

namespace tessera::lockdep {

using namespace detail;

namespace {

constinit std::atomic<Expect*> g_expect{nullptr};
constinit std::atomic<std::uint32_t> g_reports[kProblems];

constexpr const char* kHeadlines[kProblems] = {
    "possible deadlock: lock order inversion",
    "interrupt-unsafe lock: taken in interrupt context and with interrupts enabled",
    "sleeping lock acquired in interrupt context",
    "sleeping while holding a spinlock",
    "recursive locking: this context already holds the lock",
    "releasing a lock this context does not hold",
    "too many locks held at once; lockdep stops checking",
    "lockdep's tables are full; it stops checking",
};

const char* name_of(const char* name) { return name ? name : "(unnamed)"; }

void print_site(std::string_view what, Site s) {
    klog::print("lockdep:   {} at {}:{} ({})\n", what, s.file_name(), s.line(), s.function_name());
}

void print_lock(std::string_view what, const char* name, Site constructed) {
    klog::print("lockdep: {} '{}', a lock constructed at {}:{}\n", what, name_of(name), constructed.file_name(),
                constructed.line());
}

void print_cycle(const Details& d) {
    klog::print("lockdep: the order seen before, with this acquisition closing the cycle:\n");
    for (unsigned i = 0; i + 1 < d.cycle_length; ++i) {
        const Class& from = class_at(d.cycle[i]);
        const Class& to = class_at(d.cycle[i + 1]);
        klog::print("lockdep:   '{}' then '{}'", name_of(from.name), name_of(to.name));
        if (const Edge* e = find_edge(d.cycle[i], d.cycle[i + 1])) {
            klog::print(" (thread '{}'):\n", e->thread);
            print_site("  first taken", e->from_site);
            print_site("  then taken", e->to_site);
        } else {
            klog::print(" (not recorded: the dependency table is full)\n");
        }
    }
}

void print_usage(const Class& c) {
    print_site("taken in interrupt context", c.irq_site);
    print_site("taken with interrupts enabled", c.irqs_on_site);
    klog::print("lockdep: an interrupt arriving while it is held with interrupts enabled spins on it forever;\n"
                "lockdep: hold it with interrupts off everywhere (arch::SpinlockGuard does)\n");
}

void print_details(const Details& d) {
    arch::Hart& h = arch::this_hart();
    klog::print("lockdep: thread '{}' on hart {}{}\n", h.thread_name, h.index,
                h.trap_depth ? " (in interrupt context)" : "");
    switch (d.problem) {
    case Problem::OrderInversion:
        print_lock("acquires", d.lock->name, d.lock->site);
        print_site("here", d.site);
        print_lock("while holding", d.other->map->name, d.other->map->site);
        print_site("taken", d.other->site);
        print_cycle(d);
        break;
    case Problem::SleepUnderSpinlock:
        print_site("may sleep", d.site);
        print_lock("while holding the spinlock", d.other->map->name, d.other->map->site);
        print_site("taken", d.other->site);
        break;
    case Problem::Recursion:
        print_lock("acquires", d.lock->name, d.lock->site);
        print_site("here", d.site);
        print_site("but already holds it, taken", d.other->site);
        break;
    case Problem::IrqUnsafe:
        print_lock("lock", d.lock->name, d.lock->site);
        print_usage(*d.usage);
        break;
    default:
        print_lock("lock", d.lock->name, d.lock->site);
        print_site("here", d.site);
        break;
    }
}

} // namespace

const char* problem_name(Problem p) {
    constexpr const char* kNames[kProblems] = {"order-inversion",      "irq-unsafe", "sleeping-lock-in-irq",
                                               "sleep-under-spinlock", "recursion",  "release-not-held",
                                               "too-many-held",        "table-full"};
    unsigned i = static_cast<unsigned>(p);
    return i < kProblems ? kNames[i] : "?";
}

namespace detail {

void report_counts(std::uint32_t (&out)[kProblems]) {
    for (unsigned i = 0; i < kProblems; ++i) out[i] = g_reports[i].load(std::memory_order_relaxed);
}

void report(const Details& d, Class* once) {
    unsigned bit = 1u << static_cast<unsigned>(d.problem);
    Expect* expected = g_expect.load(std::memory_order_acquire);
    if (expected && expected->problem() == d.problem) {
        g_reports[static_cast<unsigned>(d.problem)].fetch_add(1, std::memory_order_relaxed);
        expected->note_seen();
        klog::print("lockdep: expected report: {} ('{}')\n", problem_name(d.problem), name_of(d.lock->name));
        return;
    }
    if (once) {
        if (once->reported & bit) return;
        once->reported = static_cast<std::uint8_t>(once->reported | bit);
    }
    g_reports[static_cast<unsigned>(d.problem)].fetch_add(1, std::memory_order_relaxed);
    klog::print("lockdep: ================================================================\n");
    klog::print("lockdep: {}\n", kHeadlines[static_cast<unsigned>(d.problem)]);
    print_details(d);
    klog::print("lockdep: backtrace:\n");
    arch::print_backtrace(arch::current_frame_pointer());
    klog::print("lockdep: ================================================================\n");
#ifdef CONFIG_LOCKDEP_FATAL
    PANIC("lockdep: locking bug (CONFIG_LOCKDEP_FATAL)");
#endif
}

} // namespace detail

Expect::Expect(Problem p) : m_problem(p), m_outer(g_expect.exchange(this, std::memory_order_acq_rel)) {}

Expect::~Expect() { g_expect.store(m_outer, std::memory_order_release); }

} // namespace tessera::lockdep
