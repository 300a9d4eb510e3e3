SRCS-y += main.cpp
USES += sched time sync futex ipc
