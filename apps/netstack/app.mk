SRCS-y += main.cpp
USES += netdev virtio-net ipv4 eth-arp icmp udp dhcp dns sched time
