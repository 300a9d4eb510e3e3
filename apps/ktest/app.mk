SRCS-y += main.cpp
USES += ktest
