#pragma once
// Budget groups and mixed criticality: the mechanism under sched-domains
// (built when that library is enabled; applications use
// sched-domains/domains.hpp).
//
// A budget group gives its member threads, together, `budget` of CPU time
// per `period` (on whatever harts they run). When the members have spent
// it, all of them are suspended until the next period begins; ready members
// leave their run queues at once and running ones at their hart's next
// interrupt exit (an IPI for a remote hart, so the overshoot is bounded by
// the IPI latency). A thread is in at most one group; deadline-class threads
// have their own budget and cannot join one.
//
// Criticality: threads are Normal (default), Low or High. A High
// deadline-class thread carries two budgets: its runtime (LO mode) and
// runtime_hi >= runtime. When it exhausts its LO budget in a job, the
// system switches to HI mode: every Low thread is suspended, and the High
// thread continues with the difference. At that thread's next release the
// system returns to LO mode and the Low threads resume. Normal threads are
// not affected by the mode. Switches are counted and timestamped
// (criticality()).
#include <base/result.hpp>
#include <cstdint>
#include <sched/sched.hpp>
#include <time/time.hpp>

namespace tessera::sched {

struct GroupParams {
    time::Ticks budget;
    time::Ticks period; // 0 < budget <= period
};

struct GroupStats {
    std::uint64_t periods;        // refills so far
    std::uint64_t throttles;      // periods in which the budget ran out
    time::Ticks used_last_period; // CPU time the members used in the last complete period
    time::Ticks max_used;         // the most in any period
    unsigned members;
};

using GroupId = std::uint32_t;

// NoMemory when CONFIG_SCHED_DOMAINS_MAX_GROUPS exist; InvalidArgument for
// inconsistent parameters.
base::Result<GroupId> group_create(const GroupParams& params);
// Busy while it has members.
base::Result<void> group_destroy(GroupId group);
// InvalidArgument for a deadline-class thread or one already in a group.
base::Result<void> group_join(GroupId group, ThreadHandle thread);
base::Result<void> group_leave(ThreadHandle thread);
base::Result<GroupStats> group_stats(GroupId group);

enum class Criticality : std::uint8_t { Normal, Low, High };
// High is only for deadline-class threads spawned with a runtime_hi;
// InvalidArgument otherwise.
base::Result<void> set_criticality(ThreadHandle thread, Criticality criticality);

enum class Mode : std::uint8_t { Lo, Hi };
struct ModeStats {
    Mode mode;
    std::uint64_t to_hi;           // LO -> HI switches
    std::uint64_t to_lo;
    time::Ticks last_switch;       // when the mode last changed
    ThreadHandle trigger;          // the High thread whose overrun caused the last HI switch
    std::uint64_t suspended_now;   // threads held back by the mode or a throttled group
};
ModeStats criticality();

} // namespace tessera::sched
