SRCS-y += main.cpp
USES += tcp ipv4 netdev virtio-net sched time sync
