# libs/klog: levelled kernel log.
SRCS-y += src/klog.cpp
TESTS-y += tests/klog_test.cpp
