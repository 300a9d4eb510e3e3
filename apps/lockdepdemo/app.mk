SRCS-y += main.cpp
USES += sched sync time lockdep
