# libs/sched: threads and the fixed-priority scheduler.
SRCS-y += src/sched.cpp
TESTS-y += tests/sched_test.cpp
USES += mm-buddy
ifeq ($(CONFIG_LIB_MMU),y)
USES += mmu
endif
INIT += sched.start
INIT-AFTER-sched.start := plat.timer mm_buddy.memory ?mmu.enable
