# libs/sched-edf: EDF threads, admission control. The run-queue mechanism
# is the deadline class in libs/sched (built when this library is on).
SRCS-y += src/edf.cpp src/admission.cpp
TESTS-y += tests/admission_test.cpp tests/edf_test.cpp
USES += sched time
INIT += sched_edf.start
INIT-AFTER-sched_edf.start := sched.start
