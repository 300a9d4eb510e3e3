// Runs every registered in-kernel test and turns the verdict into the exit
// status (and so into QEMU's).
#include <ktest/ktest.hpp>
#if CONFIG_LIB_SCHED
#include <sched/sched.hpp>
#endif

int main() {
#if CONFIG_LIB_SCHED
    // Cases run from the boot hart, as on a one-hart machine, whatever the
    // hart count; the cases about other harts spawn threads there.
    (void)tessera::sched::set_affinity(tessera::sched::self(), 1u);
#endif
    return tessera::ktest::main_from_boot_options();
}
