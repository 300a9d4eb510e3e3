# libs/udp: datagram sockets.
SRCS-y += src/udp.cpp
TESTS-y += tests/udp_test.cpp
USES += ipv4 netdev eth-arp sched time sync
INIT += udp.start
INIT-AFTER-udp.start := ipv4.start
