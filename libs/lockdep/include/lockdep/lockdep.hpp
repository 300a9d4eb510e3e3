#pragma once
// lockdep: the run-time lock validator, and the hooks every lock calls.
//
// Every spinlock (arch/spinlock.hpp) and mutex (sync) carries a Map and
// reports its operations here. Locks constructed at the same source line
// form one class (all pools' locks are one class, each file-scope lock is
// its own). While a thread holds locks of classes H1..Hn and acquires a
// lock of class N, lockdep records the dependencies Hi -> N with the source
// lines of both acquisitions; a new dependency that closes a cycle (A -> B
// here while B -> A, or B -> C -> A, was seen before) is a possible
// deadlock and is reported even though this run did not deadlock. It also
// reports: a lock class taken in interrupt context that is elsewhere taken
// with interrupts enabled (the interrupt can arrive while it is held on the
// same hart), a sleeping lock taken in interrupt context, sleeping while
// holding a spinlock, taking a lock the context already holds, releasing a
// lock it does not hold, and running out of its tables.
//
// Held locks are tracked per thread (the scheduler switches the tracked
// context with the thread; interrupt handlers push onto the interrupted
// thread's list, and dependencies are only recorded between locks taken at
// the same interrupt depth). Classes of one construction site that nest
// (two pools' locks) are not checked against each other.
//
// With CONFIG_LOCKDEP_FATAL a report ends in a panic; otherwise each
// distinct problem is reported once and the kernel goes on. With
// LIB_LOCKDEP off every hook is an empty inline function and Map and
// HeldLocks are empty: locks cost exactly what they cost without it.
//
// SMP-safe (one internal lock, taken with interrupts off). Callable from
// interrupt context.
#include <atomic>
#include <cstdint>
#include <source_location>

namespace tessera::lockdep {

using Site = std::source_location;

enum class Kind : std::uint8_t {
    Spin,  // busy-waits: may be taken in interrupt context; must not sleep while held
    Sleep, // blocks the caller: never in interrupt context
};

enum class Problem : std::uint8_t {
    OrderInversion,     // a dependency cycle between lock classes
    IrqUnsafe,          // taken in interrupt context and with interrupts enabled
    SleepingLockInIrq,  // a sleeping lock acquired in interrupt context
    SleepUnderSpinlock, // a thread may sleep while it holds a spinlock
    Recursion,          // acquiring a lock the context already holds
    ReleaseNotHeld,     // releasing a lock the context does not hold
    TooManyHeld,        // CONFIG_LOCKDEP_MAX_HELD exceeded (checking stops)
    TableFull,          // class or dependency table full (checking stops)
};
inline constexpr unsigned kProblems = 8;

#ifdef CONFIG_LIB_LOCKDEP
inline constexpr bool kEnabled = true;

// Per lock: its name and the line that constructed it (the class key), and
// the class once looked up.
struct Map {
    constexpr Map(const char* lock_name, Site constructed) : name(lock_name), site(constructed) {}
    const char* name;
    Site site;
    std::atomic<std::uint16_t> cls{0}; // 1 + class index; 0 until first use
};

struct Held {
    const Map* map;
    Site site;             // where it was acquired
    std::uint16_t cls;     // 1 + class index (0: untracked, e.g. lockdep was off)
    Kind kind;
    std::uint8_t irq_depth; // arch trap depth at the acquisition
};

// The locks one context (a thread, or a hart before it runs threads)
// holds, in acquisition order. Zero-initialised storage is empty.
struct HeldLocks {
    Held held[CONFIG_LOCKDEP_MAX_HELD];
    std::uint8_t count = 0;
};

// Before the caller may block or spin for `lock`: checks and records.
void acquire(Map& lock, Kind kind, Site site);
// A try-lock that succeeded: held, but no order check (it cannot deadlock).
void acquired_try(Map& lock, Kind kind, Site site);
// A timed acquisition that gave up: forgets what acquire() recorded.
void abandon(Map& lock);
void release(Map& lock, Site site);
// Called where the caller is about to block.
void might_sleep(Site site = Site::current());
// The scheduler's lock passes from the thread that switches out to the one
// that switches in: the new thread's record must show it held.
void handed_over(Map& lock, Site site);
// The scheduler: this hart now runs the context whose locks are `locks`.
void switch_to(HeldLocks& locks);
// The scheduler: the hart's start-up context becomes a thread with
// `locks`; what it holds moves there.
void adopt_boot_context(HeldLocks& locks);


struct Stats {
    std::uint32_t classes;
    std::uint32_t dependencies;
    std::uint64_t acquisitions;
    std::uint32_t reports[kProblems]; // including expected ones
    bool checking;                     // false once a table filled up
};
Stats stats();
const char* problem_name(Problem p);

// For tests that provoke a problem on purpose: while an Expect for `p` is
// alive (one at a time, kernel-wide), a report of `p` prints one line instead of the full
// report, is never fatal and sets seen(). Any other problem is reported
// as usual.
class Expect {
public:
    explicit Expect(Problem p);
    ~Expect();
    Expect(const Expect&) = delete;
    Expect& operator=(const Expect&) = delete;
    bool seen() const { return m_seen; }
    void note_seen() { m_seen = true; }
    Problem problem() const { return m_problem; }

private:
    Problem m_problem;
    bool m_seen = false;
    Expect* m_outer;
};

#else // !CONFIG_LIB_LOCKDEP
inline constexpr bool kEnabled = false;

struct Map {
    constexpr Map(const char*, Site) {}
};
struct HeldLocks {};

inline void acquire(Map&, Kind, Site) {}
inline void acquired_try(Map&, Kind, Site) {}
inline void abandon(Map&) {}
inline void release(Map&, Site) {}
inline void might_sleep(Site = Site::current()) {}
inline void handed_over(Map&, Site) {}
inline void switch_to(HeldLocks&) {}
inline void adopt_boot_context(HeldLocks&) {}
#endif

} // namespace tessera::lockdep
