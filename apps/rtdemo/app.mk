SRCS-y += main.cpp
USES += sched sched-edf time
