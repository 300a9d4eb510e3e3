#pragma once
// Budget groups and HI/LO mixed criticality, in application units.
//
//     auto ui = sched_domains::create_group(2'000'000, 10'000'000); // 2 ms per 10 ms
//     sched_domains::join(ui.value(), web_thread);
//     sched_domains::set_criticality(logger, sched::Criticality::Low);
//     // A High EDF thread: sched_edf::Params{.runtime_ns, .period_ns, .runtime_hi_ns}
//
// The rules (what a group's throttle and the HI mode do, who is affected)
// are in sched/domains.hpp. SMP-safe (the scheduler's lock).
#include <sched/domains.hpp>

namespace tessera::sched_domains {

using sched::Criticality;
using sched::GroupId;
using sched::GroupStats;
using sched::ModeStats;

// InvalidArgument unless 0 < budget <= period (and the budget is at least
// one timer tick); NoMemory when CONFIG_SCHED_DOMAINS_MAX_GROUPS exist.
base::Result<GroupId> create_group(std::uint64_t budget_ns, std::uint64_t period_ns);
base::Result<void> destroy_group(GroupId group);
base::Result<void> join(GroupId group, sched::ThreadHandle thread);
base::Result<void> leave(sched::ThreadHandle thread);
base::Result<GroupStats> stats(GroupId group); // times in time::Ticks
base::Result<void> set_criticality(sched::ThreadHandle thread, Criticality criticality);
ModeStats mode();

} // namespace tessera::sched_domains
