# libs/sched-domains: budget groups, mixed criticality. The mechanism is in
# libs/sched (src/domains.cpp, built when this library is on).
SRCS-y += src/domains.cpp
TESTS-y += tests/domains_test.cpp
USES += sched sched-edf time
