# libs/smp: secondary harts, IPIs, per-hart statistics.
SRCS-y += src/smp.cpp
TESTS-y += tests/smp_test.cpp
USES += mm-buddy
ifeq ($(CONFIG_LIB_MMU),y)
USES += mmu
endif
INIT += smp.start
# Secondaries need the kernel map (mmu.enable) and their timer quiet
# (plat.timer); a scheduler's state must exist before its per-hart idle
# loops (tessera_secondary_run) can start, hence ?sched.start.
INIT-AFTER-smp.start := plat.timer mm_buddy.memory ?mmu.enable ?sched.start
