SRCS-y += main.cpp
ifeq ($(CONFIG_LIB_SCHED),y)
USES += sched time
endif
