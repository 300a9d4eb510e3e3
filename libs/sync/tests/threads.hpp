#pragma once
// Helpers shared by the sync test cases.
#include <base/verify.hpp>
#include <sched/sched.hpp>

namespace tessera::sync::test {

// A thread on the boot hart, where the test's main thread runs: ordering
// by priority there does not depend on timing.
inline sched::ThreadAttributes pinned(std::string_view name, unsigned priority) {
    return {name, priority, 16384, 1u};
}

// Below every thread it spawned on the boot hart, the caller runs again
// only once they have all blocked or finished (timing-independent). It is
// pinned there meanwhile: once lowered, an idle hart would otherwise take
// it and let it run on at once (seen on 4 harts).
inline void let_them_run() {
    VERIFY(sched::set_affinity(sched::self(), 1u).ok());
    VERIFY(sched::set_priority(sched::self(), 2).ok());
    VERIFY(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY).ok());
    VERIFY(sched::set_affinity(sched::self(), sched::kAnyHart).ok());
}

} // namespace tessera::sync::test
