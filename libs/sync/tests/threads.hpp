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

// Below every thread it spawned on its hart, the caller runs again only
// once they have all blocked or finished (timing-independent). The ktest
// app pins its main thread to the boot hart, where pinned() puts them.
inline void let_them_run() {
    VERIFY(sched::set_priority(sched::self(), 2).ok());
    VERIFY(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY).ok());
}

} // namespace tessera::sync::test
