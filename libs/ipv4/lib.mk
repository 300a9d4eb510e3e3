# libs/ipv4: IPv4 input/output, routes, fragmentation, reassembly.
SRCS-y += src/ipv4.cpp src/checksum.cpp
TESTS-y += tests/ipv4_test.cpp
USES += netdev eth-arp sched time sync
INIT += ipv4.start
INIT-AFTER-ipv4.start := sched.start ?eth_arp.start
