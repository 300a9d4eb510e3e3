# libs/icmp: echo reply/request (ping) and rate-limited errors.
SRCS-y += src/icmp.cpp
TESTS-y += tests/icmp_test.cpp
USES += ipv4 netdev eth-arp sched time sync
INIT += icmp.start
INIT-AFTER-icmp.start := ipv4.start
