# libs/dhcp: DHCPv4 client.
SRCS-y += src/dhcp.cpp
TESTS-y += tests/dhcp_test.cpp
USES += udp ipv4 netdev eth-arp sched time sync
