# libs/eth-arp: ARP cache, resolution, replies, gratuitous ARP.
SRCS-y += src/arp.cpp
TESTS-y +=
USES += netdev sched time sync
INIT += eth_arp.start
INIT-AFTER-eth_arp.start := sched.start
