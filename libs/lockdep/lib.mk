# libs/lockdep: the run-time lock validator. Its header is visible to every
# component (the Makefile adds it next to base and klog) because every lock
# calls its hooks; with LIB_LOCKDEP off they compile to nothing.
SRCS-y += src/lockdep.cpp src/report.cpp
TESTS-y += tests/lockdep_test.cpp
USES += sched time sync
