SRCS-y += main.cpp
USES += tcp ipv4 netdev sched time sync
