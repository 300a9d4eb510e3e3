# libs/netdev: packet pool, interfaces, receive queue + network thread, Pair.
SRCS-y += src/packet.cpp src/netdev.cpp src/pair.cpp
TESTS-y += tests/netdev_test.cpp
USES += sched time sync
