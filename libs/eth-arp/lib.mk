# libs/eth-arp: ARP cache, resolution, replies, gratuitous ARP.
SRCS-y += src/arp.cpp
# The tests drive ARP through ipv4 (its TestPeer and send path).
TESTS-$(CONFIG_LIB_IPV4) += tests/arp_test.cpp
USES += netdev sched time sync ipv4
INIT += eth_arp.start
INIT-AFTER-eth_arp.start := sched.start
