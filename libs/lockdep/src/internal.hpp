#pragma once
// lockdep internals shared by its source files (not a public header).
#include <atomic>
#include <cstdint>
#include <lockdep/lockdep.hpp>

namespace tessera::lockdep::detail {

inline constexpr unsigned kClasses = CONFIG_LOCKDEP_MAX_CLASSES;
inline constexpr unsigned kEdges = CONFIG_LOCKDEP_MAX_EDGES;

struct Class {
    const char* name;  // as the lock was constructed (may be null)
    Site site;         // where locks of this class are constructed
    Site irq_site;     // first acquisition in interrupt context
    Site irqs_on_site; // first acquisition with interrupts enabled (spinlocks)
    bool in_irq;
    bool irqs_on;
    std::uint8_t reported; // bit per Problem: each is reported once per class
};

// A recorded dependency: `to` was acquired while `from` was held.
struct Edge {
    std::uint16_t from, to; // class indices
    Site from_site, to_site;
    char thread[16];
};

Class& class_at(unsigned index);
const Edge* find_edge(unsigned from, unsigned to);

// What a report prints besides its headline.
struct Details {
    Problem problem;
    const Map* lock;                 // the lock being operated on
    Site site;                       // where
    const Held* other = nullptr;     // the held lock involved (sleep under spinlock, recursion)
    const std::uint16_t* cycle = nullptr; // inversion: classes c0 -> c1 -> ... -> c0
    unsigned cycle_length = 0;
    const Class* usage = nullptr;    // IRQ usage problems: the class and its recorded sites
};

// Prints the report (or counts it as expected), then panics if
// CONFIG_LOCKDEP_FATAL. `once` is the class whose `reported` bit
// suppresses repeats (null: always report).
void report(const Details& d, Class* once);
void report_counts(std::uint32_t (&out)[kProblems]);

} // namespace tessera::lockdep::detail
