SRCS-y += main.cpp
USES += ktest
ifeq ($(CONFIG_LIB_SCHED),y)
USES += sched time
endif
