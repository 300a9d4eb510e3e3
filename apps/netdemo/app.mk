SRCS-y += main.cpp
USES += netdev virtio-net sched time
