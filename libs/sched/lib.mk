# libs/sched: threads, per-hart run queues, the fixed-priority scheduler,
# and the deadline-class mechanism when sched-edf is enabled.
SRCS-y += src/core.cpp src/threads.cpp src/wait.cpp
SRCS-$(CONFIG_LIB_SCHED_EDF) += src/deadline.cpp
SRCS-$(CONFIG_LIB_SCHED_DOMAINS) += src/domains.cpp
TESTS-y += tests/sched_test.cpp tests/fp_test.cpp
USES += mm-buddy time
ifeq ($(CONFIG_LIB_MMU),y)
USES += mmu
endif
ifeq ($(CONFIG_LIB_SMP),y)
USES += smp
endif
INIT += sched.start
INIT-AFTER-sched.start := plat.timer time.start mm_buddy.memory ?mmu.enable
