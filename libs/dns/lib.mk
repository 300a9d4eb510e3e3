# libs/dns: stub resolver (A records).
SRCS-y += src/dns.cpp
TESTS-y += tests/dns_test.cpp
USES += udp ipv4 netdev eth-arp sched time sync
