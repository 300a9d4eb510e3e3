#include <sched-domains/domains.hpp>
#include <time/time.hpp>

namespace tessera::sched_domains {

base::Result<GroupId> create_group(std::uint64_t budget_ns, std::uint64_t period_ns) {
    time::Ticks budget = time::from_ns(budget_ns), period = time::from_ns(period_ns);
    if (budget == 0 || budget_ns > period_ns) return base::Error::InvalidArgument;
    return sched::group_create({budget, period});
}

base::Result<void> destroy_group(GroupId group) { return sched::group_destroy(group); }
base::Result<void> join(GroupId group, sched::ThreadHandle thread) { return sched::group_join(group, thread); }
base::Result<void> leave(sched::ThreadHandle thread) { return sched::group_leave(thread); }
base::Result<GroupStats> stats(GroupId group) { return sched::group_stats(group); }

base::Result<void> set_criticality(sched::ThreadHandle thread, Criticality criticality) {
    return sched::set_criticality(thread, criticality);
}

ModeStats mode() { return sched::criticality(); }

} // namespace tessera::sched_domains
