// Tracking held locks, lock classes and the dependency graph.
//
// Every hook runs with interrupts off (so an interrupt on this hart cannot
// see a half-updated held list) and is not re-entered on a hart: a report
// prints through klog, whose own spinlock calls these hooks, which then
// return at once (acquire and release alike, so they stay balanced).
//
// The graph is an adjacency bit matrix over classes (bit to set in row
// from: `to` was taken while `from` was held) plus a table of the first
// occurrence of each dependency with its call sites, for reports. Looking
// up a known dependency is one bit test without any lock; a new one takes
// g_graph_lock, and a breadth-first search from the new target looks for
// a path back to the lock held, which would close a cycle.
#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <cstring>

namespace tessera::lockdep {

using namespace detail;

namespace {

constexpr unsigned kWords = (kClasses + 63) / 64;

// Lock order: a leaf. Taken by the hooks with interrupts off; nothing is
// acquired under it (reports print after releasing it).
constinit arch::RawSpinlock g_graph_lock;
constinit Class g_classes[kClasses];
constinit unsigned g_class_count = 0;
constinit std::atomic<std::uint64_t> g_adjacent[kClasses][kWords];
constinit Edge g_edges[kEdges];
constinit unsigned g_edge_count = 0;
constinit std::uint16_t g_parent[kClasses]; // breadth-first search state, under g_graph_lock
constinit std::uint16_t g_queue[kClasses];

constinit std::atomic<std::uint32_t> g_checking{1}; // a word: RV64 has no byte-sized atomic exchange
constinit std::atomic<std::uint64_t> g_acquisitions{0};
constinit HeldLocks g_boot[arch::kMaxHarts]; // each hart's start-up context
constinit bool g_busy[arch::kMaxHarts];

bool same_key(const Class& c, const Map& m) {
    if (c.site.line() != m.site.line() || c.site.column() != m.site.column()) return false;
    if (std::strcmp(c.site.file_name(), m.site.file_name()) != 0) return false;
    if (!c.name || !m.name) return c.name == m.name;
    return std::strcmp(c.name, m.name) == 0;
}

void stop_checking(Problem why, const Map& lock, Site site) {
    if (!g_checking.exchange(0)) return;
    report({why, &lock, site}, nullptr);
}

// 1 + the class index of `m`, registering the class on first use; 0 when
// the table is full.
unsigned class_of(Map& m) {
    if (unsigned c = m.cls.load(std::memory_order_acquire)) return c;
    unsigned found = 0;
    {
        arch::RawSpinlock& l = g_graph_lock;
        l.lock();
        for (unsigned i = 0; i < g_class_count && !found; ++i)
            if (same_key(g_classes[i], m)) found = i + 1;
        if (!found && g_class_count < kClasses) {
            Class& c = g_classes[g_class_count++];
            c.name = m.name;
            c.site = m.site;
            found = g_class_count;
        }
        l.unlock();
    }
    if (!found) {
        stop_checking(Problem::TableFull, m, m.site);
        return 0;
    }
    m.cls.store(static_cast<std::uint16_t>(found), std::memory_order_release);
    return found;
}

bool has_edge(unsigned from, unsigned to) {
    return g_adjacent[from][to / 64].load(std::memory_order_relaxed) & (std::uint64_t(1) << (to % 64));
}

// A path from `start` to `goal` in the graph, as classes start..goal, into
// `path` (capacity kClasses); its length, 0 if none. Under g_graph_lock.
unsigned find_path(unsigned start, unsigned goal, std::uint16_t* path) {
    constexpr std::uint16_t kUnseen = 0xffff;
    for (unsigned i = 0; i < g_class_count; ++i) g_parent[i] = kUnseen;
    unsigned head = 0, tail = 0;
    g_queue[tail++] = static_cast<std::uint16_t>(start);
    g_parent[start] = static_cast<std::uint16_t>(start);
    while (head < tail) {
        unsigned c = g_queue[head++];
        if (c == goal) {
            unsigned n = 0;
            for (unsigned v = goal; ; v = g_parent[v]) {
                path[n++] = static_cast<std::uint16_t>(v);
                if (v == start) break;
            }
            for (unsigned i = 0; i < n / 2; ++i) { // reverse: start first
                std::uint16_t t = path[i];
                path[i] = path[n - 1 - i];
                path[n - 1 - i] = t;
            }
            return n;
        }
        for (unsigned w = 0; w < kWords; ++w) {
            std::uint64_t bits = g_adjacent[c][w].load(std::memory_order_relaxed);
            while (bits) {
                unsigned next = w * 64 + static_cast<unsigned>(__builtin_ctzll(bits));
                bits &= bits - 1;
                if (g_parent[next] == kUnseen) {
                    g_parent[next] = static_cast<std::uint16_t>(c);
                    g_queue[tail++] = static_cast<std::uint16_t>(next);
                }
            }
        }
    }
    return 0;
}

// Records from -> to (class indices) if new; reports a cycle it closes.
void add_dependency(const Held& from, unsigned to, Map& lock, Site site) {
    unsigned f = from.cls - 1;
    if (has_edge(f, to)) return;
    static constinit std::uint16_t path[kClasses + 1]; // under g_graph_lock, then read by this hart's report
    unsigned length = 0;
    bool full = false;
    g_graph_lock.lock();
    if (!has_edge(f, to)) {
        length = find_path(to, f, path); // to -> ... -> f, and now f -> to
        if (g_edge_count < kEdges) {
            Edge& e = g_edges[g_edge_count++];
            e.from = static_cast<std::uint16_t>(f);
            e.to = static_cast<std::uint16_t>(to);
            e.from_site = from.site;
            e.to_site = site;
            const char* name = arch::this_hart().thread_name;
            unsigned n = 0;
            for (; name && name[n] && n + 1 < sizeof(e.thread); ++n) e.thread[n] = name[n];
            e.thread[n] = 0;
            // Recorded even when it closes a cycle, so that one inversion
            // is reported once.
            g_adjacent[f][to / 64].fetch_or(std::uint64_t(1) << (to % 64), std::memory_order_relaxed);
        } else {
            full = true;
        }
    }
    std::uint16_t cycle[kClasses + 1];
    for (unsigned i = 0; i < length; ++i) cycle[i] = path[i];
    g_graph_lock.unlock();
    if (full) return stop_checking(Problem::TableFull, lock, site);
    if (length) {
        cycle[length] = static_cast<std::uint16_t>(to); // closes the loop for printing
        report({Problem::OrderInversion, &lock, site, &from, cycle, length + 1}, nullptr);
    }
}

HeldLocks& context() {
    arch::Hart& h = arch::this_hart();
    return h.lockdep ? *static_cast<HeldLocks*>(h.lockdep) : g_boot[h.index];
}

// Interrupts off and not inside lockdep on this hart, for a hook's body.
class Enter {
public:
    Enter() : m_hart(hart_index()), m_active(m_hart >= 0 && !g_busy[m_hart] && g_checking.load(std::memory_order_relaxed)) {
        if (m_active) g_busy[m_hart] = true;
    }
    ~Enter() {
        if (m_active) g_busy[m_hart] = false;
    }
    bool active() const { return m_active; }
    bool irqs_were_enabled() const { return m_irq.was_enabled(); }

private:
    static int hart_index() {
        std::uintptr_t tp;
        asm volatile("mv %0, tp" : "=r"(tp));
        return tp ? static_cast<int>(arch::this_hart().index) : -1; // tp is set before any lock is taken, but be safe
    }
    arch::IrqGuard m_irq; // first: interrupts off before anything else
    int m_hart;
    bool m_active;
};

Held* find_held(HeldLocks& h, const Map& m) {
    for (unsigned i = h.count; i-- > 0;)
        if (h.held[i].map == &m) return &h.held[i];
    return nullptr;
}

void remove_held(HeldLocks& h, Held& e) {
    unsigned i = static_cast<unsigned>(&e - h.held);
    for (; i + 1 < h.count; ++i) h.held[i] = h.held[i + 1];
    --h.count;
}

bool push(HeldLocks& h, Map& m, unsigned cls, Kind kind, Site site) {
    if (h.count == CONFIG_LOCKDEP_MAX_HELD) {
        stop_checking(Problem::TooManyHeld, m, site);
        return false;
    }
    h.held[h.count++] = {&m, site, static_cast<std::uint16_t>(cls), kind,
                         static_cast<std::uint8_t>(arch::this_hart().trap_depth)};
    return true;
}

// Interrupt-safety of spinlock classes: taken both in interrupt context and
// with interrupts enabled means an interrupt can arrive, on the hart that
// holds it, and spin on it forever.
void check_irq_usage(Class& c, Map& m, Site site, bool irqs_were_enabled) {
    bool conflict = false;
    if (arch::in_interrupt()) {
        if (!c.in_irq) { c.irq_site = site; c.in_irq = true; }
        conflict = c.irqs_on;
    } else if (irqs_were_enabled) {
        if (!c.irqs_on) { c.irqs_on_site = site; c.irqs_on = true; }
        conflict = c.in_irq;
    }
    if (conflict) {
        Details d{Problem::IrqUnsafe, &m, site};
        d.usage = &c;
        report(d, &c);
    }
}

void track(Map& m, Kind kind, Site site, bool check_order, const Enter& e) {
    g_acquisitions.fetch_add(1, std::memory_order_relaxed);
    unsigned cls = class_of(m);
    if (!cls) return;
    Class& c = g_classes[cls - 1];
    HeldLocks& h = context();
    if (kind == Kind::Sleep && arch::in_interrupt()) report({Problem::SleepingLockInIrq, &m, site}, &c);
    if (Held* again = find_held(h, m); again && check_order) {
        Details d{Problem::Recursion, &m, site};
        d.other = again;
        report(d, &c);
    }
    if (kind == Kind::Spin) check_irq_usage(c, m, site, e.irqs_were_enabled());
    if (check_order) {
        std::uint8_t depth = static_cast<std::uint8_t>(arch::this_hart().trap_depth);
        for (unsigned i = 0; i < h.count; ++i) {
            const Held& held = h.held[i];
            // Same-class nesting (two locks built at one line) is not
            // ordered; other interrupt depths are other contexts.
            if (held.cls && held.cls != cls && held.irq_depth == depth) add_dependency(held, cls - 1, m, site);
        }
    }
    (void)push(h, m, cls, kind, site);
}

} // namespace

namespace detail {
Class& class_at(unsigned index) { return g_classes[index]; }
const Edge* find_edge(unsigned from, unsigned to) {
    for (unsigned i = 0; i < g_edge_count; ++i)
        if (g_edges[i].from == from && g_edges[i].to == to) return &g_edges[i];
    return nullptr;
}
} // namespace detail

void acquire(Map& lock, Kind kind, Site site) {
    Enter e;
    if (e.active()) track(lock, kind, site, true, e);
}

void acquired_try(Map& lock, Kind kind, Site site) {
    Enter e;
    if (e.active()) track(lock, kind, site, false, e);
}

void abandon(Map& lock) {
    Enter e;
    if (!e.active()) return;
    HeldLocks& h = context();
    if (Held* held = find_held(h, lock)) remove_held(h, *held);
}

void release(Map& lock, Site site) {
    Enter e;
    if (!e.active()) return;
    HeldLocks& h = context();
    if (Held* held = find_held(h, lock)) return remove_held(h, *held);
    unsigned cls = class_of(lock);
    report({Problem::ReleaseNotHeld, &lock, site}, cls ? &g_classes[cls - 1] : nullptr);
}

void might_sleep(Site site) {
    Enter e;
    if (!e.active() || arch::in_interrupt()) return; // the scheduler refuses that itself
    HeldLocks& h = context();
    for (unsigned i = 0; i < h.count; ++i) {
        const Held& held = h.held[i];
        if (held.kind != Kind::Spin || !held.cls) continue;
        Details d{Problem::SleepUnderSpinlock, held.map, site};
        d.other = &held;
        report(d, &g_classes[held.cls - 1]);
        return;
    }
}

void handed_over(Map& lock, Site site) {
    Enter e;
    if (!e.active()) return;
    if (unsigned cls = class_of(lock)) (void)push(context(), lock, cls, Kind::Spin, site);
}

void switch_to(HeldLocks& locks) { arch::this_hart().lockdep = &locks; }

void adopt_boot_context(HeldLocks& locks) {
    arch::IrqGuard irq;
    arch::Hart& h = arch::this_hart();
    HeldLocks& boot = g_boot[h.index];
    locks = boot;
    boot.count = 0;
    h.lockdep = &locks;
}

Stats stats() {
    Stats s{};
    s.classes = g_class_count;
    s.dependencies = g_edge_count;
    s.acquisitions = g_acquisitions.load(std::memory_order_relaxed);
    s.checking = g_checking.load(std::memory_order_relaxed) != 0;
    report_counts(s.reports);
    return s;
}

} // namespace tessera::lockdep
