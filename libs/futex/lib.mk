# libs/futex: futexes keyed by word address, on the scheduler's wait queues.
SRCS-y += src/futex.cpp
TESTS-y += tests/futex_test.cpp
USES += sched time
ifeq ($(CONFIG_LIB_SYNC),y)
USES += sync # a test chains a PI futex and a sync::Mutex
endif
