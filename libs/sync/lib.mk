# libs/sync: mutexes and semaphores on the scheduler's wait queues.
SRCS-y += src/mutex.cpp src/semaphore.cpp
TESTS-y += tests/mutex_test.cpp tests/semaphore_test.cpp
USES += sched time
