# libs/sync: mutexes, semaphores, condition variables, rwlocks, barriers on the
# scheduler's wait queues.
SRCS-y += src/mutex.cpp src/semaphore.cpp src/condvar.cpp src/rwlock.cpp src/barrier.cpp
TESTS-y += tests/mutex_test.cpp tests/semaphore_test.cpp tests/condvar_test.cpp tests/rwlock_test.cpp \
	tests/barrier_test.cpp tests/stress_test.cpp
USES += sched time
