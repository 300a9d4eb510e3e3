# libs/ktest: test registration, assertions, KTAP runner.
SRCS-y += src/ktest.cpp
TESTS-y += tests/ktest_self_test.cpp
